// The messaging API on every shard: node "a" runs two shards (its endpoint on shard 0), node
// "b" one shard with its own endpoint, on the simulated transport and a virtual clock. Every
// shard is stepped from the test thread, so each scenario is a sequence of loop iterations.
// Delivery is checked as the engine promises it: per (sending shard, peer, stream) in order,
// each message exactly once, nothing accepted ever lost.
#include "engine/messaging/shard_messaging.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "tests/support/bytes.h"
#include "transport/sim/sim_network.h"

namespace ringmesh::messaging {
namespace {

using test_support::bytes_of;
using test_support::text_of;

constexpr shard_id a0 = 0, a1 = 1, b0 = 2;

// `Count` shards on one virtual clock and one simulated network, stepped from the test
// thread; each may run an endpoint and a shard_messaging (api_).
template <shard_id Count>
class stepped_shards : public ::testing::Test {
  protected:
    // Runs `fn` as code on shard `id`.
    template <typename Fn>
    auto on_shard(shard_id id, Fn&& fn) {
        detail::bind_thread_to_shard(shards_[id].get());
        struct unbind {
            ~unbind() { detail::bind_thread_to_shard(nullptr); }
        } guard;
        return fn();
    }
    void SetUp() override {
        mesh_ = std::make_unique<ring_mesh>(Count, 64);
        for (shard_id id = 0; id < Count; ++id)
            shards_.push_back(std::move(shard::create(id, *mesh_, clock_, {})).value());
    }
    void TearDown() override {
        // Endpoints first: their handlers point into the shard_messaging objects.
        for (shard_id id = 0; id < Count; ++id) {
            on_shard(id, [&] {
                endpoints_[id].reset();
                return 0;
            });
        }
        for (shard_id id = 0; id < Count; ++id) {
            on_shard(id, [&] {
                api_[id].reset();
                return 0;
            });
        }
    }
    void make_endpoint(shard_id id, endpoint_config config, const std::string& address) {
        on_shard(id, [&] {
            auto e =
                endpoint::create(*shards_[id], net_.make_transport(address, id), std::move(config));
            EXPECT_TRUE(e) << e.err().message();
            endpoints_[id] = std::move(e).value();
            return 0;
        });
    }
    void make_api(shard_id id, messaging_directory& dir, shard_messaging_config config = {}) {
        on_shard(id, [&] {
            api_[id] =
                std::make_unique<shard_messaging>(*shards_[id], dir, endpoints_[id].get(), config);
            return 0;
        });
    }
    // Runs `fn(api)` as code on shard `id`.
    template <typename Fn>
    auto with(shard_id id, Fn&& fn) {
        return on_shard(id, [&] { return fn(*api_[id]); });
    }
    // The shard_messaging of `id`, for one call made as code on that shard (release() after).
    shard_messaging& on(shard_id id) {
        detail::bind_thread_to_shard(shards_[id].get());
        return *api_[id];
    }
    void release() { detail::bind_thread_to_shard(nullptr); }

    // One iteration of each shard not paused; simulated time jumps to the next event when
    // nothing moved.
    void step() {
        std::size_t work = 0;
        for (shard_id id = 0; id < Count; ++id) {
            if (paused_[id]) continue;
            work += on_shard(id, [&] { return shards_[id]->run_once(); });
        }
        if (work > 0) return;
        const time_ns now = clock_.now_ns();
        time_ns next = net_.next_event_ns();
        for (shard_id id = 0; id < Count; ++id) {
            if (!paused_[id]) next = std::min(next, shards_[id]->timers().next_wakeup_ns());
        }
        clock_.set(next > now && next != INT64_MAX ? next : now + 100 * ns_per_us);
    }
    bool pump_until(const std::function<bool()>& done, int max_rounds = 400000) {
        for (int i = 0; i < max_rounds && !done(); ++i) {
            release();
            step();
        }
        release();
        return done();
    }
    void run_steps(int n) {
        release();
        for (int i = 0; i < n; ++i)
            step();
    }

