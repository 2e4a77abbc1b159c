#include "engine/metrics/shard_metrics.h"

#include <string>

namespace ringmesh::metrics {

namespace {

void loop_figures(const shard& s, metric_sink& sink) {
    const loop_stats_snapshot l = s.stats().snapshot();
    auto d = [](std::uint64_t v) { return static_cast<double>(v); };
    sink.counter("ringmesh_loop_iterations_total", "Poll-loop iterations.", d(l.iterations));
    sink.counter("ringmesh_loop_busy_iterations_total",
                 "Poll-loop iterations that did any work (busy / all: utilisation).",
                 d(l.busy_iterations));
    sink.counter("ringmesh_loop_stalls_total",
                 "Poll-loop iterations longer than the stall threshold.", d(l.stalls));
    sink.counter("ringmesh_loop_parks_total", "Times the idle strategy slept in the kernel.",
                 d(l.parks));
    sink.gauge("ringmesh_loop_max_iteration_seconds", "The longest poll-loop iteration so far.",
               static_cast<double>(l.max_iteration_ns) / 1e9);
    sink.counter("ringmesh_loop_transport_work_total", "Completions and packets handled.",
                 d(l.transport_work));
    sink.counter("ringmesh_loop_timers_fired_total", "Timers fired.", d(l.timers_fired));
    sink.counter("ringmesh_loop_protocol_work_total", "Protocol steps that did work.",
                 d(l.protocol_work));
    sink.counter("ringmesh_loop_cross_core_tasks_run_total", "Tasks from other shards run here.",
                 d(l.tasks_run));
    sink.counter("ringmesh_loop_cross_core_tasks_sent_total",
                 "Tasks pushed to other shards' rings.", d(l.tasks_flushed));
    sink.counter("ringmesh_loop_cross_core_ring_full_total",
                 "Tasks refused because the destination ring was full.", d(l.ring_full));
}

}  // namespace

shard_metrics::shard_metrics(shard& owner) : shard_(owner), id_(owner.id()) {
    add_source([this](metric_sink& sink) { loop_figures(shard_, sink); });
    // Between iterations: is a snapshot wanted? (One relaxed load when not.)
    poller_ = shard_.add_poller(poll_step::flush, [this](time_ns) { return answer(); });
}

shard_metrics::~shard_metrics() {
    shard_.remove_poller(poller_);
}

shard_metrics::source_id shard_metrics::add_source(source fn) {
    const source_id id = next_id_++;
    sources_.emplace(id, std::move(fn));
    return id;
}

void shard_metrics::remove_source(source_id id) {
    sources_.erase(id);
}

std::size_t shard_metrics::answer() {
    const std::uint64_t wanted = requested_.load(std::memory_order_acquire);
    if (wanted == answered_) return 0;
    metric_sink sink;
    sink.set_common_labels({{"shard", std::to_string(id_)}});
    for (auto& [id, fn] : sources_)
        fn(sink);
    std::vector<family> figures = sink.take();
    {
        const std::lock_guard lock(mutex_);
        latest_ = std::move(figures);
        served_.store(wanted, std::memory_order_release);
    }
    answered_ = wanted;
    served_cv_.notify_all();
    return 1;
}

std::vector<family> shard_metrics::collect(std::chrono::milliseconds wait, bool* fresh) {
    const std::uint64_t ticket = requested_.fetch_add(1, std::memory_order_acq_rel) + 1;
    const auto until = std::chrono::steady_clock::now() + wait;
    std::unique_lock lock(mutex_);
    bool answered = false;
    while (!(answered = served_.load(std::memory_order_acquire) >= ticket)) {
        const auto now = std::chrono::steady_clock::now();
        if (now >= until) break;
        // Wake it (again: a shard that parked just before the request would not see it until
        // its next timer), then wait a little.
        shard_.wake();
        served_cv_.wait_until(lock, std::min(until, now + std::chrono::milliseconds(5)));
    }
    if (fresh != nullptr) *fresh = answered;
    return latest_;
}

}  // namespace ringmesh::metrics
