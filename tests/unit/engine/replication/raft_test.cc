// The Raft core as scripted interactions, in the spirit of etcd's interaction tests: replicas
// on a hand-held clock and a hand-held network, each scenario a story of what is delivered,
// cut, crashed and ticked, and what the replicas must do about it.
#include "engine/replication/raft.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <set>

#include "tests/sim/harness/sim_raft_disk.h"

namespace ringmesh::replication {
namespace {

constexpr time_ns ms = ns_per_ms;

raft_config config_for(node_id id, group_members members) {
    raft_config c;
    c.id = id;
    c.group = 1;
    c.initial_members = std::move(members);
    c.heartbeat_interval = 20 * ms;
    c.election_timeout_min = 100 * ms;
    c.election_timeout_max = 200 * ms;
    c.snapshot_chunk_bytes = 64;
    c.max_inflight_snapshot_chunks = 2;
    c.snapshot_trailing_entries = 2;
    c.max_promotion_lag = 2;
    c.rng_seed = id * 7919;
    return c;
}

std::vector<std::byte> bytes_of(std::string_view s) {
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    return {p, p + s.size()};
}

// Replicas whose disks sync at once, a network that delivers what the test lets through,
// and a state machine per replica: the commands applied, in order.
class group {
  public:
    explicit group(int voters, int extra = 0) {
        for (int i = 1; i <= voters; ++i)
            members_.voters.push_back(static_cast<node_id>(i));
        for (int i = 1; i <= voters + extra; ++i)
            start(static_cast<node_id>(i), i <= voters ? members_ : group_members{});
    }

    raft& at(node_id id) { return *replicas_.at(id).node; }
    time_ns now() const { return now_; }
    /// Every entry applied, in order: commands as their text, "#config", "#no-op".
    const std::vector<std::string>& applied(node_id id) { return replicas_.at(id).applied; }
    /// The last command applied ("" when none).
    std::string last_command(node_id id) {
        const auto& a = replicas_.at(id).applied;
        for (auto it = a.rbegin(); it != a.rend(); ++it) {
            if (it->empty() || it->front() != '#') return *it;
        }
        return "";
    }

    void start(node_id id, group_members members, raft_config* custom = nullptr) {
        replica& r = replicas_[id];
        raft_config c = custom != nullptr ? *custom : config_for(id, std::move(members));
        r.node = std::make_unique<raft>(c, r.disk.recover(), now_);
        r.applied.clear();
        if (r.disk.snap) r.applied.assign(static_cast<std::size_t>(r.disk.snap->index), "?");
        r.up = true;
        flush(id);
    }
    /// A crash: the replica is gone, its disk kept (everything was synced).
    void crash(node_id id) { replicas_.at(id).up = false; }
    /// A crash that loses the disk too.
    void wipe(node_id id, group_members members) {
        replicas_.at(id).disk = {};
        start(id, std::move(members));
    }
    bool up(node_id id) const { return replicas_.at(id).up; }

    void cut(node_id a, node_id b) {
        cut_.insert({a, b});
        cut_.insert({b, a});
    }
    void isolate(node_id a) {
        for (const auto& [id, r] : replicas_) {
            if (id != a) cut(a, id);
        }
    }
    void heal() { cut_.clear(); }

    /// Everything each replica wants done, done: synced, sent, applied.
    void flush(node_id id) {
        replica& r = replicas_.at(id);
        for (int guard = 0; guard < 100 && r.up; ++guard) {
            raft_ready ready = r.node->take_ready(now_);
            if (ready.empty()) return;
            for (const sim::disk_op& op : sim::sim_disk::ops_of(ready))
                r.disk.apply(op);
            for (raft_message& m : ready.messages) {
                if (m.kind == message_kind::snapshot) {
                    const auto begin = static_cast<std::ptrdiff_t>(m.offset);
                    m.chunk.assign(r.disk.snap_bytes.begin() + begin,
                                   r.disk.snap_bytes.begin() + begin + m.chunk_bytes);
                }
                sent_.push_back(m);
                if (!cut_.contains({m.from, m.to})) wire_.push_back(std::move(m));
            }
            if (ready.apply_snapshot) {
                r.applied.assign(static_cast<std::size_t>(ready.apply_snapshot->index), "?");
                ++snapshots_applied_;
            }
            for (const log_entry& e : ready.committed) {
                EXPECT_EQ(e.index, r.applied.size() + 1) << "replica " << id << " skipped";
                if (e.kind == entry_kind::command) {
                    r.applied.emplace_back(reinterpret_cast<const char*>(e.data.data()),
                                           e.data.size());
                } else {
                    r.applied.emplace_back(e.kind == entry_kind::config ? "#config" : "#no-op");
                }
            }
            for (const read_result& read : ready.reads)
                reads_.push_back(read);
            if (ready.persist_seq != 0) r.node->on_persisted(now_, ready.persist_seq);
        }
    }

