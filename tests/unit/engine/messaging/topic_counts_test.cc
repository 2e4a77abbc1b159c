#include "engine/messaging/topic_counts.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace ringmesh::messaging {
namespace {

std::map<std::string, topic_counts::counts> snapshot(const topic_counts& t) {
    std::map<std::string, topic_counts::counts> out;
    t.for_each([&](std::string_view topic, const topic_counts::counts& c) {
        out[std::string(topic)] = c;
    });
    return out;
}

TEST(TopicCountsTest, CountsEachTopicApartUpToTheLimitThenAsOther) {
    topic_counts t(2);
    ++t.at("md/a")->published;
    ++t.at("md/a")->published;  // the cached entry
    ++t.at("md/b")->received;
    ++t.at("md/a")->received;  // back to a known topic after another
    // Past the limit: every new name lands in the overflow, however many there are.
    for (int i = 0; i < 1000; ++i)
        ++t.at("md/n" + std::to_string(i))->published;
    ++t.at("md/b")->published;  // a known topic keeps its own counters
    const auto seen = snapshot(t);
    ASSERT_EQ(seen.size(), 3u);
    EXPECT_EQ(seen.at("md/a").published, 2u);
    EXPECT_EQ(seen.at("md/a").received, 1u);
    EXPECT_EQ(seen.at("md/b").published, 1u);
    EXPECT_EQ(seen.at("md/b").received, 1u);
    EXPECT_EQ(seen.at(std::string(topic_counts::overflow_topic)).published, 1000u);
}

TEST(TopicCountsTest, ALimitOfZeroCountsNothing) {
    topic_counts t(0);
    EXPECT_EQ(t.at("md/a"), nullptr);
    EXPECT_EQ(t.size(), 0u);
}

TEST(TopicCountsTest, TheCacheFollowsTheNameNotTheBuffer) {
    topic_counts t(4);
    std::string name = "md/a";
    ++t.at(name)->published;
    name = "md/b";  // the same buffer, another topic
    ++t.at(name)->published;
    const auto seen = snapshot(t);
    EXPECT_EQ(seen.at("md/a").published, 1u);
    EXPECT_EQ(seen.at("md/b").published, 1u);
}

}  // namespace
}  // namespace ringmesh::messaging
