// The SWIM/Lifeguard state machine, driven message by message on a hand-held clock.
#include "engine/membership/swim.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace ringmesh::membership {
namespace {

constexpr time_ns ms = ns_per_ms;

swim_config config_of(const std::string& name, bool lifeguard = true) {
    swim_config c;
    c.name = name;
    c.address = name + ":7946";
    c.probe_interval = 500 * ms;
    c.probe_timeout = 200 * ms;
    c.push_pull_interval = 3600 * ns_per_s;  // out of the way unless a test wants it
    c.lifeguard = lifeguard;
    return c;
}

member_update alive(const std::string& name, std::uint64_t incarnation = 0) {
    member_update u;
    u.state = member_state::alive;
    u.name = name;
    u.address = name + ":7946";
    u.incarnation = incarnation;
    return u;
}

gossip_message message(gossip_kind kind, const std::string& from, std::uint32_t seq = 0) {
    gossip_message m;
    m.kind = kind;
    m.seq = seq;
    m.sender = from;
    m.sender_address = from + ":7946";
    return m;
}

// A node "a" that knows b, c, d, e (told by b).
struct fixture {
    swim node;
    time_ns now = 0;
    explicit fixture(bool lifeguard = true) : node(config_of("a", lifeguard)) {
        node.start(now);
        gossip_message m = message(gossip_kind::ping, "b", 1);
        for (const char* n : {"b", "c", "d", "e"})
            m.updates.push_back(alive(n));
        node.on_message(now, m);
        node.take_outbox();
        node.take_events();
    }
    // Advances to the next deadline and runs it.
    void tick() {
        now = std::max(now, node.next_deadline());
        node.on_tick(now);
    }
    // Runs every deadline up to `t` (outgoing messages accumulate).
    void advance_to(time_ns t) {
        while (node.next_deadline() <= t) {
            now = std::max(now, node.next_deadline());
            node.on_tick(now);
        }
        now = t;
    }
    std::vector<outgoing> sent_of(gossip_kind kind) {
        std::vector<outgoing> out;
        for (auto& o : node.take_outbox()) {
            if (o.message.kind == kind) out.push_back(std::move(o));
        }
        return out;
    }
};

TEST(SwimTest, AnswersAPingWithAnAckOfTheSameSequence) {
    fixture f;
    f.node.on_message(f.now, message(gossip_kind::ping, "c", 42));
    auto acks = f.sent_of(gossip_kind::ack);
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_EQ(acks[0].to, "c:7946");
    EXPECT_EQ(acks[0].message.seq, 42u);
    EXPECT_EQ(acks[0].via, outgoing::channel::datagram);
}

TEST(SwimTest, APingForSomeoneElseIsNotAnswered) {
    fixture f;
    gossip_message ping = message(gossip_kind::ping, "c", 7);
    ping.target = "zed";
    f.node.on_message(f.now, ping);
    EXPECT_TRUE(f.sent_of(gossip_kind::ack).empty());
    EXPECT_EQ(f.node.stats().misdirected, 1u);
}

TEST(SwimTest, JoinsAndReportsMembers) {
    fixture f;
    EXPECT_EQ(f.node.alive_count(), 5u);
    ASSERT_NE(f.node.find("d"), nullptr);
    EXPECT_EQ(f.node.find("d")->state, member_state::alive);
}

TEST(SwimTest, SilentMemberIsProbedIndirectlyThenSuspectedThenDeclaredDead) {
    fixture f;
    f.tick();  // first probe
    const time_ns probed = f.now;
    auto pings = f.sent_of(gossip_kind::ping);
    ASSERT_EQ(pings.size(), 1u);
    const std::string target = pings[0].message.target;
    f.advance_to(probed + 200 * ms);  // probe timeout: ping-req through the others
    auto reqs = f.sent_of(gossip_kind::ping_req);
    EXPECT_EQ(reqs.size(), 3u);
    for (const auto& r : reqs) {
        EXPECT_EQ(r.message.target, target);
        EXPECT_NE(r.to, target + ":7946");
    }
    f.advance_to(probed + 500 * ms);  // end of period: suspect
    EXPECT_EQ(f.node.find(target)->state, member_state::suspect);
    EXPECT_EQ(f.node.stats().suspicions_raised, 1u);
    auto events = f.node.take_events();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].what, member_event::kind::suspect);
    // Nothing refutes: the suspicion times out.
    for (int i = 0; i < 200 && f.node.find(target)->state == member_state::suspect; ++i) {
        f.tick();
        f.node.take_outbox();
    }
    EXPECT_EQ(f.node.find(target)->state, member_state::dead);
    EXPECT_EQ(f.node.stats().declared_dead, 1u);
    EXPECT_EQ(f.node.alive_count(), 4u);
}

