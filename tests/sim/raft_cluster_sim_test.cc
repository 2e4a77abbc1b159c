// Raft groups as a node runs them, on the deterministic simulator: every node is a shard with
// a messaging endpoint on the sim network, a raft_link and a raft_host running several groups
// over simulated disks (sim_raft_storage.h). Replication batches travel on the endpoint's
// priority lane: over streams (cut by partitions, broken by crashes) or over datagrams (lost,
// duplicated, reordered). Partitions are symmetric or one-way. Nodes crash (unsynced writes
// lost or torn) and restart.
//
// Checked after every loop iteration: at most one leader per term per group, and that no two
// replicas of a group reach different states at one index (each applied entry folds into a
// state hash; snapshots carry it). At the end, with the faults stopped: every group commits a
// new proposal within a bound, every replica catches up, and every acknowledged proposal is
// in every replica's state at its index. The same seed replays to the same trace hash.
//
// RINGMESH_SIM_SEED replays one seed; RINGMESH_SIM_SEEDS=N runs N seeds per configuration.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/cluster/raft_link.h"
#include "engine/messaging/endpoint.h"
#include "engine/replication/raft_host.h"
#include "tests/sim/harness/sim_raft_nodes.h"
#include "transport/sim/sim_network.h"

namespace ringmesh {
namespace {

using replication::group_id;
using replication::log_entry;
using replication::log_index;
using replication::node_id;
using replication::snapshot_meta;
using replication::term_t;

std::vector<std::uint64_t> seeds_or(std::uint64_t first, std::uint64_t count) {
    if (const char* env = std::getenv("RINGMESH_SIM_SEED"))
        return {std::strtoull(env, nullptr, 10)};
    if (const char* env = std::getenv("RINGMESH_SIM_SEEDS"))
        count = std::strtoull(env, nullptr, 10);
    std::vector<std::uint64_t> seeds;
    for (std::uint64_t s = first; s < first + count; ++s)
        seeds.push_back(s);
    return seeds;
}

std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdULL;
}

std::uint64_t hash_bytes(std::span<const std::byte> bytes) {
    std::uint64_t h = bytes.size();
    for (std::byte b : bytes)
        h = mix(h, std::to_integer<std::uint64_t>(b));
    return h;
}

struct cluster_options {
    int nodes = 3;
    int groups = 3;
    bool datagrams = false;  ///< replication over datagram links (loss, duplication)
    std::uint64_t seed = 1;
    time_ns run_for = 6 * ns_per_s;
    time_ns settle_bound = 15 * ns_per_s;
};

// One replica's state machine: the entries it applied, folded into a hash.
struct replica_state {
    log_index applied = 0;
    std::uint64_t hash = 0;
    log_index snapshot_at = 0;

    std::vector<std::byte> serialize() const {
        std::vector<std::byte> out(16);
        std::memcpy(out.data(), &applied, 8);
        std::memcpy(out.data() + 8, &hash, 8);
        return out;
    }
};

class raft_cluster {
  public:
    explicit raft_cluster(const cluster_options& o)
        : o_(o),
          rng_(o.seed),
          sim_(o.nodes, o.seed, faults(o), [this](int i) { return nodes_.up(i); }),
          states_(static_cast<std::size_t>(o.nodes)),
          restart_at_(static_cast<std::size_t>(o.nodes)),
          nodes_(sim_, o.nodes, o.datagrams, o.seed, rng_) {
        for (int i = 0; i < o.nodes; ++i)
            start(i);
    }

