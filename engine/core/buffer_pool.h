// Fixed-size buffers from one contiguous, page-aligned region per shard (later registered
// with the kernel as io_uring fixed buffers), handed out as refcounted handles. The pool is
// bounded: when it is empty try_get() returns an empty handle and counts it — back-pressure,
// never an allocation or a crash.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "engine/core/result.h"
#include "engine/core/shard_id.h"

namespace ringmesh {

class buffer_pool;

/// The bookkeeping of one buffer. Opaque outside the pool; a raw pointer to it is how a
/// buffer crosses shards (buffer_handle::release_raw / adopt_raw).
struct buffer_slot {
    buffer_pool* pool;
    std::byte* data;
    std::uint32_t refcount;
    std::uint32_t size_bytes;
    std::uint32_t index;
};

/// A counted reference to a pool buffer. Copies share the buffer; the last one to go returns
/// it to its pool. The count is not atomic: all references live on one shard at a time. To
/// move a buffer to another shard, hand over the only reference (release_raw/adopt_raw);
/// when the last reference dies on a foreign shard the buffer is routed back to its owner.
class buffer_handle {
  public:
    buffer_handle() = default;
    buffer_handle(const buffer_handle& other) noexcept : slot_(other.slot_) { retain(); }
    buffer_handle(buffer_handle&& other) noexcept : slot_(other.slot_) { other.slot_ = nullptr; }
    buffer_handle& operator=(const buffer_handle& other) noexcept;
    buffer_handle& operator=(buffer_handle&& other) noexcept;
    ~buffer_handle() { reset(); }

    explicit operator bool() const noexcept { return slot_ != nullptr; }

    /// The whole buffer (capacity bytes) for writing.
    std::span<std::byte> storage() const noexcept;
    /// The bytes written so far (size() of them).
    std::span<std::byte> bytes() const noexcept;
    std::size_t size() const noexcept { return slot_ ? slot_->size_bytes : 0; }
    void set_size(std::size_t size_bytes) noexcept;
    std::size_t capacity() const noexcept;
    std::uint32_t use_count() const noexcept { return slot_ ? slot_->refcount : 0; }
    /// Index of the buffer inside its pool's region (the io_uring fixed-buffer index).
    std::uint32_t index() const noexcept { return slot_ ? slot_->index : UINT32_MAX; }

    void reset() noexcept;

    /// Gives up this (sole) reference without returning the buffer: for a cross-shard move.
    buffer_slot* release_raw() noexcept;
    /// Takes over a reference given up by release_raw().
    static buffer_handle adopt_raw(buffer_slot* slot) noexcept;

  private:
    friend class buffer_pool;
    explicit buffer_handle(buffer_slot* slot) noexcept : slot_(slot) {}
    void retain() noexcept {
        if (slot_) ++slot_->refcount;
    }
    buffer_slot* slot_ = nullptr;
};

/// Owned by one shard; try_get() and local returns are called from that shard's thread only.
/// A buffer whose last reference dies on another shard goes home by itself, through the
/// releasing shard's cross-core port (shard::route_foreign_buffer); no caller has to arrange
/// it. Released on a thread that is no shard while shard loops run, it cannot: that crashes,
/// naming the buffer and its owner, instead of corrupting the owner's free list from the
/// wrong thread. Single-threaded code (set-up, teardown, a test stepping shards itself) and a
/// pool owned by no shard (no_shard) return buffers at once.
class buffer_pool {
  public:
    static result<std::unique_ptr<buffer_pool>> create(std::size_t buffer_count,
                                                       std::size_t buffer_size_bytes,
                                                       shard_id owner);
    ~buffer_pool();
    buffer_pool(const buffer_pool&) = delete;
    buffer_pool& operator=(const buffer_pool&) = delete;

    /// A buffer with size() == 0, or an empty handle when the pool is exhausted (counted).
    buffer_handle try_get() noexcept;

    /// The slot of buffer `index` (for kernels that name buffers by index, e.g. io_uring
    /// provided buffers). The buffer must currently be out of the pool.
    buffer_slot* slot_at(std::uint32_t index) noexcept { return &slots_[index]; }
    /// Takes a free buffer out as a raw slot (refcount 1), or nullptr when exhausted.
    buffer_slot* try_take_raw() noexcept { return try_get().release_raw(); }

    /// Returns a buffer released elsewhere; must run on the owner shard.
    void return_slot(buffer_slot* slot) noexcept;

    /// Called on the owner shard as each buffer comes back, before it is free again. A pool
    /// whose slots stand for buffers owned elsewhere (a DPDK mbuf behind each received
    /// datagram) releases the real buffer here and may repoint slot->data.
    using return_hook_fn = std::function<void(buffer_slot*)>;
    void set_return_hook(return_hook_fn fn) { return_hook_ = std::move(fn); }

    shard_id owner() const noexcept { return owner_; }
    std::size_t buffer_size_bytes() const noexcept { return buffer_size_; }
    std::size_t buffer_count() const noexcept { return slots_.size(); }
    std::size_t available() const noexcept { return free_.size(); }
    /// The whole registered region: io_uring_register_buffers wants it as one iovec per
    /// buffer or as one span.
    std::span<std::byte> region() const noexcept { return {region_, region_size_}; }
    std::uint64_t exhausted_count() const noexcept {
        return exhausted_.load(std::memory_order_relaxed);
    }

  private:
    friend class buffer_handle;
    buffer_pool(std::byte* region, std::size_t region_size, std::size_t buffer_count,
                std::size_t buffer_size, shard_id owner);
    void release(buffer_slot* slot) noexcept;

    std::byte* region_;
    std::size_t region_size_;
    std::size_t buffer_size_;
    shard_id owner_;
    std::vector<buffer_slot> slots_;
    std::vector<std::uint32_t> free_;
    return_hook_fn return_hook_;
    std::atomic<std::uint64_t> exhausted_{0};  // written by the owner, read by stats
};

}  // namespace ringmesh