    /// Delivers messages (and whatever they cause) until the network is quiet.
    void deliver() {
        for (int guard = 0; guard < 100000 && !wire_.empty(); ++guard) {
            raft_message m = std::move(wire_.front());
            wire_.pop_front();
            replica& r = replicas_.at(m.to);
            if (!r.up || cut_.contains({m.from, m.to}) || (drop_rule_ && drop_rule_(m))) continue;
            r.node->on_message(now_, m);
            flush(m.to);
        }
    }
    /// Drops every message for which `rule` says so, until it is cleared.
    void drop_if(std::function<bool(const raft_message&)> rule) { drop_rule_ = std::move(rule); }
    /// Drops whatever is on the wire.
    void drop_all() { wire_.clear(); }

    /// Moves time on in 1 ms steps, ticking and delivering as replicas ask.
    void run_for(time_ns duration) {
        const time_ns end = now_ + duration;
        while (now_ < end) {
            now_ += ms;
            for (auto& [id, r] : replicas_) {
                if (!r.up || r.node->next_deadline() > now_) continue;
                r.node->on_tick(now_);
                flush(id);
            }
            deliver();
        }
    }
    /// Runs until `id` leads (or the time is up).
    bool run_until_leader(node_id id, time_ns limit = 3 * ns_per_s) {
        const time_ns end = now_ + limit;
        while (now_ < end && !(up(id) && at(id).is_leader()))
            run_for(ms);
        return up(id) && at(id).is_leader();
    }
    node_id leader() {
        for (auto& [id, r] : replicas_) {
            if (r.up && r.node->is_leader()) return id;
        }
        return no_node;
    }
    node_id run_until_any_leader(time_ns limit = 3 * ns_per_s) {
        const time_ns end = now_ + limit;
        while (now_ < end && leader() == no_node)
            run_for(ms);
        return leader();
    }

    propose_result propose(node_id id, std::string_view command) {
        propose_result r = at(id).propose(now_, bytes_of(command));
        flush(id);
        return r;
    }

    /// The replica takes a snapshot of what it applied (its state: the applied count).
    void snapshot(node_id id) {
        replica& r = replicas_.at(id);
        snapshot_meta meta = r.node->snapshot_meta_at(r.node->applied_index());
        r.disk.snap_bytes.assign(static_cast<std::size_t>(200 + meta.index), std::byte{0x5a});
        meta.size_bytes = r.disk.snap_bytes.size();
        r.disk.snap = meta;
        r.node->snapshot_taken(now_, meta);
        flush(id);
    }

    /// `follower` is down while `leader` commits 20 commands and snapshots past them: what
    /// it missed is no longer in the log. Returns how many of the commands were accepted.
    int leave_behind(node_id leader, node_id follower) {
        crash(follower);
        int accepted = 0;
        for (int i = 0; i < 20; ++i) {
            if (propose(leader, "c" + std::to_string(i)).status == raft_status::ok) ++accepted;
        }
        run_for(50 * ms);
        snapshot(leader);
        return accepted;
    }

    std::vector<raft_message>& sent() { return sent_; }
    std::vector<read_result>& reads() { return reads_; }
    int snapshots_applied() const { return snapshots_applied_; }
    const group_members& members() const { return members_; }

