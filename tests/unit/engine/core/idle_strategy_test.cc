#include "engine/core/idle_strategy.h"

#include <gtest/gtest.h>

namespace ringmesh {
namespace {

TEST(IdleStrategyTest, ParsesEveryKindByName) {
    EXPECT_EQ(parse_idle_kind("busy_spin"), idle_kind::busy_spin);
    EXPECT_EQ(parse_idle_kind("backoff"), idle_kind::backoff);
    EXPECT_EQ(parse_idle_kind("block"), idle_kind::block);
    EXPECT_FALSE(parse_idle_kind("snooze").has_value());
    EXPECT_EQ(to_string(idle_kind::block), "block");
}

TEST(IdleStrategyTest, BusySpinNeverLeavesTheCpu) {
    idler idle({.kind = idle_kind::busy_spin});
    for (int i = 0; i < 1000; ++i)
        EXPECT_EQ(idle.idle(0), idle_step::spun);
}

TEST(IdleStrategyTest, BackoffSpinsThenYieldsThenSleepsAndResetsOnWork) {
    idler idle({.kind = idle_kind::backoff,
                .spin_iterations = 2,
                .yield_iterations = 1,
                .min_park_ns = 1000,
                .max_park_ns = 4000});
    EXPECT_EQ(idle.idle(0), idle_step::spun);
    EXPECT_EQ(idle.idle(0), idle_step::spun);
    EXPECT_EQ(idle.idle(0), idle_step::yielded);
    EXPECT_EQ(idle.idle(0), idle_step::slept);
    EXPECT_EQ(idle.idle(3), idle_step::worked);
    EXPECT_EQ(idle.idle(0), idle_step::spun);
}

TEST(IdleStrategyTest, BlockSpinsBrieflyThenAsksTheShardToPark) {
    idler idle({.kind = idle_kind::block, .spin_iterations = 3});
    for (int i = 0; i < 3; ++i)
        EXPECT_EQ(idle.idle(0), idle_step::spun);
    EXPECT_EQ(idle.idle(0), idle_step::park_in_kernel);
    EXPECT_EQ(idle.idle(1), idle_step::worked);
}

}  // namespace
}  // namespace ringmesh
