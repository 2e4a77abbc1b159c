// Services on Raft groups (the key-value service, replicated topics) on the deterministic
// simulator, with the faults their tests share: `servers` nodes (sim_raft_nodes.h) whose
// group 1 leader is crashed now and then (unsynced writes lost or torn) and restarted, a
// network that partitions one node from the rest, and a client node on the shard after the
// servers' with an endpoint dialing every server. The test adds its services (setup), its
// clients (on the client's shard) and owns what is checked.
#pragma once

#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "tests/sim/harness/sim_raft_nodes.h"

namespace ringmesh::sim {

/// The seeds a service sim runs: RINGMESH_SIM_SEED replays one, RINGMESH_SIM_SEEDS=N runs N;
/// else `count` (fewer under the sanitizers, which are tens of times slower).
inline std::vector<std::uint64_t> service_sim_seeds(std::uint64_t count = 10) {
    if (const char* env = std::getenv("RINGMESH_SIM_SEED"))
        return {std::strtoull(env, nullptr, 10)};
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    count = 2;
#endif
    if (const char* env = std::getenv("RINGMESH_SIM_SEEDS"))
        count = std::strtoull(env, nullptr, 10);
    std::vector<std::uint64_t> out;
    for (std::uint64_t s = 1; s <= count; ++s)
        out.push_back(s);
    return out;
}

/// Every call from the test thread.
class sim_service_cluster {
  public:
    static constexpr const char* client_address = "10.0.9.1:7000";

    sim_service_cluster(int servers, std::uint64_t seed, sim_raft_nodes::setup_fn setup)
        : servers_(servers),
          seed_(seed),
          rng_(seed),
          shards_(servers + 1, seed, lan_faults(),
                  [this](int i) { return i == servers_ || nodes_.up(i); }),
          nodes_(shards_, servers, false, seed, rng_),
          restart_at_(static_cast<std::size_t>(servers)),
          setup_(std::move(setup)) {
        for (int i = 0; i < servers_; ++i)
            start(i);
        shards_.on(servers_, [&] {
            messaging::endpoint_config ec;
            ec.cluster_id = "sim";
            ec.node_id = "client";
            ec.listen = *transport::address::parse(client_address);
            ec.random_seed = seed_ + 99;
            for (int i = 0; i < servers_; ++i)
                ec.peers.push_back(*transport::address::parse(sim_raft_nodes::address(i)));
            client_ = std::move(messaging::endpoint::create(
                                    shards_.at(servers_),
                                    shards_.net().make_transport(client_address,
                                                                 static_cast<shard_id>(servers_)),
                                    std::move(ec)))
                          .value();
            return 0;
        });
    }
    /// The test destroys what it runs on the client's shard first (through on_client).
    ~sim_service_cluster() {
        shards_.on(servers_, [&] {
            client_.reset();
            return 0;
        });
    }
    sim_service_cluster(const sim_service_cluster&) = delete;
    sim_service_cluster& operator=(const sim_service_cluster&) = delete;

    messaging::endpoint& client() { return *client_; }
    std::vector<std::string> server_names() const {
        std::vector<std::string> names;
        for (int i = 0; i < servers_; ++i)
            names.push_back(sim_raft_nodes::name(i));
        return names;
    }
    /// Runs fn() as code on the client's shard.
    template <typename Fn>
    auto on_client(Fn&& fn) {
        return shards_.on(servers_, std::forward<Fn>(fn));
    }

    /// Runs fn() as code on server i's shard.
    template <typename Fn>
    auto on_server(int i, Fn&& fn) {
        return shards_.on(i, std::forward<Fn>(fn));
    }

    /// Steps for `duration`, crashing group 1's leader and partitioning the network now and
    /// then when `faults` (or until a violation); then heals the network and restarts every
    /// node that is down.
    void run_faults(time_ns duration, bool faults = true) {
        time_ns next_crash = faults ? duration / 5 : INT64_MAX;
        time_ns next_partition = faults ? duration / 3 : INT64_MAX;
        const time_ns end = now() + duration;
        shards_.run_until(
            [&] {
                const time_ns t = now();
                if (t >= next_crash) {
                    crash_leader();
                    next_crash = t + between(500 * ns_per_ms, 1500 * ns_per_ms);
                }
                if (t >= next_partition) {
                    partition_some();
                    next_partition = t + between(700 * ns_per_ms, 2000 * ns_per_ms);
                }
                for (int i = 0; i < servers_; ++i) {
                    if (!nodes_.up(i) && restart_at_[i] != 0 && t >= restart_at_[i]) {
                        restart_at_[i] = 0;
                        start(i);
                    }
                }
                return failed() || t >= end;
            },
            duration + ns_per_s);
        shards_.net().heal();
        for (int i = 0; i < servers_; ++i) {
            if (!nodes_.up(i)) start(i);
        }
    }
    bool run_until(const std::function<bool()>& done, time_ns limit) {
        return shards_.run_until(done, limit);
    }

    void fail(const std::string& what) {
        if (violation_.empty()) {
            violation_ = what + " (at " + std::to_string(now() / ns_per_ms) + " ms, seed " +
                         std::to_string(seed_) + ")";
        }
    }
    bool failed() const { return !violation_.empty(); }
    const std::string& violation() const { return violation_; }

    sim_raft_nodes& nodes() { return nodes_; }
    std::mt19937_64& rng() { return rng_; }
    time_ns now() { return shards_.now(); }
    std::uint64_t crashes() const { return crashes_; }

  private:
    time_ns between(time_ns lo, time_ns hi) {
        return std::uniform_int_distribution<time_ns>(lo, hi)(rng_);
    }
    void start(int i) {
        const std::string error = nodes_.start(i, setup_);
        if (!error.empty()) fail(error);
    }
    // One down at a time, so that a majority stays; group 1's leader when there is one.
    void crash_leader() {
        for (int i = 0; i < servers_; ++i) {
            if (!nodes_.up(i)) return;
        }
        int victim = static_cast<int>(rng_() % static_cast<std::uint64_t>(servers_));
        for (int i = 0; i < servers_; ++i) {
            replication::raft* r = nodes_.at(i).host->group(1);
            if (r != nullptr && r->is_leader()) victim = i;
        }
        nodes_.crash(victim, rng_() % 2 == 0);
        ++crashes_;
        restart_at_[static_cast<std::size_t>(victim)] =
            now() + between(200 * ns_per_ms, 1000 * ns_per_ms);
    }
    // Healed half the time; else one server cut off from the others, the client on either side.
    void partition_some() {
        shards_.net().heal();
        if (rng_() % 2 == 0) return;
        const int alone = static_cast<int>(rng_() % static_cast<std::uint64_t>(servers_));
        std::vector<std::string> a{sim_raft_nodes::address(alone)}, b;
        for (int i = 0; i < servers_; ++i) {
            if (i != alone) b.push_back(sim_raft_nodes::address(i));
        }
        (rng_() % 2 == 0 ? b : a).push_back(client_address);
        shards_.net().partition(a, b);
    }

    int servers_;
    std::uint64_t seed_;
    std::mt19937_64 rng_;
    sim_shards shards_;
    sim_raft_nodes nodes_;
    std::vector<time_ns> restart_at_;
    sim_raft_nodes::setup_fn setup_;
    std::unique_ptr<messaging::endpoint> client_;
    std::uint64_t crashes_ = 0;
    std::string violation_;
};

}  // namespace ringmesh::sim