  private:
    struct replica {
        std::unique_ptr<raft> node;
        sim::sim_disk disk;
        std::vector<std::string> applied;
        bool up = true;
    };
    time_ns now_ = 0;
    group_members members_;
    std::map<node_id, replica> replicas_;
    std::deque<raft_message> wire_;
    std::vector<raft_message> sent_;
    std::set<std::pair<node_id, node_id>> cut_;
    std::vector<read_result> reads_;
    int snapshots_applied_ = 0;
    std::function<bool(const raft_message&)> drop_rule_;
};

std::size_t count_sent(group& g, message_kind kind, node_id from) {
    return static_cast<std::size_t>(
        std::count_if(g.sent().begin(), g.sent().end(),
                      [&](const raft_message& m) { return m.kind == kind && m.from == from; }));
}

TEST(RaftTest, ElectsOneLeaderAndReplicatesACommandToEveryone) {
    group g(3);
    const node_id leader = g.run_until_any_leader();
    ASSERT_NE(leader, no_node);
    const propose_result r = g.propose(leader, "x=1");
    ASSERT_EQ(r.status, raft_status::ok);
    g.run_for(100 * ms);
    for (node_id id : {1, 2, 3}) {
        ASSERT_FALSE(g.applied(id).empty()) << "replica " << id;
        EXPECT_EQ(g.last_command(id), "x=1") << "replica " << id;
        EXPECT_EQ(g.at(id).commit_index(), r.index);
    }
    EXPECT_EQ(g.at(leader == 1 ? 2 : 1).leader(), leader);
}

TEST(RaftTest, ALeaderCountsItsOwnEntryOnlyOnceItIsDurable) {
    raft node(config_for(1, {{1}, {}}), {}, 0);
    node.on_tick(500 * ms);
    raft_ready ready = node.take_ready(500 * ms);
    ASSERT_TRUE(node.is_leader());
    ASSERT_NE(ready.persist_seq, 0u);
    EXPECT_EQ(node.commit_index(), 0u) << "committed the no-op before it was durable";
    node.on_persisted(500 * ms, ready.persist_seq);
    EXPECT_EQ(node.commit_index(), 1u);
    const propose_result r = node.propose(501 * ms, bytes_of("a"));
    ready = node.take_ready(501 * ms);
    EXPECT_EQ(node.commit_index(), 1u);
    node.on_persisted(501 * ms, ready.persist_seq);
    EXPECT_EQ(node.commit_index(), r.index);
}

TEST(RaftTest, AVoteLeavesOnlyAfterItIsDurable) {
    raft node(config_for(2, {{1, 2, 3}, {}}), {}, 0);
    raft_message request;
    request.kind = message_kind::vote_request;
    request.group = 1;
    request.from = 1;
    request.to = 2;
    request.term = 1;
    node.on_message(1 * ms, request);
    raft_ready ready = node.take_ready(1 * ms);
    ASSERT_TRUE(ready.state.has_value());
    EXPECT_EQ(ready.state->voted_for, 1u);
    EXPECT_TRUE(ready.messages.empty()) << "the vote left before the vote was on disk";
    node.on_persisted(1 * ms, ready.persist_seq);
    ready = node.take_ready(1 * ms);
    ASSERT_EQ(ready.messages.size(), 1u);
    EXPECT_EQ(ready.messages[0].kind, message_kind::vote_reply);
    EXPECT_FALSE(ready.messages[0].reject);
}

TEST(RaftTest, PreVoteKeepsAnIsolatedReplicaFromRaisingItsTerm) {
    group g(3);
    const node_id leader = g.run_until_any_leader();
    const node_id lonely = leader == 3 ? 2 : 3;
    const term_t term = g.at(leader).term();
    g.isolate(lonely);
    g.run_for(2 * ns_per_s);  // ten election timeouts
    EXPECT_EQ(g.at(lonely).term(), term);
    EXPECT_GT(g.at(lonely).stats().pre_votes_started, 3u);
    EXPECT_EQ(g.at(lonely).stats().elections_started, 0u);
    g.heal();
    g.run_for(300 * ms);
    EXPECT_EQ(g.leader(), leader);
    EXPECT_EQ(g.at(leader).term(), term) << "the rejoin disturbed a healthy leader";
}

TEST(RaftTest, AHealthyLeaderKeepsLeadingWhenAReplicaRejoinsWithAHigherTerm) {
    group g(3);
    const node_id leader = g.run_until_any_leader();
    const node_id rogue = leader == 3 ? 2 : 3;
    ASSERT_EQ(g.propose(leader, "before").status, raft_status::ok);
    g.run_for(50 * ms);
    // The rogue campaigns without pre-vote while cut off: its term climbs alone.
    g.isolate(rogue);
    raft_config c = config_for(rogue, g.members());
    c.pre_vote = false;
    g.start(rogue, {}, &c);
    g.run_for(1500 * ms);
    ASSERT_GT(g.at(rogue).term(), g.at(leader).term() + 2);
    const term_t rogue_term = g.at(rogue).term();
    // It rejoins: the leader hears its term in a reply, and campaigns past it at once.
    g.heal();
    g.run_for(60 * ms);  // well under one election timeout
    EXPECT_EQ(g.leader(), leader) << "the leader was deposed";
    EXPECT_GT(g.at(leader).term(), rogue_term);
    EXPECT_EQ(g.at(leader).stats().term_catch_ups, 1u);
    ASSERT_EQ(g.propose(leader, "after").status, raft_status::ok);
    g.run_for(100 * ms);
    EXPECT_EQ(g.last_command(rogue), "after");
}

TEST(RaftTest, CheckQuorumStepsDownALeaderCutOffFromItsMajority) {
    group g(3);
    const node_id leader = g.run_until_any_leader();
    g.isolate(leader);
    g.run_for(250 * ms);
    EXPECT_FALSE(g.at(leader).is_leader());
    EXPECT_EQ(g.at(leader).stats().check_quorum_step_downs, 1u);
    EXPECT_EQ(g.at(leader).propose(g.now(), bytes_of("lost")).status, raft_status::not_leader);
    const node_id next = g.run_until_any_leader();
    EXPECT_NE(next, no_node);
    EXPECT_NE(next, leader);
}

TEST(RaftTest, AWipedFollowerCatchesUpBySnapshot) {
    group g(3);
    const node_id leader = g.run_until_any_leader();
    const node_id follower = leader == 3 ? 2 : 3;
    ASSERT_EQ(g.leave_behind(leader, follower), 20);
    ASSERT_GT(g.at(leader).log().base_index(), 1u) << "nothing was compacted";
    g.wipe(follower, g.members());
    g.run_for(300 * ms);
    EXPECT_EQ(g.snapshots_applied(), 1);
    EXPECT_EQ(g.at(follower).commit_index(), g.at(leader).commit_index());
    EXPECT_GT(count_sent(g, message_kind::snapshot, leader), 3u) << "not sent in chunks";
    ASSERT_EQ(g.propose(leader, "after").status, raft_status::ok);
    g.run_for(100 * ms);
    EXPECT_EQ(g.last_command(follower), "after");
}

TEST(RaftTest, ALeaderRecoversWithinTwoElectionTimeoutsWhenAFollowerDiesMidSnapshot) {
    group g(3);
    const node_id leader = g.run_until_any_leader();
    const node_id follower = leader == 3 ? 2 : 3;
    ASSERT_EQ(g.leave_behind(leader, follower), 20);
    // Only the first chunk gets through; the follower dies with the transfer half done.
    g.drop_if(
        [](const raft_message& m) { return m.kind == message_kind::snapshot && m.offset > 0; });
    g.wipe(follower, g.members());
    const follower_progress* p = g.at(leader).progress_of(follower);
    ASSERT_NE(p, nullptr);
    for (int i = 0; i < 100 && p->acked_offset == 0; ++i)
        g.run_for(ms);
    ASSERT_EQ(p->state, follower_progress::mode::snapshot);
    ASSERT_GT(p->acked_offset, 0u);
    ASSERT_LT(p->acked_offset, p->sending.size_bytes);
    g.crash(follower);
    g.drop_if(nullptr);
    g.run_for(20 * ms);
    const time_ns restarted = g.now();
    g.start(follower, g.members());
    while (g.snapshots_applied() == 0 && g.now() < restarted + ns_per_s)
        g.run_for(ms);
    EXPECT_EQ(g.snapshots_applied(), 1);
    EXPECT_LE(g.now() - restarted, 2 * g.at(leader).config().election_timeout_max);
    EXPECT_GE(g.at(leader).stats().snapshot_restarts, 1u);
    EXPECT_EQ(g.leader(), leader);
}

TEST(RaftTest, LeadershipTransferHandsOverToAnUpToDateVoter) {
    group g(3);
    const node_id leader = g.run_until_any_leader();
    const node_id target = leader == 3 ? 2 : 3;
    g.propose(leader, "a");
    ASSERT_EQ(g.at(leader).transfer_leadership(g.now(), target), raft_status::ok);
    g.flush(leader);
    g.run_for(20 * ms);
    EXPECT_EQ(g.leader(), target);
    EXPECT_FALSE(g.at(leader).is_leader());
    EXPECT_EQ(g.at(target).stats().elections_started, 1u) << "it should skip the pre-vote";
}

TEST(RaftTest, AnInterruptedTransferGivesUpAndProposalsResume) {
    group g(3);
    const node_id leader = g.run_until_any_leader();
    const node_id target = leader == 3 ? 2 : 3;
    g.isolate(target);
    g.propose(leader, "a");
    ASSERT_EQ(g.at(leader).transfer_leadership(g.now(), target), raft_status::ok);
    EXPECT_EQ(g.at(leader).propose(g.now(), bytes_of("b")).status, raft_status::transferring);
    g.run_for(g.at(leader).config().election_timeout_min + 5 * ms);
    EXPECT_EQ(g.at(leader).transfer_target(), no_node);
    EXPECT_EQ(g.at(leader).stats().transfers_aborted, 1u);
    EXPECT_EQ(g.leader(), leader);
    EXPECT_EQ(g.propose(leader, "c").status, raft_status::ok);
}

TEST(RaftTest, ALearnerCatchesUpBeforePromotionWhileAVoterLags) {
    group g(3, 1);  // replica 4 runs, in no group yet
    const node_id leader = g.run_until_any_leader();
    const node_id lagging = leader == 3 ? 2 : 3;
    g.isolate(lagging);
    g.propose(leader, "a");
    g.run_for(30 * ms);
    ASSERT_EQ(g.at(leader).change_members(g.now(), {member_change::kind::add_learner, 4}).status,
              raft_status::ok);
    g.flush(leader);
    // Not yet: the learner has not caught up, and the add is not committed.
    EXPECT_NE(g.at(leader).change_members(g.now(), {member_change::kind::promote, 4}).status,
              raft_status::ok);
    g.run_for(50 * ms);
    EXPECT_TRUE(g.at(4).members().is_learner(4));
    EXPECT_EQ(g.last_command(4), "a");
    ASSERT_EQ(g.at(leader).change_members(g.now(), {member_change::kind::promote, 4}).status,
              raft_status::ok);
    g.flush(leader);
    g.run_for(50 * ms);
    // Four voters, one cut off: the other three are a majority and commit.
    EXPECT_EQ(g.at(leader).members().voters.size(), 4u);
    ASSERT_EQ(g.propose(leader, "b").status, raft_status::ok);
    g.run_for(50 * ms);
    EXPECT_EQ(g.last_command(4), "b");
    EXPECT_EQ(g.at(leader).commit_index(), g.at(leader).last_index());
    g.heal();
    g.run_for(100 * ms);
    EXPECT_EQ(g.last_command(lagging), "b");
}

TEST(RaftTest, ARemovedLeaderStepsDownOnceItsRemovalCommits) {
    group g(3);
    const node_id leader = g.run_until_any_leader();
    g.propose(leader, "a");
    g.run_for(30 * ms);
    ASSERT_EQ(g.at(leader).change_members(g.now(), {member_change::kind::remove, leader}).status,
              raft_status::ok);
    g.flush(leader);
    g.run_for(30 * ms);
    EXPECT_FALSE(g.at(leader).is_leader());
    const node_id next = g.run_until_any_leader();
    ASSERT_NE(next, no_node);
    EXPECT_NE(next, leader);
    EXPECT_EQ(g.at(next).members().voters.size(), 2u);
}

TEST(RaftTest, ReadIndexAnswersAfterAMajorityConfirmsLeadership) {
    group g(3);
    const node_id leader = g.run_until_any_leader();
    g.propose(leader, "a");
    g.run_for(30 * ms);
    ASSERT_EQ(g.at(leader).read_index(g.now(), 7), raft_status::ok);
    g.flush(leader);
    EXPECT_TRUE(g.reads().empty()) << "answered before any follower confirmed";
    g.deliver();
    ASSERT_EQ(g.reads().size(), 1u);
    EXPECT_EQ(g.reads()[0].request, 7u);
    EXPECT_EQ(g.reads()[0].status, raft_status::ok);
    EXPECT_EQ(g.reads()[0].index, g.at(leader).commit_index());
}

TEST(RaftTest, AReadPendingWhenLeadershipIsLostFails) {
    group g(3);
    const node_id leader = g.run_until_any_leader();
    g.isolate(leader);
    ASSERT_EQ(g.at(leader).read_index(g.now(), 9), raft_status::ok);
    g.run_for(300 * ms);
    ASSERT_EQ(g.reads().size(), 1u);
    EXPECT_EQ(g.reads()[0].status, raft_status::not_leader);
}

TEST(RaftTest, LeaseReadsHoldWhileHeartbeatsAreAcknowledgedAndNotDuringATransfer) {
    group g(3);
    const node_id leader = g.run_until_any_leader();
    g.propose(leader, "a");
    g.run_for(100 * ms);
    EXPECT_TRUE(g.at(leader).lease_read(g.now()).has_value());
    // Cut off: the lease (election_timeout_min × 0.9 from the send time of the last round a
    // majority acknowledged) runs out before check-quorum would depose the leader.
    g.isolate(leader);
    g.run_for(91 * ms);
    ASSERT_TRUE(g.at(leader).is_leader());
    EXPECT_FALSE(g.at(leader).lease_read(g.now()).has_value());
    // Back: the next acknowledged round renews it.
    g.heal();
    ASSERT_EQ(g.at(leader).read_index(g.now(), 1), raft_status::ok);
    g.flush(leader);
    g.deliver();
    ASSERT_TRUE(g.at(leader).lease_read(g.now()).has_value());
    const node_id target = leader == 3 ? 2 : 3;
    g.at(leader).transfer_leadership(g.now(), target);
    EXPECT_FALSE(g.at(leader).lease_read(g.now()).has_value());
}

TEST(RaftTest, ALeaderThatSentTimeoutNowServesNoLeaseReadsForTheRestOfItsTerm) {
    group g(3);
    const node_id leader = g.run_until_any_leader();
    const node_id target = leader == 3 ? 2 : 3;
    g.propose(leader, "a");
    g.run_for(50 * ms);
    // The timeout-now leaves, but is held on the way; the transfer gives up.
    g.drop_if([](const raft_message& m) { return m.kind == message_kind::timeout_now; });
    ASSERT_EQ(g.at(leader).transfer_leadership(g.now(), target), raft_status::ok);
    g.flush(leader);
    g.run_for(g.at(leader).config().election_timeout_min + 10 * ms);
    ASSERT_EQ(g.at(leader).transfer_target(), no_node);
    ASSERT_TRUE(g.at(leader).is_leader());
    // Rounds keep being acknowledged, but a late timeout-now could still elect the target
    // past every voter's stickiness: no lease read until the next term.
    EXPECT_FALSE(g.at(leader).lease_read(g.now()).has_value());
    ASSERT_EQ(g.at(leader).read_index(g.now(), 3), raft_status::ok);
    g.flush(leader);
    g.deliver();
    ASSERT_FALSE(g.reads().empty());
    EXPECT_EQ(g.reads().back().status, raft_status::ok) << "read index still works";
}

TEST(RaftTest, AFollowerWithADivergentTailIsRepairedByBacktracking) {
    group g(3);
    const node_id leader = g.run_until_any_leader();
    g.propose(leader, "a");
    g.run_for(30 * ms);
    // The leader appends entries only it holds, then is cut off and replaced.
    g.isolate(leader);
    for (int i = 0; i < 30; ++i)
        g.propose(leader, "orphan" + std::to_string(i));
    const node_id next = [&] {
        g.run_for(400 * ms);
        return g.leader() == leader ? no_node : g.leader();
    }();
    ASSERT_NE(next, no_node);
    for (int i = 0; i < 5; ++i)
        g.propose(next, "kept" + std::to_string(i));
    g.heal();
    g.run_for(200 * ms);
    EXPECT_EQ(g.at(leader).last_index(), g.at(next).last_index());
    EXPECT_EQ(g.last_command(leader), "kept4");
    for (const std::string& c : g.applied(leader))
        EXPECT_EQ(c.rfind("orphan", 0), std::string::npos);
    // Fast backtracking: far fewer rejections than orphaned entries.
    EXPECT_LT(g.at(next).stats().append_rejects, 10u);
}

TEST(RaftTest, ConfigurationEntriesRoundTripAndRefuseMalformedBytes) {
    group_members m{{1, 2, 3}, {9}};
    std::optional<group_members> back = decode_members(encode_members(m));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, m);
    std::vector<std::byte> bytes = encode_members(m);
    bytes.pop_back();
    EXPECT_FALSE(decode_members(bytes).has_value());
    EXPECT_FALSE(decode_members(encode_members({{1, 1}, {}})).has_value()) << "repeated id";
    EXPECT_FALSE(decode_members(encode_members({{0}, {}})).has_value()) << "id 0";
}

}  // namespace
}  // namespace ringmesh::replication