    // Runs the faults for run_for, then stops them and checks that the cluster recovers.
    void run() {
        time_ns next_crash = o_.run_for / 6, next_partition = o_.run_for / 4;
        time_ns next_proposal = 0;
        const time_ns end = sim_.now() + o_.run_for;
        sim_.run_until(
            [&] {
                step_checks();
                if (failed()) return true;
                const time_ns now = sim_.now();
                if (now >= next_proposal) {
                    propose_somewhere();
                    next_proposal = now + 5 * ns_per_ms;
                }
                if (now >= next_crash) {
                    crash_one();
                    next_crash = now + between(400 * ns_per_ms, 1200 * ns_per_ms);
                }
                if (now >= next_partition) {
                    partition_some();
                    next_partition = now + between(600 * ns_per_ms, 1500 * ns_per_ms);
                }
                restart_due();
                return now >= end;
            },
            o_.run_for + ns_per_s);
        if (failed()) return;
        // Faults stop: everyone back, links healed.
        sim_.net().heal();
        for (int i = 0; i < o_.nodes; ++i) {
            if (!nodes_.up(i)) start(i);
        }
        settle();
    }

    bool failed() const { return !violation_.empty(); }
    const std::string& violation() const { return violation_; }
    std::uint64_t trace_hash() const { return mix(sim_trace_hash_, trace_); }
    std::uint64_t acknowledged() const { return acked_.size(); }
    std::uint64_t crashes() const { return crashes_; }
    std::uint64_t snapshots_installed() const { return installs_; }
    std::uint64_t lane_batches() const { return lane_batches_; }

  private:
    struct proposal {
        group_id group;
        int node;
        log_index index;
        term_t term;
    };

    static transport::sim::link_faults faults(const cluster_options& o) {
        transport::sim::link_faults f;
        f.min_delay_ns = 100 * ns_per_us;
        f.max_delay_ns = 2 * ns_per_ms;
        if (o.datagrams) {
            f.drop = 0.02;
            f.duplicate = 0.01;
        }
        return f;
    }
    static std::string address(int i) { return sim::sim_raft_nodes::address(i); }

    time_ns between(time_ns lo, time_ns hi) {
        return std::uniform_int_distribution<time_ns>(lo, hi)(rng_);
    }

    void fail(const std::string& what) {
        if (violation_.empty()) {
            violation_ = what + " (at " + std::to_string(sim_.now() / ns_per_ms) + " ms, seed " +
                         std::to_string(o_.seed) + ")";
        }
    }

    void start(int i) {
        const std::string error = nodes_.start(i, [this](int at, sim::sim_raft_node& n) {
            for (group_id g = 1; g <= static_cast<group_id>(o_.groups); ++g)
                add_group(at, n, g);
        });
        if (!error.empty()) fail(error);
    }

    void add_group(int i, sim::sim_raft_node& n, group_id g) {
        states_[i][g] = {};
        replica_state* state = &states_[i][g];
        replication::raft_application app;
        app.apply = [this, i, g, state](const log_entry& e) { apply(i, g, *state, e); };
        app.restore = [this, i, g, state](const snapshot_meta& meta,
                                          std::span<const std::byte> data) {
            restore(i, g, *state, meta, data);
        };
        auto added =
            n.host->add_group(nodes_.group_config(i, g), nodes_.storage(i, g), app, sim_.now());
        if (!added) fail("add_group: " + added.err().message());
    }

    // ---- the state machines and the checks ----

    void apply(int i, group_id g, replica_state& s, const log_entry& e) {
        if (e.index != s.applied + 1) {
            fail("node " + std::to_string(i) + " group " + std::to_string(g) + " applied " +
                 std::to_string(e.index) + " after " + std::to_string(s.applied));
            return;
        }
        s.applied = e.index;
        s.hash = mix(mix(s.hash, static_cast<std::uint64_t>(e.kind)), hash_bytes(e.data));
        check_state(i, g, s);
        trace_ = mix(mix(trace_, static_cast<std::uint64_t>(i) * 131 + g), s.hash);
        // Acknowledged: the proposer applied its entry at the index and term it was given.
        if (e.kind != replication::entry_kind::command) return;
        const std::string data(reinterpret_cast<const char*>(e.data.data()), e.data.size());
        auto it = proposals_.find(data);
        if (it == proposals_.end() || it->second.node != i) return;
        if (it->second.index == e.index && it->second.term == e.term) {
            acked_[{g, e.index}] = data;
        }
        proposals_.erase(it);
    }

