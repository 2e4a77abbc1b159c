// The callers waiting for their proposals to commit, for a service on a Raft group (the
// key-value service, replicated topics): each waits at the log index and term its proposal
// got. When the entry at that index is applied, it is theirs if the term matches, and lost
// with an earlier leader if not (another leader's entry took the index). Entries a snapshot
// installed are not seen one by one: whether those were theirs is unknown here, and their
// retry (the same writer and sequence) gets the first answer if they were.
//
// Owned by its service; every call from the service's shard.
#pragma once

#include <map>
#include <optional>

#include "engine/messaging/endpoint.h"
#include "engine/replication/raft_types.h"

namespace ringmesh::cluster {

class pending_proposals {
  public:
    struct settled {
        messaging::pending_reply reply;
        bool committed = false;  ///< false: lost with a leader (or not known: a snapshot)
    };

    /// A proposal at (index, term) whose caller waits. A caller still waiting at the same
    /// index lost its proposal with an earlier term: it is returned, to be told so.
    std::optional<settled> add(replication::log_index index, replication::term_t term,
                               messaging::pending_reply reply) {
        std::optional<settled> lost;
        if (auto it = waiting_.find(index); it != waiting_.end()) {
            lost.emplace().reply = std::move(it->second.reply);  // committed: false
            waiting_.erase(it);
        }
        waiting_.emplace(index, entry{term, std::move(reply)});
        return lost;
    }

    /// The entry at `index` of `term` was applied: its caller, if one waits there.
    std::optional<settled> applied(replication::log_index index, replication::term_t term) {
        auto it = waiting_.find(index);
        if (it == waiting_.end()) return std::nullopt;
        settled s{std::move(it->second.reply), it->second.term == term};
        waiting_.erase(it);
        return s;
    }

    /// A snapshot through `index` was installed: fn(settled) for each caller waiting at or
    /// below it (not committed, as far as this replica can tell).
    template <typename Fn>
    void covered_through(replication::log_index index, Fn&& fn) {
        while (!waiting_.empty() && waiting_.begin()->first <= index) {
            fn(settled{std::move(waiting_.begin()->second.reply), false});
            waiting_.erase(waiting_.begin());
        }
    }

    std::size_t size() const noexcept { return waiting_.size(); }

  private:
    struct entry {
        replication::term_t term = 0;
        messaging::pending_reply reply;
    };
    std::map<replication::log_index, entry> waiting_;
};

}  // namespace ringmesh::cluster
