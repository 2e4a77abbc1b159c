// Raft groups on the deterministic simulator: a bounded number of seeds per configuration
// (the long search is build/bench/ringmesh_raft_sim), every Raft guarantee checked after
// every event, and a seed that replays to the same trace hash.
#include "tests/sim/harness/raft_sim.h"

#include <gtest/gtest.h>

namespace ringmesh::sim {
namespace {

// CI runs these many seeds per configuration; each is a few milliseconds to a few tens.
constexpr std::uint64_t seeds_per_configuration = 150;

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
    std::uint64_t crashes = 0, snapshots = 0, elections = 0, reads = 0, changes = 0, transfers = 0;
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
        raft_sim_options o;
        o.seed = seed;
        o.spares = 2;
        const raft_sim_result r = run_raft_sim(o);
        ASSERT_TRUE(r.ok) << r.violation;
        crashes += r.crashes;
        snapshots += r.snapshots_installed;
        elections += r.elections;
        reads += r.reads;
        changes += r.member_changes;
        transfers += r.transfers;
    }
    // A harness whose faults never fire finds nothing: make sure each one does.
    EXPECT_GT(crashes, 20u);
    EXPECT_GT(snapshots, 10u);
    EXPECT_GT(elections, 20u);
    EXPECT_GT(reads, 100u);
    EXPECT_GT(changes, 5u);
    EXPECT_GT(transfers, 5u);
}

}  // namespace
}  // namespace ringmesh::sim
