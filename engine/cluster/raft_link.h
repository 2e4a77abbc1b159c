// Where replication meets messaging: a raft_host's batches travel over the node's messaging
// (a service_port: an endpoint, or shard_messaging when other shards hold the sessions) on
// its priority lane (send_replication), ahead of bulk data on the same connections, and the
// batches peers send reach the host with the peer the endpoint's handshake bound them to.
//
// Raft names replicas by number (node_id); messaging names peers by their node name. The
// link's directory maps one to the other, both ways, and is the only place they meet: a
// batch from a peer the directory does not know is refused (counted), and one whose
// claimed sender is not the peer it came from is refused by the host (raft_host_stats::
// impostors), so one peer cannot speak for another.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/messaging/endpoint.h"
#include "engine/replication/raft_host.h"

namespace ringmesh::cluster {

/// One replica's number and the name its node has in messaging (endpoint_config::node_id).
struct raft_peer {
    replication::node_id id = replication::no_node;
    std::string name;
};

struct raft_link_stats {
    std::uint64_t unknown_destination = 0;  ///< a batch for a replica not in the directory
    std::uint64_t unreachable = 0;          ///< the peer was not connected: dropped
    std::uint64_t back_pressure = 0;        ///< the priority lane was full: dropped
    std::uint64_t too_large = 0;            ///< over the lane's limit to that peer: dropped
    std::uint64_t unknown_sender = 0;       ///< a batch from a peer not in the directory
};

/// Owned by the shard that owns both the endpoint and the host; every call from its thread.
/// Create the link, build the host with link.host_config(...), then link.attach(host).
class raft_link {
  public:
    /// `directory`: every replica this node's groups may talk to (this node included).
    raft_link(messaging::service_port& endpoint, std::vector<raft_peer> directory);
    ~raft_link();
    raft_link(const raft_link&) = delete;
    raft_link& operator=(const raft_link&) = delete;

    /// `base` with its send function and batch limit set to this link's.
    replication::raft_host_config host_config(replication::raft_host_config base);
    /// Inbound batches reach `host` from now on (until the link is destroyed).
    void attach(replication::raft_host& host);

    /// The directory's entries.
    const std::string* name_of(replication::node_id id) const;
    replication::node_id id_of(std::string_view name) const;

    const raft_link_stats& stats() const noexcept { return stats_; }

  private:
    bool send(replication::node_id to, std::span<const std::byte> batch);

    messaging::service_port& endpoint_;
    std::map<replication::node_id, std::string> names_;
    std::map<std::string, replication::node_id, std::less<>> ids_;
    replication::raft_host* host_ = nullptr;
    raft_link_stats stats_;
};

}  // namespace ringmesh::cluster
