// A growable first-in first-out byte buffer, contiguous per record: frames are appended at the
// back and released from the front in the same order (cumulative acks), so one allocation
// serves a stream's whole retransmit window with no per-message allocation after warm-up.
#pragma once

#include <cstddef>
#include <cstring>
#include <span>
#include <vector>

#include "engine/core/assert.h"

namespace ringmesh {

/// Owned by one session stream on one shard.
class byte_fifo {
  public:
    /// Space for `n` bytes at the back; valid until the next reserve/commit. Returns the
    /// offset the record will have (for at()).
    std::span<std::byte> reserve(std::size_t n) {
        if (tail_ + n > buffer_.size()) make_room(n);
        return {buffer_.data() + tail_, n};
    }
    /// Appends the `n` bytes written into the last reserve(); returns their offset.
    std::size_t commit(std::size_t n) {
        const std::size_t offset = base_ + (tail_ - head_);
        tail_ += n;
        return offset;
    }
    /// Releases `n` bytes from the front.
    void pop_front(std::size_t n) {
        RM_ASSERT(n <= tail_ - head_, "byte_fifo: pop beyond the data");
        head_ += n;
        base_ += n;
        if (head_ == tail_) head_ = tail_ = 0;
    }
    /// The bytes of a record by the offset commit() returned.
    std::span<std::byte> at(std::size_t offset, std::size_t n) {
        const std::size_t index = head_ + (offset - base_);
        RM_ASSERT(offset >= base_ && index + n <= tail_, "byte_fifo: stale offset");
        return {buffer_.data() + index, n};
    }
    std::size_t size() const noexcept { return tail_ - head_; }
    bool empty() const noexcept { return head_ == tail_; }

  private:
    void make_room(std::size_t n) {
        const std::size_t live = tail_ - head_;
        if (head_ > 0 && live + n <= buffer_.size() && head_ >= live) {
            std::memmove(buffer_.data(), buffer_.data() + head_, live);  // slide to the front
        } else {
            std::vector<std::byte> bigger(std::max(buffer_.size() * 2, live + n + 4096));
            if (live) std::memcpy(bigger.data(), buffer_.data() + head_, live);
            buffer_.swap(bigger);
        }
        head_ = 0;
        tail_ = live;
    }

    std::vector<std::byte> buffer_;
    std::size_t head_ = 0;
    std::size_t tail_ = 0;
    std::size_t base_ = 0;  // logical offset of head_: offsets stay valid across slides
};

}  // namespace ringmesh
