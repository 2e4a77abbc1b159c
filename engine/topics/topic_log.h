// A replicated topic group's state machine: the retained messages of every topic the group
// carries, in log order, and each producer's last publish (so that a retry after a leader
// change appends at most once). It changes only through committed log entries, so it is the
// same on every replica; no I/O, no clock (a message's time is the leader's stamp in its
// entry), so it runs the same under the simulator.
//
// A message's offset is the index of the log entry that carried it: offsets only grow, with
// gaps where the log holds other entries (no-ops, configurations, duplicates). Retention by
// size and by age drops the oldest messages as new ones are applied; first_index() says
// where what is retained starts, and a reader asking for less is told so.
//
// Owned by its topic_service (or a test); every call from the owner's thread.
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/result.h"
#include "engine/replication/raft_types.h"
#include "engine/replication/writer_sessions.h"
#include "topics_generated.h"

namespace ringmesh::topics {

using replication::log_index;

struct topic_limits {
    std::size_t max_topic_bytes = 256;
    std::size_t max_payload_bytes = 256 * std::size_t{1024};
    std::uint64_t retention_bytes = 64ull << 20;  ///< payload bytes kept, all topics together
    std::uint64_t retention_ms = 0;               ///< 0: no age limit
    std::size_t max_producers = 100'000;
};

struct retained_message {
    log_index index = 0;
    std::string topic;
    std::vector<std::byte> payload;
    std::uint64_t time_ms = 0;
};

/// What applying one entry did.
struct append_result {
    wire::TopicStatus status = wire::TopicStatus::Ok;
    log_index index = 0;    ///< Ok: the message's offset (for a duplicate: the first one's)
    bool appended = false;  ///< a new message (not a duplicate, not another kind of entry)
};

struct topic_log_stats {
    std::uint64_t appended = 0;
    std::uint64_t duplicates = 0;         ///< retried publishes answered with their offset
    std::uint64_t stale_sequences = 0;    ///< publishes older than their producer's last
    std::uint64_t malformed_entries = 0;  ///< entries that failed verification: no effect
    std::uint64_t dropped_by_retention = 0;
};

/// A publish as received, checked: the Verifier, then its fields and the limits. `status`
/// is Ok when `publish` may be read (bytes at an odd address are copied into `aligned`).
struct checked_publish {
    wire::TopicStatus status = wire::TopicStatus::BadRequest;
    const wire::TopicPublish* publish = nullptr;
    std::vector<std::uint64_t> aligned;
};
checked_publish check_publish(std::span<const std::byte> bytes, const topic_limits& limits);

/// The entry data a leader proposes for a publish: the same fields, its time stamped.
std::vector<std::byte> stamped_entry(const wire::TopicPublish& p, std::uint64_t time_ms);

class topic_log {
  public:
    explicit topic_log(topic_limits limits = {}) : limits_(limits) {}

    /// Every committed entry, in log order (no-ops and configurations advance applied()).
    append_result apply(const replication::log_entry& entry);
    log_index applied() const noexcept { return applied_; }
    /// Where the retained log starts: every message at this offset or later is retained (the
    /// offset after the newest one retention dropped; 1 when it dropped none).
    log_index first_index() const noexcept { return dropped_through_ + 1; }
    /// The message the last apply appended (valid until the next apply).
    const retained_message& last() const { return retained_.back(); }
    /// fn(message) for each retained message at `from` or later, oldest first.
    template <typename Fn>
    void read_from(log_index from, Fn&& fn) const {
        for (const retained_message& m : retained_) {
            if (m.index >= from) fn(m);
        }
    }
    std::size_t retained() const noexcept { return retained_.size(); }
    std::uint64_t retained_bytes() const noexcept { return retained_bytes_; }

    std::vector<std::byte> snapshot() const;
    /// Replaces the state with a snapshot's (verified first; on error nothing changes).
    result<void> restore(std::span<const std::byte> bytes);

    const topic_log_stats& stats() const noexcept { return stats_; }

  private:
    void enforce_retention();

    topic_limits limits_;
    log_index applied_ = 0;
    std::deque<retained_message> retained_;
    std::uint64_t retained_bytes_ = 0;
    log_index dropped_through_ = 0;
    replication::writer_sessions<log_index> producers_{limits_.max_producers};
    topic_log_stats stats_;
};

}  // namespace ringmesh::topics
