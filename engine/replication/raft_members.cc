// Membership: single-server changes (a configuration takes effect when appended, the next
// waits for its commit), learners promoted once caught up, and leadership transfer with a
// deadline.
#include <algorithm>
#include <cstring>
#include <unordered_set>

#include "engine/replication/raft.h"

namespace ringmesh::replication {

namespace {

void put_u32(std::vector<std::byte>& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i)
        out.push_back(static_cast<std::byte>(v >> (8 * i)));
}

void put_u64(std::vector<std::byte>& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i)
        out.push_back(static_cast<std::byte>(v >> (8 * i)));
}

template <typename T>
bool take(std::span<const std::byte>& in, T& v) {
    if (in.size() < sizeof(T)) return false;
    v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i)
        v |= static_cast<T>(std::to_integer<std::uint8_t>(in[i])) << (8 * i);
    in = in.subspan(sizeof(T));
    return true;
}

bool take_ids(std::span<const std::byte>& in, std::vector<node_id>& out,
              std::unordered_set<node_id>& seen) {
    std::uint32_t count = 0;
    if (!take(in, count) || count > max_group_members || in.size() < std::size_t{count} * 8)
        return false;
    for (std::uint32_t i = 0; i < count; ++i) {
        node_id id = 0;
        take(in, id);
        if (id == no_node || !seen.insert(id).second) return false;
        out.push_back(id);
    }
    return true;
}

}  // namespace

std::vector<std::byte> encode_members(const group_members& members) {
    std::vector<std::byte> out;
    out.reserve(8 + 8 * (members.voters.size() + members.learners.size()));
    put_u32(out, static_cast<std::uint32_t>(members.voters.size()));
    for (node_id id : members.voters)
        put_u64(out, id);
    put_u32(out, static_cast<std::uint32_t>(members.learners.size()));
    for (node_id id : members.learners)
        put_u64(out, id);
    return out;
}

std::optional<group_members> decode_members(std::span<const std::byte> bytes) {
    group_members m;
    std::unordered_set<node_id> seen;
    if (!take_ids(bytes, m.voters, seen) || !take_ids(bytes, m.learners, seen) || !bytes.empty())
        return std::nullopt;
    if (m.voters.size() + m.learners.size() > max_group_members) return std::nullopt;
    return m;
}

void raft::recompute_members() {
    members_ = member_history_.empty() ? snapshot_members_ : member_history_.back().second;
}

void raft::members_changed(time_ns now) {
    recompute_members();
    if (role_ != raft_role::leader) return;
    std::erase_if(progress_, [this](const auto& p) { return !members_.contains(p.first); });
    auto add = [&](node_id id) {
        if (id == config_.id || progress_.contains(id)) return;
        follower_progress& p = progress_[id];
        p.next = log_.last_index() + 1;
        p.last_heard = now;
    };
    for (node_id id : members_.voters)
        add(id);
    for (node_id id : members_.learners)
        add(id);
    if (transfer_target_ != no_node && !members_.is_voter(transfer_target_)) abort_transfer(now);
    maybe_commit(now);
}

propose_result raft::change_members(time_ns now, member_change change) {
    propose_result r;
    r.leader_hint = leader_;
    group_members next = members_;
    if (role_ != raft_role::leader) {
        r.status = raft_status::not_leader;
    } else if (transfer_target_ != no_node) {
        r.status = raft_status::transferring;
    } else if (!committed_in_term_) {
        // A leader first commits an entry of its own term: without it, a change could be
        // decided against a configuration a previous leader was still replacing.
        r.status = raft_status::no_leader_yet;
    } else if (pending_change_index_ > state_.commit) {
        r.status = raft_status::change_pending;
    } else {
        const follower_progress* p = progress_of(change.node);
        switch (change.what) {
            case member_change::kind::add_learner:
                if (change.node == no_node || members_.contains(change.node)) {
                    r.status = raft_status::invalid_change;
                } else {
                    next.learners.push_back(change.node);
                }
                break;
            case member_change::kind::promote:
                if (!members_.is_learner(change.node) || p == nullptr ||
                    p->match + config_.max_promotion_lag < log_.last_index()) {
                    r.status = raft_status::invalid_change;
                } else {
                    std::erase(next.learners, change.node);
                    next.voters.push_back(change.node);
                }
                break;
            case member_change::kind::remove:
                if (!members_.contains(change.node) ||
                    (members_.is_voter(change.node) && members_.voters.size() == 1)) {
                    r.status = raft_status::invalid_change;
                } else {
                    std::erase(next.voters, change.node);
                    std::erase(next.learners, change.node);
                }
                break;
        }
    }
    if (r.status != raft_status::ok) {
        ++stats_.proposals_refused;
        return r;
    }
    append_own(now, entry_kind::config, encode_members(next));
    pending_change_index_ = log_.last_index();
    r.index = log_.last_index();
    r.term = state_.term;
    return r;
}

void raft::step_down_if_removed(time_ns now) {
    if (role_ == raft_role::leader && !members_.is_voter(config_.id) &&
        pending_change_index_ <= state_.commit) {
        become_follower(now, state_.term, no_node);
    }
}

raft_status raft::transfer_leadership(time_ns now, node_id target) {
    if (role_ != raft_role::leader) return raft_status::not_leader;
    if (target == config_.id) return raft_status::ok;
    if (!members_.is_voter(target)) return raft_status::invalid_change;
    if (transfer_target_ == target) return raft_status::ok;
    transfer_target_ = target;
    transfer_deadline_ = now + config_.election_timeout_min;
    ++stats_.transfers_started;
    follower_progress* p = progress_for(target);
    if (p == nullptr) return raft_status::invalid_change;
    if (p->match >= log_.last_index()) {
        on_transfer_progress(now, target);
    } else {
        send_append(now, target, *p, true);
    }
    return raft_status::ok;
}

void raft::on_transfer_progress(time_ns now, node_id from) {
    (void)now;
    if (transfer_target_ != from) return;
    const follower_progress* p = progress_of(from);
    if (p == nullptr || p->match < log_.last_index()) return;
    // From here the target may win without the voters' stickiness: no lease read may rely
    // on a round sent before this.
    timeout_now_sent_ = true;
    lease_from_round_ = round_ + 1;
    send(message_to(from, message_kind::timeout_now));
}

void raft::abort_transfer(time_ns now) {
    (void)now;
    transfer_target_ = no_node;
    ++stats_.transfers_aborted;
}

}  // namespace ringmesh::replication
