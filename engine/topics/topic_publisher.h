// Publishes to replicated topics from any node: each publish goes to the group's leader
// through a cluster::leader_caller (hints followed, retries until the deadline) with this
// producer's id and the publish's sequence, the same in every retry, so a retry after a
// leader change appends at most once. The callback gets the verdict and, when ok, the
// message's offset (committed: durable on a majority).
//
// Owned by the shard of `endpoint`; every call from it.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>

#include "engine/cluster/leader_caller.h"
#include "engine/topics/topic_log.h"

namespace ringmesh::topics {

struct topic_publisher_config {
    cluster::leader_caller_config calls;  ///< servers, timeouts; method: "topics.publish"
    std::uint64_t producer_id = 0;        ///< unique per publishing process; 0: drawn
};

struct publish_outcome {
    cluster::call_verdict verdict = cluster::call_verdict::ok;
    wire::TopicStatus status = wire::TopicStatus::Ok;  ///< the service's last answer
    log_index index = 0;                               ///< ok: the message's offset
    int attempts = 0;
};

class topic_publisher {
  public:
    using done_fn = std::function<void(const publish_outcome&)>;

    topic_publisher(messaging::endpoint& endpoint, topic_publisher_config config);

    void publish(std::string_view topic, std::span<const std::byte> payload, done_fn done);

    std::uint64_t producer_id() const noexcept { return producer_id_; }
    const cluster::leader_caller_stats& stats() const noexcept { return caller_.stats(); }

  private:
    std::uint64_t producer_id_;
    std::uint64_t sequence_ = 0;
    cluster::leader_caller caller_;
};

}  // namespace ringmesh::topics