    void restore(int i, group_id g, replica_state& s, const snapshot_meta& meta,
                 std::span<const std::byte> data) {
        if (data.size() != 16) {
            fail("node " + std::to_string(i) + " restored a snapshot of the wrong size");
            return;
        }
        std::memcpy(&s.applied, data.data(), 8);
        std::memcpy(&s.hash, data.data() + 8, 8);
        if (s.applied != meta.index) fail("a snapshot's state is not at its index");
        s.snapshot_at = s.applied;
        ++installs_;
        check_state(i, g, s);
    }

    // State machine safety: every replica of a group holds the same state at each index.
    void check_state(int i, group_id g, const replica_state& s) {
        auto [it, inserted] = state_at_[g].try_emplace(s.applied, s.hash);
        if (!inserted && it->second != s.hash) {
            fail("state machine safety: node " + std::to_string(i) + " group " + std::to_string(g) +
                 " holds another state at " + std::to_string(s.applied));
        }
    }

    void step_checks() {
        for (int i = 0; i < o_.nodes; ++i) {
            sim::sim_raft_node& n = nodes_.at(i);
            if (!n.up) continue;
            for (group_id g = 1; g <= static_cast<group_id>(o_.groups); ++g) {
                replication::raft* r = n.host->group(g);
                if (r == nullptr) continue;
                if (r->is_leader()) {
                    auto [it, inserted] = leaders_[g].try_emplace(r->term(), i);
                    if (!inserted && it->second != i) {
                        fail("two leaders in group " + std::to_string(g) + " term " +
                             std::to_string(r->term()) + ": nodes " + std::to_string(it->second) +
                             " and " + std::to_string(i));
                    }
                }
                // The application snapshots now and then, at its applied index.
                replica_state& s = states_[i][g];
                if (s.applied >= s.snapshot_at + 40 && s.applied == r->applied_index()) {
                    s.snapshot_at = s.applied;
                    sim_.on(i, [&] {
                        n.host->save_snapshot(g, s.serialize(), sim_.now());
                        return 0;
                    });
                }
            }
        }
        lane_batches_ = 0;
        for (int i = 0; i < o_.nodes; ++i) {
            if (nodes_.up(i)) lane_batches_ += nodes_.at(i).endpoint->stats().replication_received;
        }
        sim_trace_hash_ = sim_.net().trace_hash();
    }

    // ---- the workload and the faults ----

    bool propose_on(int i, group_id g) {
        sim::sim_raft_node& n = nodes_.at(i);
        if (!n.up) return false;
        replication::raft* r = n.host->group(g);
        if (r == nullptr || !r->is_leader()) return false;
        const std::string data = "p" + std::to_string(++proposal_count_);
        const replication::propose_result p = sim_.on(i, [&] {
            return r->propose(sim_.now(), std::as_bytes(std::span(data.data(), data.size())));
        });
        if (p.status != replication::raft_status::ok) return false;
        proposals_[data] = {g, i, p.index, p.term};
        return true;
    }

    void propose_somewhere() {
        const auto g = static_cast<group_id>(1 + rng_() % static_cast<std::uint64_t>(o_.groups));
        for (int i = 0; i < o_.nodes; ++i) {
            if (propose_on(i, g)) return;
        }
    }

    int down_count() const {
        int down = 0;
        for (int i = 0; i < o_.nodes; ++i)
            down += nodes_.up(i) ? 0 : 1;
        return down;
    }

    void crash_one() {
        // At most a minority down at once, so that the groups can make progress at all.
        if (down_count() >= (o_.nodes - 1) / 2) return;
        const int i = static_cast<int>(rng_() % static_cast<std::uint64_t>(o_.nodes));
        if (!nodes_.up(i)) return;
        nodes_.crash(i, rng_() % 2 == 0);
        ++crashes_;
        states_[i].clear();
        restart_at_[i] = sim_.now() + between(100 * ns_per_ms, 900 * ns_per_ms);
        trace_ = mix(trace_, 0xc0ffee + static_cast<std::uint64_t>(i));
    }

