#include "engine/core/shard.h"

#include <algorithm>
#include <limits>

#include "engine/core/errc.h"

namespace ringmesh {

namespace {
thread_local shard* current_shard_ptr = nullptr;
}

shard* this_shard() noexcept {
    return current_shard_ptr;
}

std::atomic<int>& detail::shard_threads_running() noexcept {
    static std::atomic<int> running{0};
    return running;
}

void detail::bind_thread_to_shard(shard* s) noexcept {
    current_shard_ptr = s;
    detail::current_shard = s ? s->id() : no_shard;
}

result<std::unique_ptr<shard>> shard::create(shard_id id, ring_mesh& mesh, clock_source& clock,
                                             const shard_config& config) {
    if (id >= mesh.shard_count()) {
        return make_error(core_errc::bad_config, "shard id beyond the mesh");
    }
    if (config.cross_core_batch == 0) {
        return make_error(core_errc::bad_config, "cross_core_batch must be at least 1");
    }
    auto pool = buffer_pool::create(config.buffer_count, config.buffer_size_bytes, id);
    if (!pool) return pool.err();
    return std::unique_ptr<shard>(new shard(id, mesh, clock, config, std::move(pool).value()));
}

shard::shard(shard_id id, ring_mesh& mesh, clock_source& clock, const shard_config& config,
             std::unique_ptr<buffer_pool> buffers)
    : id_(id),
      mesh_(mesh),
      clock_(clock),
      config_(config),
      buffers_(std::move(buffers)),
      timers_(clock.now_ns(), config.timer_tick_shift),
      port_(mesh, id, config.cross_core_batch, config.idle.kind == idle_kind::block),
      idler_(config.idle),
      now_ns_(clock.now_ns()),
      last_start_ns_(now_ns_) {}

shard::~shard() = default;

// The order of the steps, and why:
//  1. Cross-core tasks first: other shards queued them in an earlier iteration, so they are
//     the oldest work waiting, and they may register interest in this iteration's I/O.
//  2. Transport: reap completions / receive bursts and dispatch frames to their handlers.
//  3. Timers after I/O: a reply that arrived in step 2 cancels its timeout before it fires.
//  4. Protocol ticks (sessions, gossip, raft) see the state left by steps 1-3.
//  5. Flush last: everything produced above leaves in one batch per destination — the flush
//     pollers hand it to the transport (one submit), then one bulk push per cross-core ring.
// The clock is read once, here, and every step works with that `now`.
std::size_t shard::run_once() {
    const time_ns start_ns = clock_.now_ns();
    now_ns_ = start_ns;
    std::size_t work = 0;
    // Whatever woke a sleeping shard may belong to a duty-cycled poller: run them all once.
    const bool woke = slept_since_last_iteration_;
    work += run_cross_core_tasks();
    work += run_pollers(pollers_of(poll_step::transport), stats_.transport_work, woke);
    // A timer that fires is a wake too: it is how a protocol asks to run at its deadline,
    // and its poller may be in the off part of its duty cycle (it ran just before).
    const std::size_t fired = run_due_timers();
    work += fired;
    work += run_pollers(pollers_of(poll_step::protocol), stats_.protocol_work, woke || fired > 0);
    work += run_pollers(pollers_of(poll_step::flush), stats_.protocol_work, woke || fired > 0);
    if (pollers_removed_) {  // not while a list is being walked
        for (auto& pollers : pollers_) {
            std::erase_if(pollers, [](const registered_poller& p) { return !p.fn; });
        }
        pollers_removed_ = false;
    }
    work += flush_outbound();
    record_iteration(start_ns, work);
    return work;
}

std::size_t shard::run_cross_core_tasks() {
    const std::size_t ran = port_.drain([this](const cross_core_task& task) { task.run(*this); });
    if (ran) loop_stats::add(stats_.tasks_run, ran);
    return ran;
}

std::size_t shard::run_pollers(std::vector<registered_poller>& pollers,
                               std::atomic<std::uint64_t>& stat, bool force_duty_cycled) {
    std::size_t work = 0;
    // By index: a poller may register another (appending) or remove one (emptying it).
    for (std::size_t i = 0; i < pollers.size(); ++i) {
        registered_poller& p = pollers[i];
        if (!p.fn) continue;
        if (p.every_ns > 0) {
            if (!force_duty_cycled && now_ns_ < p.next_due_ns) continue;
            p.next_due_ns = now_ns_ + p.every_ns;
        }
        work += pollers[i].fn(now_ns_);  // by index again: fn may have grown the vector
    }
    if (work) loop_stats::add(stat, work);
    return work;
}

std::size_t shard::run_duty_cycled_pollers() {
    if (!has_duty_cycled_pollers_) return 0;
    std::size_t work = 0;
    for (auto& pollers : pollers_) {
        for (std::size_t i = 0; i < pollers.size(); ++i) {
            registered_poller& p = pollers[i];
            if (!p.fn || p.every_ns == 0) continue;
            p.next_due_ns = now_ns_ + p.every_ns;
            work += pollers[i].fn(now_ns_);
        }
    }
    return work;
}

std::size_t shard::run_due_timers() {
    const std::size_t fired = timers_.advance(now_ns_);
    if (fired) loop_stats::add(stats_.timers_fired, fired);
    return fired;
}

std::size_t shard::flush_outbound() {
    std::size_t work = 0;
    // Buffers released here but owned elsewhere go home first; they free the owner's pool.
    while (!foreign_returns_.empty()) {
        buffer_slot* slot = foreign_returns_.back();
        const auto outcome =
            submit_to(slot->pool->owner(), [slot] { slot->pool->return_slot(slot); });
        if (outcome != submit_outcome::accepted) break;
        foreign_returns_.pop_back();
        ++work;
    }
    const std::size_t flushed = port_.flush();
    if (flushed) loop_stats::add(stats_.tasks_flushed, flushed);
    return work + flushed;
}

void shard::record_iteration(time_ns start_ns, std::size_t work) {
    // The time since the previous iteration began is that iteration's length, unless the
    // idle strategy slept in between: one clock read per iteration serves both purposes.
    if (!slept_since_last_iteration_) {
        const time_ns previous_ns = start_ns - last_start_ns_;
        if (previous_ns > stats_.max_iteration_ns.load(std::memory_order_relaxed)) {
            stats_.max_iteration_ns.store(previous_ns, std::memory_order_relaxed);
        }
        if (previous_ns > config_.stall_threshold_ns) loop_stats::add(stats_.stalls, 1);
    }
    slept_since_last_iteration_ = false;
    last_start_ns_ = start_ns;
    loop_stats::add(stats_.iterations, 1);
    if (work) loop_stats::add(stats_.busy_iterations, 1);
    quiescent_.store(work == 0 && !port_.outbound_pending() && foreign_returns_.empty(),
                     std::memory_order_relaxed);
}

void shard::idle(std::size_t work_count) {
    // Staged tasks waiting for ring space are pending work: keep polling to retry them.
    if (port_.outbound_pending() || !foreign_returns_.empty()) work_count += 1;
    switch (idler_.idle(work_count)) {
        case idle_step::worked:
        case idle_step::spun:
        case idle_step::yielded:
            return;
        case idle_step::slept:
            loop_stats::add(stats_.parks, 1);
            slept_since_last_iteration_ = true;
            return;
        case idle_step::park_in_kernel:
            // A duty-cycled poller skipped in the last iterations may have work waiting (its
            // ring's wake-up was already consumed while the shard spun): look once more.
            if (run_duty_cycled_pollers() > 0) {
                idler_.reset();
                return;
            }
            block_until_work();
            return;
    }
}

void shard::block_until_work() {
    const time_ns next_timer_ns = timers_.next_wakeup_ns();
    time_ns timeout_ns = -1;  // no timer: sleep until another shard wakes us
    if (next_timer_ns != std::numeric_limits<time_ns>::max()) {
        timeout_ns = std::max<time_ns>(0, next_timer_ns - clock_.now_ns());
    }
    loop_stats::add(stats_.parks, 1);  // counted on the way in: "has parked at least once"
    shard_waker& waker = mesh_.waker(id_);
    waker.park(
        timeout_ns, [this] { return port_.inbound_pending(); },
        [this](time_ns timeout) { sleep_in_kernel(timeout); });
    slept_since_last_iteration_ = true;
}

void shard::sleep_in_kernel(time_ns timeout_ns) {
    // The first source that can sleep does, woken by the waker's eventfd and every other
    // source's ready fd; without one, ppoll on all of them.
    registered_wait_source* sleeper = nullptr;
    wake_fds_.clear();
    if (mesh_.waker(id_).fd() >= 0) wake_fds_.push_back(mesh_.waker(id_).fd());
    for (registered_wait_source& w : wait_sources_) {
        if (sleeper == nullptr && w.source.wait) {
            sleeper = &w;
            continue;
        }
        if (w.ready_fd == -2) w.ready_fd = w.source.ready_fd ? w.source.ready_fd() : -1;
        RM_ASSERT(w.ready_fd >= 0, "a wait source that cannot sleep must offer a ready fd");
        wake_fds_.push_back(w.ready_fd);
    }
    if (sleeper != nullptr) {
        for (const int fd : retired_wake_fds_) {
            if (sleeper->source.forget_wake_fd) sleeper->source.forget_wake_fd(fd);
        }
        retired_wake_fds_.clear();
        sleeper->source.wait(timeout_ns, wake_fds_);
    } else {
        retired_wake_fds_.clear();  // ppoll watches only what it is given
        shard_waker::wait_on_fds(wake_fds_, timeout_ns);
    }
}

shard::wait_source_id shard::add_wait_source(wait_source source) {
    RM_ASSERT(source.wait || source.ready_fd, "a wait source needs a wait or a ready fd");
    const wait_source_id id = next_wait_source_id_++;
    wait_sources_.push_back({id, std::move(source)});
    return id;
}

void shard::remove_wait_source(wait_source_id id) {
    std::erase_if(wait_sources_, [&](const registered_wait_source& w) {
        if (w.id != id) return false;
        if (w.ready_fd >= 0) retired_wake_fds_.push_back(w.ready_fd);  // it was watched
        return true;
    });
}

void shard::run_stop_hooks() {
    while (!stop_hooks_.empty()) {
        std::function<void()> hook = std::move(stop_hooks_.back());
        stop_hooks_.pop_back();
        hook();
    }
}

submit_outcome shard::submit_task(shard_id target, const cross_core_task& task) {
    const submit_outcome outcome = port_.submit(target, task);
    if (outcome == submit_outcome::ring_full) loop_stats::add(stats_.ring_full, 1);
    return outcome;
}

submit_outcome shard::hand_off(shard_id target, std::uint64_t tag, buffer_handle& payload) {
    RM_ASSERT(payload.use_count() == 1, "hand_off needs the sole reference to the buffer");
    if (target == id_) {
        buffer_handle taken = std::move(payload);  // empty after, as on another shard
        if (message_handler_) message_handler_(id_, tag, std::move(taken));
        return submit_outcome::accepted;
    }
    buffer_slot* slot = payload.release_raw();
    const shard_id from = id_;
    const submit_outcome outcome = submit_to(
        target, [from, tag, slot](shard& receiver) { receiver.deliver_message(from, tag, slot); });
    if (outcome != submit_outcome::accepted) payload = buffer_handle::adopt_raw(slot);
    return outcome;
}

void shard::deliver_message(shard_id from, std::uint64_t tag, buffer_slot* slot) {
    buffer_handle payload = buffer_handle::adopt_raw(slot);
    if (message_handler_) message_handler_(from, tag, std::move(payload));
    // A handler that kept no reference lets `payload` die here: routed back to its owner.
}

shard::poller_id shard::add_poller(poll_step step, poll_fn fn, time_ns every_ns) {
    const poller_id id = next_poller_id_++;
    pollers_of(step).push_back({id, std::move(fn), std::max<time_ns>(every_ns, 0), 0});
    if (every_ns > 0) has_duty_cycled_pollers_ = true;
    return id;
}

void shard::remove_poller(poller_id id) {
    for (auto& pollers : pollers_) {
        for (registered_poller& p : pollers) {
            if (p.id == id) p.fn = nullptr;
        }
    }
    pollers_removed_ = true;
}

void shard::route_foreign_buffer(buffer_slot* slot) {
    // Deferred to the flush step: releasing can happen deep inside a handler, and the owner
    // may be out of ring space right now; a buffer is never leaked or returned unsafely.
    foreign_returns_.push_back(slot);
}

}  // namespace ringmesh
