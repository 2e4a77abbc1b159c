// Roles and elections: pre-vote, votes, check-quorum, leader stickiness, timeout-now, and a
// healthy leader catching up past a higher term it hears from its own group.
#include <algorithm>

#include "engine/replication/raft.h"

namespace ringmesh::replication {

void raft::reset_election_deadline(time_ns now) {
    election_deadline_ =
        now + random_.between(config_.election_timeout_min, config_.election_timeout_max);
}

bool raft::in_leader_lease(time_ns now) const noexcept {
    if (!config_.check_quorum) return false;
    if (role_ == raft_role::leader) return quorum_active(now);
    return leader_ != no_node && last_leader_contact_ >= 0 &&
           now - last_leader_contact_ < config_.election_timeout_min;
}

bool raft::quorum_active(time_ns now) const {
    std::size_t active = 0;
    for (node_id v : members_.voters) {
        if (v == config_.id) {
            ++active;
            continue;
        }
        auto it = progress_.find(v);
        if (it != progress_.end() && now - it->second.last_heard < config_.election_timeout_min)
            ++active;
    }
    return active >= members_.quorum();
}

bool raft::on_higher_term(time_ns now, const raft_message& m) {
    const bool vote = m.kind == message_kind::vote_request;
    if (vote && !m.transfer && in_leader_lease(now)) {
        // Stickiness: while a leader is heard, a candidate that cannot hear it is the one cut
        // off, and its election would only disrupt the group.
        ++stats_.votes_ignored_in_lease;
        return false;
    }
    if (vote && m.pre_vote) return true;  // a pre-vote never changes our term
    if (m.kind == message_kind::vote_reply && m.pre_vote && !m.reject) return true;
    const bool reply = m.kind == message_kind::append_reply ||
                       m.kind == message_kind::heartbeat_reply ||
                       m.kind == message_kind::snapshot_reply;
    if (role_ == raft_role::leader && reply && members_.contains(m.from) && !timeout_now_sent_ &&
        quorum_active(now)) {
        // A member rejoined with a term it raised alone while the majority kept following
        // us. Plain Raft would step down and leave the group leaderless for an election
        // timeout; campaigning past its term at once keeps the same leader, because the
        // majority that follows us grants the vote (the transfer flag lifts their stickiness)
        // and our log is at least as up to date as theirs.
        ++stats_.term_catch_ups;
        become_follower(now, m.term, no_node);
        become_candidate(now, true);
        return false;
    }
    const bool from_leader = m.kind == message_kind::append || m.kind == message_kind::heartbeat ||
                             m.kind == message_kind::snapshot;
    become_follower(now, m.term, from_leader ? m.from : no_node);
    return true;
}

void raft::become_follower(time_ns now, term_t term, node_id leader) {
    if (term != state_.term) set_hard_state(term, no_node);
    if (role_ == raft_role::leader || leader != leader_) fail_pending_reads();
    role_ = raft_role::follower;
    leader_ = leader;
    if (leader != no_node) last_leader_contact_ = now;
    votes_.clear();
    progress_.clear();
    transfer_target_ = no_node;
    timeout_now_sent_ = false;
    round_wanted_ = false;
    round_sent_at_.clear();
    reset_election_deadline(now);
}

void raft::heard_from_leader(time_ns now, node_id leader) {
    // A candidate (or pre-candidate) that hears this term's leader follows it.
    if (role_ != raft_role::follower) become_follower(now, state_.term, leader);
    leader_ = leader;
    last_leader_contact_ = now;
    reset_election_deadline(now);
}

void raft::campaign(time_ns now, bool pre_vote, bool transfer) {
    if (pre_vote) {
        become_pre_candidate(now);
    } else {
        become_candidate(now, transfer);
    }
}

namespace {

std::size_t count_votes(const std::unordered_map<node_id, bool>& votes, bool granted) {
    return static_cast<std::size_t>(std::count_if(
        votes.begin(), votes.end(), [granted](const auto& v) { return v.second == granted; }));
}

}  // namespace

bool raft::start_candidacy(time_ns now) {
    fail_pending_reads();
    leader_ = no_node;
    progress_.clear();
    votes_.clear();
    votes_[config_.id] = true;
    reset_election_deadline(now);
    return count_votes(votes_, true) >= members_.quorum();
}

void raft::request_votes(term_t term, bool pre_vote, bool transfer) {
    for (node_id v : members_.voters) {
        if (v == config_.id) continue;
        raft_message m = message_to(v, message_kind::vote_request);
        m.term = term;
        m.pre_vote = pre_vote;
        m.transfer = transfer;
        m.last_log_index = log_.last_index();
        m.last_log_term = log_.last_term();
        send(std::move(m));
    }
}

void raft::become_pre_candidate(time_ns now) {
    role_ = raft_role::pre_candidate;
    ++stats_.pre_votes_started;
    if (start_candidacy(now)) {
        become_candidate(now, false);
        return;
    }
    request_votes(state_.term + 1, true, false);  // the term it would campaign in; ours stays
}

void raft::become_candidate(time_ns now, bool transfer) {
    role_ = raft_role::candidate;
    set_hard_state(state_.term + 1, config_.id);
    ++stats_.elections_started;
    if (start_candidacy(now)) {
        become_leader(now);
        return;
    }
    request_votes(state_.term, false, transfer);
}

void raft::become_leader(time_ns now) {
    role_ = raft_role::leader;
    leader_ = config_.id;
    votes_.clear();
    progress_.clear();
    for (node_id id : members_.voters) {
        if (id == config_.id) continue;
        follower_progress& p = progress_[id];
        p.next = log_.last_index() + 1;
        p.last_heard = now;  // a grace period before check-quorum may count it absent
    }
    for (node_id id : members_.learners) {
        if (id == config_.id) continue;
        follower_progress& p = progress_[id];
        p.next = log_.last_index() + 1;
        p.last_heard = now;
    }
    committed_in_term_ = false;
    transfer_target_ = no_node;
    timeout_now_sent_ = false;
    lease_from_round_ = round_ + 1;
    round_sent_at_.clear();
    heartbeat_deadline_ = now + config_.heartbeat_interval;
    quorum_check_at_ = now + config_.election_timeout_min;
    ++stats_.elections_won;
    // An entry of its own term: only such an entry commits (§5.4.2), and with it everything
    // before; reads and membership changes wait for it.
    append_own(now, entry_kind::no_op, {});
    maybe_commit(now);
}

void raft::on_vote_request(time_ns now, const raft_message& m) {
    const bool can_vote = state_.voted_for == m.from ||
                          (state_.voted_for == no_node && leader_ == no_node) ||
                          (m.pre_vote && m.term > state_.term);
    const bool grant = can_vote && log_.is_up_to_date(m.last_log_index, m.last_log_term);
    raft_message r = message_to(m.from, message_kind::vote_reply);
    r.pre_vote = m.pre_vote;
    r.reject = !grant;
    // A granted pre-vote carries the term asked about, so the pre-candidate does not take it
    // for a stale reply; a refusal carries ours, which may teach it a newer term.
    if (grant && m.pre_vote) r.term = m.term;
    if (grant && !m.pre_vote) {
        set_hard_state(state_.term, m.from);
        reset_election_deadline(now);
    }
    send(std::move(r));
}

void raft::on_vote_reply(time_ns now, const raft_message& m) {
    const raft_role wanted = m.pre_vote ? raft_role::pre_candidate : raft_role::candidate;
    if (role_ != wanted || !members_.is_voter(m.from)) return;
    votes_[m.from] = !m.reject;
    if (count_votes(votes_, true) >= members_.quorum()) {
        if (m.pre_vote) {
            become_candidate(now, false);
        } else {
            become_leader(now);
        }
    } else if (members_.voters.size() - count_votes(votes_, false) < members_.quorum()) {
        become_follower(now, state_.term, no_node);
    }
}

void raft::on_timeout_now(time_ns now, const raft_message& m) {
    if (role_ == raft_role::leader || !members_.is_voter(config_.id)) return;
    leader_ = m.from;
    become_candidate(now, true);
}

}  // namespace ringmesh::replication
