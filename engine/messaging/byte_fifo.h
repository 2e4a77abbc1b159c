// A first-in first-out store of byte records in blocks that never move: records are appended
// at the back and released from the front in the same order (cumulative acks), so one set of
// blocks serves a stream's whole retransmit window with no per-message allocation after
// warm-up. A record never spans two blocks, and consecutive records in one block lie back to
// back, so a run of them leaves as one send.
//
// Blocks are shared: a transport may send straight from a block (no copy into its own batch)
// by holding the block's owner until the kernel is done with the bytes. A block someone else
// still holds is never written again; the FIFO takes a fresh one instead.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <vector>

#include "engine/core/assert.h"
#include "engine/core/shared_bytes.h"

namespace ringmesh {

/// Owned by one session stream on one shard.
class byte_fifo {
  public:
    /// Where a committed record lives: stable until it is popped.
    struct record {
        std::byte* data = nullptr;
        std::uint64_t block = 0;  // the block's number, for owner_of()
    };

    /// Space for `n` bytes at the back; valid until the next reserve/commit.
    std::span<std::byte> reserve(std::size_t n) {
        if (blocks_.empty() || blocks_.back().capacity - blocks_.back().used < n) make_room(n);
        block& b = blocks_.back();
        return {b.data + b.used, n};
    }
    /// Appends the `n` bytes written into the last reserve().
    record commit(std::size_t n) {
        block& b = blocks_.back();
        const record r{b.data + b.used, first_block_ + blocks_.size() - 1};
        b.used += n;
        live_ += n;
        return r;
    }
    /// Releases the front record, of `n` bytes.
    void pop_front(std::size_t n) {
        RM_ASSERT(!blocks_.empty() && n <= live_, "byte_fifo: pop beyond the data");
        block& front = blocks_.front();
        front.consumed += n;
        live_ -= n;
        RM_ASSERT(front.consumed <= front.used, "byte_fifo: pop across a block");
        if (front.consumed < front.used) return;
        if (blocks_.size() > 1) {
            retire_front();
        } else if (front.owner.use_count() == 1) {
            front.used = front.consumed = 0;  // empty and nobody sending from it: reuse in place
        }
    }
    bool empty() const noexcept { return live_ == 0; }
    std::size_t size() const noexcept { return live_; }

    /// The owner of the block holding `r`: hold a copy to keep its bytes alive.
    const shared_bytes_owner& owner_of(const record& r) const {
        RM_ASSERT(r.block >= first_block_ && r.block - first_block_ < blocks_.size(),
                  "byte_fifo: record of a released block");
        return blocks_[r.block - first_block_].owner;
    }

    /// Blocks start small and double up to this size; a larger record gets a block of its own.
    static constexpr std::size_t max_block_bytes = 256u << 10;
    static constexpr std::size_t min_block_bytes = 4096;

  private:
    struct block {
        shared_bytes_owner owner;  // the memory; use_count() > 1 while a transport sends from it
        std::byte* data = nullptr;
        std::size_t capacity = 0;
        std::size_t used = 0;      // bytes committed
        std::size_t consumed = 0;  // bytes popped from the front
    };

    void make_room(std::size_t n) {
        if (blocks_.size() == 1 && blocks_.front().consumed == blocks_.front().used) {
            // The only block is empty: reuse it in place unless it is too small or a
            // transport still sends from it.
            block& only = blocks_.front();
            if (only.owner.use_count() == 1 && only.capacity >= n) {
                only.used = only.consumed = 0;
                return;
            }
            retire_front();
        }
        // A spare that nobody holds any more and that is large enough, else a new block.
        for (auto it = spares_.begin(); it != spares_.end(); ++it) {
            if (it->owner.use_count() == 1 && it->capacity >= n) {
                it->used = it->consumed = 0;
                blocks_.push_back(std::move(*it));
                spares_.erase(it);
                return;
            }
        }
        const std::size_t capacity = std::max(n, next_block_bytes_);
        next_block_bytes_ = std::min(next_block_bytes_ * 2, max_block_bytes);
        auto memory = std::shared_ptr<std::byte[]>(new std::byte[capacity]);
        block b;
        b.data = memory.get();
        b.capacity = capacity;
        b.owner = std::move(memory);
        blocks_.push_back(std::move(b));
    }

    void retire_front() {
        block& front = blocks_.front();
        // Keep the largest couple of ordinary blocks for reuse (once their senders let go);
        // anything else is freed as soon as its last holder drops it.
        if (front.capacity <= max_block_bytes) {
            if (spares_.size() < max_spares) {
                spares_.push_back(std::move(front));
            } else {
                auto smallest = std::min_element(
                    spares_.begin(), spares_.end(),
                    [](const block& a, const block& b) { return a.capacity < b.capacity; });
                if (smallest->capacity < front.capacity) *smallest = std::move(front);
            }
        }
        blocks_.pop_front();
        ++first_block_;
    }

    static constexpr std::size_t max_spares = 2;
    std::deque<block> blocks_;
    std::vector<block> spares_;
    std::uint64_t first_block_ = 0;  // number of blocks_.front()
    std::size_t live_ = 0;
    std::size_t next_block_bytes_ = min_block_bytes;
};

}  // namespace ringmesh
