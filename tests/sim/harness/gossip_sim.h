// A simulated gossip cluster: N complete gossip agents (state machine, codec, keyring and
// all) on the deterministic sim network, in one thread, on a virtual clock. Used by the sim
// test suite and by the dissemination/detection tool; never by a real node.
//
// Time advances from event to event: the next network delivery or the next protocol timer,
// whichever is first, and only the nodes with something due are polled, so a thousand nodes
// simulate in seconds.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <vector>

#include "engine/membership/gossip_agent.h"
#include "transport/sim/sim_network.h"

namespace ringmesh::membership {

struct sim_node_options {
    std::vector<key_bytes> keys;  ///< empty: the cluster's keys
    std::vector<int> seeds{0};    ///< node indexes to join through
    bool plaintext = false;       ///< no keyring at all
};

/// Something a node observed, for timing: "at `at`, `observer` saw `subject` become `what`".
struct observation {
    time_ns at = 0;
    int observer = 0;
    member_event event;
};

class gossip_sim {
  public:
    /// Every node gets `base` (timings, Lifeguard on/off); names and seeds are filled in.
    gossip_sim(std::uint64_t seed, transport::sim::link_faults faults, swim_config base,
               std::vector<key_bytes> cluster_keys);
    ~gossip_sim();

    static std::string name_of(int i) { return "n" + std::to_string(i); }
    static std::string address_of(int i);

    /// Adds and starts node `i` now (a restart if it ran before: a new process, incarnation 0).
    void start(int i, sim_node_options options = {});
    /// The process vanishes: no goodbye, its streams break.
    void crash(int i);
    void leave(int i);
    void update_meta(int i, member_meta meta);
    bool running(int i) const { return i < static_cast<int>(nodes_.size()) && nodes_[i].agent; }

    /// Runs the simulation until virtual time `until`.
    void run_until(time_ns until);
    void run_for(time_ns span) { run_until(now_ + span); }
    /// Runs until `done()` holds (checked every `check_every`) or `limit` passes; returns
    /// whether it held.
    bool run_until(const std::function<bool()>& done, time_ns limit,
                   time_ns check_every = 10 * ns_per_ms);

    /// Every running node sees exactly the running nodes as alive (or suspect).
    bool converged() const;
    /// Every running node other than `subject` holds it dead (or left).
    bool all_see_dead(int subject) const;

    time_ns now() const noexcept { return now_; }
    transport::sim::sim_network& net() noexcept { return net_; }
    const gossip_agent& agent(int i) const { return *nodes_[i].agent; }
    gossip_agent& agent(int i) { return *nodes_[i].agent; }
    int size() const noexcept { return static_cast<int>(nodes_.size()); }
    const std::vector<observation>& observations() const noexcept { return observations_; }
    void clear_observations() { observations_.clear(); }

  private:
    struct node {
        std::unique_ptr<gossip_agent> agent;
    };
    void poll(int i);

    transport::sim::sim_network net_;
    swim_config base_;
    std::vector<key_bytes> cluster_keys_;
    std::uint64_t seed_;
    std::vector<node> nodes_;
    std::unordered_map<std::string, int> by_address_;
    std::priority_queue<std::pair<time_ns, int>, std::vector<std::pair<time_ns, int>>,
                        std::greater<>>
        timers_;
    time_ns now_ = 0;
    std::vector<observation> observations_;
};

}  // namespace ringmesh::membership
