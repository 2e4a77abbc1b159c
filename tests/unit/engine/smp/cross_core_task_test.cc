#include "engine/smp/cross_core_task.h"

#include <gtest/gtest.h>

#include "engine/core/shard.h"

namespace ringmesh {
namespace {

TEST(CrossCoreTaskTest, CarriesItsCaptureByValueAcrossACopy) {
    int target = 0;
    int* out = &target;
    const std::uint64_t a = 40, b = 2;
    const cross_core_task original =
        cross_core_task::wrap(3, [out, a, b] { *out = static_cast<int>(a + b); });
    cross_core_task copy;
    std::memcpy(&copy, &original, sizeof copy);  // what the ring does
    EXPECT_EQ(copy.from, 3u);
    ring_mesh mesh(1, 2);
    virtual_clock clock;
    auto s = shard::create(0, mesh, clock, shard_config{});
    ASSERT_TRUE(s);
    copy.run(**s);
    EXPECT_EQ(target, 42);
}

TEST(CrossCoreTaskTest, MayTakeTheTargetShard) {
    shard_id ran_on = no_shard;
    shard_id* out = &ran_on;
    const auto task = cross_core_task::wrap(0, [out](shard& s) { *out = s.id(); });
    ring_mesh mesh(2, 2);
    virtual_clock clock;
    auto s = shard::create(1, mesh, clock, shard_config{});
    ASSERT_TRUE(s);
    task.run(**s);
    EXPECT_EQ(ran_on, 1u);
}

}  // namespace
}  // namespace ringmesh
