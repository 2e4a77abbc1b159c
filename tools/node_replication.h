// The daemon's replication ([replication]): its Raft groups on shard 0, talking through
// shard 0's messaging API (raft_link, the priority lane; shard_messaging passes what is for
// replicas held by other shards through them), their logs in
// log_stores under replication.dir on the shard's disk ring, each group serving the
// replicated key-value service, or (replication.topic_group) replicated topics. With
// --replicated-subscribe the node also reads the topics from offset 1 and reports what it
// received: count, order, duplicates (with --replicated-resume, into a file it resumes from
// after a restart). Created, used and destroyed on shard 0.
#pragma once

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/cluster/raft_link.h"
#include "engine/kv/kv_service.h"
#include "engine/metrics/metric_sink.h"
#include "engine/replication/disk_ring.h"
#include "engine/replication/raft_host.h"
#include "engine/topics/topic_service.h"
#include "tools/node_config.h"

namespace ringmesh::tools {

class node_replication {
  public:
    /// Opens (recovering) every group's log and starts the groups on `s`.
    static result<std::unique_ptr<node_replication>> start(shard& s, messaging::service_port& e,
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
    /// Per group (label group="N"): term, commit/applied/last index, leadership, elections,
    /// and the log's group commits (fsync latency); the host's batches.
    void write_metrics(metrics::metric_sink& sink) const;
    /// Empty when every group has a leader; otherwise why not ("no_leader_group_N").
    std::string not_ready_reason() const;

    /// Reads the replicated topics matching `pattern` from offset 1, counting what arrives
    /// (false without a topic group, or for a bad pattern). With a `resume_file`, every
    /// delivery is appended to it ("offset topic payload" lines) and reading starts after
    /// the last offset it records: a subscriber that resumes where it stopped.
    bool subscribe(const std::string& pattern, const std::string& resume_file = {});

  private:
    struct group {
        replication::group_id id = 0;
        std::unique_ptr<kv::kv_service> kv;             // a key-value group, or
        std::unique_ptr<topics::topic_service> topics;  // the topic group
    };
    struct subscriber_tally {
        std::string pattern;
        std::uint64_t received = 0, out_of_order = 0;
        topics::log_index first = 0, last = 0;
        topics::log_index truncated_to = 0;
        int resume_fd = -1;  // the resume file, appended to per delivery

        subscriber_tally() = default;
        ~subscriber_tally();
        subscriber_tally(const subscriber_tally&) = delete;
        subscriber_tally& operator=(const subscriber_tally&) = delete;
        void record(const topics::delivery& d) const;
    };

    node_replication() = default;
    const std::string& name_of(replication::node_id id) const;
    topics::topic_service* topic_service() const;

    std::unique_ptr<replication::disk_ring> ring_;
    std::unique_ptr<cluster::raft_link> link_;
    std::unique_ptr<replication::raft_host> host_;
    std::vector<group> groups_;                // in id order
    std::unique_ptr<subscriber_tally> tally_;  // with --replicated-subscribe
};

}  // namespace ringmesh::tools
