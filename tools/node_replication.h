// The daemon's replication ([replication]): its Raft groups on shard 0, next to the
// messaging endpoint they talk through (raft_link, the priority lane), their logs in
// log_stores under replication.dir on the shard's disk ring, each group serving the
// replicated key-value service. Created, used and destroyed on shard 0.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "engine/cluster/raft_link.h"
#include "engine/kv/kv_service.h"
#include "engine/replication/disk_ring.h"
#include "engine/replication/raft_host.h"
#include "tools/node_config.h"

namespace ringmesh::tools {

class node_replication {
  public:
    /// Opens (recovering) every group's log and starts the groups on `s`.
    static result<std::unique_ptr<node_replication>> start(shard& s, messaging::endpoint& e,
                                                           const std::string& cluster_id,
                                                           const replication_settings& settings);
    ~node_replication();
    node_replication(const node_replication&) = delete;
    node_replication& operator=(const node_replication&) = delete;

    /// The status file's replication block: per group its leader, term, commit and applied
    /// index, and on the leader each follower's match index and lag.
    void write_status(std::FILE* f) const;
    /// The exit report's lines.
    void report(const std::string& self) const;

  private:
    node_replication() = default;
    const std::string& name_of(replication::node_id id) const;

    std::unique_ptr<replication::disk_ring> ring_;
    std::unique_ptr<cluster::raft_link> link_;
    std::unique_ptr<replication::raft_host> host_;
    std::vector<std::unique_ptr<kv::kv_service>> services_;  // one per group, in group order
    std::vector<replication::group_id> groups_;
};

}  // namespace ringmesh::tools
