// Raft groups run by their hosts end to end: three nodes, two groups each, real log stores on
// disk through io_uring, batches over an in-memory network. Elections, replication, a crashed
// node recovered from its disk, a snapshot shipped to a node that was wiped, and bad batches
// refused and counted.
#include "engine/replication/raft_host.h"

#include "engine/node.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

namespace ringmesh::replication {
namespace {

namespace fs = std::filesystem;

constexpr group_id groups[] = {1, 2};

struct node {
    std::unique_ptr<disk_ring> ring;
    std::unique_ptr<raft_host> host;
    std::map<group_id, std::vector<std::uint64_t>> applied;  // command ids, in order
    std::map<group_id, log_index> applied_index;
};

class RaftHostTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char pattern[] = "/tmp/ringmesh-host-XXXXXX";
        ASSERT_NE(::mkdtemp(pattern), nullptr);
        dir_ = pattern;
        auto probe = disk_ring::create();
        if (!probe && probe.err().code == storage_errc::not_supported)
            GTEST_SKIP() << "io_uring is not supported here: " << probe.err().message();
        for (node_id id : {1, 2, 3})
            start(id);
    }
    void TearDown() override {
        nodes_.clear();
        if (!dir_.empty()) fs::remove_all(dir_);
    }

    static time_ns now() { return monotonic_clock::read(); }

    void start(node_id id) {
        node& n = nodes_[id];
        n.host.reset();
        n.applied.clear();
        n.applied_index.clear();
        n.ring = std::move(disk_ring::create()).value();
        raft_host_config hc;
        hc.self = id;
        hc.cluster_id = "test";
        hc.send = [this, id](node_id to, std::span<const std::byte> batch) {
            if (cut_.contains(id) || cut_.contains(to)) return true;  // lost on the way
            wire_.push_back({to, {batch.begin(), batch.end()}});
            return true;
        };
        n.host = std::make_unique<raft_host>(*n.ring, hc);
        for (group_id g : groups) {
            raft_config c;
            c.id = id;
            c.group = g;
            c.initial_members = {{1, 2, 3}, {}};
            c.heartbeat_interval = 20 * ns_per_ms;
            c.election_timeout_min = 150 * ns_per_ms;
            c.election_timeout_max = 300 * ns_per_ms;
            c.snapshot_trailing_entries = 5;
            c.rng_seed = id * 100 + g;
            raft_application app;
            app.apply = [&n, g](const log_entry& e) {
                n.applied_index[g] = e.index;
                if (e.kind != entry_kind::command) return;
                std::uint64_t v = 0;
                std::memcpy(&v, e.data.data(), 8);
                n.applied[g].push_back(v);
            };
            app.restore = [&n, g](const snapshot_meta& meta, std::span<const std::byte> data) {
                n.applied[g].resize(data.size() / 8);
                if (!data.empty()) std::memcpy(n.applied[g].data(), data.data(), data.size());
                n.applied_index[g] = meta.index;
            };
            auto added = n.host->add_group(
                c, {dir_ + "/n" + std::to_string(id) + "-g" + std::to_string(g), 1 << 16}, app,
                now());
            ASSERT_TRUE(added) << added.err().message();
        }
    }

    void step() {
        for (auto& [id, n] : nodes_) {
            if (n.host) n.host->poll(now());
        }
        std::deque<std::pair<node_id, std::vector<std::byte>>> wire = std::move(wire_);
        wire_.clear();
        for (auto& [to, bytes] : wire) {
            node& n = nodes_[to];
            if (n.host) n.host->on_batch(bytes, now());
        }
    }
    // Steps until `done` holds; false after the deadline.
    bool run_until(const std::function<bool()>& done, time_ns limit = 10 * ns_per_s) {
        const time_ns end = now() + limit;
        while (now() < end) {
            step();
            if (done()) return true;
        }
        return false;
    }
    node_id leader_of(group_id g) {
        for (auto& [id, n] : nodes_) {
            if (n.host && n.host->group(g) != nullptr && n.host->group(g)->is_leader()) return id;
        }
        return no_node;
    }
    // Proposes `count` commands to group g's leader, waiting for a leader when needed; their
    // ids are the ones acknowledged when applied on the leader with the same term.
    void propose(group_id g, int count) {
        for (int i = 0; i < count; ++i) {
            ASSERT_TRUE(run_until([&] { return leader_of(g) != no_node; }));
            const std::uint64_t id = ++next_id_;
            std::vector<std::byte> data(8);
            std::memcpy(data.data(), &id, 8);
            propose_result r = nodes_[leader_of(g)].host->group(g)->propose(now(), data);
            if (r.status == raft_status::ok) proposed_[g].push_back(id);
        }
    }
    bool all_applied(group_id g, std::size_t count) {
        for (auto& [id, n] : nodes_) {
            if (n.host && n.applied[g].size() < count) return false;
        }
        return true;
    }

