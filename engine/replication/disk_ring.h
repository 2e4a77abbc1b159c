// An io_uring for files: the Raft log's writes and fdatasyncs, and snapshot files. One per
// shard, beside the transport's ring; attach() registers it with the shard as a poller that
// reaps completions and a wait source whose eventfd wakes the shard, so that the disk shares
// the shard's sleep like every other source of work.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "engine/core/result.h"

namespace ringmesh {
class shard;
}

namespace ringmesh::replication {

enum class storage_errc {
    not_supported = 1,  ///< io_uring (or an operation it needs) is not available here
    io_error,           ///< an OS call failed; the detail names it and errno's text
    corrupted,          ///< a checksum or a structure on disk is wrong where it cannot be torn
    bad_config,
};
const std::error_category& storage_category() noexcept;
inline std::error_code make_error_code(storage_errc e) noexcept {
    return {static_cast<int>(e), storage_category()};
}

/// Owned by one shard; every call from its thread.
class disk_ring {
  public:
    /// Called with the operation's result (bytes, 0, or -errno; -ECANCELED when an earlier
    /// operation of its chain failed).
    using completion = std::function<void(int result)>;

    static result<std::unique_ptr<disk_ring>> create(unsigned entries = 128);
    ~disk_ring();
    disk_ring(const disk_ring&) = delete;
    disk_ring& operator=(const disk_ring&) = delete;

    /// A submission entry whose completion runs `done` (may be empty). Submitted by submit().
    /// Submits what is queued first when the ring is full.
    io_uring_sqe* prepare(completion done);
    /// Makes sure `count` entries can be prepared without a submission in between (a linked
    /// chain must reach the kernel whole).
    void reserve(unsigned count);
    /// Hands every prepared entry to the kernel; returns how many.
    unsigned submit();
    /// Runs the callbacks of finished operations; `wait`: block for at least one first.
    /// Returns how many completed.
    std::size_t reap(bool wait = false);
    std::size_t in_flight() const noexcept { return in_flight_; }
    /// An eventfd that becomes readable when a completion waits (created on first call).
    int ready_fd();

    /// Reaps on every loop iteration of `s` and wakes it from its sleep; until detach().
    void attach(shard& s);
    void detach();

  private:
    disk_ring() = default;

    io_uring ring_{};
    bool ready_ = false;
    int event_fd_ = -1;
    std::vector<completion> callbacks_;
    std::vector<std::uint32_t> free_slots_;
    std::size_t in_flight_ = 0;
    shard* attached_ = nullptr;
    std::uint64_t poller_ = 0;
    std::uint64_t wait_source_ = 0;
};

}  // namespace ringmesh::replication

template <>
struct std::is_error_code_enum<ringmesh::replication::storage_errc> : std::true_type {};
