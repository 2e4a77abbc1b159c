// Raft groups on the deterministic simulator: a bounded number of seeds per configuration
// (the long search is build/bench/ringmesh_raft_sim), every Raft guarantee checked after
// every event, and a seed that replays to the same trace hash.
#include "tests/sim/harness/raft_sim.h"

#include <gtest/gtest.h>

namespace ringmesh::sim {
namespace {

// CI runs these many seeds per configuration; each takes a few milliseconds to a few tens,
// forty times that in an unoptimised sanitizer build.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr std::uint64_t seeds_per_configuration = 12;
constexpr std::uint64_t census_seeds = 8;
#else
constexpr std::uint64_t seeds_per_configuration = 150;
constexpr std::uint64_t census_seeds = 20;
#endif

void run_seeds(int voters, int spares) {
    for (std::uint64_t seed = 1; seed <= seeds_per_configuration; ++seed) {
        raft_sim_options o;
        o.seed = seed;
        o.voters = voters;
        o.spares = spares;
        const raft_sim_result r = run_raft_sim(o);
        ASSERT_TRUE(r.ok) << r.violation << "\n  replay: ringmesh_raft_sim --seed " << seed
                          << " --seeds 1 --nodes " << voters << " --spares " << spares
                          << " --trace";
        EXPECT_GT(r.acknowledged, 0u) << "seed " << seed << " acknowledged nothing";
    }
}

TEST(RaftSimTest, ThreeVotersKeepEveryGuaranteeUnderFaults) {
    run_seeds(3, 0);
}

TEST(RaftSimTest, FiveVotersKeepEveryGuaranteeUnderFaults) {
    run_seeds(5, 0);
}

TEST(RaftSimTest, MembershipChangesKeepEveryGuaranteeUnderFaults) {
    run_seeds(3, 2);
}

TEST(RaftSimTest, ASeedReplaysToTheSameTraceHash) {
    raft_sim_options o;
    o.seed = 42;
    o.voters = 5;
    o.spares = 1;
    const raft_sim_result a = run_raft_sim(o);
    const raft_sim_result b = run_raft_sim(o);
    ASSERT_TRUE(a.ok) << a.violation;
    EXPECT_EQ(a.trace_hash, b.trace_hash);
    EXPECT_EQ(a.events, b.events);
    EXPECT_EQ(a.acknowledged, b.acknowledged);
    o.seed = 43;
    EXPECT_NE(run_raft_sim(o).trace_hash, a.trace_hash);
}

TEST(RaftSimTest, TheSearchExercisesEveryFault) {
    raft_sim_totals total;
    for (std::uint64_t seed = 1; seed <= census_seeds; ++seed) {
        raft_sim_options o;
        o.seed = seed;
        o.spares = 2;
        const raft_sim_result r = run_raft_sim(o);
        ASSERT_TRUE(r.ok) << r.violation;
        total.add(r);
    }
    // A harness whose faults never fire finds nothing: make sure each one does.
    EXPECT_GT(total.crashes, census_seeds);
    EXPECT_GT(total.snapshots_installed, census_seeds / 2);
    EXPECT_GT(total.elections, census_seeds);
    EXPECT_GT(total.reads, 5 * census_seeds);
    EXPECT_GT(total.member_changes, census_seeds / 4);
    EXPECT_GT(total.transfers, census_seeds / 4);
    EXPECT_GT(total.bit_flips_detected, 0u);
}

}  // namespace
}  // namespace ringmesh::sim