    std::string dir_;
    std::map<node_id, node> nodes_;
    std::deque<std::pair<node_id, std::vector<std::byte>>> wire_;
    std::set<node_id> cut_;
    std::map<group_id, std::vector<std::uint64_t>> proposed_;
    std::uint64_t next_id_ = 0;
};

TEST_F(RaftHostTest, TwoGroupsElectReplicateAndShareBatches) {
    ASSERT_TRUE(run_until([&] { return leader_of(1) != no_node && leader_of(2) != no_node; }));
    propose(1, 50);
    propose(2, 50);
    ASSERT_TRUE(run_until([&] { return all_applied(1, 50) && all_applied(2, 50); }));
    for (auto& [id, n] : nodes_) {
        EXPECT_EQ(n.applied[1], proposed_[1]) << "node " << id;
        EXPECT_EQ(n.applied[2], proposed_[2]) << "node " << id;
    }
    // Both groups' traffic between two nodes travels in shared batches.
    const raft_host_stats& s = nodes_[1].host->stats();
    EXPECT_LT(s.batches_sent, s.messages_sent);
    EXPECT_EQ(s.refused.total(), 0u);
    EXPECT_GT(dynamic_cast<log_store&>(*nodes_[1].host->store(1)).stats().groups, 0u);
}

TEST_F(RaftHostTest, ACrashedNodeRecoversFromItsDiskAndCatchesUp) {
    ASSERT_TRUE(run_until([&] { return leader_of(1) != no_node; }));
    propose(1, 30);
    ASSERT_TRUE(run_until([&] { return all_applied(1, 30); }));
    const node_id victim = leader_of(1) == 3 ? 2 : 3;
    nodes_[victim].host.reset();  // kill -9: what is on disk stays
    cut_.insert(victim);
    propose(1, 30);
    cut_.erase(victim);
    start(victim);  // restarts from its directory
    ASSERT_TRUE(run_until([&] { return all_applied(1, 60); }));
    EXPECT_EQ(nodes_[victim].applied[1], proposed_[1]);
}

TEST_F(RaftHostTest, AWipedNodeIsRebuiltFromALeadersSnapshot) {
    ASSERT_TRUE(run_until([&] { return leader_of(1) != no_node; }));
    propose(1, 40);
    ASSERT_TRUE(run_until([&] { return all_applied(1, 40); }));
    const node_id leader = leader_of(1);
    const node_id victim = leader == 3 ? 2 : 3;
    nodes_[victim].host.reset();
    fs::remove_all(dir_ + "/n" + std::to_string(victim) + "-g1");
    // The leader snapshots its state (the ids applied) and compacts its log behind it.
    node& l = nodes_[leader];
    std::vector<std::byte> state(l.applied[1].size() * 8);
    std::memcpy(state.data(), l.applied[1].data(), state.size());
    l.host->save_snapshot(1, std::move(state), now());
    ASSERT_TRUE(run_until([&] { return l.host->group(1)->log().base_index() > 1; }));
    propose(1, 10);
    start(victim);
    const bool caught_up = run_until([&] { return all_applied(1, 50); });
    ASSERT_TRUE(caught_up);
    EXPECT_EQ(nodes_[victim].applied[1], proposed_[1]);
    EXPECT_EQ(nodes_[victim].host->group(1)->stats().snapshots_installed, 1u);
    EXPECT_EQ(nodes_[leader].host->group(1)->stats().follower_regressions, 1u);
}

TEST_F(RaftHostTest, BadBatchesAreRefusedAndCountedAndReachNoReplica) {
    ASSERT_TRUE(run_until([&] { return leader_of(1) != no_node; }));
    raft_host& h = *nodes_[1].host;
    const term_t term = h.group(1)->term();
    std::vector<std::byte> garbage(100, std::byte{0x33});
    h.on_batch(garbage, now());
    raft_message forged;
    forged.kind = message_kind::vote_request;
    forged.group = 1;
    forged.term = term + 100;
    std::vector<std::byte> other_cluster;
    encode_batch(2, 1, std::vector<raft_message>{forged}, "someone-else", other_cluster);
    h.on_batch(other_cluster, now());
    EXPECT_EQ(h.stats().refused.by_reason[static_cast<std::size_t>(raft_codec_error::malformed)],
              1u);
    EXPECT_EQ(
        h.stats().refused.by_reason[static_cast<std::size_t>(raft_codec_error::wrong_cluster)], 1u);
    EXPECT_EQ(h.group(1)->term(), term) << "a refused batch reached the replica";

    // Well-formed, but node 3 speaking as node 2: the transport bound the connection to 3.
    std::vector<std::byte> impostor;
    encode_batch(2, 1, std::vector<raft_message>{forged}, "test", impostor);
    h.on_batch(impostor, now(), 3);
    EXPECT_EQ(h.stats().impostors, 1u);
    EXPECT_EQ(h.group(1)->term(), term) << "an impostor's batch reached the replica";
}

