// Replicated topics on one node: one Raft group's topic_log, with publishes taken over RPC
// ("topics.publish" by default) and subscribers on this node fed from the log.
//
//   - A publish reaching the group's leader is stamped with the leader's clock (retention by
//     age) and proposed; the publisher's answer leaves once the entry is applied at the index
//     and term it was given: Ok with the message's offset. Another term there: Unavailable
//     (lost with a leader; the publisher's retry, same producer and sequence, appends at most
//     once). On a follower: NotLeader naming the leader, or Unavailable when none is known.
//   - Every replica applies every committed message, so a subscriber on any member receives
//     them in log order, with their offsets, on this node's shard. `subscribe` can start from
//     an offset (to resume after a restart): retained messages from there are delivered
//     first; a subscriber whose offset retention has dropped is told where the log now
//     starts, then continues from there.
//   - The service snapshots the log every snapshot_every applied entries, or every
//     retained() entries when more are retained (a snapshot copies them all), which is also
//     when Raft may truncate its own log behind it.
//
// The plumbing every group service shares (application, attach, snapshots, the leader's
// name) is cluster::group_service's. Owned by the shard that runs the endpoint and the
// group's raft_host; every call from it. Create it, add the group with application(), then
// attach().
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "engine/cluster/group_service.h"
#include "engine/cluster/pending_proposals.h"
#include "engine/cluster/raft_link.h"
#include "engine/messaging/endpoint.h"
#include "engine/replication/raft_host.h"
#include "engine/topics/topic_log.h"

namespace ringmesh::topics {

struct topic_service_config {
    replication::group_id group = 1;
    std::string method = "topics.publish";
    topic_limits limits;
    replication::log_index snapshot_every = 10'000;
    /// The leader's stamp on each message (ms; retention by age). Default: the system clock.
    /// The simulator gives its virtual one, so that a run replays exactly.
    std::function<std::uint64_t()> wall_clock_ms;
};

/// A committed message, delivered to a subscriber (valid while the handler runs).
struct delivery {
    log_index index = 0;
    std::string_view topic;
    std::span<const std::byte> payload;
    std::uint64_t time_ms = 0;
};

struct topic_service_stats {
    std::uint64_t publishes = 0, proposed = 0, answered = 0, lost = 0;
    std::uint64_t not_leader = 0, unavailable = 0, refused = 0;
    std::uint64_t delivered = 0, truncated_notices = 0;
};

class topic_service final : public cluster::group_service {
  public:
    using subscription_id = std::uint64_t;
    using message_handler = std::function<void(const delivery& d)>;
    /// The subscriber's offset is gone (retention): delivery resumes at `first`.
    using truncated_handler = std::function<void(log_index first)>;

    topic_service(messaging::service_port& endpoint, cluster::raft_link& link,
                  topic_service_config config);

    /// Messages of topics matching `pattern` (wildcards as in pub/sub), in log order, from
    /// offset `from` (0: those committed from now on). Retained ones from `from` are
    /// delivered before this returns. 0 for a bad pattern.
    subscription_id subscribe(std::string_view pattern, log_index from, message_handler on_message,
                              truncated_handler on_truncated = {});
    void unsubscribe(subscription_id id);

    const topic_log& log() const noexcept { return log_; }
    const topic_service_stats& stats() const noexcept { return stats_; }

  private:
    struct subscriber {
        std::string pattern;
        log_index next = 0;  ///< the next offset it wants
        message_handler on_message;
        truncated_handler on_truncated;
    };

    // cluster::group_service
    void on_request(const messaging::message& m, messaging::pending_reply reply) override;
    void on_apply(const replication::log_entry& entry) override;
    result<void> on_restore(const replication::snapshot_meta& meta,
                            std::span<const std::byte> data) override;
    log_index applied() const override { return log_.applied(); }
    std::vector<std::byte> snapshot_state() const override { return log_.snapshot(); }
    std::uint64_t state_entries() const override { return log_.retained(); }

    void answer(const messaging::pending_reply& to, wire::TopicStatus status, log_index index,
                std::string_view leader = {});
    void refuse_not_leader(const messaging::pending_reply& to);
    /// Brings `s` up to what the log holds: a truncation notice if its offset is gone, then
    /// every retained message from its offset.
    void catch_up(subscriber& s);
    void deliver(subscriber& s, const retained_message& m);

    topic_service_config config_;
    topic_log log_;
    cluster::pending_proposals publishes_;
    std::map<subscription_id, subscriber> subscribers_;
    subscription_id next_subscription_ = 1;
    topic_service_stats stats_;
};

}  // namespace ringmesh::topics
