// The replicated key-value service and replicated topics as processes: ringmesh_node replicas
// on loopback (or each in a network namespace of its own), ringmesh_kvbench clients, faults
// made by the test — kill -9 of the leader again and again, a leader cut off by an nftables
// drop rule and healed, a follower wiped and rebuilt, every node killed and restarted, a
// subscriber killed and restarted. Judged from what the clients were told (their --history)
// against the state read after the run (replication_cluster.h: check_history), and for the
// subscriber from what it recorded against what was acknowledged. Every process is bounded by
// --seconds and ended here by PID.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/process_util.h"
#include "tests/integration/replication_cluster.h"

namespace {

using namespace ringmesh::it;

constexpr int kv_group = 1;
constexpr int topic_group = 2;

/// The load: 8 clients appending to and reading 10 keys, every operation in `history`.
std::vector<std::string> load_args(const replica_cluster& c, double seconds,
                                   const std::string& history, const std::string& finals = {},
                                   int group = kv_group) {
    std::vector<std::string> args = {"--group",          std::to_string(group),
                                     "--clients",        "8",
                                     "--seconds",        std::to_string(seconds),
                                     "--keys",           "10",
                                     "--read-percent",   "30",
                                     "--append-percent", "70",
                                     "--history",        history,
                                     "--deadline-ms",    "10000"};
    if (!finals.empty()) args.insert(args.end(), {"--final-read", finals});
    const auto servers = c.servers();
    args.insert(args.end(), servers.begin(), servers.end());
    return args;
}

/// Reads every key once through a fresh client: the state after the run.
std::map<std::string, std::string> read_back(const replica_cluster& c, const std::string& path,
                                             const std::vector<std::string>& prefix = {},
                                             int group = kv_group) {
    std::vector<std::string> args = {"--group",          std::to_string(group),
                                     "--clients",        "1",
                                     "--seconds",        "0.2",
                                     "--keys",           "10",
                                     "--read-percent",   "100",
                                     "--append-percent", "0",
                                     "--final-read",     path,
                                     "--deadline-ms",    "10000"};
    const auto servers = c.servers();
    args.insert(args.end(), servers.begin(), servers.end());
    process reader = start_kvbench("reader", args, prefix);
    EXPECT_EQ(wait_exit(reader), 0) << output_of(reader);
    return read_finals(path);
}

/// The leaders seen in each term, from repeated looks at the status files.
struct leader_watch {
    std::map<unsigned long long, std::set<std::string>> by_term;
    void look(const replica_cluster& c, int group) {
        for (int i = 0; i < c.size(); ++i) {
            const auto v = c.view(i, group);
            if (v && v->role == "leader") by_term[v->term].insert(c.name(i));
        }
    }
    void expect_one_per_term() const {
        for (const auto& [term, leaders] : by_term)
            EXPECT_EQ(leaders.size(), 1u) << "two leaders in term " << term;
    }
};

// ---- kill -9 of the leader, repeatedly, under load; then every node at once ----

// Nodes, and shards per node (empty: one each). With several, a node runs an endpoint per
// shard, the replicas' sessions spread over them, and its groups spread over the shards too
// (cluster::shard_for_group): the load then goes to group 2, on shard 1 of a 2-shard node,
// beside group 1 on shard 0. Nodes of unequal sizes send each other batches that the
// receiver splits between its shards (cluster::raft_batch_router).
struct cluster_shape {
    int nodes = 3;
    std::vector<int> shards;
    int group() const { return shards.empty() ? kv_group : 2; }
    std::string label() const {
        std::string s;
        for (int n : shards)
            s += std::to_string(n);
        return s;
    }
};

class LeaderKillsTest : public ::testing::TestWithParam<cluster_shape> {};

TEST_P(LeaderKillsTest, AcknowledgedWritesSurviveRepeatedLeaderKillsAndAWholeClusterRestart) {
    if (kvbench_binary.empty()) GTEST_SKIP() << "ringmesh_kvbench was not given (argv[2])";
    const cluster_shape& shape = GetParam();
    const int nodes = shape.nodes;
    const int group = shape.group();
    const int kills = 3;
    replica_cluster_options o;
    o.nodes = nodes;
    o.node_shards = shape.shards;
    if (!shape.shards.empty()) o.extra = {"--group", "1", "--group", "2"};
    replica_cluster c("kills" + std::to_string(nodes) + "x" + shape.label(), o);
    ASSERT_TRUE(c.start_all());
    ASSERT_GE(c.wait_for_leader(group), 0) << "no leader";

    const std::string history = c.dir() + "/history.jsonl";
    process bench = start_kvbench("kvbench", load_args(c, 3 + 4.0 * kills, history, {}, group));
    std::vector<int> victims;
    for (int k = 0; k < kills; ++k) {
        const int victim = c.wait_for_leader(group);
        ASSERT_GE(victim, 0) << "no leader before kill " << k + 1;
        // The fault's timing, not a synchronisation: each kill lands under load.
        std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // paces the fault
        c.kill(victim);
        victims.push_back(victim);
        ASSERT_GE(c.wait_for_leader(group, victim), 0) << "no new leader after kill " << k + 1;
        c.start(victim);  // from its data directory
        ASSERT_TRUE(c.listening(victim));
    }
    ASSERT_EQ(wait_exit(bench), 0) << output_of(bench);
    std::printf("%s", output_of(bench).c_str());
    unsigned long long split = 0;
    if (!shape.shards.empty()) {
        // The node of one shard sends both groups' messages in one batch; the nodes of two
        // split those between their shards. Their status files count it.
        ASSERT_TRUE(c.wait_for([&] {
            split = 0;
            for (int i = 0; i < nodes; ++i)
                split += c.routed_splits(i);
            return split > 0;
        }));
    }

    // Every node killed at once and started again: the state comes back from the disks.
    for (int i = 0; i < nodes; ++i)
        c.kill(i);
    ASSERT_TRUE(c.start_all());
    ASSERT_GE(c.wait_for_leader(group), 0) << "no leader after the whole restart";
    const auto state = read_back(c, c.dir() + "/finals.jsonl", {}, group);
    const history_counts counts = check_history(read_history(history), state);
    EXPECT_GT(counts.appends_acknowledged, 50u);
    EXPECT_GT(counts.reads_checked, 20u);
    c.stop_all();
    std::printf("replication: %d nodes (shards %s), group %d, batches split %llu, leaders killed:",
                nodes, shape.shards.empty() ? "1 each" : shape.label().c_str(), group, split);
    for (int v : victims)
        std::printf(" n%d", v);
    std::printf(
        "; %zu operations, %zu appends acknowledged, %zu reads checked against the state "
        "read after every node was killed and restarted\n",
        counts.operations, counts.appends_acknowledged, counts.reads_checked);
}

INSTANTIATE_TEST_SUITE_P(Nodes, LeaderKillsTest,
                         ::testing::Values(cluster_shape{3, {}}, cluster_shape{5, {}},
                                           cluster_shape{3, {2, 1, 2}}),
                         [](const ::testing::TestParamInfo<cluster_shape>& p) {
                             return std::to_string(p.param.nodes) + "Nodes" +
                                    (p.param.shards.empty() ? ""
                                                            : "Of" + p.param.label() + "Shards");
                         });

// ---- the leader cut off by an nftables drop rule, then healed ----

TEST(ReplicationTest, AnIsolatedLeaderStepsDownAndTheHealLosesNothing) {
    if (kvbench_binary.empty()) GTEST_SKIP() << "ringmesh_kvbench was not given (argv[2])";
    netns_lan lan(4);  // three replicas and the client
    if (const std::string why = lan.setup(); !why.empty()) GTEST_SKIP() << why;
    replica_cluster_options o;
    o.nodes = 3;
    for (int k = 0; k < 3; ++k) {
        o.hosts.push_back(lan.ip(k));
        o.prefixes.push_back(lan.in(k));
    }
    replica_cluster c("isolated", o);
    ASSERT_TRUE(c.start_all());
    const int old_leader = c.wait_for_leader(kv_group);
    ASSERT_GE(old_leader, 0) << "no leader";
    const unsigned long long old_term = c.view(old_leader, kv_group)->term;

    const std::string history = c.dir() + "/history.jsonl";
    std::vector<std::string> args = load_args(c, 14, history);
    args.insert(args.end(), {"--attempt-timeout-ms", "300"});
    process bench = start_kvbench("kvbench", args, lan.in(3));
    leader_watch watch;
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // paces the fault
    ASSERT_TRUE(lan.cut(old_leader));
    // Check-quorum: cut off from every follower, it stops leading; the others elect one.
    int new_leader = -1;
    const bool stepped_down = c.wait_for([&] {
        watch.look(c, kv_group);
        const auto v = c.view(old_leader, kv_group);
        new_leader = c.leader(kv_group);
        return v && v->role != "leader" && new_leader >= 0 && new_leader != old_leader;
    });
    EXPECT_TRUE(stepped_down) << "the cut-off leader n" << old_leader
                              << " did not step down, or no other leader was elected";
    // Writes go on through the new leader for a while, the old one still cut off.
    c.wait_for(
        [&] {
            watch.look(c, kv_group);
            return false;
        },
        2);  // paces the partition
    ASSERT_TRUE(lan.heal(old_leader));
    const bool rejoined = c.wait_for([&] {
        watch.look(c, kv_group);
        const auto v = c.view(old_leader, kv_group);
        const int l = c.leader(kv_group);
        return v && v->role == "follower" && l >= 0 && v->leader == c.name(l);
    });
    EXPECT_TRUE(rejoined) << "n" << old_leader << " did not follow after the heal";
    ASSERT_EQ(wait_exit(bench), 0) << output_of(bench);
    std::printf("%s", output_of(bench).c_str());
    watch.look(c, kv_group);
    watch.expect_one_per_term();
    EXPECT_GT(c.view(c.leader(kv_group), kv_group)->term, old_term);

    const auto state = read_back(c, c.dir() + "/finals.jsonl", lan.in(3));
    const history_counts counts = check_history(read_history(history), state);
    EXPECT_GT(counts.appends_acknowledged, 50u);
    c.stop_all();
    std::printf(
        "replication: leader n%d cut off in term %llu, stepped down; %zu terms seen with one "
        "leader each; %zu appends acknowledged, %zu reads checked\n",
        old_leader, old_term, watch.by_term.size(), counts.appends_acknowledged,
        counts.reads_checked);
}

// ---- a follower wiped and rebuilt from the leader's snapshot, under load ----

TEST(ReplicationTest, AWipedFollowerCatchesUpBySnapshotUnderLoad) {
    if (kvbench_binary.empty()) GTEST_SKIP() << "ringmesh_kvbench was not given (argv[2])";
    replica_cluster_options o;
    o.config = temp_dir() + "/snapshot-often.toml";
    {
        // Snapshots every 100 entries, so the log behind them is compacted away and a wiped
        // replica can only come back through a snapshot.
        std::ofstream cfg(o.config);
        cfg << "[replication]\nsnapshot_every = 100\n";
    }
    replica_cluster c("wiped", o);
    ASSERT_TRUE(c.start_all());
    const int leader = c.wait_for_leader(kv_group);
    ASSERT_GE(leader, 0) << "no leader";
    const int wiped = (leader + 1) % c.size();

    const std::string history = c.dir() + "/history.jsonl";
    process bench = start_kvbench("kvbench", load_args(c, 8, history));
    ASSERT_TRUE(c.kill_and_restart(wiped, 2000, /*wipe_it=*/true));
    ASSERT_EQ(wait_exit(bench), 0) << output_of(bench);

    // It holds everything the group committed.
    const unsigned long long commit = c.wait_caught_up(wiped, kv_group);
    EXPECT_GT(commit, 0u) << "the wiped follower did not catch up";
    const auto state = read_back(c, c.dir() + "/finals.jsonl");
    const history_counts counts = check_history(read_history(history), state);
    EXPECT_GT(counts.appends_acknowledged, 50u);
    c.stop_all();
    const std::string report = output_of(c.node(wiped));
    std::smatch m;
    ASSERT_TRUE(std::regex_search(
        report, m, std::regex(R"(group 1: .* snapshots (\d+) saved (\d+) restored)")))
        << report;
    EXPECT_GE(std::stoi(m[2]), 1) << "the wiped follower did not restore a snapshot: " << report;
    std::printf("replication: n%d wiped under load, rebuilt from %s snapshot(s) to index %llu\n",
                wiped, m[2].str().c_str(), commit);
}

// ---- a subscriber killed and restarted resumes from its offset ----

TEST(ReplicationTest, ASubscriberKilledAndRestartedResumesWithoutGapOrDuplicate) {
    if (kvbench_binary.empty()) GTEST_SKIP() << "ringmesh_kvbench was not given (argv[2])";
    replica_cluster_options o;
    o.extra = {"--topic-group", std::to_string(topic_group)};
    replica_cluster c("resume", o);
    const int subscriber = 2;
    const std::string received = c.dir() + "/received.txt";
    c.set_extra(subscriber, {"--replicated-subscribe", "it/**", "--replicated-resume", received});
    ASSERT_TRUE(c.start_all());
    ASSERT_GE(c.wait_for_leader(topic_group), 0) << "no leader";

    const std::string history = c.dir() + "/publishes.jsonl";
    std::vector<std::string> args = {"--publish-topic", "it/orders", "--clients", "4",
                                     "--seconds",       "8",         "--history", history,
                                     "--deadline-ms",   "10000"};
    const auto servers = c.servers();
    args.insert(args.end(), servers.begin(), servers.end());
    process bench = start_kvbench("publisher", args);
    ASSERT_TRUE(c.kill_and_restart(subscriber, 2500));
    ASSERT_EQ(wait_exit(bench), 0) << output_of(bench);
    EXPECT_GT(c.wait_caught_up(subscriber, topic_group), 0u) << "the subscriber did not catch up";
    c.stop_all();

    // What the subscriber recorded, across its kill: offsets rising, each payload once.
    std::map<std::string, int> seen;
    unsigned long long last = 0;
    std::size_t lines = 0;
    std::ifstream in(received);
    for (std::string line; std::getline(in, line);) {
        const std::size_t a = line.find(' '), b = line.find(' ', a + 1);
        ASSERT_NE(b, std::string::npos) << "a cut-short line in the middle: " << line;
        const unsigned long long offset = std::stoull(line.substr(0, a));
        EXPECT_GT(offset, last) << "offset " << offset << " after " << last;
        last = offset;
        EXPECT_EQ(line.substr(a + 1, b - a - 1), "it/orders");
        ++seen[line.substr(b + 1)];
        ++lines;
    }
    std::size_t acked = 0;
    for (const history_op& p : read_history(history)) {
        const int times = seen.count(p.value) ? seen[p.value] : 0;
        if (p.status == "ok") {
            ++acked;
            EXPECT_EQ(times, 1) << "acknowledged publish " << p.value << " received " << times;
        } else if (p.status == "fail") {
            EXPECT_EQ(times, 0) << "failed publish " << p.value << " was received";
        } else {
            EXPECT_LE(times, 1) << "publish " << p.value << " received twice";
        }
    }
    for (const auto& [payload, times] : seen)
        EXPECT_EQ(times, 1) << payload << " received " << times << " times";
    EXPECT_GT(acked, 100u);
    std::printf(
        "replication: subscriber n%d killed and restarted; %zu deliveries recorded up to offset "
        "%llu, every one of %zu acknowledged publishes exactly once\n",
        subscriber, lines, last, acked);
}

}  // namespace

int main(int argc, char** argv) {
    return run_with_node_binary(argc, argv);
}