TEST(SwimTest, AnAckInTimeKeepsTheMemberAlive) {
    fixture f;
    f.tick();
    auto pings = f.sent_of(gossip_kind::ping);
    ASSERT_EQ(pings.size(), 1u);
    f.node.on_message(f.now,
                      message(gossip_kind::ack, pings[0].message.target, pings[0].message.seq));
    f.tick();
    EXPECT_EQ(f.node.find(pings[0].message.target)->state, member_state::alive);
    EXPECT_TRUE(f.sent_of(gossip_kind::ping_req).empty());
    EXPECT_EQ(f.node.stats().probes_failed, 0u);
}

TEST(SwimTest, RefutesASuspicionAboutItselfWithAHigherIncarnation) {
    fixture f;
    gossip_message m = message(gossip_kind::ping, "b", 3);
    member_update s = alive("a", 0);
    s.state = member_state::suspect;
    s.from = "b";
    m.updates.push_back(s);
    f.node.on_message(f.now, m);
    EXPECT_EQ(f.node.self().incarnation, 1u);
    EXPECT_EQ(f.node.self().state, member_state::alive);
    EXPECT_EQ(f.node.stats().refutations, 1u);
    // The refutation rides on the very ack.
    auto acks = f.sent_of(gossip_kind::ack);
    ASSERT_EQ(acks.size(), 1u);
    const auto& ups = acks[0].message.updates;
    auto it = std::find_if(ups.begin(), ups.end(), [](auto& u) { return u.name == "a"; });
    ASSERT_NE(it, ups.end());
    EXPECT_EQ(it->state, member_state::alive);
    EXPECT_EQ(it->incarnation, 1u);
}

TEST(SwimTest, ANewerAliveClearsASuspicionAndAnOlderOneIsIgnored) {
    fixture f;
    gossip_message m = message(gossip_kind::ping, "b", 3);
    member_update s = alive("c", 2);
    s.state = member_state::suspect;
    s.from = "b";
    m.updates = {s};
    f.node.on_message(f.now, m);
    EXPECT_EQ(f.node.find("c")->state, member_state::suspect);
    m.updates = {alive("c", 2)};  // same incarnation: does not refute
    f.node.on_message(f.now, m);
    EXPECT_EQ(f.node.find("c")->state, member_state::suspect);
    m.updates = {alive("c", 3)};
    f.node.on_message(f.now, m);
    EXPECT_EQ(f.node.find("c")->state, member_state::alive);
    EXPECT_EQ(f.node.find("c")->incarnation, 3u);
    auto events = f.node.take_events();
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[1].what, member_event::kind::alive);
}

time_ns suspicion_deadline_after(bool lifeguard, int confirmations) {
    fixture f(lifeguard);
    gossip_message m = message(gossip_kind::ping, "b", 3);
    const char* from[] = {"b", "d", "e"};
    for (int i = 0; i <= confirmations; ++i) {
        member_update s = alive("c", 0);
        s.state = member_state::suspect;
        s.from = from[i];
        m.updates = {s};
        f.node.on_message(f.now, m);
    }
    // The only pending deadlines are the suspicion and the probe timer; step past probes.
    swim& n = f.node;
    time_ns t = 0;
    while (n.find("c")->state == member_state::suspect) {
        t = n.next_deadline();
        n.on_tick(t);
        // Keep the probed members alive so only the suspicion matters.
        for (auto& o : n.take_outbox()) {
            if (o.message.kind == gossip_kind::ping && o.message.target != "c") {
                n.on_message(t, message(gossip_kind::ack, o.message.target, o.message.seq));
            }
        }
    }
    return t;
}

