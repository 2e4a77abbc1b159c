// The replicated key-value service on one node: one Raft group's state machine (kv_state),
// served to clients over the endpoint's RPC ("kv" by default: a KvCommand in, a KvReply out).
//
//   - A write (put, append, cas, delete) reaching the group's leader is proposed as is; its
//     reply leaves once the entry is applied at the index and term it was given, with what
//     the state machine answered. An entry applied there with another term was lost with a
//     leader: Unavailable, and the client's retry (same client and sequence) applies at most
//     once. Writes never answer before they are committed.
//   - A get is linearizable: a read index round, answered once the state machine has applied
//     that index; with lease_read set (and allowed), under the leader's lease instead.
//   - On a follower, or a leader that cannot serve now: NotLeader naming the leader when it
//     is known, Unavailable when not. Bad commands: BadRequest or TooLarge, nothing proposed.
//   - The service snapshots the state every snapshot_every applied entries (or every size()
//     entries when it holds more keys: a snapshot copies them all); a follower far behind
//     receives it through Raft and restores it.
//
// The plumbing every group service shares (application, attach, snapshots, the leader's
// name) is cluster::group_service's. Owned by the shard that runs the endpoint and the
// group's raft_host; every call from it. Create it, add the group with application(), then
// attach().
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/cluster/group_service.h"
#include "engine/cluster/pending_proposals.h"
#include "engine/cluster/raft_link.h"
#include "engine/kv/kv_state.h"
#include "engine/messaging/endpoint.h"
#include "engine/replication/raft_host.h"

namespace ringmesh::kv {

/// The RPC method a node serves key-value group `group` at: "kv" for group 1, "kv/G" for
/// the others (the daemon's rule, which clients follow).
inline std::string method_of_group(replication::group_id group) {
    return group == 1 ? std::string("kv") : "kv/" + std::to_string(group);
}

struct kv_service_config {
    replication::group_id group = 1;
    std::string method = "kv";
    kv_limits limits;
    /// Applied entries between two snapshots of the state.
    replication::log_index snapshot_every = 10'000;
    /// Whether a get may ask for a lease read (raft_config::lease_clock_drift is its bound).
    bool allow_lease_reads = true;
};

struct kv_service_stats {
    std::uint64_t requests = 0;
    std::uint64_t writes_proposed = 0, writes_answered = 0, writes_lost = 0;
    std::uint64_t reads_index = 0, reads_lease = 0, reads_answered = 0, reads_failed = 0;
    std::uint64_t not_leader = 0, unavailable = 0, bad_requests = 0, too_large = 0;
};

class kv_service final : public cluster::group_service {
  public:
    kv_service(messaging::service_port& endpoint, cluster::raft_link& link,
               kv_service_config config);

    const kv_state& state() const noexcept { return state_; }
    const kv_service_stats& stats() const noexcept { return stats_; }

  private:
    struct pending_read {
        std::string key;
        messaging::pending_reply reply;
        replication::log_index index = 0;  ///< once known: serve when applied reaches it
    };

    // cluster::group_service
    void on_request(const messaging::message& m, messaging::pending_reply reply) override;
    void on_apply(const replication::log_entry& entry) override;
    result<void> on_restore(const replication::snapshot_meta& meta,
                            std::span<const std::byte> data) override;
    void on_read_ready(const replication::read_result& read) override;
    replication::log_index applied() const override { return state_.applied(); }
    std::vector<std::byte> snapshot_state() const override { return state_.snapshot(); }
    std::uint64_t state_entries() const override { return state_.size(); }

    void read(const wire::KvCommand& c, messaging::pending_reply reply);
    void write(std::span<const std::byte> command, messaging::pending_reply reply);
    void answer(const messaging::pending_reply& to, const kv_result& r,
                std::string_view leader = {});
    void refuse_not_leader(const messaging::pending_reply& to);
    void serve_reads_up_to(replication::log_index applied);

    kv_service_config config_;
    kv_state state_;
    cluster::pending_proposals writes_;
    std::unordered_map<std::uint64_t, pending_read> reads_;              // by read request id
    std::multimap<replication::log_index, pending_read> reads_waiting_;  // for `applied`
    std::uint64_t next_read_ = 1;
    kv_service_stats stats_;
};

}  // namespace ringmesh::kv
