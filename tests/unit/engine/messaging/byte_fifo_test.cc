// The session's retransmit store: records stay where they were written until popped, and a
// block a transport still sends from is never written again.
#include "engine/messaging/byte_fifo.h"

#include <gtest/gtest.h>

#include <cstring>
#include <deque>

namespace ringmesh {
namespace {

struct written {
    byte_fifo::record where;
    std::size_t size;
    std::byte fill;
};

written append(byte_fifo& fifo, std::size_t size, std::byte fill) {
    std::span<std::byte> out = fifo.reserve(size);
    std::memset(out.data(), static_cast<int>(fill), size);
    return {fifo.commit(size), size, fill};
}

bool intact(const written& w) {
    for (std::size_t i = 0; i < w.size; ++i) {
        if (w.where.data[i] != w.fill) return false;
    }
    return true;
}

TEST(ByteFifoTest, RecordsNeverMoveAndConsecutiveOnesLieBackToBack) {
    byte_fifo fifo;
    std::deque<written> live;
    for (int i = 0; i < 2000; ++i) {
        live.push_back(append(fifo, 40 + (i * 37) % 3000, static_cast<std::byte>(i)));
        if (i % 3 == 0) {  // acks lag behind, as they do
            fifo.pop_front(live.front().size);
            live.pop_front();
        }
        for (const written& w : live)
            ASSERT_TRUE(intact(w)) << "record moved or was overwritten at step " << i;
    }
    // Records in one block are contiguous: a run of them is one range.
    std::size_t contiguous = 0;
    for (std::size_t i = 1; i < live.size(); ++i) {
        if (live[i].where.data == live[i - 1].where.data + live[i - 1].size) ++contiguous;
    }
    EXPECT_GT(contiguous, live.size() / 2);
    std::size_t total = 0;
    for (const written& w : live)
        total += w.size;
    EXPECT_EQ(fifo.size(), total);
}

TEST(ByteFifoTest, ABlockStillHeldBySomeoneIsNotRewritten) {
    byte_fifo fifo;
    const written first = append(fifo, 1000, std::byte{0xaa});
    const shared_bytes_owner held = fifo.owner_of(first.where);  // a send in flight
    fifo.pop_front(first.size);                                  // acked meanwhile
    EXPECT_TRUE(fifo.empty());
    for (int i = 0; i < 100; ++i) {
        const written next = append(fifo, 1000, std::byte{0x55});
        fifo.pop_front(next.size);
    }
    EXPECT_TRUE(intact(first)) << "the held block was reused";
}

TEST(ByteFifoTest, AnUnheldEmptyBlockIsReusedInPlace) {
    byte_fifo fifo;
    const written first = append(fifo, 100, std::byte{1});
    fifo.pop_front(first.size);
    const written second = append(fifo, 100, std::byte{2});
    EXPECT_EQ(second.where.data, first.where.data);  // still in cache: no new block
}

TEST(ByteFifoTest, ARecordLargerThanABlockGetsItsOwn) {
    byte_fifo fifo;
    const written small = append(fifo, 100, std::byte{1});
    const written big = append(fifo, byte_fifo::max_block_bytes * 3, std::byte{2});
    const written after = append(fifo, 100, std::byte{3});
    EXPECT_TRUE(intact(small) && intact(big) && intact(after));
    EXPECT_NE(fifo.owner_of(small.where), fifo.owner_of(big.where));
    EXPECT_NE(fifo.owner_of(big.where), fifo.owner_of(after.where));
    fifo.pop_front(small.size);
    fifo.pop_front(big.size);
    EXPECT_TRUE(intact(after));
    EXPECT_EQ(fifo.size(), after.size);
}

}  // namespace
}  // namespace ringmesh
