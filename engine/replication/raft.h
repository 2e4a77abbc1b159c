// One replica of one Raft group, sans-I/O: it consumes messages and time (on_message,
// on_tick) and requests (propose, change_members, transfer_leadership, read_index), and after
// each step the caller takes a raft_ready out of it: what to persist, what to send, what to
// apply. It never touches a disk, a socket or a clock, so the simulator runs whole clusters in
// one thread and a seed replays a run exactly (tests/sim/harness/raft_sim.h).
//
// What it implements, and the rule each part keeps:
//   - Elections with pre-vote (a node that cannot win does not raise its term), check-quorum
//     (a leader that has not heard from a majority within election_timeout_min steps down)
//     and leader stickiness (a voter that heard from a leader within election_timeout_min
//     ignores vote requests). A leader that is healthy but hears a higher term from a member
//     of its group (one that rejoins after raising its term alone) campaigns again at once at
//     that term + 1 with the transfer flag and wins, since a majority still follows it: the
//     group keeps its leader instead of waiting out an election.
//   - Replication pipelined per follower (probe, replicate and snapshot states; a bounded
//     window of appends in flight), batched (one append per follower per step carries every
//     proposal of the step), with fast backtracking from the follower's hint. The leader
//     persists its own entries in parallel with sending them; it counts itself towards a
//     commit only once its storage says they are durable (on_persisted).
//   - Snapshots: the application takes them when it likes (snapshot_taken), without blocking
//     anything here; the log behind them is compacted. A follower too far behind receives the
//     latest one in chunks, a bounded window in flight, while heartbeats keep flowing; a
//     transfer that stalls (the follower restarted) starts again from offset 0.
//   - Membership changes one server at a time, learners that catch up before promotion,
//     leadership transfer with a deadline (proposals resume if it fails).
//   - Linearizable reads by read index (a heartbeat round acknowledged by a majority) and
//     lease reads, valid for election_timeout_min × (1 − lease_clock_drift) after the send time
//     of the latest round a majority acknowledged: the bound on how much faster a follower's
//     clock may run than the leader's is that configurable drift. A leader that has sent
//     timeout-now (a transfer) gives up lease reads for the rest of its term.
//
// Persistence contract: a ready with persist_seq != 0 holds state to make durable (hard state,
// entries, a snapshot). Messages that depend on it (vote grants, append acknowledgements,
// vote requests) are held inside the core until the caller reports on_persisted(persist_seq);
// they come out in a later ready. The leader's appends and heartbeats leave at once.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/core/clock.h"
#include "engine/core/random.h"
#include "engine/replication/raft_log.h"
#include "engine/replication/raft_types.h"

namespace ringmesh::replication {

enum class raft_role : std::uint8_t { follower, pre_candidate, candidate, leader };
const char* to_string(raft_role role) noexcept;

struct raft_config {
    node_id id = no_node;
    group_id group = 0;
    /// The members of a brand-new group (every initial replica is given the same list). A
    /// replica that joins an existing group later starts with an empty list and learns the
    /// configuration from the leader's log or snapshot.
    group_members initial_members;

    time_ns heartbeat_interval = 50 * ns_per_ms;
    /// Election timeouts are drawn uniformly from [min, max]. min is also the leader-stickiness
    /// window of voters and the check-quorum period of leaders.
    time_ns election_timeout_min = 300 * ns_per_ms;
    time_ns election_timeout_max = 600 * ns_per_ms;
    bool pre_vote = true;
    bool check_quorum = true;

    std::size_t max_inflight_appends = 64;  ///< per follower in the replicate state
    std::size_t max_append_entries = 1024;  ///< per append message
    // With the defaults, the largest message (raft_host checks it) fits the messaging
    // endpoint's default 1 MiB frame: raise them together with its max_body_bytes.
    /// Entry data per append (a single entry may be larger).
    std::size_t max_append_bytes = std::size_t{256} * 1024;
    /// A larger proposal is refused as too_large.
    std::size_t max_entry_bytes = std::size_t{512} * 1024;

    std::uint32_t snapshot_chunk_bytes = 256 * 1024;
    std::size_t max_inflight_snapshot_chunks = 4;
    /// Entries kept behind a snapshot so that a follower slightly behind catches up from the
    /// log instead of a whole snapshot.
    log_index snapshot_trailing_entries = 1024;
    /// A learner is promoted only when at most this many entries behind the leader.
    log_index max_promotion_lag = 64;

    /// Lease reads: the bound on how much faster (as a fraction) any follower's clock may run
    /// than the leader's. 0 disables lease reads.
    double lease_clock_drift = 0.1;

