#include "engine/core/buffer_pool.h"

#include <gtest/gtest.h>

#include <vector>

namespace ringmesh {
namespace {

std::unique_ptr<buffer_pool> make_pool(std::size_t count, std::size_t size) {
    auto pool = buffer_pool::create(count, size, 0);
    EXPECT_TRUE(pool.has_value());
    return std::move(pool).value();
}

TEST(BufferPoolTest, HandsOutDistinctWritableBuffers) {
    auto pool = make_pool(4, 100);
    buffer_handle a = pool->try_get();
    buffer_handle b = pool->try_get();
    ASSERT_TRUE(a && b);
    EXPECT_NE(a.storage().data(), b.storage().data());
    EXPECT_GE(a.capacity(), 100u);
    a.storage()[0] = std::byte{7};
    a.set_size(1);
    EXPECT_EQ(a.bytes().size(), 1u);
    EXPECT_EQ(pool->available(), 2u);
}

TEST(BufferPoolTest, ExhaustionIsReportedAndCounted) {
    auto pool = make_pool(2, 64);
    std::vector<buffer_handle> held{pool->try_get(), pool->try_get()};
    EXPECT_FALSE(pool->try_get());
    EXPECT_FALSE(pool->try_get());
    EXPECT_EQ(pool->exhausted_count(), 2u);
    held.pop_back();
    EXPECT_TRUE(pool->try_get());
}

TEST(BufferPoolTest, LastReferenceReturnsTheBuffer) {
    auto pool = make_pool(1, 64);
    buffer_handle a = pool->try_get();
    {
        buffer_handle copy = a;
        EXPECT_EQ(a.use_count(), 2u);
        a.reset();
        EXPECT_EQ(pool->available(), 0u);  // the copy still holds it
    }
    EXPECT_EQ(pool->available(), 1u);
}

TEST(BufferPoolTest, MoveAndAssignmentKeepCountsRight) {
    auto pool = make_pool(3, 64);
    buffer_handle a = pool->try_get();
    buffer_handle b = std::move(a);
    EXPECT_FALSE(a);
    EXPECT_EQ(b.use_count(), 1u);
    buffer_handle c = pool->try_get();
    c = b;  // c's old buffer goes back, b's is shared
    EXPECT_EQ(b.use_count(), 2u);
    EXPECT_EQ(pool->available(), 2u);
    c = c;  // NOLINT: self-assignment must be harmless
    EXPECT_EQ(b.use_count(), 2u);
}

TEST(BufferPoolTest, RawReleaseAndAdoptMoveTheSoleReference) {
    auto pool = make_pool(1, 64);
    buffer_handle a = pool->try_get();
    buffer_slot* raw = a.release_raw();
    EXPECT_FALSE(a);
    EXPECT_EQ(pool->available(), 0u);
    buffer_handle back = buffer_handle::adopt_raw(raw);
    EXPECT_EQ(back.use_count(), 1u);
    back.reset();
    EXPECT_EQ(pool->available(), 1u);
}

TEST(BufferPoolTest, RejectsAnEmptyConfiguration) {
    EXPECT_FALSE(buffer_pool::create(0, 64, 0).has_value());
    EXPECT_FALSE(buffer_pool::create(4, 0, 0).has_value());
}

TEST(BufferPoolTest, RegionIsPageAlignedForKernelRegistration) {
    auto pool = make_pool(8, 2048);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(pool->region().data()) % 4096, 0u);
    EXPECT_GE(pool->region().size(), 8u * 2048u);
}

}  // namespace
}  // namespace ringmesh
