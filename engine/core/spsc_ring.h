// A bounded single-producer single-consumer ring: boost::lockfree::spsc_queue plus the
// counters an operator needs (pushed, popped, times found full). Bulk operations move a
// whole batch with one acquire and one release, which is what makes cross-core traffic cheap.
// A full ring is back-pressure: push returns how many items it took, never drops silently.
#pragma once

#include <atomic>
#include <boost/lockfree/spsc_queue.hpp>
#include <cstddef>
#include <cstdint>
#include <span>

#include "engine/core/assert.h"

namespace ringmesh {

/// Owned by the pair of shards it connects: exactly one producer thread calls the push
/// functions and exactly one consumer thread the pop/consume functions; the counters may be
/// read from any thread.
template <typename T>
class spsc_ring {
  public:
    explicit spsc_ring(std::size_t capacity) : queue_(capacity), capacity_(capacity) {
        RM_ASSERT(capacity > 0, "spsc_ring needs a positive capacity");
    }

    spsc_ring(const spsc_ring&) = delete;
    spsc_ring& operator=(const spsc_ring&) = delete;

    // ---- producer side ----

    /// Pushes one item; false when the ring is full (counted).
    bool try_push(const T& item) {
        if (queue_.push(item)) {
            add(pushed_, 1);
            return true;
        }
        add(full_events_, 1);
        return false;
    }

    /// Pushes as many of `items` as fit; returns that count (< size means the ring was full).
    std::size_t push_bulk(std::span<const T> items) {
        const std::size_t pushed = queue_.push(items.data(), items.size());
        add(pushed_, pushed);
        if (pushed < items.size()) add(full_events_, 1);
        return pushed;
    }

    /// Free slots as seen by the producer.
    std::size_t write_available() const { return queue_.write_available(); }

    // ---- consumer side ----

    /// Pops one item into `out`; false when the ring is empty.
    bool try_pop(T& out) {
        if (!queue_.pop(out)) return false;
        add(popped_, 1);
        return true;
    }

    /// Pops up to out.size() items into `out`; returns how many.
    std::size_t pop_bulk(std::span<T> out) {
        const std::size_t popped = queue_.pop(out.data(), out.size());
        add(popped_, popped);
        return popped;
    }

    /// Calls fn(const T&) on every item available now, in place, and frees their slots in one
    /// release; returns how many. Items pushed while this runs wait for the next call.
    template <typename Fn>
    std::size_t consume_all(Fn&& fn) {
        const std::size_t consumed = queue_.consume_all(fn);
        add(popped_, consumed);
        return consumed;
    }

    /// Items waiting, as seen by the consumer.
    std::size_t read_available() const { return queue_.read_available(); }

    // ---- any thread ----

    std::size_t capacity() const noexcept { return capacity_; }
    std::uint64_t pushed() const noexcept { return pushed_.load(std::memory_order_relaxed); }
    std::uint64_t popped() const noexcept { return popped_.load(std::memory_order_relaxed); }
    std::uint64_t full_events() const noexcept {
        return full_events_.load(std::memory_order_relaxed);
    }

  private:
    // Single writer per counter: a relaxed load+store avoids a locked read-modify-write.
    static void add(std::atomic<std::uint64_t>& counter, std::uint64_t n) noexcept {
        counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }

    boost::lockfree::spsc_queue<T> queue_;
    std::size_t capacity_;
    // Producer-written and consumer-written counters on separate cache lines so that the
    // statistics do not add false sharing to the ring's own index traffic.
    alignas(64) std::atomic<std::uint64_t> pushed_{0};
    std::atomic<std::uint64_t> full_events_{0};
    alignas(64) std::atomic<std::uint64_t> popped_{0};
};

}  // namespace ringmesh