    std::uint64_t rng_seed = 1;  ///< election timeout jitter
};

/// What a replica recovered from its storage at start-up.
struct raft_recovered {
    hard_state state;
    std::optional<snapshot_meta> snapshot;
    std::vector<log_entry> entries;  ///< those after the snapshot, in order
};

enum class raft_status : std::uint8_t {
    ok,
    not_leader,      ///< ask `leader_hint`, if any
    transferring,    ///< a leadership transfer is under way; retry after it
    change_pending,  ///< a membership change is not yet committed
    invalid_change,  ///< not a member, already one, the last voter, a lagging learner
    too_large,       ///< over max_entry_bytes
    no_leader_yet,   ///< the new leader has not committed an entry of its term yet
};
const char* to_string(raft_status status) noexcept;

struct propose_result {
    raft_status status = raft_status::ok;
    /// ok: the entry's position. It is committed (and acknowledged) when the entry applied
    /// at `index` has this `term`; a different term there means it was lost with a leader.
    log_index index = 0;
    term_t term = 0;
    node_id leader_hint = no_node;
};

/// A read that may proceed once the state machine has applied `index`.
struct read_result {
    std::uint64_t request = 0;
    raft_status status = raft_status::ok;  ///< not_leader: the leader changed before it was safe
    log_index index = 0;
};

/// Everything a step produced. Persist, then send and apply.
///
/// Storage writes a ready's parts in this order: entries, snapshot chunks, then the hard
/// state. The state's commit index may point at entries of the same ready; a crash keeps
/// at most a prefix of unsynced writes (a torn tail), so a commit index that survives must
/// find its entries before it. (The simulator found the opposite order applying a stale
/// entry after a torn write.)
struct raft_ready {
    /// Non-zero when something below must be made durable; report on_persisted(persist_seq)
    /// once it is (in persist_seq order).
    std::uint64_t persist_seq = 0;
    std::optional<hard_state> state;
    /// Entries to append; where the first one's index is already on disk the storage drops
    /// everything from there on first.
    std::vector<log_entry> entries;
    /// Received snapshot chunks to write (offset 0 starts a new file). The storage makes the
    /// snapshot current when it writes the last chunk, and drops the log entries the snapshot
    /// covers (all of them when the entry at its index has another term).
    std::vector<raft_message> snapshot_chunks;
    /// The storage may drop entries through this index (an application snapshot covers them).
    log_index compact_through = 0;

    std::vector<raft_message> messages;  ///< send now
    /// Replace the state machine with this snapshot (received from the leader), then apply
    /// `committed` after it.
    std::optional<snapshot_meta> apply_snapshot;
    std::vector<log_entry> committed;  ///< apply in order
    std::vector<read_result> reads;

    bool empty() const noexcept {
        return persist_seq == 0 && messages.empty() && !apply_snapshot && committed.empty() &&
               reads.empty() && compact_through == 0;
    }
};

struct raft_stats {
    std::uint64_t pre_votes_started = 0;
    std::uint64_t elections_started = 0;
    std::uint64_t elections_won = 0;
    std::uint64_t check_quorum_step_downs = 0;
    std::uint64_t term_catch_ups = 0;  ///< healthy leader re-elected itself past a higher term
    std::uint64_t votes_ignored_in_lease = 0;
    std::uint64_t stale_messages = 0;  ///< lower term, or for another group
    std::uint64_t appends_sent = 0;
    std::uint64_t entries_sent = 0;
    std::uint64_t append_rejects = 0;  ///< received by the leader: a follower's log diverged
    /// A follower rejected entries it had acknowledged: it lost its disk (wiped, replaced).
    std::uint64_t follower_regressions = 0;
    std::uint64_t snapshots_started = 0;
    std::uint64_t snapshot_chunks_sent = 0;
    std::uint64_t snapshot_restarts = 0;  ///< a transfer that stalled started again
    std::uint64_t snapshots_installed = 0;
    std::uint64_t transfers_started = 0;
    std::uint64_t transfers_aborted = 0;
    std::uint64_t reads_served = 0;
    std::uint64_t lease_reads = 0;
    std::uint64_t proposals = 0;
    std::uint64_t proposals_refused = 0;
};

/// What a leader knows about one other replica.
struct follower_progress {
    enum class mode : std::uint8_t { probe, replicate, snapshot };
    mode state = mode::probe;
    log_index match = 0;
    log_index next = 1;
    /// probe: an append is out and unanswered; wait for its reply or the next heartbeat.
    bool probe_sent = false;
    /// replicate: the last index of each append in flight, oldest first.
    std::deque<log_index> inflight;
    time_ns last_heard = 0;         ///< check-quorum
    std::uint64_t acked_round = 0;  ///< latest heartbeat round it acknowledged

