// Whole cluster members (endpoint, gossip agent, keyring, and the wiring between them) on the
// deterministic simulator: every node is a shard on one virtual clock, messaging and gossip
// both on the sim network, every random choice derived from the run's seed. The scenarios
// are the ones membership changes make hard: a member paused past failure detection, and a
// member killed and restarted. Delivery is checked from what the engine delivers and
// reports; the same seed must replay to the same trace hash.
//
// RINGMESH_SIM_SEED replays one seed.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/cluster/cluster_member.h"
#include "tests/sim/harness/sim_shards.h"
#include "tests/support/bytes.h"
#include "transport/sim/sim_network.h"

namespace ringmesh {
namespace {

using test_support::bytes_of;
using test_support::text_of;
using event_kind = membership::member_event::kind;

std::vector<std::uint64_t> seeds_or(std::vector<std::uint64_t> fallback) {
    const char* env = std::getenv("RINGMESH_SIM_SEED");
    if (env == nullptr) return fallback;
    return {std::strtoull(env, nullptr, 10)};
}

// What each node saw, in order: the evidence a scenario is judged on.
struct node_log {
    std::vector<int> delivered;  // message numbers, in delivery order
    std::vector<messaging::peer_loss> losses;
    std::vector<std::pair<std::string, event_kind>> events;
    std::vector<std::string> loss_peers;  // (peer_loss.peer is a view)
};

class member_cluster {
  public:
    member_cluster(int nodes, std::uint64_t seed)
        : sim_(nodes, seed, sim::lan_faults(),
               [this](int i) { return members_[i] && !paused_[i]; }),
          seed_(seed),
          members_(static_cast<std::size_t>(nodes)),
          paused_(static_cast<std::size_t>(nodes)),
          logs_(static_cast<std::size_t>(nodes)) {}
    ~member_cluster() {
        for (std::size_t i = 0; i < members_.size(); ++i)
            kill(static_cast<int>(i));
    }

    // Labels, never sockets: nothing leaves the process.
    static std::string stream_address(int i) { return "10.0.0." + std::to_string(i + 1) + ":7000"; }
    static std::string gossip_address(int i) { return "10.0.0." + std::to_string(i + 1) + ":7946"; }

    // Starts node i (again, after kill: a new process, so a new seed and incarnation), joining
    // through node 0's gossip address.
    void start(int i) {
        cluster::member_config config;
        config.messaging.cluster_id = "sim";
        config.messaging.node_id = "n" + std::to_string(i);
        config.messaging.listen = *transport::address::parse(stream_address(i));
        config.messaging.peer_retention_ns = 60 * ns_per_s;
        membership::agent_config gossip;
        gossip.listen = *transport::address::parse(gossip_address(i));
        gossip.swim.address = gossip_address(i);
        gossip.swim.seeds = {gossip_address(0)};
        gossip.swim.probe_interval = 200 * ns_per_ms;
        gossip.swim.probe_timeout = 80 * ns_per_ms;
        gossip.swim.meta.addresses = {{"tcp", stream_address(i)}};
        config.membership = gossip;
        config.keys = {membership::key_bytes(32, std::byte{0x5a})};
        config.random_seed = seed_ * 1'000'003 + static_cast<std::uint64_t>(++starts_) * 7919;
        sim_.bind(i);
        auto m = cluster::member::create(
            sim_.at(i), sim_.net().make_transport(stream_address(i), static_cast<shard_id>(i)),
            sim_.net().make_transport(gossip_address(i), static_cast<shard_id>(i), 64),
            std::move(config));
        EXPECT_TRUE(m) << m.err().message();
        members_[i] = std::move(m).value();
        node_log& log = logs_[i];
        log = {};
        members_[i]->on_member_event(
            [&log](const membership::member_event& e) { log.events.emplace_back(e.name, e.what); });
        messaging::endpoint& e = members_[i]->messaging();
        e.on_peer_loss([&log](const messaging::peer_loss& loss) {
            log.losses.push_back(loss);
            log.loss_peers.emplace_back(loss.peer);
        });
        e.subscribe("sim/**", [&log](const messaging::message& delivered) {
            log.delivered.push_back(std::stoi(text_of(delivered.bytes)));
        });
        sim_.bind(-1);
    }
    // kill -9: the process is gone at once; nothing is said to anyone.
    void kill(int i) {
        sim_.on(i, [&] {
            members_[i].reset();
            return 0;
        });
    }
    // SIGSTOP / SIGCONT: the node is not stepped, and what reaches it waits.
    void pause(int i, bool paused) {
        paused_[i] = paused;
        for (const std::string& address : {stream_address(i), gossip_address(i)}) {
            if (paused) {
                sim_.net().pause(address);
            } else {
                sim_.net().resume(address);
            }
        }
    }

