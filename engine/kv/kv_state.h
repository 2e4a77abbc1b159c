// The replicated key-value service's state machine: the map, and each client's last write
// (so that a retried write gets its first answer instead of applying twice). It changes only
// through committed log entries, in log order, so it is the same on every replica; it has no
// I/O and no clock, and runs the same under the simulator. Owned by the kv_service of its
// group (or a test); every call from that owner's thread.
//
// A write's entry carries the client's KvCommand bytes as received (schemas/kv.fbs). Entries
// are verified again when applied: a malformed one (which a leader never proposes) is
// counted and changes nothing, identically everywhere.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/result.h"
#include "engine/replication/raft_types.h"
#include "engine/replication/writer_sessions.h"
#include "kv_generated.h"

namespace ringmesh::kv {

using replication::log_index;

struct kv_limits {
    std::size_t max_key_bytes = 1024;
    std::size_t max_value_bytes = std::size_t{256} * 1024;  ///< fits one Raft entry, with room
    /// Clients whose last write is remembered; the one idle longest (by log index) is
    /// forgotten first, and its retry of that write would then apply again.
    std::size_t max_sessions = 100'000;
};

/// The answer to one command.
struct kv_result {
    wire::KvStatus status = wire::KvStatus::Ok;
    std::vector<std::byte> value;
    log_index index = 0;
};

struct kv_state_stats {
    std::uint64_t writes_applied = 0;
    std::uint64_t duplicates = 0;         ///< retried writes answered from their session
    std::uint64_t stale_sequences = 0;    ///< writes older than their client's last
    std::uint64_t malformed_entries = 0;  ///< entries that failed verification: no effect
};

/// A command as received, checked: the flatbuffers Verifier, then the fields its op needs
/// and the limits. `status` is Ok when `command` may be read; bytes that sit at an address
/// flatbuffers cannot read in place are copied (into `aligned`) first.
struct checked_command {
    wire::KvStatus status = wire::KvStatus::BadRequest;
    const wire::KvCommand* command = nullptr;
    std::vector<std::uint64_t> aligned;
};
checked_command check_command(std::span<const std::byte> bytes, const kv_limits& limits);

class kv_state {
  public:
    explicit kv_state(kv_limits limits = {}) : limits_(limits) {}

    /// Every committed entry, in log order (no-ops and configurations advance `applied`).
    kv_result apply(const replication::log_entry& entry);
    /// A read of the current state (linearizable once the caller's read index is applied).
    kv_result get(std::string_view key) const;
    log_index applied() const noexcept { return applied_; }
    std::size_t size() const noexcept { return data_.size(); }

    /// The whole state, for a Raft snapshot at applied().
    std::vector<std::byte> snapshot() const;
    /// Replaces the state with a snapshot's (verified first; on error nothing changes).
    result<void> restore(std::span<const std::byte> bytes);

    const kv_state_stats& stats() const noexcept { return stats_; }
    std::uint64_t sessions_evicted() const noexcept { return sessions_.evicted(); }

  private:
    kv_result write(const wire::KvCommand& c, log_index index);

    kv_limits limits_;
    log_index applied_ = 0;
    std::map<std::string, std::vector<std::byte>, std::less<>> data_;
    replication::writer_sessions<kv_result> sessions_{limits_.max_sessions};
    kv_state_stats stats_;
};

}  // namespace ringmesh::kv
