// A shard: one run-to-completion poll loop, pinned to one core, owning its timers, buffers,
// cross-core port and (once registered) transport queues and protocol state. Nothing mutable
// in a shard is touched by another thread; other shards reach it only through submit_to()
// and hand_off(), which travel over the lock-free rings.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "engine/core/buffer_pool.h"
#include "engine/core/clock.h"
#include "engine/core/idle_strategy.h"
#include "engine/core/loop_stats.h"
#include "engine/core/result.h"
#include "engine/core/shard_id.h"
#include "engine/core/timer_wheel.h"
#include "engine/smp/cross_core_port.h"
#include "engine/smp/ring_mesh.h"

namespace ringmesh {

struct shard_config {
    idle_config idle;
    time_ns stall_threshold_ns = 500 * ns_per_us;  ///< iterations longer than this count
    std::size_t cross_core_batch = 32;             ///< tasks staged per destination
    std::size_t buffer_count = 4096;               ///< receive/send buffer pool size
    std::size_t buffer_size_bytes = 2048;
    unsigned timer_tick_shift = 10;  ///< 2^10 ns = 1.024 us timer ticks
};

/// Which loop step a registered poller belongs to (see run_once()): transport pollers reap
/// I/O, protocol pollers run the application's and protocols' work, and flush pollers hand
/// everything queued in this iteration to the transport, so it leaves in the same iteration.
enum class poll_step : std::uint8_t { transport, protocol, flush };

/// Owned by its node; every member function is called on the shard's own thread unless its
/// comment says otherwise.
class shard {
  public:
    /// Polled once per iteration with the iteration's `now`; returns work done.
    using poll_fn = std::function<std::size_t(time_ns now_ns)>;
    /// Receives buffers handed over by other shards (hand_off). `tag` is the sender's.
    using message_handler =
        std::function<void(shard_id from, std::uint64_t tag, buffer_handle payload)>;

    static result<std::unique_ptr<shard>> create(shard_id id, ring_mesh& mesh, clock_source& clock,
                                                 const shard_config& config);
    ~shard();
    shard(const shard&) = delete;
    shard& operator=(const shard&) = delete;

    /// One pass of the poll loop; returns the work it did (0: idle).
    std::size_t run_once();
    /// Applies the idle strategy after an iteration that did `work_count` work.
    void idle(std::size_t work_count);
    /// Wakes this shard if it blocks (any thread): used by the node to stop it.
    void wake() noexcept { mesh_.waker(id_).wake_if_parked(); }

    shard_id id() const noexcept { return id_; }
    std::uint32_t shard_count() const noexcept { return mesh_.shard_count(); }
    /// The time read at the start of the current iteration.
    time_ns now_ns() const noexcept { return now_ns_; }
    /// Reads the shard's clock now (now_ns() is the iteration's start): for measurements
    /// such as RTTs. Virtual under the simulator, like everything the shard reads.
    time_ns read_clock() noexcept { return clock_.now_ns(); }

    timer_wheel& timers() noexcept { return timers_; }
    buffer_pool& buffers() noexcept { return *buffers_; }
    /// Any thread.
    const loop_stats& stats() const noexcept { return stats_; }
    /// Any thread: whether the last iteration did nothing and nothing is staged outbound.
    bool quiescent() const noexcept { return quiescent_.load(std::memory_order_relaxed); }

    /// Runs fn (callable as fn(shard&) or fn()) on shard `target`, after the work already
    /// queued there. On the own shard it runs at once. ring_full is back-pressure: fn was not
    /// queued and will not run.
    template <typename Fn>
    submit_outcome submit_to(shard_id target, Fn&& fn) {
        if (target == id_) {
            if constexpr (std::is_invocable_v<Fn&, shard&>) {
                fn(*this);
            } else {
                fn();
            }
            return submit_outcome::accepted;
        }
        return submit_task(target, cross_core_task::wrap(id_, std::forward<Fn>(fn)));
    }

    /// Moves a buffer (its sole reference) to shard `target`, whose message handler receives
    /// it with `tag`. On accepted `payload` is left empty; on ring_full it is untouched.
    submit_outcome hand_off(shard_id target, std::uint64_t tag, buffer_handle& payload);

    void set_message_handler(message_handler handler) { message_handler_ = std::move(handler); }
    using poller_id = std::uint64_t;
    /// Registers a poller for a loop step (control path, before or between iterations).
    /// `every_ns` > 0 declares a duty cycle: the poller runs at most once per `every_ns` while
    /// the shard is busy, and always on the first iteration after the shard slept and just
    /// before it parks (so work that woke the shard, or arrived while it spun, is never left
    /// waiting for the next timer). For protocols on a scale of milliseconds (gossip) that a
    /// busy-spinning data path should not pay for on every iteration.
    poller_id add_poller(poll_step step, poll_fn fn, time_ns every_ns = 0);
    /// Unregisters a poller; safe from inside a poller. Whoever registered one must remove
    /// it before the state it captures goes away.
    void remove_poller(poller_id id);

