// The in-memory view of a replica's log: every entry after the latest snapshot, as etcd's
// MemoryStorage keeps it. The durable copy is the storage's business (the core tells it what
// to append, truncate and compact through raft_ready); this one answers the core's questions
// (the term at an index, a batch to send) without I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "engine/replication/raft_types.h"

namespace ringmesh::replication {

/// Owned by one raft instance, on its shard.
class raft_log {
  public:
    /// Empties the log so that it continues after (index, term): a snapshot's position, or
    /// (0, 0) for a new group.
    void reset(log_index index, term_t term);

    log_index base_index() const noexcept { return base_index_; }
    term_t base_term() const noexcept { return base_term_; }
    log_index first_index() const noexcept { return base_index_ + 1; }
    log_index last_index() const noexcept { return base_index_ + entries_.size(); }
    term_t last_term() const noexcept {
        return entries_.empty() ? base_term_ : entries_.back().term;
    }

    /// The term of the entry at `index`: base_term() at the base, nothing when compacted away
    /// or beyond the end.
    std::optional<term_t> term_at(log_index index) const noexcept;
    /// Precondition: first_index() <= index <= last_index().
    const log_entry& at(log_index index) const;

    /// Appends one entry; its index must be last_index() + 1.
    void append(log_entry entry);
    /// Removes every entry from `index` on (index > base_index()).
    void truncate_from(log_index index);
    /// Drops the entries through `index`, which becomes the base (with its term).
    void compact_through(log_index index);

    /// Entries from `from` on, at most `max_entries` and about `max_bytes` (always at least
    /// one when any is there).
    std::vector<log_entry> slice(log_index from, std::size_t max_entries,
                                 std::size_t max_bytes) const;

    /// The first index of the run of entries with the term of the entry at `index` (for the
    /// follower's backtracking hint); `index` must be held.
    log_index first_index_of_term_at(log_index index) const;
    /// The last index holding `term` or an earlier one, at or below `at_most` (for the leader
    /// reading a hint); the base when none is held.
    log_index last_index_with_term_at_most(term_t term, log_index at_most) const;

    /// Whether (index, term) is at least as up to date as this log's last entry (§5.4.1).
    bool is_up_to_date(log_index index, term_t term) const noexcept {
        return term > last_term() || (term == last_term() && index >= last_index());
    }

  private:
    log_index base_index_ = 0;
    term_t base_term_ = 0;
    std::deque<log_entry> entries_;
};

}  // namespace ringmesh::replication
