// Log replication: the leader's pipelined appends with per-follower flow control, fast
// backtracking and commit on a durable majority; the follower's side of appends and
// heartbeats.
#include <algorithm>

#include "engine/core/assert.h"
#include "engine/replication/raft.h"

namespace ringmesh::replication {

void raft::append_own(time_ns now, entry_kind kind, std::vector<std::byte> data) {
    log_entry e;
    e.term = state_.term;
    e.index = log_.last_index() + 1;
    e.kind = kind;
    e.data = std::move(data);
    persist_entry(e);
    remember_config(e);
    log_.append(std::move(e));
    if (kind == entry_kind::config) members_changed(now);
}

bool raft::can_send_append(const follower_progress& p) const {
    switch (p.state) {
        case follower_progress::mode::probe:
            return !p.probe_sent;
        case follower_progress::mode::replicate:
            return p.inflight.size() < config_.max_inflight_appends;
        case follower_progress::mode::snapshot:
            return false;
    }
    return false;
}

void raft::send_append(time_ns now, node_id to, follower_progress& p, bool allow_empty) {
    if (!can_send_append(p)) return;
    const log_index prev = p.next - 1;
    const std::optional<term_t> prev_term = log_.term_at(prev);
    if (!prev_term) {
        start_snapshot(now, to, p);  // what it needs was compacted away
        return;
    }
    std::vector<log_entry> entries =
        log_.slice(p.next, config_.max_append_entries, config_.max_append_bytes);
    if (entries.empty() && !allow_empty) return;
    raft_message m = message_to(to, message_kind::append);
    m.prev_index = prev;
    m.prev_term = *prev_term;
    m.commit = state_.commit;
    if (!entries.empty()) {
        const log_index last = entries.back().index;
        if (p.state == follower_progress::mode::replicate) {
            p.next = last + 1;  // optimistic: the pipeline runs ahead of the replies
            p.inflight.push_back(last);
        } else {
            p.probe_sent = true;
        }
    } else if (p.state == follower_progress::mode::probe) {
        p.probe_sent = true;
    }
    ++stats_.appends_sent;
    stats_.entries_sent += entries.size();
    m.entries = std::move(entries);
    send(std::move(m));
}

void raft::broadcast_appends(time_ns now) {
    for (auto& [id, p] : progress_) {
        while (p.next <= log_.last_index() && can_send_append(p)) {
            const log_index before = p.next;
            const bool probe_before = p.probe_sent;
            send_append(now, id, p, false);
            if (p.next == before && p.probe_sent == probe_before) break;
            if (p.state != follower_progress::mode::replicate) break;
        }
    }
}

void raft::broadcast_heartbeats(time_ns now, std::uint64_t round) {
    round_sent_at_.emplace_back(round, now);
    if (round_sent_at_.size() > 1024) round_sent_at_.pop_front();
    for (auto& [id, p] : progress_) {
        raft_message m = message_to(id, message_kind::heartbeat);
        // Never past what the follower holds: it must not commit an entry it has not matched.
        m.commit = std::min(p.match, state_.commit);
        m.context = round;
        send(std::move(m));
    }
    on_read_round_acked(now);  // a group of one acknowledges its own round
}

void raft::on_append_reply(time_ns now, const raft_message& m) {
    follower_progress* p = progress_for(m.from);
    if (role_ != raft_role::leader || p == nullptr) return;
    p->last_heard = now;
    if (m.reject) {
        ++stats_.append_rejects;
        if (p->state == follower_progress::mode::snapshot) return;
        if (m.hint_index < p->match && m.index >= p->match) {
            // It no longer holds what it acknowledged: its disk was lost or wiped. Forget
            // what we knew (a commit never goes back; only future ones are counted anew) and
            // find where it stands, by snapshot if need be.
            ++stats_.follower_regressions;
            p->match = 0;
        }
        if (p->state == follower_progress::mode::replicate && m.index <= p->match) return;
        if (p->state == follower_progress::mode::probe && m.index != p->next - 1) return;
        // Fast backtracking: skip every entry of a term the follower does not hold.
        const log_index probe = log_.last_index_with_term_at_most(m.hint_term, m.hint_index);
        p->next = std::max(std::min(m.index, probe + 1), p->match + 1);
        p->state = follower_progress::mode::probe;
        p->probe_sent = false;
        p->inflight.clear();
        send_append(now, m.from, *p, true);
        return;
    }
    if (p->state == follower_progress::mode::snapshot) {
        if (m.index < p->sending.index) return;
        p->state = follower_progress::mode::probe;
    }
    if (m.index > p->match) p->match = m.index;
    p->next = std::max(p->next, p->match + 1);
    while (!p->inflight.empty() && p->inflight.front() <= m.index)
        p->inflight.pop_front();
    if (p->state == follower_progress::mode::probe) {
        p->state = follower_progress::mode::replicate;
        p->probe_sent = false;
        p->inflight.clear();
        p->next = p->match + 1;
    }
    maybe_commit(now);
    if (role_ != raft_role::leader) return;  // the commit removed us from the group
    on_transfer_progress(now, m.from);
    broadcast_appends(now);
}

void raft::on_heartbeat_reply(time_ns now, const raft_message& m) {
    follower_progress* p = progress_for(m.from);
    if (role_ != raft_role::leader || p == nullptr) return;
    p->last_heard = now;
    p->acked_round = std::max(p->acked_round, m.context);
    on_read_round_acked(now);
    if (p->match >= log_.last_index()) return;
    // Behind: an append may have been lost. A probe may go again; a full pipeline gives up
    // its oldest slot; an empty append tells whether the follower has what we think.
    p->probe_sent = false;
    if (p->state == follower_progress::mode::replicate &&
        p->inflight.size() >= config_.max_inflight_appends)
        p->inflight.pop_front();
    send_append(now, m.from, *p, true);
}

void raft::maybe_commit(time_ns now) {
    if (role_ != raft_role::leader || members_.voters.empty()) return;
    // Ourselves: only what is durable counts.
    const log_index candidate = quorum_value(stable_index_, &follower_progress::match);
    if (candidate <= state_.commit || log_.term_at(candidate) != state_.term) return;
    state_.commit = candidate;
    if (!committed_in_term_) {
        committed_in_term_ = true;
        release_reads_waiting_for_term(now);
    }
    step_down_if_removed(now);
}

void raft::on_append(time_ns now, const raft_message& m) {
    heard_from_leader(now, m.from);
    raft_message r = message_to(m.from, message_kind::append_reply);
    if (m.prev_index < state_.commit) {
        // Everything through our commit matches the leader's log already (log matching).
        r.index = state_.commit;
        send(std::move(r));
        return;
    }
    const std::optional<term_t> term = log_.term_at(m.prev_index);
    if (!term || *term != m.prev_term) {
        r.reject = true;
        r.index = m.prev_index;
        const log_index below = std::min(m.prev_index, log_.last_index());
        r.hint_index = log_.last_index_with_term_at_most(m.prev_term, below);
        r.hint_term = log_.term_at(r.hint_index).value_or(0);
        send(std::move(r));
        return;
    }
    for (const log_entry& e : m.entries) {
        if (e.index <= log_.last_index()) {
            if (log_.term_at(e.index) == e.term) continue;  // already held
            truncate_log_from(e.index);                     // a conflict: the leader wins
        }
        persist_entry(e);
        remember_config(e);
        log_.append(e);
        if (e.kind == entry_kind::config) recompute_members();
    }
    const log_index last_new = m.prev_index + m.entries.size();
    accept_leader_commit(std::min(m.commit, last_new));
    r.index = last_new;
    send(std::move(r));
}

void raft::on_heartbeat(time_ns now, const raft_message& m) {
    heard_from_leader(now, m.from);
    accept_leader_commit(std::min(m.commit, log_.last_index()));
    raft_message r = message_to(m.from, message_kind::heartbeat_reply);
    r.context = m.context;
    send(std::move(r));
}

void raft::accept_leader_commit(log_index commit) {
    if (commit > state_.commit) state_.commit = commit;
}

}  // namespace ringmesh::replication
