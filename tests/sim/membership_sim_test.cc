// SWIM/Lifeguard membership on the deterministic simulator: whole gossip agents (state
// machine, codec, keyring) on a seeded in-memory network. Every test names its seed; set
// RINGMESH_SIM_SEED to replay one, and the same seed gives the same trace hash.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "tests/sim/harness/gossip_sim.h"

namespace ringmesh::membership {
namespace {

using transport::sim::link_faults;

std::uint64_t seed_or(std::uint64_t fallback) {
    const char* env = std::getenv("RINGMESH_SIM_SEED");
    return env != nullptr ? std::strtoull(env, nullptr, 10) : fallback;
}

// What a failure prints: how to run the same scenario again.
std::string replay_hint(std::uint64_t seed) {
    return "replay with RINGMESH_SIM_SEED=" + std::to_string(seed);
}

key_bytes key_of(char fill) {
    return key_bytes(32, static_cast<std::byte>(fill));
}

// A LAN: 0.1–1 ms one way, so timing is dominated by the protocol, not the wire.
link_faults lan(double drop = 0) {
    link_faults f;
    f.min_delay_ns = 100 * ns_per_us;
    f.max_delay_ns = 1 * ns_per_ms;
    f.drop = drop;
    return f;
}

swim_config timings(bool lifeguard = true) {
    swim_config c;
    c.probe_interval = 500 * ns_per_ms;
    c.probe_timeout = 200 * ns_per_ms;
    c.push_pull_interval = 10 * ns_per_s;
    c.lifeguard = lifeguard;
    return c;
}

// Starts n nodes 10 ms apart, each joining through node 0, and runs until every node sees
// every other alive; returns the virtual time that took (or -1).
time_ns join(gossip_sim& sim, int n, time_ns limit) {
    const time_ns begin = sim.now();
    for (int i = 0; i < n; ++i) {
        sim.start(i);
        sim.run_for(10 * ns_per_ms);
    }
    if (!sim.run_until([&] { return sim.converged(); }, begin + limit, 100 * ns_per_ms)) {
        return -1;
    }
    return sim.now() - begin;
}

class MembershipJoinTest : public ::testing::TestWithParam<int> {};

TEST_P(MembershipJoinTest, Converges) {
    const int n = GetParam();
    const std::uint64_t seed = seed_or(1000 + static_cast<std::uint64_t>(n));
    SCOPED_TRACE(replay_hint(seed));
    gossip_sim sim(seed, lan(), timings(), {key_of('k')});
    const time_ns took = join(sim, n, 300 * ns_per_s);
    ASSERT_GE(took, 0) << n << " nodes did not converge within 300 s of simulated time";
    std::printf("join of %d nodes converged after %.1f s simulated (%llu deliveries)\n", n,
                static_cast<double>(took) / ns_per_s,
                static_cast<unsigned long long>(sim.net().delivered()));
    for (int i = 0; i < n; ++i) {
        EXPECT_EQ(sim.agent(i).stats().refused(), 0u) << "node " << i;
        EXPECT_EQ(sim.agent(i).state().stats().declared_dead, 0u) << "node " << i;
    }
}

INSTANTIATE_TEST_SUITE_P(Sizes, MembershipJoinTest, ::testing::Values(5, 50, 500));

TEST(MembershipSimTest, CrashedNodeIsDeclaredDeadByAllWithinTheBound) {
    for (std::uint64_t seed : {seed_or(7), seed_or(8), seed_or(9)}) {
        SCOPED_TRACE(replay_hint(seed));
        constexpr int n = 20;
        gossip_sim sim(seed, lan(), timings(), {key_of('k')});
        ASSERT_GE(join(sim, n, 120 * ns_per_s), 0);
        const int victim = static_cast<int>(seed % n);
        const time_ns crashed_at = sim.now();
        sim.crash(victim);
        const time_ns bound = swim::detection_bound(timings(), n);
        ASSERT_TRUE(sim.run_until([&] { return sim.all_see_dead(victim); }, crashed_at + bound))
            << "not every member declared node " << victim << " dead within " << bound / ns_per_ms
            << " ms";
        std::printf(
            "seed %llu: all %d survivors held n%d dead %.2f s after the crash (bound "
            "%.1f s)\n",
            static_cast<unsigned long long>(seed), n - 1, victim,
            static_cast<double>(sim.now() - crashed_at) / ns_per_s,
            static_cast<double>(bound) / ns_per_s);
        // Nobody else was harmed.
        for (int i = 0; i < n; ++i) {
            if (i == victim) continue;
            for (int j = 0; j < n; ++j) {
                if (j == victim || j == i) continue;
                const member_record* m = sim.agent(i).state().find(gossip_sim::name_of(j));
                ASSERT_NE(m, nullptr);
                EXPECT_NE(m->state, member_state::dead) << i << " holds " << j << " dead";
            }
        }
    }
}

TEST(MembershipSimTest, RestartedNodeRejoinsWithAHigherIncarnation) {
    const std::uint64_t seed = seed_or(21);
    SCOPED_TRACE(replay_hint(seed));
    constexpr int n = 8;
    gossip_sim sim(seed, lan(), timings(), {key_of('k')});
    ASSERT_GE(join(sim, n, 60 * ns_per_s), 0);
    sim.crash(3);
    ASSERT_TRUE(sim.run_until([&] { return sim.all_see_dead(3); }, sim.now() + 60 * ns_per_s));
    const std::uint64_t dead_incarnation = sim.agent(0).state().find("n3")->incarnation;
    sim.start(3);  // a new process: incarnation 0 again, until it hears of its death
    ASSERT_TRUE(sim.run_until([&] { return sim.converged(); }, sim.now() + 60 * ns_per_s));
    const std::uint64_t now_incarnation = sim.agent(3).state().self().incarnation;
    EXPECT_GT(now_incarnation, dead_incarnation);
    for (int i = 0; i < n; ++i)
        EXPECT_EQ(sim.agent(i).state().find("n3")->incarnation, now_incarnation);
}

TEST(MembershipSimTest, PartitionSplitsAndHeals) {
    const std::uint64_t seed = seed_or(31);
    SCOPED_TRACE(replay_hint(seed));
    constexpr int n = 10;
    gossip_sim sim(seed, lan(), timings(), {key_of('k')});
    ASSERT_GE(join(sim, n, 60 * ns_per_s), 0);
    std::vector<std::string> left, right;
    for (int i = 0; i < n; ++i)
        (i < n / 2 ? left : right).push_back(gossip_sim::address_of(i));
    sim.net().partition(left, right);
    auto split = [&] {
        for (int i = 0; i < n; ++i) {
            for (int j = 0; j < n; ++j) {
                if ((i < n / 2) == (j < n / 2)) continue;
                const member_record* m = sim.agent(i).state().find(gossip_sim::name_of(j));
                if (m != nullptr && m->state != member_state::dead) return false;
            }
        }
        return true;
    };
    ASSERT_TRUE(sim.run_until(split, sim.now() + 120 * ns_per_s)) << "the sides never split";
    // Each side stays whole within itself.
    for (int i = 0; i < n; ++i)
        EXPECT_EQ(sim.agent(i).state().alive_count(), static_cast<std::size_t>(n / 2));
    sim.net().heal();
    const time_ns healed_at = sim.now();
    ASSERT_TRUE(sim.run_until([&] { return sim.converged(); }, sim.now() + 300 * ns_per_s))
        << "views did not reconverge after the heal";
    std::printf("partition healed: views reconverged %.1f s later\n",
                static_cast<double>(sim.now() - healed_at) / ns_per_s);
}

struct false_positive_run {
    std::uint64_t suspicions = 0;  ///< of healthy members
    std::uint64_t deaths = 0;      ///< healthy members declared dead
};

false_positive_run run_lossy(std::uint64_t seed, double loss, bool lifeguard) {
    constexpr int n = 16;
    gossip_sim sim(seed, lan(), timings(lifeguard), {key_of('k')});
    EXPECT_GE(join(sim, n, 120 * ns_per_s), 0);
    sim.clear_observations();
    sim.net().set_faults(lan(loss));
    sim.run_for(10 * 60 * ns_per_s);  // ten simulated minutes
    false_positive_run r;
    for (const auto& o : sim.observations()) {
        r.suspicions += o.event.what == member_event::kind::suspect;
        r.deaths += o.event.what == member_event::kind::dead;
    }
    return r;
}

TEST(MembershipSimTest, LifeguardPreventsFalsePositivesUnderLoss) {
    const std::uint64_t seed = seed_or(41);
    SCOPED_TRACE(replay_hint(seed));
    const auto with = run_lossy(seed, 0.05, true);
    const auto without = run_lossy(seed, 0.05, false);
    std::printf(
        "5%% loss, 16 nodes, 10 min: Lifeguard on: %llu suspicions, %llu false deaths; "
        "off: %llu suspicions, %llu false deaths\n",
        static_cast<unsigned long long>(with.suspicions),
        static_cast<unsigned long long>(with.deaths),
        static_cast<unsigned long long>(without.suspicions),
        static_cast<unsigned long long>(without.deaths));
    EXPECT_EQ(with.deaths, 0u) << "a healthy member was declared dead with Lifeguard on";
    EXPECT_GT(without.deaths, with.deaths) << "Lifeguard off shows no difference";
}

TEST(MembershipSimTest, NodeWithAWrongKeyOrNoneCannotJoinOrInject) {
    const std::uint64_t seed = seed_or(51);
    SCOPED_TRACE(replay_hint(seed));
    constexpr int n = 5;
    gossip_sim sim(seed, lan(), timings(), {key_of('k')});
    ASSERT_GE(join(sim, n, 60 * ns_per_s), 0);
    sim.start(n, {.keys = {key_of('x')}, .seeds = {0, 1}});
    sim.start(n + 1, {.keys = {}, .seeds = {2}, .plaintext = true});
    sim.run_for(20 * ns_per_s);
    for (int i = 0; i < n; ++i) {
        EXPECT_EQ(sim.agent(i).state().find(gossip_sim::name_of(n)), nullptr) << "node " << i;
        EXPECT_EQ(sim.agent(i).state().find(gossip_sim::name_of(n + 1)), nullptr) << "node " << i;
        EXPECT_EQ(sim.agent(i).state().alive_count(), static_cast<std::size_t>(n));
    }
    for (int outsider : {n, n + 1}) {
        EXPECT_EQ(sim.agent(outsider).state().alive_count(), 1u);
        EXPECT_FALSE(sim.agent(outsider).state().joined());
    }
    std::uint64_t wrong_key = 0, plaintext = 0;
    for (int i = 0; i < n; ++i) {
        const auto& refused = sim.agent(i).stats().refused_by_keyring;
        wrong_key += refused[static_cast<int>(open_status::auth_failed)];
        plaintext += refused[static_cast<int>(open_status::unencrypted)];
    }
    EXPECT_GT(wrong_key, 0u) << "the wrong-key attempts were not counted";
    EXPECT_GT(plaintext, 0u) << "the keyless attempts were not counted";
}

TEST(MembershipSimTest, KeysRotateWithoutLosingTheCluster) {
    const std::uint64_t seed = seed_or(61);
    SCOPED_TRACE(replay_hint(seed));
    constexpr int n = 6;
    gossip_sim sim(seed, lan(), timings(), {key_of('a')});
    ASSERT_GE(join(sim, n, 60 * ns_per_s), 0);
    // install everywhere, then use everywhere, then remove the old one everywhere.
    for (int i = 0; i < n; ++i)
        ASSERT_TRUE(sim.agent(i).keys().install(key_of('b')));
    sim.run_for(2 * ns_per_s);
    for (int i = 0; i < n; ++i)
        ASSERT_TRUE(sim.agent(i).keys().use(key_of('b')));
    sim.run_for(2 * ns_per_s);
    for (int i = 0; i < n; ++i)
        ASSERT_TRUE(sim.agent(i).keys().remove(key_of('a')));
    sim.run_for(30 * ns_per_s);
    EXPECT_TRUE(sim.converged());
    // A node that knows only the old key is now out.
    sim.start(n, {.keys = {key_of('a')}, .seeds = {0}});
    sim.run_for(10 * ns_per_s);
    EXPECT_EQ(sim.agent(0).state().find(gossip_sim::name_of(n)), nullptr);
    for (int i = 0; i < n; ++i)
        EXPECT_EQ(sim.agent(i).state().stats().declared_dead, 0u);
}

TEST(MembershipSimTest, GracefulLeaveIsSeenAsLeft) {
    const std::uint64_t seed = seed_or(71);
    SCOPED_TRACE(replay_hint(seed));
    constexpr int n = 8;
    gossip_sim sim(seed, lan(), timings(), {key_of('k')});
    ASSERT_GE(join(sim, n, 60 * ns_per_s), 0);
    sim.leave(5);
    sim.run_for(2 * ns_per_s);
    sim.crash(5);
    ASSERT_TRUE(sim.run_until([&] { return sim.all_see_dead(5); }, sim.now() + 30 * ns_per_s));
    for (int i = 0; i < n; ++i) {
        if (i == 5) continue;
        EXPECT_EQ(sim.agent(i).state().find("n5")->state, member_state::left);
    }
}

// The whole point of the simulator: a seed is a replayable run.
std::uint64_t scenario_hash(std::uint64_t seed) {
    gossip_sim sim(seed, lan(0.05), timings(), {key_of('k')});
    join(sim, 12, 60 * ns_per_s);
    sim.crash(4);
    sim.run_for(20 * ns_per_s);
    return sim.net().trace_hash();
}

TEST(MembershipSimTest, SameSeedSameTrace) {
    const std::uint64_t seed = seed_or(81);
    SCOPED_TRACE(replay_hint(seed));
    const std::uint64_t first = scenario_hash(seed);
    EXPECT_EQ(first, scenario_hash(seed));
    EXPECT_NE(first, scenario_hash(seed + 1));
}

}  // namespace
}  // namespace ringmesh::membership