TEST(SwimTest, LifeguardSuspicionTimeoutShrinksWithIndependentConfirmations) {
    const time_ns alone = suspicion_deadline_after(true, 0);
    const time_ns confirmed = suspicion_deadline_after(true, 2);
    const time_ns classic = suspicion_deadline_after(false, 2);
    EXPECT_LT(confirmed, alone);
    EXPECT_LT(classic, alone);
    // Without Lifeguard the timeout is the minimum, confirmations or not.
    EXPECT_EQ(classic, suspicion_deadline_after(false, 0));
}

TEST(SwimTest, MissedNacksRaiseTheLocalHealthScoreAndAcksLowerIt) {
    fixture f;
    f.tick();  // ping
    const time_ns probed = f.now;
    f.advance_to(probed + 500 * ms);  // ping-reqs to 3 relays, none nacks; then the verdict
    EXPECT_EQ(f.node.health_score(), 3);
    EXPECT_EQ(f.node.stats().probes_failed, 1u);
    // Probing slows down accordingly: the next period is (1 + score) times longer.
    auto pings = f.sent_of(gossip_kind::ping);
    ASSERT_EQ(pings.size(), 2u);  // the failed probe's and the next one's
    const outgoing next = pings[1];
    f.node.on_message(f.now, message(gossip_kind::ack, next.message.target, next.message.seq));
    f.advance_to(probed + 500 * ms + 4 * 500 * ms - 1);
    EXPECT_EQ(f.node.stats().probes, 2u) << "the third probe came before the scaled period";
    EXPECT_EQ(f.node.health_score(), 3);
    f.advance_to(probed + 500 * ms + 4 * 500 * ms);
    EXPECT_EQ(f.node.health_score(), 2);
    EXPECT_EQ(f.node.stats().probes, 3u);
}

TEST(SwimTest, NacksFromRelaysSpareTheHealthScore) {
    fixture f;
    f.tick();
    const time_ns probed = f.now;
    f.node.take_outbox();
    f.advance_to(probed + 200 * ms);
    auto reqs = f.sent_of(gossip_kind::ping_req);
    ASSERT_EQ(reqs.size(), 3u);
    for (const auto& r : reqs) {
        f.node.on_message(f.now, message(gossip_kind::nack, r.to.substr(0, 1), r.message.seq));
    }
    f.advance_to(probed + 500 * ms);
    EXPECT_EQ(f.node.health_score(), 0);
    EXPECT_EQ(f.node.stats().nacks_received, 3u);
}

TEST(SwimTest, RelaysAPingReqAndForwardsTheAckOrAnswersNack) {
    fixture f;
    gossip_message req = message(gossip_kind::ping_req, "b", 77);
    req.target = "c";
    req.target_address = "c:7946";
    f.node.on_message(f.now, req);
    auto pings = f.sent_of(gossip_kind::ping);
    ASSERT_EQ(pings.size(), 1u);
    EXPECT_EQ(pings[0].to, "c:7946");
    f.node.on_message(f.now, message(gossip_kind::ack, "c", pings[0].message.seq));
    auto acks = f.sent_of(gossip_kind::ack);
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_EQ(acks[0].to, "b:7946");
    EXPECT_EQ(acks[0].message.seq, 77u);

    f.node.on_message(f.now, req);  // again, and this time c stays silent
    f.node.take_outbox();
    // On the fixture's hand-held clock: the relay must answer within the origin's own probe
    // timeout, or the origin would give up on the relay before hearing it.
    const time_ns asked = f.now;
    const time_ns origin_timeout = f.node.config().probe_timeout;
    std::vector<outgoing> nacks;
    while (nacks.empty() && f.now < asked + origin_timeout) {
        f.tick();
        nacks = f.sent_of(gossip_kind::nack);
    }
    ASSERT_EQ(nacks.size(), 1u);
    EXPECT_EQ(nacks[0].to, "b:7946");
    EXPECT_EQ(nacks[0].message.seq, 77u);
    EXPECT_LT(f.now - asked, origin_timeout);
}