    /// Something the block idle strategy parks on. Every source of work on a shard that is
    /// not a timer or a cross-core ring registers one (the messaging ring, the gossip ring,
    /// the log's disk ring), and the shard sleeps until *any* of them has work, a timer is
    /// due, or another shard wakes it.
    struct wait_source {
        /// Sleeps until this source has work, one of `wake_fds` becomes readable, or
        /// `timeout_ns` (< 0: none) passes; may return earlier. Empty: the source cannot
        /// sleep for the shard, and must offer a ready fd instead.
        std::function<void(time_ns timeout_ns, std::span<const int> wake_fds)> wait;
        /// An fd that becomes readable when the source has work (-1: none), asked for only
        /// when another source does the sleeping; it may be set up lazily on that first ask.
        std::function<int()> ready_fd;
        /// (Sleeping sources) `fd` is no longer a wake fd: its source was removed, and the
        /// number may come back for another file. Told before the next wait.
        std::function<void(int fd)> forget_wake_fd;
    };
    using wait_source_id = std::uint64_t;
    /// Control path. The first registered source with a `wait` sleeps for the shard, woken
    /// by the others' ready fds; with none, the shard ppolls every ready fd itself.
    wait_source_id add_wait_source(wait_source source);
    void remove_wait_source(wait_source_id id);

    /// Runs `fn` on this shard's own thread once its loop has ended (node::stop()), in the
    /// reverse order of registration: where shard-owned state (endpoints, agents, rings) is
    /// torn down, so that no teardown ever runs on a foreign thread. Register from the
    /// shard's thread, or from the control thread before it calls node::stop().
    void on_stop(std::function<void()> fn) { stop_hooks_.push_back(std::move(fn)); }
    /// Runs and clears the stop hooks; the node calls it on the shard's thread.
    void run_stop_hooks();

    /// Entry point of a cross-core task that delivers a handed-off buffer.
    void deliver_message(shard_id from, std::uint64_t tag, buffer_slot* slot);

  private:
    shard(shard_id id, ring_mesh& mesh, clock_source& clock, const shard_config& config,
          std::unique_ptr<buffer_pool> buffers);

    submit_outcome submit_task(shard_id target, const cross_core_task& task);
    std::size_t run_cross_core_tasks();
    struct registered_poller {
        poller_id id;
        poll_fn fn;        // empty once removed; erased after the step
        time_ns every_ns;  // duty cycle; 0: every iteration
        time_ns next_due_ns;
    };
    std::size_t run_pollers(std::vector<registered_poller>& pollers,
                            std::atomic<std::uint64_t>& stat, bool force_duty_cycled);
    /// Runs every duty-cycled poller now; returns their work (called before parking).
    std::size_t run_duty_cycled_pollers();
    void sleep_in_kernel(time_ns timeout_ns);
    std::size_t run_due_timers();
    std::size_t flush_outbound();
    void record_iteration(time_ns start_ns, std::size_t work);
    friend class buffer_pool;  // a buffer released here goes home through route_foreign_buffer
    void route_foreign_buffer(buffer_slot* slot);
    void block_until_work();

    shard_id id_;
    ring_mesh& mesh_;
    clock_source& clock_;
    shard_config config_;
    std::unique_ptr<buffer_pool> buffers_;
    timer_wheel timers_;
    cross_core_port port_;
    idler idler_;
    std::vector<registered_poller>& pollers_of(poll_step step) {
        return pollers_[static_cast<std::size_t>(step)];
    }
    std::array<std::vector<registered_poller>, 3> pollers_;  // by poll_step
    poller_id next_poller_id_ = 1;
    bool pollers_removed_ = false;
    message_handler message_handler_;
    struct registered_wait_source {
        wait_source_id id;
        wait_source source;
        int ready_fd = -2;  // -2: not asked yet
    };
    std::vector<registered_wait_source> wait_sources_;
    wait_source_id next_wait_source_id_ = 1;
    std::vector<int> wake_fds_;          // scratch for block_until_work()
    std::vector<int> retired_wake_fds_;  // of removed sources: the sleeper forgets them
    std::vector<std::function<void()>> stop_hooks_;
    bool has_duty_cycled_pollers_ = false;
    std::vector<buffer_slot*> foreign_returns_;  // waiting for room in the owner's ring
    time_ns now_ns_ = 0;
    time_ns last_start_ns_ = 0;
    bool slept_since_last_iteration_ = false;
    loop_stats stats_;
    std::atomic<bool> quiescent_{true};
};

/// The shard whose loop runs on the calling thread, or nullptr.
shard* this_shard() noexcept;

namespace detail {
/// Binds the calling thread to `s` (the node does this on each shard thread).
void bind_thread_to_shard(shard* s) noexcept;
/// Shard loops running on their own threads in this process (node::start .. stop). While
/// any runs, a thread that is no shard must not touch shard-owned state.
std::atomic<int>& shard_threads_running() noexcept;
}  // namespace detail

}  // namespace ringmesh
