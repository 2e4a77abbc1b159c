// Snapshots: compaction behind the application's snapshots, and the chunked install of the
// latest one to a follower that needs entries the log no longer holds. A bounded window of
// chunks is in flight; heartbeats keep flowing beside it; a transfer that stops moving (the
// follower restarted and forgot it) starts again from offset 0.
#include <algorithm>

#include "engine/core/assert.h"
#include "engine/replication/raft.h"

namespace ringmesh::replication {

snapshot_meta raft::snapshot_meta_at(log_index index) const {
    RM_ASSERT(index <= applied_ && index >= log_.base_index(), "no snapshot can be taken there");
    snapshot_meta meta;
    meta.index = index;
    meta.term = *log_.term_at(index);
    meta.members = snapshot_members_;
    for (const auto& [at, members] : member_history_) {
        if (at <= index) meta.members = members;
    }
    return meta;
}

void raft::snapshot_taken(time_ns now, const snapshot_meta& meta) {
    if (snapshot_ && meta.index <= snapshot_->index) return;
    RM_ASSERT(meta.index <= applied_, "a snapshot past what was applied");
    RM_ASSERT(log_.term_at(meta.index) == meta.term || meta.index == log_.base_index(),
              "a snapshot whose term does not match the log");
    snapshot_ = meta;
    log_index compact = meta.index > config_.snapshot_trailing_entries
                            ? meta.index - config_.snapshot_trailing_entries
                            : 0;
    compact = std::min(compact, applied_);
    if (compact > log_.base_index()) {
        while (!member_history_.empty() && member_history_.front().first <= compact) {
            snapshot_members_ = member_history_.front().second;
            member_history_.erase(member_history_.begin());
        }
        log_.compact_through(compact);
        pending_.compact_through = compact;
    }
    // A transfer of an older snapshot cannot go on: its file is being replaced.
    std::erase_if(pending_.messages, [&meta](const raft_message& m) {
        return m.kind == message_kind::snapshot && m.snapshot.index < meta.index;
    });
    for (auto& [id, p] : progress_) {
        if (p.state == follower_progress::mode::snapshot && p.sending.index < meta.index)
            start_snapshot(now, id, p);
    }
}

void raft::start_snapshot(time_ns now, node_id to, follower_progress& p) {
    if (!snapshot_) return;  // nothing was compacted without one; cannot happen
    p.state = follower_progress::mode::snapshot;
    p.sending = *snapshot_;
    p.sent_offset = 0;
    p.acked_offset = 0;
    p.snapshot_sent_all = false;
    p.snapshot_progress_at = now;
    p.inflight.clear();
    p.probe_sent = false;
    ++stats_.snapshots_started;
    send_snapshot_chunks(to, p);
}

void raft::send_snapshot_chunks(node_id to, follower_progress& p) {
    const std::uint64_t window =
        std::uint64_t{config_.snapshot_chunk_bytes} * config_.max_inflight_snapshot_chunks;
    const std::uint64_t size = p.sending.size_bytes;
    while (!p.snapshot_sent_all && p.sent_offset - p.acked_offset < window) {
        const auto length = static_cast<std::uint32_t>(
            std::min<std::uint64_t>(config_.snapshot_chunk_bytes, size - p.sent_offset));
        raft_message m = message_to(to, message_kind::snapshot);
        m.snapshot = p.sending;
        m.offset = p.sent_offset;
        m.chunk_bytes = length;
        m.last_chunk = p.sent_offset + length == size;
        p.sent_offset += length;
        p.snapshot_sent_all = m.last_chunk;
        ++stats_.snapshot_chunks_sent;
        send(std::move(m));
    }
}

void raft::on_snapshot(time_ns now, const raft_message& m) {
    heard_from_leader(now, m.from);
    const snapshot_meta& meta = m.snapshot;
    raft_message r = message_to(m.from, message_kind::snapshot_reply);
    r.snapshot = meta;
    r.snapshot.members = {};  // the reply names the snapshot by index and term
    if (meta.index <= state_.commit) {
        // Everything it covers is committed here already: tell the leader to go on from there.
        r.offset = meta.size_bytes;
        r.index = meta.index;
        send(std::move(r));
        return;
    }
    const bool same = incoming_snapshot_ && incoming_snapshot_->index == meta.index &&
                      incoming_snapshot_->term == meta.term;
    const bool fits = m.chunk.size() == m.chunk_bytes &&
                      m.offset + m.chunk.size() <= meta.size_bytes &&
                      m.last_chunk == (m.offset + m.chunk.size() == meta.size_bytes);
    if (!fits || (m.offset != 0 && (!same || m.offset != incoming_offset_))) {
        // Not the chunk we expect: ask for the next one we can use (0 restarts the transfer).
        r.reject = true;
        r.offset = same ? incoming_offset_ : 0;
        send(std::move(r));
        return;
    }
    if (m.offset == 0) {
        incoming_snapshot_ = meta;
        incoming_offset_ = 0;
    }
    pending_.snapshot_chunks.push_back(m);
    dirty_ = true;
    incoming_offset_ += m.chunk.size();
    r.offset = incoming_offset_;
    if (m.last_chunk) {
        // Install: the log keeps what follows the snapshot only when it agrees at its index.
        if (log_.term_at(meta.index) == meta.term) {
            log_.compact_through(meta.index);
        } else {
            log_.reset(meta.index, meta.term);
        }
        std::erase_if(member_history_, [&meta](const auto& h) { return h.first <= meta.index; });
        if (log_.last_index() == meta.index) member_history_.clear();
        snapshot_members_ = meta.members;
        recompute_members();
        snapshot_ = meta;
        state_.commit = std::max(state_.commit, meta.index);
        stable_index_ = std::min(stable_index_, log_.last_index());
        unpersisted_.emplace_back(persist_seq_ + 1, meta.index);
        snapshot_to_apply_ = meta;
        snapshot_to_apply_seq_ = persist_seq_ + 1;
        incoming_snapshot_.reset();
        incoming_offset_ = 0;
        ++stats_.snapshots_installed;
        r.index = meta.index;
    }
    send(std::move(r));
}

void raft::on_snapshot_reply(time_ns now, const raft_message& m) {
    follower_progress* p = progress_for(m.from);
    if (role_ != raft_role::leader || p == nullptr) return;
    p->last_heard = now;
    if (p->state != follower_progress::mode::snapshot || m.snapshot.index != p->sending.index ||
        m.snapshot.term != p->sending.term)
        return;
    if (m.index == p->sending.index && !m.reject) {
        // Installed (or already covered): replicate from the snapshot on.
        p->match = std::max(p->match, p->sending.index);
        p->next = p->match + 1;
        p->state = follower_progress::mode::probe;
        p->probe_sent = false;
        maybe_commit(now);
        send_append(now, m.from, *p, true);
        return;
    }
    p->snapshot_progress_at = now;
    if (m.reject) {
        if (m.offset == 0) ++stats_.snapshot_restarts;
        p->sent_offset = std::min(m.offset, p->sending.size_bytes);
        p->acked_offset = p->sent_offset;
        p->snapshot_sent_all = false;
    } else {
        p->acked_offset = std::max(p->acked_offset, std::min(m.offset, p->sent_offset));
    }
    send_snapshot_chunks(m.from, *p);
}

void raft::restart_stalled_snapshots(time_ns now) {
    for (auto& [id, p] : progress_) {
        if (p.state != follower_progress::mode::snapshot ||
            now - p.snapshot_progress_at < config_.election_timeout_min)
            continue;
        ++stats_.snapshot_restarts;
        start_snapshot(now, id, p);
    }
}

}  // namespace ringmesh::replication