    virtual_clock clock_{ns_per_s};
    transport::sim::sim_network net_{7};
    std::unique_ptr<ring_mesh> mesh_;
    std::vector<std::unique_ptr<shard>> shards_;
    std::unique_ptr<endpoint> endpoints_[Count];
    std::unique_ptr<shard_messaging> api_[Count];
    bool paused_[Count] = {};
};

// Node a runs shards 0 and 1 (its endpoint on 0); node b shard 2.
class ShardMessagingTest : public stepped_shards<3> {
  protected:
    static std::string address(shard_id id) {
        return id == b0 ? "127.0.0.2:7000" : "127.0.0.1:7000";
    }

    // Node a (its endpoint on shard 0) dials node b.
    void start(shard_messaging_config config = {}) {
        start_endpoint(b0, "b", {});
        start_endpoint(a0, "a", {address(b0)});
        make_api(a0, dir_a_, config);
        make_api(a1, dir_a_, config);
        make_api(b0, dir_b_, config);
        ASSERT_TRUE(pump_until([&] { return on(a1).connected("b") && on(b0).connected("a"); }));
    }

    void start_endpoint(shard_id id, std::string name, std::vector<std::string> dial) {
        endpoint_config config;
        config.cluster_id = "test";
        config.node_id = std::move(name);
        config.listen = *transport::address::parse(address(id));
        config.random_seed = id + 1;
        for (const auto& d : dial)
            config.peers.push_back(*transport::address::parse(d));
        make_endpoint(id, std::move(config), address(id));
    }