    void restart_due() {
        for (int i = 0; i < o_.nodes; ++i) {
            if (!nodes_.up(i) && restart_at_[i] != 0 && sim_.now() >= restart_at_[i]) {
                restart_at_[i] = 0;
                start(i);
            }
        }
    }

    void partition_some() {
        sim_.net().heal();
        if (rng_() % 3 == 0) return;  // a healed spell
        // One node cut off from the rest, or a random split; symmetric, or one way only (what
        // side a sends is lost, what it receives arrives: a node that hears the leader but
        // cannot answer, or a leader whose heartbeats vanish while its followers' votes
        // still reach it).
        std::vector<std::string> a, b;
        const int alone = static_cast<int>(rng_() % static_cast<std::uint64_t>(o_.nodes));
        for (int i = 0; i < o_.nodes; ++i) {
            const bool side = rng_() % 4 == 0 ? rng_() % 2 == 0 : i == alone;
            (side ? a : b).push_back(address(i));
        }
        const bool one_way = rng_() % 3 == 0;
        if (!a.empty() && !b.empty()) {
            if (one_way) {
                sim_.net().partition_one_way(a, b);
            } else {
                sim_.net().partition(a, b);
            }
        }
        trace_ = mix(trace_, a.size() * 31 + b.size() + (one_way ? 7 : 0));
    }

    // Faults have stopped: every group must commit a new proposal within the bound, every
    // replica must catch up with it, and every acknowledged proposal must be in the state.
    void settle() {
        std::map<group_id, proposal> fresh;
        const bool recovered = sim_.run_until(
            [&] {
                step_checks();
                if (failed()) return true;
                bool all_acked = true;
                for (group_id g = 1; g <= static_cast<group_id>(o_.groups); ++g) {
                    // A proposal lost with its leader (deposed before it committed) is
                    // proposed again on the group's leader of the day.
                    if (auto it = fresh.find(g); it != fresh.end()) {
                        const proposal& p = it->second;
                        if (acked_.contains({g, p.index})) continue;
                        replication::raft* r = nodes_.at(p.node).host->group(g);
                        if (r != nullptr && r->is_leader() && r->term() == p.term) {
                            all_acked = false;
                            continue;
                        }
                        fresh.erase(it);
                    }
                    all_acked = false;
                    for (int i = 0; i < o_.nodes; ++i) {
                        if (propose_on(i, g)) {
                            fresh[g] = proposals_.at("p" + std::to_string(proposal_count_));
                            break;
                        }
                    }
                }
                if (!all_acked) return false;
                return caught_up();
            },
            o_.settle_bound);
        if (failed()) return;
        if (!recovered) {
            fail("no progress within " + std::to_string(o_.settle_bound / ns_per_s) +
                 " s after the faults stopped:" + describe());
            return;
        }
        for (const auto& [at, data] : acked_) {
            const auto [g, index] = at;
            for (int i = 0; i < o_.nodes; ++i) {
                if (states_[i][g].applied < index) {
                    fail("node " + std::to_string(i) + " never applied acknowledged entry " +
                         std::to_string(index) + " of group " + std::to_string(g));
                }
            }
        }
    }

    // Where every replica stands, for a failure's message.
    std::string describe() {
        std::string out;
        for (int i = 0; i < o_.nodes; ++i) {
            sim::sim_raft_node& n = nodes_.at(i);
            out += "\n  node " + std::to_string(i) + ": peers";
            for (const std::string& p : n.endpoint->connected_peers())
                out += " " + p;
            const auto& ls = n.link->stats();
            out += "; link unreachable " + std::to_string(ls.unreachable) + " back_pressure " +
                   std::to_string(ls.back_pressure) + " too_large " + std::to_string(ls.too_large) +
                   "; host refused " + std::to_string(n.host->stats().refused.total()) +
                   " oversized " + std::to_string(n.host->stats().oversized);
            for (group_id g = 1; g <= static_cast<group_id>(o_.groups); ++g) {
                replication::raft* r = n.host->group(g);
                if (r == nullptr) {
                    out += "\n    group " + std::to_string(g) + " stopped";
                    continue;
                }
                out += "\n    group " + std::to_string(g) + ": " +
                       (r->is_leader() ? "leader" : "follower/candidate") + " term " +
                       std::to_string(r->term()) + " leader " + std::to_string(r->leader()) +
                       " last " + std::to_string(r->last_index()) + " commit " +
                       std::to_string(r->commit_index()) + " applied " +
                       std::to_string(states_[i][g].applied);
            }
        }
        return out;
    }

