#include "engine/core/spsc_ring.h"

#include <gtest/gtest.h>

#include <array>
#include <vector>

namespace ringmesh {
namespace {

TEST(SpscRingTest, PushesAndPopsInOrder) {
    spsc_ring<int> ring(8);
    for (int i = 0; i < 5; ++i)
        ASSERT_TRUE(ring.try_push(i));
    std::array<int, 8> out{};
    ASSERT_EQ(ring.pop_bulk(out), 5u);
    for (int i = 0; i < 5; ++i)
        EXPECT_EQ(out[i], i);
    EXPECT_EQ(ring.pushed(), 5u);
    EXPECT_EQ(ring.popped(), 5u);
}

TEST(SpscRingTest, TryPopTakesOneItemAndReportsEmpty) {
    spsc_ring<int> ring(2);
    int v = 0;
    EXPECT_FALSE(ring.try_pop(v));
    ASSERT_TRUE(ring.try_push(5));
    ASSERT_TRUE(ring.try_pop(v));
    EXPECT_EQ(v, 5);
    EXPECT_EQ(ring.popped(), 1u);
}

TEST(SpscRingTest, FullRingRefusesAndCountsInsteadOfDropping) {
    spsc_ring<int> ring(4);
    std::vector<int> items{1, 2, 3, 4, 5, 6};
    EXPECT_EQ(ring.push_bulk(items), 4u);
    EXPECT_FALSE(ring.try_push(7));
    EXPECT_EQ(ring.full_events(), 2u);
    std::array<int, 8> out{};
    ASSERT_EQ(ring.pop_bulk(out), 4u);
    EXPECT_EQ(out[3], 4);  // the refused items were never half-written
}

TEST(SpscRingTest, ConsumeAllVisitsEveryItemInPlaceOnce) {
    spsc_ring<int> ring(16);
    std::vector<int> items{10, 11, 12};
    ASSERT_EQ(ring.push_bulk(items), 3u);
    std::vector<int> seen;
    EXPECT_EQ(ring.consume_all([&](const int& v) { seen.push_back(v); }), 3u);
    EXPECT_EQ(seen, items);
    EXPECT_EQ(ring.consume_all([&](const int&) { FAIL(); }), 0u);
    EXPECT_EQ(ring.read_available(), 0u);
}

TEST(SpscRingTest, WrapsAroundManyTimesWithoutLosingItems) {
    spsc_ring<std::uint64_t> ring(7);
    std::uint64_t next_in = 0, next_out = 0;
    std::array<std::uint64_t, 5> batch{};
    for (int round = 0; round < 1000; ++round) {
        for (auto& v : batch)
            v = next_in++;
        const std::size_t pushed = ring.push_bulk(batch);
        next_in -= batch.size() - pushed;
        std::array<std::uint64_t, 3> out{};
        const std::size_t popped = ring.pop_bulk(out);
        for (std::size_t i = 0; i < popped; ++i)
            ASSERT_EQ(out[i], next_out++);
    }
    EXPECT_EQ(ring.pushed() - ring.popped(), next_in - next_out);
}

}  // namespace
}  // namespace ringmesh