    messaging_directory dir_a_{"a", {a0, a1}};
    messaging_directory dir_b_{"b", {b0}};
};

// Numbers each received text must follow in order, once each.
void expect_sequence(const std::vector<std::string>& got, int count, const std::string& prefix) {
    ASSERT_EQ(got.size(), static_cast<std::size_t>(count)) << prefix;
    for (int i = 0; i < count; ++i)
        ASSERT_EQ(got[i], prefix + std::to_string(i)) << "out of order or duplicated at " << i;
}

TEST_F(ShardMessagingTest, SendsFromBothShardsArriveInOrderOncePerStream) {
    start();
    EXPECT_EQ(on(a1).owner_of("b"), a0);
    release();
    std::vector<std::string> stream5, stream6;
    on_shard(b0, [&] {
        endpoints_[b0]->on_stream(25,
                                  [&](const message& m) { stream5.push_back(text_of(m.bytes)); });
        endpoints_[b0]->on_stream(26,
                                  [&](const message& m) { stream6.push_back(text_of(m.bytes)); });
        return 0;
    });
    constexpr int count = 5000;
    int next1 = 0, next0 = 0;
    ASSERT_TRUE(pump_until([&] {
        while (next1 < count &&
               on(a1).send("b", 25, bytes_of("s1-" + std::to_string(next1))) == outcome::accepted)
            ++next1;
        while (next0 < count &&
               on(a0).send("b", 26, bytes_of("s0-" + std::to_string(next0))) == outcome::accepted)
            ++next0;
        release();
        return stream5.size() == count && stream6.size() == count;
    }));
    expect_sequence(stream5, count, "s1-");
    expect_sequence(stream6, count, "s0-");
    EXPECT_GT(on(a1).stats().records_out, 0u);
    EXPECT_EQ(on(a0).stats().undeliverable, 0u);
    release();
}

TEST_F(ShardMessagingTest, APublishOnShardOneReachesEveryShardAndThePeerOnce) {
    start();
    std::vector<std::string> at_a0, at_a1, at_b;
    on(a0).subscribe("md/**", [&](const message& m) { at_a0.push_back(text_of(m.bytes)); });
    on(a1).subscribe("md/*", [&](const message& m) { at_a1.push_back(text_of(m.bytes)); });
    on(b0).subscribe("md/**", [&](const message& m) { at_b.push_back(text_of(m.bytes)); });
    release();
    // b's subscription reached a's endpoint, and shard 1 learned it runs there.
    ASSERT_TRUE(pump_until(
        [&] { return on_shard(a0, [&] { return endpoints_[a0]->subscribers("md/x"); }) == 1; }));
    constexpr int count = 3000;
    int next = 0;
    ASSERT_TRUE(pump_until([&] {
        while (next < count &&
               on(a1).publish("md/x", bytes_of("p" + std::to_string(next))) == outcome::accepted)
            ++next;
        release();
        return at_b.size() == count && at_a0.size() == count && at_a1.size() == count;
    }));
    expect_sequence(at_a0, count, "p");
    expect_sequence(at_a1, count, "p");
    expect_sequence(at_b, count, "p");
}

// A publish crosses to the endpoint shard only when a peer there subscribes to it: shard 0
// announces its peers' subscriptions, and shard 1 counts them as its own subscribers.
TEST_F(ShardMessagingTest, APublishCrossesOnlyToShardsWhosePeersWantIt) {
    start();
    run_steps(50);  // shard 0's first announcement (no peer subscribes) reaches shard 1
    EXPECT_EQ(on(a1).peer_subscribers("md/x"), 0u);
    const auto crossed_before = on(a1).stats().records_out;
    EXPECT_EQ(on(a1).publish("md/x", bytes_of("nobody")), outcome::accepted);
    release();
    run_steps(20);
    EXPECT_EQ(on(a1).stats().records_out, crossed_before);  // nothing crossed for nobody
    release();
    std::vector<std::string> at_b;
    on_shard(b0, [&] {
        return endpoints_[b0]->subscribe(
            "md/**", [&](const message& m) { at_b.push_back(text_of(m.bytes)); });
    });
    ASSERT_TRUE(pump_until([&] { return on(a1).peer_subscribers("md/x") == 1; }));
    EXPECT_EQ(on(a1).publish("md/x", bytes_of("for b")), outcome::accepted);
    release();
    ASSERT_TRUE(pump_until([&] { return at_b.size() == 1; }));
    EXPECT_EQ(at_b.front(), "for b");
}

// A message the owner's session could never take is refused on the sending shard, not
// accepted there and dropped by the owner.
TEST_F(ShardMessagingTest, AMessageTooLargeForTheOwnerIsRefusedWhereItIsSent) {
    start();
    const std::vector<std::byte> huge(dir_a_.largest_message() + 1, std::byte{1});
    const auto crossed_before = on(a1).stats().records_out;
    EXPECT_EQ(on(a1).send("b", 30, huge), outcome::too_large);
    EXPECT_EQ(on(a1).publish("md/x", huge), outcome::too_large);
    EXPECT_EQ(on(a1).call("b", "echo", huge, ns_per_s, [](const rpc_result&) {}),
              outcome::too_large);
    EXPECT_EQ(on(a1).stats().records_out, crossed_before);
    release();
    run_steps(20);
    EXPECT_EQ(on(a0).stats().undeliverable, 0u);
    release();
}

TEST_F(ShardMessagingTest, ARemotePublishReachesTheSubscriberOnTheShardWithoutTheEndpoint) {
    start();
    std::vector<std::string> at_a1;
    std::string peer_seen;
    on(a1).subscribe("feed/**", [&](const message& m) {
        at_a1.push_back(text_of(m.bytes));
        peer_seen = std::string(m.peer);
    });
    release();
    ASSERT_TRUE(pump_until(
        [&] { return on_shard(b0, [&] { return endpoints_[b0]->subscribers("feed/1"); }) == 1; }));
    constexpr int count = 2000;
    int next = 0;
    ASSERT_TRUE(pump_until([&] {
        while (next < count &&
               on_shard(b0, [&] { return endpoints_[b0]->publish_ready("feed/1"); })) {
            on_shard(b0, [&] {
                return endpoints_[b0]->publish("feed/1", bytes_of("f" + std::to_string(next)));
            });
            ++next;
        }
        return at_a1.size() == count;
    }));
    expect_sequence(at_a1, count, "f");
    EXPECT_EQ(peer_seen, "b");
    // Unsubscribed on shard 1: the endpoint on shard 0 drops the pattern, and b learns it.
    on(a1).unsubscribe(1);
    release();
    EXPECT_TRUE(pump_until(
        [&] { return on_shard(b0, [&] { return endpoints_[b0]->subscribers("feed/1"); }) == 0; }));
}

// The service port on the shard without the endpoint, as a Raft group there uses it: a
// deferred method answered later (a write answered once it commits), and the priority lane
// both ways through shard 0's session with b.
TEST_F(ShardMessagingTest, DeferredCallsAndTheReplicationLaneWorkFromTheShardWithoutTheEndpoint) {
    start();
    service_port& port = on(a1);
    std::vector<pending_reply> owed;
    port.serve_deferred("later", [&](const message& m, pending_reply reply) {
        EXPECT_EQ(m.peer, "b");
        owed.push_back(std::move(reply));
    });
    std::vector<std::string> lane_at_a1;
    port.on_replication([&](std::string_view peer, std::span<const std::byte> batch) {
        lane_at_a1.push_back(std::string(peer) + ":" + text_of(batch));
    });
    release();
    std::vector<std::string> lane_at_b, answers;
    on_shard(b0, [&] {
        endpoints_[b0]->on_replication(
            [&](std::string_view peer, std::span<const std::byte> batch) {
                lane_at_b.push_back(std::string(peer) + ":" + text_of(batch));
            });
        return 0;
    });
    run_steps(50);  // the claims reach shard 0
    const auto called = on_shard(b0, [&] {
        return endpoints_[b0]->call(
            "a", "later", bytes_of("q"), 10 * ns_per_s, [&](const rpc_result& r) {
                answers.push_back(std::string(wire::EnumNameRpcStatus(r.status)) + ":" +
                                  text_of(r.payload));
            });
    });
    ASSERT_EQ(called, outcome::accepted);
    ASSERT_TRUE(pump_until([&] { return owed.size() == 1; }));
    EXPECT_TRUE(answers.empty());  // deferred: nothing yet
    EXPECT_TRUE(on(a1).reply(owed.front(), {wire::RpcStatus::Ok, bytes_of("done"), {}}));
    release();
    ASSERT_TRUE(pump_until([&] { return answers.size() == 1; }));
    EXPECT_EQ(answers.front(), "Ok:done");

    EXPECT_EQ(on(a1).send_replication("b", bytes_of("append")), outcome::accepted);
    release();
    ASSERT_TRUE(pump_until([&] { return lane_at_b.size() == 1; }));
    EXPECT_EQ(lane_at_b.front(), "a:append");
    on_shard(b0, [&] { return endpoints_[b0]->send_replication("a", bytes_of("vote")); });
    ASSERT_TRUE(pump_until([&] { return lane_at_a1.size() == 1; }));
    EXPECT_EQ(lane_at_a1.front(), "b:vote");
}

// Raft groups on both shards of node a: the router (the same on every shard) names the shard
// each inbound batch is for, on the shard whose endpoint received it; a batch for both goes
// to both, and one for a shard without a handler is counted there, not delivered elsewhere.
TEST_F(ShardMessagingTest, RoutedReplicationBatchesReachTheShardsTheRouterNames) {
    start();
    // The test's rule: the batch's first character names its shard, '*' both.
    auto router = [](std::span<const std::byte> batch,
                     const shard_messaging::replication_sink& to) {
        const char first = static_cast<char>(batch[0]);
        if (first == '0' || first == '*') to(a0, batch);
        if (first == '1' || first == '*') to(a1, batch);
        if (first == '9') to(9, batch);  // no such shard: dropped, counted
    };
    std::map<shard_id, std::vector<std::string>> lane;
    for (shard_id s : {a0, a1}) {
        on(s).route_replication(router);
        release();
    }
    for (shard_id s : {a0, a1}) {
        on(s).on_replication([&lane, s](std::string_view peer, std::span<const std::byte> batch) {
            lane[s].push_back(std::string(peer) + ":" + text_of(batch));
        });
        release();
    }
    run_steps(50);
    for (const char* text : {"1-append", "0-vote", "*-beat", "9-lost"}) {
        ASSERT_EQ(
            on_shard(b0, [&] { return endpoints_[b0]->send_replication("a", bytes_of(text)); }),
            outcome::accepted);
    }
    ASSERT_TRUE(pump_until([&] { return lane[a0].size() == 2 && lane[a1].size() == 2; }));
    run_steps(50);
    EXPECT_EQ(lane[a0], (std::vector<std::string>{"b:0-vote", "b:*-beat"}));
    EXPECT_EQ(lane[a1], (std::vector<std::string>{"b:1-append", "b:*-beat"}));
    EXPECT_EQ(on(a0).stats().replication_unclaimed, 1u);
    release();

    // A shard that stops listening counts what is still routed to it.
    on(a1).on_replication(nullptr);
    release();
    ASSERT_EQ(
        on_shard(b0, [&] { return endpoints_[b0]->send_replication("a", bytes_of("1-late")); }),
        outcome::accepted);
    ASSERT_TRUE(pump_until([&] {
        const auto n = on(a1).stats().replication_unclaimed;
        release();
        return n == 1;
    }));
    EXPECT_EQ(lane[a1].size(), 2u);
}

TEST_F(ShardMessagingTest, CallsAndServedMethodsWorkFromTheShardWithoutTheEndpoint) {
    start();
    on_shard(b0, [&] {
        endpoints_[b0]->serve("echo", [](const message& m) {
            return rpc_reply{wire::RpcStatus::Ok, m.bytes, {}};
        });
        return 0;
    });
    // a's shard 1 calls b; b calls a method served on a's shard 1.
    std::vector<std::string> replies;
    constexpr int calls = 200;
    int issued = 0;
    ASSERT_TRUE(pump_until([&] {
        if (issued < calls && replies.size() == static_cast<std::size_t>(issued)) {
            const outcome o = on(a1).call("b", "echo", bytes_of("c" + std::to_string(issued)),
                                          ns_per_s, [&](const rpc_result& r) {
                                              EXPECT_EQ(r.status, wire::RpcStatus::Ok);
                                              replies.push_back(text_of(r.payload));
                                          });
            if (o == outcome::accepted) ++issued;
        }
        release();
        return replies.size() == calls;
    }));
    expect_sequence(replies, calls, "c");

    int served_on = -1;
    on(a1).serve("whoami", [&](const message& m) {
        served_on = static_cast<int>(this_shard()->id());
        EXPECT_EQ(m.peer, "b");
        static const std::string answer = "shard one";
        return rpc_reply{wire::RpcStatus::Ok, bytes_of(answer), {}};
    });
    release();
    run_steps(50);  // the claim reaches the endpoint
    std::string answer;
    ASSERT_EQ(on_shard(b0,
                       [&] {
                           return endpoints_[b0]->call(
                               "a", "whoami", {}, ns_per_s, [&](const rpc_result& r) {
                                   answer = r.status == wire::RpcStatus::Ok ? text_of(r.payload)
                                                                            : "error";
                               });
                       }),
              outcome::accepted);
    ASSERT_TRUE(pump_until([&] { return !answer.empty(); }));
    EXPECT_EQ(answer, "shard one");
    EXPECT_EQ(served_on, static_cast<int>(a1));
}

TEST_F(ShardMessagingTest, AFullBoundIsBackPressureAndNothingAcceptedIsLost) {
    shard_messaging_config small;
    small.max_bytes_in_flight = 4096;
    start(small);
    std::vector<std::string> got;
    on_shard(b0, [&] {
        endpoints_[b0]->on_stream(29, [&](const message& m) { got.push_back(text_of(m.bytes)); });
        return 0;
    });
    // The owner shard stands still: shard 1's batches wait there, and its bound fills.
    paused_[a0] = true;
    int accepted = 0;
    outcome last = outcome::accepted;
    for (int round = 0; round < 100 && last == outcome::accepted; ++round) {
        while ((last = on(a1).send("b", 29, bytes_of("m" + std::to_string(accepted)))) ==
               outcome::accepted)
            ++accepted;
        release();
        step();
    }
    EXPECT_EQ(last, outcome::back_pressure);
    EXPECT_GT(accepted, 0);
    EXPECT_GT(on(a1).stats().back_pressure, 0u);
    release();
    // The owner runs again: every accepted message arrives, in order, once; then more fit.
    paused_[a0] = false;
    ASSERT_TRUE(pump_until([&] { return got.size() == static_cast<std::size_t>(accepted); }));
    expect_sequence(got, accepted, "m");
    EXPECT_EQ(on(a1).send("b", 29, bytes_of("m" + std::to_string(accepted))), outcome::accepted);
    release();
}

TEST_F(ShardMessagingTest, APublishWaitsOnTheOwnerWhileThePeersWindowIsFull) {
    shard_messaging_config small;
    small.max_bytes_in_flight = 16384;
    start(small);
    std::vector<std::string> at_b;
    on(b0).subscribe("q/**", [&](const message& m) { at_b.push_back(text_of(m.bytes)); });
    release();
    ASSERT_TRUE(pump_until(
        [&] { return on_shard(a0, [&] { return endpoints_[a0]->subscribers("q/x"); }) == 1; }));
    // b stands still: its window fills, shard 0 holds shard 1's publishes, then shard 1's
    // bound fills and its caller is told.
    paused_[b0] = true;
    int accepted = 0, refused_rounds = 0;
    for (int round = 0; round < 20000 && refused_rounds < 50; ++round) {
        const int before = accepted;
        outcome last;
        while ((last = on(a1).publish("q/x", bytes_of("q" + std::to_string(accepted)))) ==
               outcome::accepted)
            ++accepted;
        ASSERT_EQ(last, outcome::back_pressure);
        refused_rounds = accepted == before ? refused_rounds + 1 : 0;
        release();
        step();
    }
    ASSERT_EQ(refused_rounds, 50) << "shard 1 never stayed refused";
    EXPECT_GT(on(a0).stats().blocked_retries, 0u);
    release();
    paused_[b0] = false;
    ASSERT_TRUE(pump_until([&] { return at_b.size() == static_cast<std::size_t>(accepted); }));
    expect_sequence(at_b, accepted, "q");
}

TEST_F(ShardMessagingTest, AStreamClaimedOnShardOneGetsThePeersMessagesThere) {
    start();
    std::vector<std::string> got;
    on(a1).on_stream(32, [&](const message& m) { got.push_back(text_of(m.bytes)); });
    release();
    run_steps(50);  // the claim reaches the endpoint
    constexpr int count = 1000;
    int next = 0;
    ASSERT_TRUE(pump_until([&] {
        while (next < count && on_shard(b0, [&] {
                                   return endpoints_[b0]->send(
                                       "a", 32, bytes_of("t" + std::to_string(next)));
                               }) == outcome::accepted)
            ++next;
        return got.size() == count;
    }));
    expect_sequence(got, count, "t");
}

// Connections spread over shards: node "a" runs an endpoint on each of its two shards
// (ports 7000 and 7001); "b" and "c" run one each. Every session settles on the shard
// shard_for_peer() names on both sides, whoever dialed whom first.
class SpreadPeersTest : public stepped_shards<4> {
  protected:
    static constexpr shard_id a_0 = 0, a_1 = 1, b = 2, c = 3;