    // Every replica applied everything its group committed.
    bool caught_up() {
        for (group_id g = 1; g <= static_cast<group_id>(o_.groups); ++g) {
            log_index commit = 0;
            for (int i = 0; i < o_.nodes; ++i) {
                if (replication::raft* r = nodes_.at(i).host->group(g))
                    commit = std::max(commit, r->commit_index());
            }
            for (int i = 0; i < o_.nodes; ++i) {
                if (states_[i][g].applied < commit) return false;
            }
        }
        return true;
    }

    cluster_options o_;
    std::mt19937_64 rng_;
    sim::sim_shards sim_;
    // Before the nodes: destroyed after them (their applications point into it).
    std::vector<std::map<group_id, replica_state>> states_;  // by node: what it applied
    std::vector<time_ns> restart_at_;
    sim::sim_raft_nodes nodes_;
    std::map<group_id, std::map<log_index, std::uint64_t>> state_at_;
    std::map<group_id, std::map<term_t, int>> leaders_;
    std::map<std::string, proposal> proposals_;
    std::map<std::pair<group_id, log_index>, std::string> acked_;
    std::uint64_t proposal_count_ = 0;
    std::uint64_t trace_ = 0;
    std::uint64_t sim_trace_hash_ = 0;
    std::uint64_t crashes_ = 0;
    std::uint64_t installs_ = 0;
    std::uint64_t lane_batches_ = 0;
    std::string violation_;
};

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr std::uint64_t seeds_per_configuration = 2;
#else
constexpr std::uint64_t seeds_per_configuration = 12;
#endif

void run_seeds(cluster_options o) {
    const std::vector<std::uint64_t> seeds = seeds_or(1, seeds_per_configuration);
    std::uint64_t acknowledged = 0;
    for (std::uint64_t seed : seeds) {
        o.seed = seed;
        raft_cluster c(o);
        c.run();
        ASSERT_FALSE(c.failed()) << c.violation() << "\n  replay: RINGMESH_SIM_SEED=" << seed;
        // Some seeds keep a group unavailable for most of the run (a one-way partition
        // cutting streams again and again): each must still get proposals through.
        EXPECT_GT(c.acknowledged(), 0u) << "seed " << seed;
        EXPECT_GT(c.crashes(), 0u) << "seed " << seed;
        EXPECT_GT(c.lane_batches(), 0u) << "seed " << seed;
        acknowledged += c.acknowledged();
    }
    EXPECT_GT(acknowledged, 50 * seeds.size()) << "the workload barely ran";
}

TEST(RaftClusterSimTest, ThreeNodesOverStreamsSurvivePartitionsAndCrashes) {
    run_seeds({.nodes = 3, .groups = 3, .datagrams = false});
}

TEST(RaftClusterSimTest, FiveNodesOverLossyDatagramsSurvivePartitionsAndCrashes) {
    run_seeds({.nodes = 5, .groups = 2, .datagrams = true});
}

TEST(RaftClusterSimTest, ASeedReplaysToTheSameTraceHash) {
    cluster_options o{.nodes = 3, .groups = 2, .datagrams = true, .seed = 7};
    std::uint64_t first = 0;
    for (int run = 0; run < 2; ++run) {
        raft_cluster c(o);
        c.run();
        ASSERT_FALSE(c.failed()) << c.violation();
        if (run == 0) {
            first = c.trace_hash();
        } else {
            EXPECT_EQ(c.trace_hash(), first);
        }
    }
    o.seed = 8;
    raft_cluster other(o);
    other.run();
    EXPECT_NE(other.trace_hash(), first);
}

}  // namespace
}  // namespace ringmesh
