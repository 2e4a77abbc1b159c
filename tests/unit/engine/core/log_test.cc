#include "engine/core/log.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ringmesh {
namespace {

struct captured_line {
    log::level level;
    std::string component, text;
};

// Routes the facility's lines into a vector for the test's lifetime; restores the defaults.
class LogTest : public ::testing::Test {
  protected:
    void SetUp() override {
        log::set_handler([this](log::level l, std::string_view component, std::string_view text) {
            lines_.push_back({l, std::string(component), std::string(text)});
        });
    }
    void TearDown() override {
        log::set_handler({});
        log::set_level(log::level::info);
    }
    std::vector<captured_line> lines_;
};

TEST_F(LogTest, LinesBelowTheThresholdAreDroppedUnformatted) {
    log::set_level(log::level::warn);
    log::info("test", "not {}", "written");
    log::warn("test", "written {}", 1);
    log::error("test", "written {}", 2);
    ASSERT_EQ(lines_.size(), 2u);
    EXPECT_EQ(lines_[0].level, log::level::warn);
    EXPECT_EQ(lines_[0].component, "test");
    EXPECT_EQ(lines_[0].text, "written 1");
    EXPECT_EQ(lines_[1].text, "written 2");
    log::set_level(log::level::off);
    log::error("test", "nothing passes off");
    EXPECT_EQ(lines_.size(), 2u);
}

TEST_F(LogTest, LevelsParseByName) {
    for (auto l : {log::level::trace, log::level::debug, log::level::info, log::level::warn,
                   log::level::error, log::level::off}) {
        EXPECT_EQ(log::parse_level(log::name(l)), l);
    }
    EXPECT_FALSE(log::parse_level("verbose"));
    EXPECT_FALSE(log::parse_level(""));
}

TEST_F(LogTest, TotalsCountLinesByLevel) {
    const log::totals before = log::counted();
    log::warn("test", "one");
    log::warn("test", "two");
    log::error("test", "three");
    const log::totals after = log::counted();
    EXPECT_EQ(after.lines[static_cast<std::size_t>(log::level::warn)] -
                  before.lines[static_cast<std::size_t>(log::level::warn)],
              2u);
    EXPECT_EQ(after.lines[static_cast<std::size_t>(log::level::error)] -
                  before.lines[static_cast<std::size_t>(log::level::error)],
              1u);
}

TEST(SiteLimitTest, AdmitsABurstPerWindowAndReportsWhatItHeldBack) {
    constexpr std::int64_t second = 1'000'000'000;
    log::site_limit site(3, second);
    std::uint64_t held_back = 99;
    std::int64_t now = 5 * second;
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(site.admit(now + i, held_back));
        EXPECT_EQ(held_back, 0u);
    }
    for (int i = 0; i < 7; ++i)
        EXPECT_FALSE(site.admit(now + 10 + i, held_back));
    // The next window: the first line stands for the seven held back, then the count restarts.
    now += second;
    ASSERT_TRUE(site.admit(now, held_back));
    EXPECT_EQ(held_back, 7u);
    ASSERT_TRUE(site.admit(now + 1, held_back));
    EXPECT_EQ(held_back, 0u);
}

TEST(SiteLimitTest, AClockThatStepsBackStartsAFreshWindow) {
    log::site_limit site(1, 1'000'000'000);
    std::uint64_t held_back = 0;
    ASSERT_TRUE(site.admit(2'000'000'000, held_back));
    EXPECT_FALSE(site.admit(2'000'000'001, held_back));
    EXPECT_TRUE(site.admit(1'000'000'000, held_back));
    EXPECT_EQ(held_back, 1u);
}

TEST_F(LogTest, ALimitedSiteWritesItsBurstAndHoldsTheRestBack) {
    // A window far longer than the test: exactly the burst passes, whatever the clock does.
    log::site_limit site(4, std::int64_t{3600} * 1'000'000'000);
    for (int i = 0; i < 100; ++i)
        log::limited(site, log::level::warn, "test", "refused {}", i);
    ASSERT_EQ(lines_.size(), 4u);
    EXPECT_EQ(lines_[3].text, "refused 3");
}

}  // namespace
}  // namespace ringmesh