    static std::string address(shard_id id) {
        switch (id) {
            case a_0:
                return "127.0.0.1:7000";
            case a_1:
                return "127.0.0.1:7001";
            case b:
                return "127.0.0.2:7000";
            default:
                return "127.0.0.3:7000";
        }
    }
    void start_endpoint(shard_id id, std::string name, std::vector<shard_id> dial,
                        std::uint32_t node_shards, std::uint32_t node_shard,
                        messaging_directory& dir, bool datagrams = false) {
        endpoint_config config;
        config.cluster_id = "test";
        config.node_id = std::move(name);
        config.listen = *transport::address::parse(address(id));
        config.incarnation = 100 + (id == a_1 ? a_0 : id);  // one per node
        config.random_seed = id + 1;
        config.node_shards = node_shards;
        config.node_shard = node_shard;
        for (shard_id d : dial) {
            (datagrams ? config.datagram_peers : config.peers)
                .push_back(*transport::address::parse(address(d)));
        }
        make_endpoint(id, std::move(config), address(id));
        make_api(id, dir);
    }

    // Sends from both of a's shards to b and to c: each arrives once, in order per sending
    // shard.
    void expect_sends_from_both_shards_arrive_in_order() {
        std::vector<std::string> at_b, at_c;
        on_shard(b, [&] {
            endpoints_[b]->on_stream(40,
                                     [&](const message& m) { at_b.push_back(text_of(m.bytes)); });
            return 0;
        });
        on_shard(c, [&] {
            endpoints_[c]->on_stream(40,
                                     [&](const message& m) { at_c.push_back(text_of(m.bytes)); });
            return 0;
        });
        constexpr int count = 2000;
        int next[2][2] = {{0, 0}, {0, 0}};  // [from shard][to b, c]
        ASSERT_TRUE(pump_until([&] {
            for (shard_id from : {a_0, a_1}) {
                for (int to = 0; to < 2; ++to) {
                    int& n = next[from][to];
                    while (n < count && with(from, [&](shard_messaging& m) {
                                            return m.send(to == 0 ? "b" : "c", 40,
                                                          bytes_of(std::to_string(from) + ":" +
                                                                   std::to_string(n)));
                                        }) == outcome::accepted)
                        ++n;
                }
            }
            return at_b.size() == 2 * count && at_c.size() == 2 * count;
        }));
        for (const auto* got : {&at_b, &at_c}) {
            int expected[2] = {0, 0};
            for (const std::string& text : *got) {
                const int from = text[0] - '0';
                ASSERT_EQ(std::stoi(text.substr(2)), expected[from]) << "from shard " << from;
                ++expected[from];
            }
        }
    }

