// Linearizable reads. Read index: note the commit index, then prove leadership with a
// heartbeat round a majority acknowledges; the read is served once that index is applied.
// Lease: every heartbeat round is one; a round acknowledged by a majority keeps them from
// voting for anyone else (stickiness) for election_timeout_min after they received it, so the
// leader may answer alone until that time minus the clock-drift allowance.
#include <algorithm>

#include "engine/replication/raft.h"

namespace ringmesh::replication {

raft_status raft::read_index(time_ns now, std::uint64_t request) {
    (void)now;
    if (role_ != raft_role::leader) return raft_status::not_leader;
    if (!committed_in_term_) {
        // Until an entry of this term commits, our commit index may trail the group's.
        reads_waiting_for_term_.push_back(request);
        return raft_status::ok;
    }
    reads_.push_back({request, state_.commit, round_ + 1});
    round_wanted_ = true;  // one round for every read of this step, sent by take_ready
    return raft_status::ok;
}

std::optional<log_index> raft::lease_read(time_ns now) {
    // Once this term's leader has told anyone to campaign, a voter may grant that campaign
    // (it carries the transfer flag, which lifts stickiness) at any time, however late the
    // message: no lease holds for the rest of the term. (The simulator found a stale leader
    // answering from its lease after a delayed transfer elected another.)
    if (role_ != raft_role::leader || config_.lease_clock_drift <= 0 || !committed_in_term_ ||
        transfer_target_ != no_node || timeout_now_sent_ || !config_.check_quorum)
        return std::nullopt;
    const std::uint64_t round = quorum_round();
    if (round < lease_from_round_) return std::nullopt;
    auto it = std::find_if(round_sent_at_.begin(), round_sent_at_.end(),
                           [round](const auto& r) { return r.first == round; });
    if (it == round_sent_at_.end()) return std::nullopt;
    const auto lease = static_cast<time_ns>(static_cast<double>(config_.election_timeout_min) *
                                            (1.0 - config_.lease_clock_drift));
    if (now >= it->second + lease) return std::nullopt;
    ++stats_.lease_reads;
    return state_.commit;
}

std::uint64_t raft::quorum_round() const {
    return quorum_value(round_, &follower_progress::acked_round);
}

void raft::on_read_round_acked(time_ns now) {
    (void)now;
    const std::uint64_t round = quorum_round();
    while (!reads_.empty() && reads_.front().round <= round) {
        pending_.reads.push_back({reads_.front().request, raft_status::ok, reads_.front().index});
        ++stats_.reads_served;
        reads_.pop_front();
    }
    // Keep the send time of the acknowledged round (the lease's start) and those after it.
    while (round_sent_at_.size() > 1 && round_sent_at_[1].first <= round)
        round_sent_at_.pop_front();
}

void raft::fail_pending_reads() {
    for (const pending_read& r : reads_)
        pending_.reads.push_back({r.request, raft_status::not_leader, 0});
    for (std::uint64_t request : reads_waiting_for_term_)
        pending_.reads.push_back({request, raft_status::not_leader, 0});
    reads_.clear();
    reads_waiting_for_term_.clear();
}

void raft::release_reads_waiting_for_term(time_ns now) {
    std::vector<std::uint64_t> waiting = std::exchange(reads_waiting_for_term_, {});
    for (std::uint64_t request : waiting)
        read_index(now, request);
}

}  // namespace ringmesh::replication
