// Raft as a node runs it, on the real stack: three nodes, each a shard with a messaging
// endpoint on io_uring TCP loopback, a disk ring and log stores on a real directory, a
// raft_host running two groups and a raft_link between them. All shards are stepped from the
// test thread (one loop iteration each in turn), on the monotonic clock. A leader is killed
// (its objects destroyed, as kill -9 leaves its disk), the groups go on, and it comes back
// from its disk on the same address and catches up.
#include "engine/cluster/raft_link.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/clock.h"
#include "engine/replication/disk_ring.h"
#include "engine/replication/log_store.h"
#include "transport/uring/uring_transport.h"

namespace ringmesh::cluster {
namespace {

namespace fs = std::filesystem;
using replication::group_id;
using replication::log_entry;
using replication::no_node;
using replication::node_id;

constexpr int node_count = 3;
constexpr group_id groups[] = {1, 2};

struct node {
    std::unique_ptr<replication::disk_ring> ring;
    std::unique_ptr<messaging::endpoint> endpoint;
    std::unique_ptr<raft_link> link;
    std::unique_ptr<replication::raft_host> host;
    std::string address;  // kept across restarts: peers redial it
    std::map<group_id, std::vector<std::uint64_t>> applied;  // command ids, in order
};

class RaftLinkTest : public ::testing::Test {
  protected:
    void SetUp() override {
        auto probe = replication::disk_ring::create();
        if (!probe && probe.err().code == replication::storage_errc::not_supported)
            GTEST_SKIP() << "io_uring is not supported here: " << probe.err().message();
        char pattern[] = "/tmp/ringmesh-link-XXXXXX";
        ASSERT_NE(::mkdtemp(pattern), nullptr);
        dir_ = pattern;
        mesh_ = std::make_unique<ring_mesh>(node_count, 64);
        shard_config sc;
        sc.buffer_count = 64;
        for (int i = 0; i < node_count; ++i) {
            shards_.push_back(
                std::move(shard::create(static_cast<shard_id>(i), *mesh_, clock_, sc)).value());
        }
        for (int i = 0; i < node_count; ++i)
            start(i);
    }
    void TearDown() override {
        for (int i = 0; i < static_cast<int>(nodes_.size()); ++i)
            stop(i);
        if (!dir_.empty()) fs::remove_all(dir_);
    }

    static std::string name(int i) { return "n" + std::to_string(i); }

    template <typename Fn>
    auto on(int i, Fn&& fn) {
        detail::bind_thread_to_shard(shards_[static_cast<std::size_t>(i)].get());
        struct unbind {
            ~unbind() { detail::bind_thread_to_shard(nullptr); }
        } guard;
        return fn();
    }

    void start(int i) {
        node& n = nodes_[i];
        on(i, [&] {
            const auto id = static_cast<shard_id>(i);
            auto t = transport::uring_transport::create(transport::uring_config{}, id);
            ASSERT_TRUE(t) << t.err().message();
            auto* uring = t.value().get();
            messaging::endpoint_config ec;
            ec.cluster_id = "test";
            ec.node_id = name(i);
            ec.listen = *transport::address::parse(n.address.empty() ? "127.0.0.1:0" : n.address);
            ec.random_seed = static_cast<std::uint64_t>(++starts_);
            for (int j = 0; j < i; ++j)
                ec.peers.push_back(*transport::address::parse(nodes_[j].address));
            auto e = messaging::endpoint::create(*shards_[static_cast<std::size_t>(i)],
                                                 std::move(t).value(), std::move(ec));
            ASSERT_TRUE(e) << e.err().message();
            n.endpoint = std::move(e).value();
            n.address = uring->listen_address().to_string();
            std::vector<raft_peer> directory;
            for (int j = 0; j < node_count; ++j)
                directory.push_back({static_cast<node_id>(j + 1), name(j)});
            n.link = std::make_unique<raft_link>(*n.endpoint, directory);
            n.ring = std::move(replication::disk_ring::create()).value();
            replication::raft_host_config hc;
            hc.self = static_cast<node_id>(i + 1);
            hc.cluster_id = "test";
            n.host = std::make_unique<replication::raft_host>(*n.ring, n.link->host_config(hc));
            n.link->attach(*n.host);
            n.applied.clear();
            for (group_id g : groups) {
                replication::raft_config c;
                c.id = static_cast<node_id>(i + 1);
                c.group = g;
                c.initial_members = {{1, 2, 3}, {}};
                c.heartbeat_interval = 20 * ns_per_ms;
                c.election_timeout_min = 150 * ns_per_ms;
                c.election_timeout_max = 300 * ns_per_ms;
                c.rng_seed = static_cast<std::uint64_t>(starts_ * 100 + g);
                replication::raft_application app;
                app.apply = [&n, g](const log_entry& entry) {
                    if (entry.kind != replication::entry_kind::command) return;
                    std::uint64_t v = 0;
                    std::memcpy(&v, entry.data.data(), 8);
                    n.applied[g].push_back(v);
                };
                auto added =
                    n.host->add_group(c, {dir_ + "/" + name(i) + "-g" + std::to_string(g), 1 << 20},
                                      app, clock_.now_ns());
                ASSERT_TRUE(added) << added.err().message();
            }
            n.host->attach(*shards_[static_cast<std::size_t>(i)]);
        });
    }