    messaging_directory dir_a_{"a", {a_0, a_1}}, dir_b_{"b", {b}}, dir_c_{"c", {c}};
};

TEST_F(SpreadPeersTest, EachSessionSettlesOnItsOwnerShardAndEveryShardReachesIt) {
    ASSERT_EQ(shard_for_peer("b", 2), 1u);  // the names are chosen for one peer per shard
    ASSERT_EQ(shard_for_peer("c", 2), 0u);
    start_endpoint(c, "c", {}, 1, 0, dir_c_);
    start_endpoint(a_0, "a", {b, c}, 2, 0, dir_a_);  // a's shard 0 dials both; b is not up yet
    start_endpoint(a_1, "a", {}, 2, 1, dir_a_);
    ASSERT_TRUE(
        pump_until([&] { return with(a_1, [](shard_messaging& m) { return m.connected("c"); }); }));
    start_endpoint(b, "b", {a_0}, 1, 0, dir_b_);  // b dials a's first port: sent to the second
    // ... and a's shard 0, redialing b, hands that dial to shard 1.
    ASSERT_TRUE(pump_until([&] {
        return with(a_0, [](shard_messaging& m) { return m.connected("b") && m.connected("c"); }) &&
               with(a_1, [](shard_messaging& m) { return m.connected("b") && m.connected("c"); }) &&
               endpoints_[a_0]->stats().handed_to_owner >= 1;
    }));
    EXPECT_EQ(with(a_0, [](shard_messaging& m) { return m.owner_of("b"); }), a_1);
    EXPECT_EQ(with(a_1, [](shard_messaging& m) { return m.owner_of("c"); }), a_0);
    EXPECT_TRUE(on_shard(a_1, [&] { return endpoints_[a_1]->connected("b"); }));
    EXPECT_FALSE(on_shard(a_0, [&] { return endpoints_[a_0]->connected("b"); }));
    EXPECT_TRUE(on_shard(a_0, [&] { return endpoints_[a_0]->connected("c"); }));
    // b reached a's shard 0 first and was sent to shard 1; a's shard 0 dialed b and handed
    // the dial to shard 1.
    EXPECT_GE(endpoints_[a_0]->stats().redirected, 1u);
    EXPECT_GE(endpoints_[a_0]->stats().handed_to_owner, 1u);
    // Membership runs on shard 0: its verdict on b reaches the endpoint that holds b.
    with(a_0, [](shard_messaging& m) {
        m.share_member_verdict("b", true, false);
        return 0;
    });
    ASSERT_TRUE(pump_until([&] { return endpoints_[a_1]->stats().peers_gone == 1; }));
    with(a_0, [](shard_messaging& m) {
        m.share_member_verdict("b", false, false);  // alive again: its retention clock stops
        return 0;
    });
    // One incarnation for the node: moving between a's endpoints is no restart to b.
    EXPECT_EQ(endpoints_[b]->stats().peer_restarts, 0u);
    EXPECT_EQ(endpoints_[b]->stats().messages_lost_to, 0u);

    expect_sends_from_both_shards_arrive_in_order();

    constexpr int count = 2000;
    // b publishes; subscribers on both of a's shards get every message once.
    std::vector<std::string> at_a0, at_a1;
    with(a_0, [&](shard_messaging& m) {
        return m.subscribe("x/**",
                           [&](const message& msg) { at_a0.push_back(text_of(msg.bytes)); });
    });
    with(a_1, [&](shard_messaging& m) {
        return m.subscribe("x/**",
                           [&](const message& msg) { at_a1.push_back(text_of(msg.bytes)); });
    });
    ASSERT_TRUE(pump_until(
        [&] { return on_shard(b, [&] { return endpoints_[b]->subscribers("x/y"); }) == 1; }));
    int published = 0;
    ASSERT_TRUE(pump_until([&] {
        while (published < count &&
               on_shard(b, [&] { return endpoints_[b]->publish_ready("x/y"); })) {
            on_shard(b, [&] {
                return endpoints_[b]->publish("x/y", bytes_of("p" + std::to_string(published)));
            });
            ++published;
        }
        return at_a0.size() == count && at_a1.size() == count;
    }));
    expect_sequence(at_a0, count, "p");
    expect_sequence(at_a1, count, "p");
}

// Datagram peers (UDP, DPDK) settle the same way: a Hello to the wrong endpoint is answered
// with the owner's port, and a Hello our non-owner endpoint was repeating is handed to the
// owner, which says it instead.
TEST_F(SpreadPeersTest, DatagramSessionsSettleOnTheirOwnerShardToo) {
    start_endpoint(c, "c", {}, 1, 0, dir_c_, true);
    start_endpoint(a_0, "a", {b, c}, 2, 0, dir_a_, true);  // shard 0 says Hello to both
    start_endpoint(a_1, "a", {}, 2, 1, dir_a_, true);
    start_endpoint(b, "b", {a_0}, 1, 0, dir_b_, true);  // b says Hello to a's first port
    ASSERT_TRUE(pump_until([&] {
        return with(a_0, [](shard_messaging& m) { return m.connected("b") && m.connected("c"); }) &&
               with(a_1, [](shard_messaging& m) { return m.connected("b") && m.connected("c"); });
    }));
    EXPECT_TRUE(on_shard(a_1, [&] { return endpoints_[a_1]->connected("b"); }));
    EXPECT_FALSE(on_shard(a_0, [&] { return endpoints_[a_0]->connected("b"); }));
    EXPECT_TRUE(on_shard(a_0, [&] { return endpoints_[a_0]->connected("c"); }));
    EXPECT_FALSE(on_shard(a_1, [&] { return endpoints_[a_1]->connected("c"); }));
    EXPECT_GE(endpoints_[a_0]->stats().redirected, 1u);       // b's Hello, sent on to 7001
    EXPECT_GE(endpoints_[a_0]->stats().handed_to_owner, 1u);  // shard 0's Hello to b
    EXPECT_EQ(endpoints_[b]->stats().peer_restarts, 0u);
    expect_sends_from_both_shards_arrive_in_order();
    EXPECT_EQ(endpoints_[b]->stats().messages_lost_to, 0u);
    EXPECT_EQ(endpoints_[c]->stats().messages_lost_to, 0u);
}

}  // namespace
}  // namespace ringmesh::messaging
