// N shards on one virtual clock and one seeded sim network, stepped from the test thread: the
// loop every simulated cluster harness needs. Each iteration steps the shards that run until
// nothing moves, then jumps the clock to the next delivery or timer of a running shard. A
// shard that does not run (its node is not started, killed, or paused like a SIGSTOPped
// process) is not stepped, and its timers do not move time.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "engine/core/shard.h"
#include "transport/sim/sim_network.h"

namespace ringmesh::sim {

/// A LAN: 0.1-1 ms one way, so timing is dominated by the protocols, not the wire.
inline transport::sim::link_faults lan_faults() {
    transport::sim::link_faults f;
    f.min_delay_ns = 100 * ns_per_us;
    f.max_delay_ns = 1 * ns_per_ms;
    return f;
}

class sim_shards {
  public:
    /// `running(i)`: whether shard i has a node to step now.
    sim_shards(int count, std::uint64_t seed, transport::sim::link_faults faults,
               std::function<bool(int)> running)
        : mesh_(static_cast<std::uint32_t>(count), 16), net_(seed), running_(std::move(running)) {
        net_.set_faults(faults);
        for (int i = 0; i < count; ++i) {
            shard_config sc;
            sc.buffer_count = 256;
            shards_.push_back(
                std::move(shard::create(static_cast<shard_id>(i), mesh_, clock_, sc)).value());
        }
    }

    shard& at(int i) { return *shards_[static_cast<std::size_t>(i)]; }
    transport::sim::sim_network& net() noexcept { return net_; }
    time_ns now() noexcept { return clock_.now_ns(); }
    int size() const noexcept { return static_cast<int>(shards_.size()); }

    /// Binds the test thread to shard i (-1: to none), as its loop thread would be.
    void bind(int i) { detail::bind_thread_to_shard(i < 0 ? nullptr : shards_[i].get()); }
    /// Runs fn() as code on shard i.
    template <typename Fn>
    auto on(int i, Fn&& fn) {
        bind(i);
        struct unbind {
            sim_shards* s;
            ~unbind() { s->bind(-1); }
        } guard{this};
        return fn();
    }

    /// Steps until `done()`; false if it is not reached within `limit_ns` of virtual time.
    bool run_until(const std::function<bool()>& done, time_ns limit_ns) {
        const time_ns deadline = clock_.now_ns() + limit_ns;
        while (!done()) {
            for (int round = 0; round < 64 && step() > 0; ++round) {
            }
            if (done()) return true;
            time_ns next = net_.next_event_ns();
            for (int i = 0; i < size(); ++i) {
                if (running_(i)) next = std::min(next, shards_[i]->timers().next_wakeup_ns());
            }
            if (next == INT64_MAX || next > deadline) return done();
            clock_.set(std::max(next, clock_.now_ns() + 1));
        }
        return true;
    }

  private:
    std::size_t step() {
        std::size_t work = 0;
        for (int i = 0; i < size(); ++i) {
            if (running_(i)) work += on(i, [&] { return shards_[i]->run_once(); });
        }
        return work;
    }

    virtual_clock clock_{ns_per_s};
    ring_mesh mesh_;
    transport::sim::sim_network net_;
    std::function<bool(int)> running_;
    std::vector<std::unique_ptr<shard>> shards_;
};

}  // namespace ringmesh::sim
