// The router: start-up from recovered state, message dispatch by kind and term, ticks,
// proposals, and the ready that carries a step's results out under the persistence contract.
// Elections, replication, snapshots, membership and reads live in their own files.
#include "engine/replication/raft.h"

#include <algorithm>

#include "engine/core/assert.h"

namespace ringmesh::replication {

const char* to_string(raft_role role) noexcept {
    switch (role) {
        case raft_role::follower:
            return "follower";
        case raft_role::pre_candidate:
            return "pre-candidate";
        case raft_role::candidate:
            return "candidate";
        case raft_role::leader:
            return "leader";
    }
    return "?";
}

const char* to_string(raft_status status) noexcept {
    switch (status) {
        case raft_status::ok:
            return "ok";
        case raft_status::not_leader:
            return "not-leader";
        case raft_status::transferring:
            return "transferring";
        case raft_status::change_pending:
            return "change-pending";
        case raft_status::invalid_change:
            return "invalid-change";
        case raft_status::too_large:
            return "too-large";
        case raft_status::no_leader_yet:
            return "no-leader-yet";
    }
    return "?";
}

const char* to_string(message_kind kind) noexcept {
    switch (kind) {
        case message_kind::vote_request:
            return "vote-request";
        case message_kind::vote_reply:
            return "vote-reply";
        case message_kind::append:
            return "append";
        case message_kind::append_reply:
            return "append-reply";
        case message_kind::heartbeat:
            return "heartbeat";
        case message_kind::heartbeat_reply:
            return "heartbeat-reply";
        case message_kind::snapshot:
            return "snapshot";
        case message_kind::snapshot_reply:
            return "snapshot-reply";
        case message_kind::timeout_now:
            return "timeout-now";
    }
    return "?";
}

raft::raft(raft_config config, raft_recovered recovered, time_ns now)
    : config_(std::move(config)), random_(config_.rng_seed) {
    RM_ASSERT(config_.id != no_node, "a replica needs an id");
    RM_ASSERT(config_.election_timeout_min > config_.heartbeat_interval &&
                  config_.election_timeout_max >= config_.election_timeout_min,
              "election timeouts must exceed the heartbeat interval");
    snapshot_members_ = config_.initial_members;
    if (recovered.snapshot) {
        snapshot_ = recovered.snapshot;
        snapshot_members_ = snapshot_->members;
        log_.reset(snapshot_->index, snapshot_->term);
        applied_ = snapshot_->index;
    }
    // The log continues the snapshot only where it agrees with it: the snapshot may hold
    // entries this replica applied before they were durable here, and whatever the disk kept
    // after them may be an older term's suffix that was being replaced.
    // The entries are contiguous: look at the first one at or past the base.
    const auto first =
        std::find_if(recovered.entries.begin(), recovered.entries.end(),
                     [this](const log_entry& e) { return e.index >= log_.base_index(); });
    const bool continues = first != recovered.entries.end() &&
                           (first->index == log_.base_index() + 1 ||
                            (first->index == log_.base_index() && first->term == log_.base_term()));
    if (!continues) recovered.entries.clear();
    for (log_entry& e : recovered.entries) {
        if (e.index <= log_.base_index()) continue;
        remember_config(e);
        log_.append(std::move(e));
    }
    recompute_members();
    state_ = recovered.state;
    state_.commit = std::clamp(state_.commit, log_.base_index(), log_.last_index());
    saved_state_ = state_;
    stable_index_ = log_.last_index();
    become_follower(now, state_.term, no_node);
}

raft_message raft::message_to(node_id to, message_kind kind) const {
    raft_message m;
    m.kind = kind;
    m.group = config_.group;
    m.from = config_.id;
    m.to = to;
    m.term = state_.term;
    return m;
}

void raft::send(raft_message m) {
    switch (m.kind) {
        case message_kind::append:
        case message_kind::heartbeat:
        case message_kind::snapshot:
        case message_kind::timeout_now:
            // The leader's traffic depends on nothing it has yet to persist.
            pending_.messages.push_back(std::move(m));
            return;
        default:
            // Votes, vote requests and acknowledgements speak for state that must be durable
            // first: they wait for the ready being built now.
            held_.emplace_back(persist_seq_ + 1, std::move(m));
            return;
    }
}

void raft::set_hard_state(term_t term, node_id voted_for) {
    state_.term = term;
    state_.voted_for = voted_for;
    if (state_.term != saved_state_.term || state_.voted_for != saved_state_.voted_for)
        dirty_ = true;
}

void raft::remember_config(const log_entry& e) {
    if (e.kind != entry_kind::config) return;
    std::optional<group_members> m = decode_members(e.data);
    RM_ASSERT(m.has_value(), "a config entry in the log does not decode");
    member_history_.emplace_back(e.index, std::move(*m));
}

void raft::persist_entry(const log_entry& e) {
    pending_.entries.push_back(e);
    dirty_ = true;
}

void raft::truncate_log_from(log_index index) {
    RM_ASSERT(index > state_.commit, "a committed entry would be truncated");
    log_.truncate_from(index);
    std::erase_if(pending_.entries, [index](const log_entry& e) { return e.index >= index; });
    stable_index_ = std::min(stable_index_, index - 1);
    for (auto& [seq, last] : unpersisted_)
        last = std::min(last, index - 1);
    const auto before = member_history_.size();
    std::erase_if(member_history_, [index](const auto& h) { return h.first >= index; });
    if (member_history_.size() != before) recompute_members();
}

std::uint64_t raft::quorum_value(std::uint64_t own, std::uint64_t follower_progress::*field) const {
    if (members_.voters.empty()) return 0;
    std::vector<std::uint64_t> values;
    values.reserve(members_.voters.size());
    for (node_id v : members_.voters) {
        if (v == config_.id) {
            values.push_back(own);
        } else if (const follower_progress* p = progress_of(v)) {
            values.push_back(p->*field);
        } else {
            values.push_back(0);  // a voter we have not heard from yet
        }
    }
    // The quorum-th largest: a majority of voters holds at least this much.
    std::nth_element(values.begin(),
                     values.begin() + static_cast<std::ptrdiff_t>(members_.quorum() - 1),
                     values.end(), std::greater<>());
    return values[members_.quorum() - 1];
}

follower_progress* raft::progress_for(node_id id) {
    auto it = progress_.find(id);
    return it == progress_.end() ? nullptr : &it->second;
}

const follower_progress* raft::progress_of(node_id id) const {
    auto it = progress_.find(id);
    return it == progress_.end() ? nullptr : &it->second;
}

void raft::on_message(time_ns now, const raft_message& m) {
    if (m.group != config_.group || m.to != config_.id || m.from == config_.id) {
        ++stats_.stale_messages;
        return;
    }
    if (m.term > state_.term) {
        if (!on_higher_term(now, m)) return;
    } else if (m.term < state_.term) {
        ++stats_.stale_messages;
        if (m.kind == message_kind::append || m.kind == message_kind::heartbeat ||
            m.kind == message_kind::snapshot) {
            // A leader of an older term: our term tells it to step down (or, when it still
            // leads a majority, to catch up past it).
            raft_message r = message_to(m.from, message_kind::append_reply);
            r.reject = true;
            send(std::move(r));
        } else if (m.kind == message_kind::vote_request && m.pre_vote) {
            raft_message r = message_to(m.from, message_kind::vote_reply);
            r.pre_vote = true;
            r.reject = true;
            send(std::move(r));
        }
        return;
    }
    switch (m.kind) {
        case message_kind::vote_request:
            on_vote_request(now, m);
            return;
        case message_kind::vote_reply:
            on_vote_reply(now, m);
            return;
        case message_kind::append:
            on_append(now, m);
            return;
        case message_kind::append_reply:
            on_append_reply(now, m);
            return;
        case message_kind::heartbeat:
            on_heartbeat(now, m);
            return;
        case message_kind::heartbeat_reply:
            on_heartbeat_reply(now, m);
            return;
        case message_kind::snapshot:
            on_snapshot(now, m);
            return;
        case message_kind::snapshot_reply:
            on_snapshot_reply(now, m);
            return;
        case message_kind::timeout_now:
            on_timeout_now(now, m);
            return;
    }
}

void raft::on_tick(time_ns now) {
    if (role_ != raft_role::leader) {
        if (now < election_deadline_) return;
        if (members_.is_voter(config_.id)) {
            campaign(now, config_.pre_vote, false);
        } else {
            reset_election_deadline(now);  // learners and removed replicas never campaign
        }
        return;
    }
    if (now >= heartbeat_deadline_) {
        heartbeat_deadline_ = now + config_.heartbeat_interval;
        broadcast_heartbeats(now, ++round_);
    }
    if (config_.check_quorum && now >= quorum_check_at_) {
        if (!quorum_active(now)) {
            ++stats_.check_quorum_step_downs;
            become_follower(now, state_.term, no_node);
            return;
        }
        quorum_check_at_ = now + config_.election_timeout_min;
    }
    if (transfer_target_ != no_node && now >= transfer_deadline_) abort_transfer(now);
    restart_stalled_snapshots(now);
}

time_ns raft::next_deadline() const noexcept {
    if (role_ != raft_role::leader) return election_deadline_;
    time_ns at = heartbeat_deadline_;
    if (config_.check_quorum) at = std::min(at, quorum_check_at_);
    if (transfer_target_ != no_node) at = std::min(at, transfer_deadline_);
    for (const auto& [id, p] : progress_) {
        if (p.state == follower_progress::mode::snapshot)
            at = std::min(at, p.snapshot_progress_at + config_.election_timeout_min);
    }
    return at;
}

propose_result raft::propose(time_ns now, std::span<const std::byte> data) {
    propose_result r;
    r.leader_hint = leader_;
    if (role_ != raft_role::leader) {
        r.status = raft_status::not_leader;
    } else if (transfer_target_ != no_node) {
        r.status = raft_status::transferring;
    } else if (data.size() > config_.max_entry_bytes) {
        r.status = raft_status::too_large;
    }
    if (r.status != raft_status::ok) {
        ++stats_.proposals_refused;
        return r;
    }
    ++stats_.proposals;
    append_own(now, entry_kind::command, {data.begin(), data.end()});
    r.index = log_.last_index();
    r.term = state_.term;
    return r;
}

void raft::on_persisted(time_ns now, std::uint64_t persist_seq) {
    RM_ASSERT(persist_seq <= persist_seq_, "persisted a ready that was never handed out");
    persisted_seq_ = std::max(persisted_seq_, persist_seq);
    while (!unpersisted_.empty() && unpersisted_.front().first <= persisted_seq_) {
        stable_index_ = std::max(stable_index_, unpersisted_.front().second);
        unpersisted_.erase(unpersisted_.begin());
    }
    stable_index_ = std::min(stable_index_, log_.last_index());
    if (role_ == raft_role::leader) maybe_commit(now);
}

void raft::collect_committed(raft_ready& ready) {
    if (snapshot_to_apply_) {
        if (snapshot_to_apply_seq_ > persisted_seq_) return;  // not durable yet
        ready.apply_snapshot = *snapshot_to_apply_;
        applied_ = std::max(applied_, snapshot_to_apply_->index);
        snapshot_to_apply_.reset();
    }
    const log_index limit = std::min(state_.commit, log_.last_index());
    for (log_index i = std::max(applied_ + 1, log_.first_index()); i <= limit; ++i)
        ready.committed.push_back(log_.at(i));
    applied_ = std::max(applied_, limit);
}

void raft::release_held_messages(raft_ready& ready) {
    for (auto& [seq, m] : held_) {
        if (seq > persist_seq_) seq = persist_seq_;  // nothing new to persist: the last ready
    }
    while (!held_.empty() && held_.front().first <= persisted_seq_) {
        ready.messages.push_back(std::move(held_.front().second));
        held_.pop_front();
    }
}

raft_ready raft::take_ready(time_ns now) {
    if (role_ == raft_role::leader) {
        if (round_wanted_) {
            round_wanted_ = false;
            heartbeat_deadline_ = now + config_.heartbeat_interval;
            broadcast_heartbeats(now, ++round_);
        }
        broadcast_appends(now);
    }
    if (dirty_) {
        dirty_ = false;
        pending_.persist_seq = ++persist_seq_;
        pending_.state = state_;
        saved_state_ = state_;
        if (!pending_.entries.empty())
            unpersisted_.emplace_back(persist_seq_, pending_.entries.back().index);
    }
    collect_committed(pending_);
    release_held_messages(pending_);
    return std::exchange(pending_, {});
}

}  // namespace ringmesh::replication