    // kill -9: everything of the process goes; its directory stays.
    void stop(int i) {
        node& n = nodes_[i];
        on(i, [&] {
            n.host.reset();
            n.link.reset();
            n.endpoint.reset();
            n.ring.reset();
        });
    }

    void step() {
        for (int i = 0; i < node_count; ++i) {
            if (nodes_[i].host)
                on(i, [&] { return shards_[static_cast<std::size_t>(i)]->run_once(); });
        }
    }
    bool run_until(const std::function<bool()>& done, time_ns limit = 20 * ns_per_s) {
        const time_ns end = clock_.now_ns() + limit;
        while (clock_.now_ns() < end) {
            step();
            if (done()) return true;
        }
        return false;
    }
    int leader_of(group_id g) {
        for (int i = 0; i < node_count; ++i) {
            node& n = nodes_[i];
            if (n.host && n.host->group(g) != nullptr && n.host->group(g)->is_leader()) return i;
        }
        return -1;
    }
    // Proposes `count` commands to group g's leader, one at a time, each until acknowledged
    // (applied on its leader).
    void propose(group_id g, int count) {
        for (int k = 0; k < count; ++k) {
            const std::uint64_t id = ++next_id_;
            bool done = false;
            while (!done) {
                ASSERT_TRUE(run_until([&] { return leader_of(g) >= 0; }));
                const int l = leader_of(g);
                std::vector<std::byte> data(8);
                std::memcpy(data.data(), &id, 8);
                const auto r =
                    on(l, [&] { return nodes_[l].host->group(g)->propose(clock_.now_ns(), data); });
                if (r.status != replication::raft_status::ok) {
                    step();
                    continue;
                }
                auto applied_on_leader = [&] {
                    const auto& a = nodes_[l].applied[g];
                    return std::find(a.begin(), a.end(), id) != a.end();
                };
                done = run_until([&] { return applied_on_leader() || leader_of(g) != l; },
                                 5 * ns_per_s) &&
                       applied_on_leader();
            }
            acknowledged_[g].push_back(id);
        }
    }
    bool all_applied(group_id g) {
        for (auto& [i, n] : nodes_) {
            if (n.applied[g].size() < acknowledged_[g].size()) return false;
        }
        return true;
    }
    // Every node applied every acknowledged command, once, in the order acknowledged.
    void expect_all_applied_in_order() {
        for (group_id g : groups) {
            ASSERT_TRUE(run_until([&] { return all_applied(g); })) << "group " << g;
            for (auto& [i, n] : nodes_)
                EXPECT_EQ(n.applied[g], acknowledged_[g]) << "node " << i << " group " << g;
        }
    }

    std::string dir_;
    monotonic_clock clock_;
    std::unique_ptr<ring_mesh> mesh_;
    std::vector<std::unique_ptr<shard>> shards_;
    std::map<int, node> nodes_;
    std::map<group_id, std::vector<std::uint64_t>> acknowledged_;
    std::uint64_t next_id_ = 0;
    int starts_ = 0;
};

TEST_F(RaftLinkTest, GroupsReplicateOverTheEndpointAndSurviveALeadersKill) {
    for (group_id g : groups)
        propose(g, 40);
    expect_all_applied_in_order();
    for (auto& [i, n] : nodes_) {
        EXPECT_GT(n.endpoint->stats().replication_received, 0u) << "node " << i;
        EXPECT_EQ(n.host->stats().refused.total(), 0u);
        EXPECT_EQ(n.host->stats().impostors, 0u);
        EXPECT_EQ(n.link->stats().unknown_sender, 0u);
    }

    // Kill group 1's leader; both groups go on with the two that remain.
    const int victim = leader_of(1);
    ASSERT_GE(victim, 0);
    stop(victim);
    for (group_id g : groups)
        propose(g, 20);
    EXPECT_NE(leader_of(1), victim);

    // It comes back from its disk on the same address and catches up.
    start(victim);
    for (group_id g : groups)
        propose(g, 10);
    expect_all_applied_in_order();
}

}  // namespace
}  // namespace ringmesh::cluster
