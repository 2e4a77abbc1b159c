// What makes a replicated write idempotent: each writer (a client, a producer) numbers its
// writes, and the state machine remembers every writer's last (sequence, answer). A retry of
// that write (after a timeout, a leader change) gets the remembered answer and applies
// nothing; an older sequence is stale. The table is part of the state machine: it changes
// only in apply, in log order, and goes into snapshots, so it is the same on every replica.
// Bounded: the writer idle longest (by the log index of its last write) is forgotten first.
//
// Owned by its state machine; every call from that owner's thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>
#include <unordered_map>
#include <utility>

#include "engine/replication/raft_types.h"

namespace ringmesh::replication {

template <typename Answer>
class writer_sessions {
  public:
    enum class verdict : std::uint8_t { fresh, duplicate, stale };

    explicit writer_sessions(std::size_t max_writers) : max_(max_writers) {}

    /// What a write numbered `sequence` by `writer` is: fresh (apply it), a duplicate of the
    /// last one (`*remembered` is its answer), or stale (older than the last).
    verdict check(std::uint64_t writer, std::uint64_t sequence,
                  const Answer** remembered = nullptr) const {
        auto it = by_writer_.find(writer);
        if (it == by_writer_.end() || sequence > it->second.sequence) return verdict::fresh;
        if (sequence < it->second.sequence) return verdict::stale;
        if (remembered != nullptr) *remembered = &it->second.answer;
        return verdict::duplicate;
    }

    /// A fresh write applied at `index`; forgets the idlest writers beyond the bound.
    void remember(std::uint64_t writer, std::uint64_t sequence, log_index index, Answer answer) {
        auto [it, created] = by_writer_.try_emplace(writer);
        if (!created) by_age_.erase({it->second.index, writer});
        it->second = {sequence, index, std::move(answer)};
        by_age_.insert({index, writer});
        while (by_writer_.size() > max_) {
            by_writer_.erase(by_age_.begin()->second);
            by_age_.erase(by_age_.begin());
            ++evicted_;
        }
    }

    /// Each remembered writer, idlest first (a deterministic order, for snapshots):
    /// fn(writer, sequence, index, answer).
    template <typename Fn>
    void for_each(Fn&& fn) const {
        for (const auto& [index, writer] : by_age_) {
            const entry& e = by_writer_.at(writer);
            fn(writer, e.sequence, e.index, e.answer);
        }
    }

    /// Rebuilding from a snapshot: false when `writer` is there already (a damaged snapshot).
    bool restore(std::uint64_t writer, std::uint64_t sequence, log_index index, Answer answer) {
        if (!by_writer_.try_emplace(writer, entry{sequence, index, std::move(answer)}).second)
            return false;
        by_age_.insert({index, writer});
        return true;
    }

    std::size_t size() const noexcept { return by_writer_.size(); }
    std::uint64_t evicted() const noexcept { return evicted_; }

  private:
    struct entry {
        std::uint64_t sequence = 0;
        log_index index = 0;
        Answer answer;
    };
    std::size_t max_;
    std::unordered_map<std::uint64_t, entry> by_writer_;
    std::set<std::pair<log_index, std::uint64_t>> by_age_;  // (index of the last write, writer)
    std::uint64_t evicted_ = 0;
};

}  // namespace ringmesh::replication
