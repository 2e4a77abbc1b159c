// Nodes that run Raft groups as a node does, on simulated shards: each a messaging endpoint
// on the sim network, a raft_link and a raft_host whose groups keep their logs on simulated
// disks (sim_raft_storage.h) that survive the node's crashes. Shared by the Raft cluster
// simulation and the key-value service simulation; the caller adds the groups and their
// applications (add_groups), and owns what is checked.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/cluster/raft_link.h"
#include "engine/messaging/endpoint.h"
#include "engine/replication/raft_host.h"
#include "tests/sim/harness/sim_raft_storage.h"
#include "tests/sim/harness/sim_shards.h"

namespace ringmesh::sim {

struct sim_raft_node {
    bool up = false;
    std::unique_ptr<messaging::endpoint> endpoint;
    std::unique_ptr<cluster::raft_link> link;
    std::unique_ptr<replication::raft_host> host;
    /// What the caller's setup ran above the groups (services): destroyed after the host
    /// (no more callbacks into them) and before the link and the endpoint they use.
    std::vector<std::shared_ptr<void>> services;
    std::map<replication::group_id, sim_disk> disks;  // the platter: survives crashes
    int starts = 0;
    std::uint64_t run_seed = 0;  // this process's: a new one on every start
};

/// Every call from the test thread; node i lives on shard i of `shards`.
class sim_raft_nodes {
  public:
    /// Called by start(i) with the node's shard bound, after its host exists and before it
    /// is attached: add the groups (storage(i, g) gives each its disk) and their services.
    using setup_fn = std::function<void(int i, sim_raft_node& n)>;

    /// `count` Raft nodes on shards 0..count-1 (the shards may hold more, e.g. clients).
    sim_raft_nodes(sim_shards& shards, int count, bool datagrams, std::uint64_t seed,
                   std::mt19937_64& rng)
        : shards_(shards),
          datagrams_(datagrams),
          seed_(seed),
          rng_(rng),
          nodes_(static_cast<std::size_t>(count)) {}
    ~sim_raft_nodes() {
        for (int i = 0; i < size(); ++i)
            stop(i);
    }

    static std::string address(int i) { return "10.0.1." + std::to_string(i + 1) + ":7000"; }
    static std::string name(int i) { return "n" + std::to_string(i); }

    int size() const { return static_cast<int>(nodes_.size()); }
    sim_raft_node& at(int i) { return nodes_[static_cast<std::size_t>(i)]; }
    bool up(int i) const { return nodes_[static_cast<std::size_t>(i)].up; }

    /// Starts node i (again: a new process, its disks as the last crash left them). Returns
    /// an error message, empty on success.
    std::string start(int i, const setup_fn& setup) {
        sim_raft_node& n = at(i);
        ++n.starts;
        n.run_seed = seed_ * 1'000'003 + static_cast<std::uint64_t>(i) * 7919 +
                     static_cast<std::uint64_t>(n.starts);
        std::string error;
        shards_.on(i, [&] {
            messaging::endpoint_config ec;
            ec.cluster_id = "sim";
            ec.node_id = name(i);
            ec.listen = *transport::address::parse(address(i));
            ec.random_seed = n.run_seed;
            for (int j = 0; j < size(); ++j) {
                if (j == i) continue;
                if (datagrams_) {
                    ec.datagram_peers.push_back(*transport::address::parse(address(j)));
                } else if (j < i) {
                    ec.peers.push_back(*transport::address::parse(address(j)));
                }
            }
            auto e = messaging::endpoint::create(
                shards_.at(i), shards_.net().make_transport(address(i), static_cast<shard_id>(i)),
                std::move(ec));
            if (!e) {
                error = "endpoint: " + e.err().message();
                return 0;
            }
            n.endpoint = std::move(e).value();
            std::vector<cluster::raft_peer> directory;
            for (int j = 0; j < size(); ++j)
                directory.push_back({static_cast<replication::node_id>(j + 1), name(j)});
            n.link = std::make_unique<cluster::raft_link>(*n.endpoint, directory);
            replication::raft_host_config hc;
            hc.self = static_cast<replication::node_id>(i + 1);
            hc.cluster_id = "sim";
            hc = n.link->host_config(hc);
            // One datagram per batch: (1472 - header) rounded down to 8.
            if (datagrams_) hc.max_batch_bytes = 1440;
            n.host = std::make_unique<replication::raft_host>(hc);
            n.link->attach(*n.host);
            setup(i, n);
            n.host->attach(shards_.at(i));
            n.up = true;
            return 0;
        });
        return error;
    }

    /// A replica's Raft settings for node i, group g: every node of the set a voter, and
    /// message sizes that fit one datagram on datagram links.
    replication::raft_config group_config(int i, replication::group_id g) const {
        replication::raft_config c;
        c.id = static_cast<replication::node_id>(i + 1);
        c.group = g;
        for (int j = 0; j < size(); ++j)
            c.initial_members.voters.push_back(static_cast<replication::node_id>(j + 1));
        c.rng_seed = nodes_[static_cast<std::size_t>(i)].run_seed * 31 + g;
        c.snapshot_trailing_entries = 16;
        if (datagrams_) {
            c.max_append_entries = 8;
            c.max_append_bytes = 256;
            c.max_entry_bytes = 128;
            c.snapshot_chunk_bytes = 512;
        }
        return c;
    }

    /// Group g's storage on node i: its disk, with group commits of seeded latency.
    std::unique_ptr<sim_raft_storage> storage(int i, replication::group_id g) {
        return std::make_unique<sim_raft_storage>(shards_.at(i), at(i).disks[g], rng_,
                                                  100 * ns_per_us, 3 * ns_per_ms);
    }

    /// kill -9: the process is gone; its disks keep what was synced (and, torn, a prefix of
    /// what was not).
    void crash(int i, bool torn) {
        stop(i);
        for (auto& [g, disk] : at(i).disks)
            crash_disk(disk, torn, rng_);
    }

    /// The process goes (its objects destroyed on its shard); the disks stay as they are.
    void stop(int i) {
        sim_raft_node& n = at(i);
        if (!n.up) return;
        shards_.on(i, [&] {
            n.host.reset();
            n.services.clear();
            n.link.reset();
            n.endpoint.reset();
            return 0;
        });
        n.up = false;
    }

  private:
    sim_shards& shards_;
    bool datagrams_;
    std::uint64_t seed_;
    std::mt19937_64& rng_;
    std::vector<sim_raft_node> nodes_;
};

}  // namespace ringmesh::sim