    cluster::member& at(int i) { return *members_[i]; }
    const node_log& log(int i) const { return logs_[i]; }
    transport::sim::sim_network& net() { return sim_.net(); }

    template <typename Fn>
    auto on(int i, Fn&& fn) {
        return sim_.on(i, [&] { return fn(members_[i]->messaging()); });
    }
    bool run_until(const std::function<bool()>& done, time_ns limit_ns) {
        return sim_.run_until(done, limit_ns);
    }

  private:
    sim::sim_shards sim_;
    std::uint64_t seed_;
    std::uint64_t starts_ = 0;
    std::vector<std::unique_ptr<cluster::member>> members_;
    std::vector<bool> paused_;
    std::vector<node_log> logs_;
};

bool saw(const node_log& log, const std::string& peer, event_kind what) {
    for (const auto& [name, kind] : log.events) {
        if (name == peer && kind == what) return true;
    }
    return false;
}

// Publishes "0", "1", ... from node 0 on sim/x whenever every subscriber has room, until
// `count` are out, at most `batch` per call (a steady stream rather than one burst).
struct publisher {
    member_cluster& c;
    int next = 0;
    void pump(int count, int batch = INT32_MAX) {
        for (int taken = 0; taken < batch && next < count; ++taken, ++next) {
            if (!c.on(0, [](messaging::endpoint& e) { return e.publish_ready("sim/x"); })) return;
            c.on(0, [&](messaging::endpoint& e) {
                return e.publish("sim/x", bytes_of(std::to_string(next)));
            });
        }
    }
};

// Joins three members through gossip alone (nobody configures a stream peer), then has node 0
// publish while node 2 is paused long enough to be declared dead, and resumed.
struct pause_run {
    bool completed = false;
    std::string failure;
    std::uint64_t trace = 0;
    std::vector<int> delivered[3];
    std::size_t losses = 0;
};

pause_run pause_scenario(std::uint64_t seed) {
    pause_run run;
    member_cluster c(3, seed);
    for (int i = 0; i < 3; ++i)
        c.start(i);
    const auto everyone_connected = [&] {
        for (int i = 0; i < 3; ++i) {
            if (c.at(i).messaging().connected_peers().size() != 2) return false;
        }
        return c.at(0).messaging().subscribers("sim/x") == 2;
    };
    if (!c.run_until(everyone_connected, 30 * ns_per_s)) {
        run.failure = "the members never found each other through gossip";
        return run;
    }
    publisher pub{c};
    const auto delivered_all = [&](int count) {
        return [&, count] {
            pub.pump(count);
            return c.log(1).delivered.size() == static_cast<std::size_t>(count) &&
                   c.log(2).delivered.size() == static_cast<std::size_t>(count);
        };
    };
    if (!c.run_until(delivered_all(2000), 30 * ns_per_s)) {
        run.failure = "the first 2000 were not delivered";
        return run;
    }
    c.pause(2, true);  // SIGSTOP
    pub.pump(2500);
    if (!c.run_until([&] { return saw(c.log(0), "n2", event_kind::dead); }, 60 * ns_per_s)) {
        run.failure = "the paused member was never declared dead";
        return run;
    }
    c.pause(2, false);  // SIGCONT: it refutes, and its session resumes
    if (!c.run_until(delivered_all(5000), 120 * ns_per_s)) {
        run.failure = "not everything was delivered after the resume";
        return run;
    }
    if (!c.run_until([&] { return c.at(0).messaging().unacked("n2") == 0; }, 30 * ns_per_s)) {
        run.failure = "the publisher's window never drained";
        return run;
    }
    run.completed = true;
    run.trace = c.net().trace_hash();
    for (int i = 1; i < 3; ++i)
        run.delivered[i] = c.log(i).delivered;
    run.losses = c.log(0).losses.size() + c.log(2).losses.size();
    return run;
}

TEST(MemberSimTest, MemberPausedPastDetectionResumesWithNothingLostAndReplaysBySeed) {
    std::vector<std::uint64_t> traces;
    for (std::uint64_t seed : seeds_or({1, 2, 3})) {
        const pause_run run = pause_scenario(seed);
        ASSERT_TRUE(run.completed) << run.failure << "; replay with RINGMESH_SIM_SEED=" << seed;
        for (int i : {1, 2}) {
            ASSERT_EQ(run.delivered[i].size(), 5000u) << "seed " << seed;
            for (int k = 0; k < 5000; ++k)
                ASSERT_EQ(run.delivered[i][k], k) << "node " << i << ", seed " << seed;
        }
        EXPECT_EQ(run.losses, 0u) << "nothing was lost, so nothing may be reported lost";
        const std::uint64_t replayed = pause_scenario(seed).trace;
        EXPECT_EQ(replayed, run.trace) << "seed " << seed << " did not replay";
        std::printf(
            "seed %llu: 5000 of 5000 delivered once, in order, to both subscribers; "
            "trace %016llx, replayed %016llx\n",
            static_cast<unsigned long long>(seed), static_cast<unsigned long long>(run.trace),
            static_cast<unsigned long long>(replayed));
        traces.push_back(run.trace);
    }
    if (traces.size() > 1) {
        EXPECT_NE(traces[0], traces[1]);  // the seed really drives the run
    }
}

TEST(MemberSimTest, KilledMemberIsReportedExactlyAndItsSuccessorReceivesFromThenOn) {
    for (std::uint64_t seed : seeds_or({11, 12})) {
        member_cluster c(3, seed);
        for (int i = 0; i < 3; ++i)
            c.start(i);
        ASSERT_TRUE(c.run_until([&] { return c.at(0).messaging().subscribers("sim/x") == 2; },
                                30 * ns_per_s))
            << "seed " << seed;
        publisher pub{c};
        ASSERT_TRUE(c.run_until(
            [&] {
                pub.pump(3000, 10);  // the kill lands mid-stream
                return c.log(2).delivered.size() >= 1000;
            },
            30 * ns_per_s))
            << "seed " << seed;
        const std::vector<int> before = c.log(2).delivered;  // the old process's deliveries
        c.kill(2);                                           // kill -9, mid-stream
        pub.pump(3000);
        c.start(2);  // restarted: same name and addresses, a new incarnation
        // The publisher learns of the restart (and reports what the old process left
        // unacknowledged, if anything) when the new process introduces itself; it publishes
        // on once the new process has subscribed.
        ASSERT_TRUE(c.run_until(
            [&] {
                return c.at(0).messaging().stats().peer_restarts == 1 &&
                       c.at(0).messaging().peer_wants("n2", "sim/x");
            },
            60 * ns_per_s))
            << "seed " << seed;
        ASSERT_TRUE(c.run_until(
            [&] {
                pub.pump(6000);
                return c.log(1).delivered.size() == 6000 && !c.log(2).delivered.empty() &&
                       c.log(2).delivered.back() == 5999;
            },
            120 * ns_per_s))
            << "seed " << seed;
        // Node 1 was never disturbed: everything, once, in order.
        for (int k = 0; k < 6000; ++k)
            ASSERT_EQ(c.log(1).delivered[k], k) << "seed " << seed;
        // Node 2: the old process's log, then the new one's, each in order without repeats;
        // what lies between is what the publisher reported, at least.
        // At most one report, for the restart; none when the old process had acknowledged
        // everything before it died.
        ASSERT_LE(c.log(0).losses.size(), 1u) << "seed " << seed;
        std::uint64_t reported = 0;
        if (!c.log(0).losses.empty()) {
            EXPECT_EQ(c.log(0).loss_peers[0], "n2");
            EXPECT_EQ(c.log(0).losses[0].reason, messaging::loss_reason::peer_restarted);
            reported = c.log(0).losses[0].not_delivered_to;
        }
        for (std::size_t k = 0; k < before.size(); ++k)
            ASSERT_EQ(before[k], static_cast<int>(k)) << "seed " << seed;
        const std::vector<int>& after = c.log(2).delivered;
        for (std::size_t k = 1; k < after.size(); ++k)
            ASSERT_EQ(after[k], after[k - 1] + 1) << "seed " << seed;
        ASSERT_GE(after.front(), static_cast<int>(before.size())) << "delivered twice";
        const auto gap = static_cast<std::uint64_t>(after.front()) - before.size();
        // The dead process acknowledged some of what it delivered late or never: the report
        // counts every unacknowledged message, so it covers the gap, and not more than what
        // was in flight to the old process.
        EXPECT_GE(reported, gap) << "seed " << seed;
        EXPECT_LE(reported, gap + messaging::session_config{}.max_in_flight_frames)
            << "seed " << seed;
        std::printf(
            "seed %llu: old process delivered %zu, gap %llu, reported lost %llu, new "
            "process delivered %zu\n",
            static_cast<unsigned long long>(seed), before.size(),
            static_cast<unsigned long long>(gap), static_cast<unsigned long long>(reported),
            after.size());
    }
}

}  // namespace
}  // namespace ringmesh
