// What one stream connection has queued to send, in order: byte ranges copied in (small
// frames, acks, handshakes) and ranges referenced in place from memory whose owner the queue
// holds (a session's retransmit blocks). Large runs thus reach the kernel without a copy into
// the transport; the whole queue leaves as one sendmsg with an iovec per range.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <span>
#include <vector>

#include "engine/core/shared_bytes.h"

namespace ringmesh::transport {

class send_queue {
  public:
    /// Ranges shorter than this are copied even when they could be sent in place: a copy of
    /// a few KiB costs less than an iovec, a reference count and a cold cache line in the
    /// kernel.
    static constexpr std::size_t min_bytes_in_place = 8192;
    /// The kernel takes at most this many iovecs per sendmsg (UIO_MAXIOV).
    static constexpr std::size_t max_iovecs = 1024;

    void append_copy(std::span<const std::byte> bytes) {
        if (bytes.empty()) return;
        if (segments_.empty() || segments_.back().data != nullptr) {
            segments_.push_back({nullptr, copied_.size(), 0, {}});
        }
        copied_.insert(copied_.end(), bytes.begin(), bytes.end());
        segments_.back().size += bytes.size();
        bytes_ += bytes.size();
    }
    void append_in_place(std::span<const std::byte> bytes, const shared_bytes_owner& owner) {
        if (bytes.size() < min_bytes_in_place || !owner) return append_copy(bytes);
        segments_.push_back({bytes.data(), 0, bytes.size(), owner});
        bytes_ += bytes.size();
    }

    /// Bytes not yet sent.
    std::size_t size() const noexcept { return bytes_ - sent_; }
    bool empty() const noexcept { return size() == 0; }

    /// Fills `iov` with the unsent bytes (at most max_iovecs ranges); returns the ranges used.
    /// The pointers stay valid until this queue is appended to or cleared.
    std::size_t gather(std::vector<iovec>& iov) const {
        iov.clear();
        std::size_t skip = sent_in_first_;
        for (std::size_t i = first_; i < segments_.size() && iov.size() < max_iovecs; ++i) {
            const segment& s = segments_[i];
            const std::byte* base = s.data ? s.data : copied_.data() + s.copy_offset;
            iov.push_back({const_cast<std::byte*>(base + skip), s.size - skip});
            skip = 0;
        }
        return iov.size();
    }

    /// `n` more bytes reached the kernel: ranges wholly sent let go of their owners, or hand
    /// them to `keep` when the kernel still reads the pages later (SEND_ZC).
    void consume(std::size_t n, std::vector<shared_bytes_owner>* keep = nullptr) {
        sent_ += n;
        n += sent_in_first_;
        while (first_ < segments_.size() && n >= segments_[first_].size) {
            n -= segments_[first_].size;
            if (keep != nullptr && segments_[first_].owner) {
                keep->push_back(std::move(segments_[first_].owner));
            }
            segments_[first_].owner.reset();
            ++first_;
        }
        sent_in_first_ = n;
        if (sent_ == bytes_) clear();
    }

    void clear() {
        segments_.clear();  // drops the owners
        copied_.clear();    // keeps the capacity
        bytes_ = sent_ = sent_in_first_ = first_ = 0;
    }
    void swap(send_queue& other) noexcept {
        segments_.swap(other.segments_);
        copied_.swap(other.copied_);
        std::swap(bytes_, other.bytes_);
        std::swap(sent_, other.sent_);
        std::swap(sent_in_first_, other.sent_in_first_);
        std::swap(first_, other.first_);
    }
    void reserve_copies(std::size_t bytes) { copied_.reserve(bytes); }

  private:
    struct segment {
        const std::byte* data;  // in place; nullptr: copied
        std::size_t copy_offset;
        std::size_t size;
        shared_bytes_owner owner;
    };
    std::vector<segment> segments_;
    std::vector<std::byte> copied_;
    std::size_t bytes_ = 0;          // appended
    std::size_t sent_ = 0;           // consumed
    std::size_t first_ = 0;          // first segment with unsent bytes
    std::size_t sent_in_first_ = 0;  // bytes of it already sent
};

}  // namespace ringmesh::transport
