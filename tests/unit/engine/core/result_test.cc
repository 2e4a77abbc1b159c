#include "engine/core/result.h"

#include <gtest/gtest.h>

#include "engine/core/errc.h"

namespace ringmesh {
namespace {

result<int> parse_positive(int v) {
    if (v <= 0) return make_error(core_errc::bad_config, "value must be positive");
    return v;
}

TEST(ResultTest, CarriesAValueOrATypedError) {
    auto good = parse_positive(3);
    ASSERT_TRUE(good);
    EXPECT_EQ(*good, 3);
    auto bad = parse_positive(-1);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.err().code, make_error_code(core_errc::bad_config));
    EXPECT_EQ(bad.err().message(), "invalid configuration: value must be positive");
}

TEST(ResultTest, VoidResultReportsSuccessAndFailure) {
    result<void> fine = ok();
    EXPECT_TRUE(fine);
    result<void> failed = make_error(core_errc::system_error);
    EXPECT_FALSE(failed);
    EXPECT_EQ(std::string(failed.err().code.category().name()), "ringmesh.core");
}

TEST(ResultDeathTest, ReadingTheValueOfAnErrorCrashesWithContext) {
    auto bad = parse_positive(0);
    EXPECT_DEATH((void)bad.value(), "result::value\\(\\) on an error");
}

}  // namespace
}  // namespace ringmesh