TEST_F(RaftHostTest, AGroupWhoseMessagesCannotFitTheTransportIsRefused) {
    raft_host_config hc;
    hc.self = 9;
    hc.max_batch_bytes = 64 * 1024;
    raft_host small(hc);
    raft_config c;
    c.id = 9;
    c.group = 1;
    c.initial_members = {{9}, {}};
    c.max_entry_bytes = 128 * 1024;  // one entry would not fit a batch
    auto added = small.add_group(c, std::unique_ptr<raft_storage>{}, {}, now());
    ASSERT_FALSE(added);
    EXPECT_NE(added.err().message().find("max_entry_bytes"), std::string::npos)
        << added.err().message();
}

}  // namespace
}  // namespace ringmesh::replication

namespace ringmesh::replication {
namespace {

// A host attached to a shard that sleeps when idle (block strategy): each proposal is made
// durable by a group commit whose completion must wake the sleeping shard. The replica's only
// timer (its heartbeat) is 900 ms apart, so had the disk ring no way to wake the shard, 60
// proposals in a row would wait about 27 s for it and miss the deadline.
TEST(RaftHostShardTest, GroupCommitsWakeASleepingShard) {
    char pattern[] = "/tmp/ringmesh-shard-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    const std::string dir = pattern;
    {
        std::unique_ptr<disk_ring> ring;
        std::unique_ptr<raft_host> host;
        std::atomic<int> applied{0};
        std::atomic<bool> unsupported{false};
        std::string failure;
        node_config config;
        config.shard_count = 1;
        config.pin_threads = false;
        config.shard.idle.kind = idle_kind::block;
        auto n = ringmesh::node::create(config);
        ASSERT_TRUE(n);
        constexpr int proposals = 60;
        int proposed = 0;
        ASSERT_TRUE((*n)->start([&](shard& s) {
            auto r = disk_ring::create();
            if (!r) {
                unsupported = r.err().code == storage_errc::not_supported;
                failure = r.err().message();
                return;
            }
            ring = std::move(r).value();
            raft_host_config hc;
            hc.self = 1;
            host = std::make_unique<raft_host>(*ring, hc);
            raft_config c;
            c.id = 1;
            c.group = 9;
            c.initial_members = {{1}, {}};
            c.heartbeat_interval = 900 * ns_per_ms;
            c.election_timeout_min = 1000 * ns_per_ms;
            c.election_timeout_max = 1100 * ns_per_ms;
            c.check_quorum = false;
            raft_application app;
            app.apply = [&](const log_entry& e) {
                if (e.kind == entry_kind::command) applied.fetch_add(1);
            };
            auto added = host->add_group(c, {dir + "/g9", 1 << 20}, app, s.now_ns());
            if (!added) {
                failure = added.err().message();
                return;
            }
            host->attach(s);
            // The workload, on the shard: the next proposal once the previous one applied.
            s.add_poller(poll_step::protocol, [&](time_ns now) -> std::size_t {
                raft* replica = host->group(9);
                if (replica == nullptr || !replica->is_leader() || proposed == proposals ||
                    applied.load() < proposed)
                    return 0;
                std::vector<std::byte> data(8, std::byte{1});
                if (replica->propose(now, data).status != raft_status::ok) return 0;
                ++proposed;
                return 1;
            });
            s.on_stop([&] {
                host.reset();
                ring.reset();
            });
        }));
        if (unsupported) {
            (*n)->stop();
            GTEST_SKIP() << "io_uring is not supported here: " << failure;
        }
        ASSERT_TRUE(failure.empty()) << failure;
        const auto until = monotonic_clock::read() + 12 * ns_per_s;
        while (applied.load() < proposals && monotonic_clock::read() < until)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));  // paces the check
        EXPECT_EQ(applied.load(), proposals);
        EXPECT_GT((*n)->stats(0).parks, 0u) << "the shard never slept";
        (*n)->stop();
    }
    fs::remove_all(dir);
}

}  // namespace
}  // namespace ringmesh::replication
