// The daemon's replication ([replication]): its Raft groups, spread over the node's shards by
// cluster::shard_for_group (engine/cluster/raft_placement.h). Each shard with groups runs a
// node_replication: a raft_host on the shard's own disk ring, talking through the shard's
// messaging API (raft_link, the priority lane; shard_messaging passes what is for replicas
// held by other shards through them), the groups' logs in log_stores under replication.dir,
// each group serving the replicated key-value service, or (replication.topic_group)
// replicated topics. With --replicated-subscribe the shard holding the topic group also reads
// the topics from offset 1 and reports what it received: count, order, duplicates (with
// --replicated-resume, into a file it resumes from after a restart). Created, used and
// destroyed on its shard; what the rest of the node reads of it (the status file, /readyz)
// goes through a replication_board.
#pragma once

#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/cluster/raft_link.h"
#include "engine/cluster/raft_placement.h"
#include "engine/kv/kv_service.h"
#include "engine/metrics/metric_sink.h"
#include "engine/replication/disk_ring.h"
#include "engine/replication/raft_host.h"
#include "engine/topics/topic_service.h"
#include "tools/node_config.h"

namespace ringmesh::tools {

/// What each shard's replication shows the rest of the node: its groups' status lines and
/// whether each has a leader, published by the shard itself (node_replication::publish) and
/// read by shard 0 for the status file and the readiness gauge. Any thread.
class replication_board {
  public:
    explicit replication_board(unsigned shard_count) : shards_(shard_count) {}

    void publish(shard_id shard, std::size_t groups, std::string status_lines,
                 std::string not_ready);
    /// The status file's replication block: a header, then every shard's group lines.
    void write_status(std::FILE* f) const;
    /// Empty when every published group has a leader (and every shard with groups has
    /// published); otherwise the first reason ("no_leader_group_N").
    std::string not_ready_reason() const;
    /// Shard `shard` runs groups: readiness waits for its first publication.
    void expect(shard_id shard);

  private:
    struct entry {
        bool expected = false, published = false;
        std::size_t groups = 0;
        std::string status_lines, not_ready;
    };
    mutable std::mutex mutex_;
    std::vector<entry> shards_;
};

class node_replication {
  public:
    /// Opens (recovering) the logs of the groups placed on `s` (of the node's `shard_count`)
    /// and starts them there; null when no group is placed on `s`.
    static result<std::unique_ptr<node_replication>> start(shard& s, messaging::service_port& e,
                                                           const std::string& cluster_id,
                                                           const replication_settings& settings,
                                                           unsigned shard_count);
    /// This node's replica id: the replica whose name is `node_name` (no_node: none is).
    static replication::node_id self_id(const replication_settings& settings,
                                        std::string_view node_name);
    /// Whether the topic group runs here.
    bool has_topic_group() const { return topic_service() != nullptr; }
    ~node_replication();
    node_replication(const node_replication&) = delete;
    node_replication& operator=(const node_replication&) = delete;

    /// Renders this shard's part of the status file and its readiness onto `board`, now and
    /// every `every` ns from then on (timers on this shard, until it is destroyed); with the
    /// shard's router (which outlives this), a line of the batches it routed.
    void publish(replication_board& board, time_ns every,
                 const cluster::raft_batch_router* router = nullptr);
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
    /// Per group: its leader, term, commit and applied index, and on the leader each
    /// follower's match index and lag.
    void write_status(std::FILE* f) const;
    const std::string& name_of(replication::node_id id) const;
    topics::topic_service* topic_service() const;

    std::unique_ptr<replication::disk_ring> ring_;
    std::unique_ptr<cluster::raft_link> link_;
    std::unique_ptr<replication::raft_host> host_;
    std::vector<group> groups_;                // in id order
    std::unique_ptr<subscriber_tally> tally_;  // with --replicated-subscribe
    shard* shard_ = nullptr;
    timer_id publish_timer_{};
};

}  // namespace ringmesh::tools