    // snapshot mode: which snapshot, what was sent and what acknowledged.
    snapshot_meta sending;
    std::uint64_t sent_offset = 0;
    std::uint64_t acked_offset = 0;
    bool snapshot_sent_all = false;
    time_ns snapshot_progress_at = 0;
};

/// One replica of one group. Owned by the shard the group is placed on; every call from that
/// shard's thread.
class raft {
  public:
    raft(raft_config config, raft_recovered recovered, time_ns now);

    /// A verified message for this group.
    void on_message(time_ns now, const raft_message& message);
    /// Runs whatever is due; call at next_deadline() or later.
    void on_tick(time_ns now);
    time_ns next_deadline() const noexcept;

    /// Appends a command (leader only).
    propose_result propose(time_ns now, std::span<const std::byte> data);
    /// Proposes one membership change (leader only). Committed like any entry.
    propose_result change_members(time_ns now, member_change change);
    /// Hands leadership to `target` (a voter): brings it up to date, then tells it to campaign.
    /// Proposals are refused (transferring) until it succeeds or election_timeout_min passes.
    raft_status transfer_leadership(time_ns now, node_id target);
    /// A linearizable read: the answer (a read_result in a later ready) says from which
    /// applied index on the read may be served.
    raft_status read_index(time_ns now, std::uint64_t request);
    /// A lease read: answered at once when the lease holds (the index to wait for);
    /// nothing when it does not (use read_index).
    std::optional<log_index> lease_read(time_ns now);

    /// What a snapshot through `index` (applied, still in the log) must record: the term there
    /// and the configuration in force. Ask before writing the snapshot file.
    snapshot_meta snapshot_meta_at(log_index index) const;
    /// The application's snapshot of everything through meta.index is durable; the log may be
    /// compacted behind it and followers too far behind get this one.
    void snapshot_taken(time_ns now, const snapshot_meta& meta);

    /// The storage made everything in the ready with this persist_seq durable.
    void on_persisted(time_ns now, std::uint64_t persist_seq);

    /// What the last steps produced; call after every batch of calls above.
    raft_ready take_ready(time_ns now);

    raft_role role() const noexcept { return role_; }
    bool is_leader() const noexcept { return role_ == raft_role::leader; }
    node_id id() const noexcept { return config_.id; }
    node_id leader() const noexcept { return leader_; }
    term_t term() const noexcept { return state_.term; }
    log_index commit_index() const noexcept { return state_.commit; }
    log_index applied_index() const noexcept { return applied_; }
    log_index last_index() const noexcept { return log_.last_index(); }
    log_index stable_index() const noexcept { return stable_index_; }
    const raft_log& log() const noexcept { return log_; }
    const group_members& members() const noexcept { return members_; }
    const hard_state& state() const noexcept { return state_; }
    const raft_stats& stats() const noexcept { return stats_; }
    const raft_config& config() const noexcept { return config_; }
    /// The leader's view of another replica (nullptr when not leader or not a member).
    const follower_progress* progress_of(node_id id) const;
    node_id transfer_target() const noexcept { return transfer_target_; }

  private:
    // raft_election.cc
    void become_follower(time_ns now, term_t term, node_id leader);
    void become_pre_candidate(time_ns now);
    void become_candidate(time_ns now, bool transfer);
    void become_leader(time_ns now);
    void campaign(time_ns now, bool pre_vote, bool transfer);
    /// The start both candidacies share: no leader, our own vote; true when it is a quorum.
    bool start_candidacy(time_ns now);
    void request_votes(term_t term, bool pre_vote, bool transfer);
    void on_vote_request(time_ns now, const raft_message& m);
    void on_vote_reply(time_ns now, const raft_message& m);
    void on_timeout_now(time_ns now, const raft_message& m);
    void reset_election_deadline(time_ns now);
    void heard_from_leader(time_ns now, node_id leader);
    bool in_leader_lease(time_ns now) const noexcept;
    bool quorum_active(time_ns now) const;
    bool on_higher_term(time_ns now, const raft_message& m);

    // raft_replication.cc: the leader's side
    void send_append(time_ns now, node_id to, follower_progress& p, bool allow_empty);
    void broadcast_appends(time_ns now);
    void broadcast_heartbeats(time_ns now, std::uint64_t round);
    void on_append_reply(time_ns now, const raft_message& m);
    void on_heartbeat_reply(time_ns now, const raft_message& m);
    void maybe_commit(time_ns now);
    void append_own(time_ns now, entry_kind kind, std::vector<std::byte> data);
    bool can_send_append(const follower_progress& p) const;
    // raft_replication.cc: the follower's side
    void on_append(time_ns now, const raft_message& m);
    void on_heartbeat(time_ns now, const raft_message& m);
    void accept_leader_commit(log_index commit);

