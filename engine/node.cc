#include "engine/node.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <string>

#include "engine/core/errc.h"
#include "engine/core/log.h"

namespace ringmesh {

namespace {

std::vector<int> allowed_cores() {
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<int> cores;
    if (::sched_getaffinity(0, sizeof set, &set) != 0) return cores;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (CPU_ISSET(cpu, &set)) cores.push_back(cpu);
    }
    return cores;
}

std::string join_cores(const std::vector<int>& cores) {
    std::string out;
    for (int core : cores)
        out += (out.empty() ? "" : ",") + std::to_string(core);
    return out;
}

}  // namespace

result<node_config> resolve_node_config(node_config config) {
    if (config.shard_count == 0 || config.shard_count > 1024) {
        return make_error(core_errc::bad_config,
                          "shard count must be 1..1024, got " + std::to_string(config.shard_count));
    }
    if (config.ring_capacity < 2) {
        return make_error(core_errc::bad_config, "ring capacity must be at least 2");
    }
    const std::vector<int> allowed = allowed_cores();
    if (config.cores.empty()) {
        if (config.pin_threads && allowed.size() < config.shard_count) {
            return make_error(core_errc::bad_core_list,
                              std::to_string(config.shard_count) + " shards but only " +
                                  std::to_string(allowed.size()) + " usable cores (" +
                                  join_cores(allowed) + ")");
        }
        for (std::uint32_t i = 0; i < config.shard_count; ++i) {
            config.cores.push_back(allowed.empty() ? 0 : allowed[i % allowed.size()]);
        }
        return config;
    }
    if (config.cores.size() != config.shard_count) {
        return make_error(core_errc::bad_core_list,
                          std::to_string(config.cores.size()) + " cores listed for " +
                              std::to_string(config.shard_count) + " shards");
    }
    std::set<int> seen;
    for (int core : config.cores) {
        if (std::find(allowed.begin(), allowed.end(), core) == allowed.end()) {
            return make_error(core_errc::bad_core_list,
                              "core " + std::to_string(core) +
                                  " is not available: this process may use cores " +
                                  join_cores(allowed));
        }
        if (!seen.insert(core).second) {
            return make_error(core_errc::bad_core_list,
                              "core " + std::to_string(core) + " is listed twice");
        }
    }
    return config;
}

result<std::unique_ptr<node>> node::create(node_config config) {
    auto resolved = resolve_node_config(std::move(config));
    if (!resolved) return resolved.err();
    std::unique_ptr<node> n(new node(std::move(resolved).value()));
    if (n->config_.shard.idle.kind == idle_kind::block) {
        if (auto opened = n->mesh_->open_wakers(); !opened) return opened.err();
    }
    for (shard_id id = 0; id < n->config_.shard_count; ++id) {
        auto s = shard::create(id, *n->mesh_, n->clock_, n->config_.shard);
        if (!s) return s.err();
        n->shards_.push_back(std::move(s).value());
    }
    return n;
}

node::node(node_config config)
    : config_(std::move(config)),
      mesh_(std::make_unique<ring_mesh>(config_.shard_count, config_.ring_capacity)),
      start_errors_(config_.shard_count) {}

node::~node() {
    stop();
}

result<void> node::start(const shard_init_fn& init) {
    if (!threads_.empty()) return make_error(core_errc::already_running);
    stopping_.store(false);
    exit_loops_.store(false);
    shards_started_.store(0);
    for (shard_id id = 0; id < config_.shard_count; ++id) {
        threads_.emplace_back([this, id, init] { run_shard(id, init); });
    }
    while (shards_started_.load(std::memory_order_acquire) < config_.shard_count) {
        std::this_thread::yield();
    }
    for (const auto& failure : start_errors_) {
        if (failure) {
            error first = *failure;
            stop();
            return first;
        }
    }
    return ok();
}

void node::run_shard(shard_id id, const shard_init_fn& init) {
    if (config_.pin_threads) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(config_.cores[id], &set);
        if (const int rc = ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set); rc) {
            start_errors_[id] =
                make_error(core_errc::thread_start_failed,
                           "pinning shard " + std::to_string(id) + " to core " +
                               std::to_string(config_.cores[id]) + ": " + errno_text(rc));
        }
    }
    const std::string name = "rm-shard-" + std::to_string(id);
    ::pthread_setname_np(::pthread_self(), name.c_str());
    shard& s = *shards_[id];
    detail::bind_thread_to_shard(&s);
    detail::shard_threads_running().fetch_add(1, std::memory_order_relaxed);
    if (init && !start_errors_[id]) init(s);
    // Release: the control thread reads start_errors_ after it sees every shard started.
    shards_started_.fetch_add(1, std::memory_order_release);
    while (!exit_loops_.load(std::memory_order_acquire)) {
        s.idle(s.run_once());
    }
    s.run_stop_hooks();  // teardown on the shard's own thread, still bound to it
    detail::shard_threads_running().fetch_sub(1, std::memory_order_relaxed);
    detail::bind_thread_to_shard(nullptr);
}

bool node::wait_for_quiescence() {
    // Quiescent: every shard's last iteration was idle with nothing staged, every ring empty,
    // and no push happened between two looks a millisecond apart.
    const time_ns deadline = monotonic_clock::read() + config_.drain_timeout_ns;
    std::uint64_t previous_pushed = UINT64_MAX;
    while (monotonic_clock::read() < deadline) {
        bool idle = mesh_->all_rings_empty();
        for (const auto& s : shards_)
            idle = idle && s->quiescent();
        const std::uint64_t pushed = mesh_->total_pushed();
        if (idle && pushed == previous_pushed) return true;
        previous_pushed = idle ? pushed : UINT64_MAX;
        for (const auto& s : shards_)
            s->wake();  // a blocked shard re-checks its state
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
}

void node::stop() {
    if (threads_.empty()) return;
    stopping_.store(true, std::memory_order_release);
    if (!wait_for_quiescence()) {
        log::warn("node", "stop: cross-core work still moving after {} ms; stopping anyway",
                  config_.drain_timeout_ns / ns_per_ms);
    }
    exit_loops_.store(true, std::memory_order_release);
    for (auto& s : shards_)
        s->wake();
    for (auto& t : threads_)
        t.join();
    threads_.clear();
}

}  // namespace ringmesh