TEST(SwimTest, PushPullAnswersWithTheFullTableAndSoftensDeadToSuspect) {
    fixture f;
    gossip_message pp = message(gossip_kind::push_pull, "b");
    member_update dead = alive("c", 0);
    dead.state = member_state::dead;
    dead.from = "b";
    pp.updates = {alive("b"), dead, alive("f", 4)};
    f.node.on_message(f.now, pp, 99);
    EXPECT_EQ(f.node.find("c")->state, member_state::suspect);
    EXPECT_EQ(f.node.find("f")->state, member_state::alive);
    auto replies = f.sent_of(gossip_kind::push_pull_reply);
    ASSERT_EQ(replies.size(), 1u);
    EXPECT_EQ(replies[0].via, outgoing::channel::stream_reply);
    EXPECT_EQ(replies[0].reply_token, 99u);
    EXPECT_EQ(replies[0].message.updates.size(), 6u);  // a..f
}

TEST(SwimTest, JoinsThroughSeedsUntilAPushPullAnswers) {
    swim_config c = config_of("new");
    c.seeds = {"seed:7946", "new:7946"};
    swim node(c);
    node.start(0);
    EXPECT_FALSE(node.joined());
    node.on_tick(0);
    auto out = node.take_outbox();
    ASSERT_EQ(out.size(), 1u);  // its own address is skipped
    EXPECT_EQ(out[0].via, outgoing::channel::stream);
    EXPECT_EQ(out[0].to, "seed:7946");
    EXPECT_TRUE(out[0].message.join);
    node.on_tick(c.join_retry_interval);  // no answer: tries again
    EXPECT_EQ(node.take_outbox().size(), 1u);
    gossip_message reply = message(gossip_kind::push_pull_reply, "seed");
    reply.updates = {alive("seed")};
    node.on_message(c.join_retry_interval, reply);
    EXPECT_TRUE(node.joined());
    EXPECT_EQ(node.alive_count(), 2u);
}

TEST(SwimTest, GracefulLeaveIsAnnouncedAndSeenAsLeft) {
    fixture f;
    f.node.leave(f.now);
    auto pings = f.sent_of(gossip_kind::ping);
    ASSERT_FALSE(pings.empty());
    const auto& ups = pings[0].message.updates;
    auto it = std::find_if(ups.begin(), ups.end(), [](auto& u) { return u.name == "a"; });
    ASSERT_NE(it, ups.end());
    EXPECT_EQ(it->state, member_state::left);

    swim other(config_of("b"));
    other.start(0);
    gossip_message m = message(gossip_kind::ping, "a", 1);
    m.updates = {alive("a")};
    other.on_message(0, m);
    m.updates = {*it};
    other.on_message(0, m);
    EXPECT_EQ(other.find("a")->state, member_state::left);
    auto events = other.take_events();
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[1].what, member_event::kind::left);
}

TEST(SwimTest, MetadataChangesTravelWithANewIncarnation) {
    fixture f;
    member_meta meta;
    meta.shard_count = 4;
    meta.tags = {{"zone", "b"}};
    f.node.update_meta(f.now, meta);
    EXPECT_EQ(f.node.self().incarnation, 1u);
    f.node.on_message(f.now, message(gossip_kind::ping, "b", 5));
    auto acks = f.sent_of(gossip_kind::ack);
    ASSERT_EQ(acks.size(), 1u);
    const auto& ups = acks[0].message.updates;
    auto it = std::find_if(ups.begin(), ups.end(), [](auto& u) { return u.name == "a"; });
    ASSERT_NE(it, ups.end());
    EXPECT_EQ(it->meta, meta);
}

}  // namespace
}  // namespace ringmesh::membership