    // raft_snapshot.cc
    void start_snapshot(time_ns now, node_id to, follower_progress& p);
    void send_snapshot_chunks(node_id to, follower_progress& p);
    void on_snapshot(time_ns now, const raft_message& m);
    void on_snapshot_reply(time_ns now, const raft_message& m);
    void restart_stalled_snapshots(time_ns now);

    // raft_members.cc
    void members_changed(time_ns now);
    void recompute_members();
    void on_transfer_progress(time_ns now, node_id from);
    void abort_transfer(time_ns now);
    void step_down_if_removed(time_ns now);

    // raft_reads.cc
    void on_read_round_acked(time_ns now);
    void fail_pending_reads();
    void release_reads_waiting_for_term(time_ns now);
    std::uint64_t quorum_round() const;

    // raft.cc
    void send(raft_message m);
    void persist_entry(const log_entry& e);
    void truncate_log_from(log_index index);
    void set_hard_state(term_t term, node_id voted_for);
    raft_message message_to(node_id to, message_kind kind) const;
    follower_progress* progress_for(node_id id);
    /// The largest value a majority of voters has reached: `own` for this replica, `field`
    /// of each other voter's progress (0 when unknown). Commit and read rounds both use it.
    std::uint64_t quorum_value(std::uint64_t own, std::uint64_t follower_progress::*field) const;
    /// A config entry entering the log: its members join the history (verified input).
    void remember_config(const log_entry& e);
    void collect_committed(raft_ready& ready);
    void release_held_messages(raft_ready& ready);

    raft_config config_;
    random_source random_;
    raft_log log_;
    hard_state state_;
    hard_state saved_state_;  ///< the state last handed to storage
    raft_role role_ = raft_role::follower;
    node_id leader_ = no_node;
    group_members members_;
    /// Where the configuration came from: the snapshot's, then one per config entry in the log
    /// (index, members), to fall back on when the log is truncated.
    group_members snapshot_members_;
    std::vector<std::pair<log_index, group_members>> member_history_;

    std::optional<snapshot_meta> snapshot_;  ///< the latest snapshot this replica holds
    /// A snapshot arriving from the leader, and the next offset expected.
    std::optional<snapshot_meta> incoming_snapshot_;
    std::uint64_t incoming_offset_ = 0;
    std::optional<snapshot_meta> snapshot_to_apply_;
    std::uint64_t snapshot_to_apply_seq_ = 0;

    log_index applied_ = 0;
    log_index stable_index_ = 0;                                    ///< durable on this replica
    std::vector<std::pair<std::uint64_t, log_index>> unpersisted_;  ///< (seq, last index)
    std::uint64_t persist_seq_ = 0;                                 ///< the last one handed out
    std::uint64_t persisted_seq_ = 0;  ///< the last one reported durable
    bool dirty_ = false;               ///< something to persist in the next ready
    raft_ready pending_;               ///< being filled by the current steps
    /// Messages waiting for a persist_seq to be durable (seq, message).
    std::deque<std::pair<std::uint64_t, raft_message>> held_;

    time_ns election_deadline_ = 0;
    time_ns heartbeat_deadline_ = 0;
    time_ns quorum_check_at_ = 0;
    time_ns last_leader_contact_ = -1;  ///< when a leader of the current term was last heard
    std::unordered_map<node_id, bool> votes_;
    std::unordered_map<node_id, follower_progress> progress_;

    node_id transfer_target_ = no_node;
    time_ns transfer_deadline_ = 0;
    /// This term's leader told someone to campaign: a higher term it hears next may be a
    /// legitimate successor's, so it does not catch up past it.
    bool timeout_now_sent_ = false;
    bool committed_in_term_ = false;
    log_index pending_change_index_ = 0;

    // read index and lease
    struct pending_read {
        std::uint64_t request = 0;
        log_index index = 0;
        std::uint64_t round = 0;
    };
    std::uint64_t round_ = 0;         ///< the latest heartbeat round sent
    bool round_wanted_ = false;       ///< a read asked for a round this step
    std::deque<pending_read> reads_;  ///< waiting for their round
    std::vector<std::uint64_t> reads_waiting_for_term_;
    std::deque<std::pair<std::uint64_t, time_ns>> round_sent_at_;
    std::uint64_t lease_from_round_ = 0;  ///< rounds before this one may not back a lease

    raft_stats stats_;
};

}  // namespace ringmesh::replication
