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
//   - The service snapshots the log every snapshot_every applied entries (which is also
//     when Raft may truncate its own log behind it).
//
// Owned by the shard that runs the endpoint and the group's raft_host; every call from it.
// Create it, add the group with application(), then attach().
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

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
    std::uint64_t snapshots_saved = 0, snapshots_restored = 0, restore_failures = 0;
};

class topic_service {
  public:
    using subscription_id = std::uint64_t;
    using message_handler = std::function<void(const delivery& d)>;
    /// The subscriber's offset is gone (retention): delivery resumes at `first`.
    using truncated_handler = std::function<void(log_index first)>;

    topic_service(messaging::endpoint& endpoint, cluster::raft_link& link,
                  topic_service_config config);
    ~topic_service();
    topic_service(const topic_service&) = delete;
    topic_service& operator=(const topic_service&) = delete;

    replication::raft_application application();
    void attach(replication::raft_host& host);

    /// Messages of topics matching `pattern` (wildcards as in pub/sub), in log order, from
    /// offset `from` (0: those committed from now on). Retained ones from `from` are
    /// delivered before this returns. invalid_topic for a bad pattern (id 0).
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

    void on_publish(const messaging::message& m, messaging::pending_reply reply);
    void answer(const messaging::pending_reply& to, wire::TopicStatus status, log_index index,
                std::string_view leader = {});
    void refuse_not_leader(const messaging::pending_reply& to);
    void apply(const replication::log_entry& entry);
    void restore(const replication::snapshot_meta& meta, std::span<const std::byte> data);
    /// Brings `s` up to what the log holds: a truncation notice if its offset is gone, then
    /// every retained message from its offset.
    void catch_up(subscriber& s);
    void deliver(subscriber& s, const retained_message& m);
    std::size_t maybe_snapshot(time_ns now);
    replication::raft* replica() const;

    messaging::endpoint& endpoint_;
    cluster::raft_link& link_;
    topic_service_config config_;
    replication::raft_host* host_ = nullptr;
    topic_log log_;
    cluster::pending_proposals publishes_;
    std::map<subscription_id, subscriber> subscribers_;
    subscription_id next_subscription_ = 1;
    log_index snapshot_at_ = 0;
    shard::poller_id poller_ = 0;
    bool attached_ = false;
    topic_service_stats stats_;
};

}  // namespace ringmesh::topics
