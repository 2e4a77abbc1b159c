// Lets a shard sleep in the kernel when it has nothing to do and be woken promptly by another
// shard that hands it work. The sleeping side announces itself in `parked_` before its last
// look at its inbox; a producer publishes its work and then checks `parked_`. Both sides use
// sequentially consistent operations, so at least one of them sees the other (no lost wake-up).
#pragma once

#include <atomic>
#include <cstdint>
#include <span>

#include "engine/core/clock.h"
#include "engine/core/result.h"

namespace ringmesh {

/// Owned by one shard: park() on that shard's thread; wake_if_parked() from any thread.
class shard_waker {
  public:
    shard_waker();
    ~shard_waker();
    shard_waker(const shard_waker&) = delete;
    shard_waker& operator=(const shard_waker&) = delete;

    /// Opens the eventfd; the control path calls it once before the shard runs.
    result<void> open();

    /// Sleeps through wait(timeout_ns) (< 0: no limit) unless `has_work()` is true after the
    /// shard has announced it is parking. `wait` must return once fd() is readable.
    template <typename HasWork, typename Wait>
    void park(time_ns timeout_ns, HasWork&& has_work, Wait&& wait) {
        parked_.store(true, std::memory_order_seq_cst);  // pairs with wake_if_parked's load
        if (!has_work()) wait(timeout_ns);
        parked_.store(false, std::memory_order_relaxed);
    }

    /// ppoll on several wake fds (eventfds: a read drains one without losing anything) and
    /// drain the ones that fired. Returns true when woken, false on timeout or a signal.
    static bool wait_on_fds(std::span<const int> fds, time_ns timeout_ns);
    /// Reads an eventfd back to zero (non-blocking), so that it signals again next time.
    static void drain(int fd) noexcept;

    /// Call after publishing work for this shard (a release store into one of its rings).
    void wake_if_parked() noexcept {
        // Pairs with park()'s seq_cst store: the fence orders our ring publish before the load.
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (parked_.load(std::memory_order_relaxed)) signal();
    }

    /// The eventfd, for a transport that waits in io_uring instead of poll().
    int fd() const noexcept { return fd_; }
    std::uint64_t wakeups_sent() const noexcept {
        return wakeups_sent_.load(std::memory_order_relaxed);
    }

  private:
    void signal() noexcept;

    int fd_ = -1;
    alignas(64) std::atomic<bool> parked_{false};
    alignas(64) std::atomic<std::uint64_t> wakeups_sent_{0};
};

}  // namespace ringmesh
