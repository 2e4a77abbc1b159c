// Endpoints, each on its own shard, all stepped from the test thread: every scenario is a
// sequence of loop iterations, so outcomes do not depend on thread scheduling (a bounded
// number of rounds guards against hangs).
//
// EndpointTest runs on the simulated transport (transport/sim) on a virtual clock: the
// protocol, not the kernel, is under test. EndpointUringTest runs the scenarios that are about
// real sockets (raw bytes from a stranger, receive buffer sizes, send slots, sleeping in the
// kernel) on io_uring loopback sockets.
#include "engine/messaging/endpoint.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

#include "tests/unit/engine/messaging/endpoint_fixture.h"

namespace ringmesh::messaging {
namespace {

using test::EndpointTest;
using test::EndpointUringTest;
using test_support::bytes_of;
using test_support::text_of;

TEST_F(EndpointTest, PublishFansOutInOrderOnlyToMatchingSubscribers) {
    start(1, "b");
    start(2, "c");
    start(3, "d");
    endpoint& a = start(0, "a", {1, 2, 3});
    std::vector<std::string> got_b, got_c, got_d;
    on(1, [&](endpoint& e) {
        return e.subscribe("md/**", [&](const message& m) { got_b.push_back(text_of(m.bytes)); });
    });
    on(2, [&](endpoint& e) {
        return e.subscribe("md/*/AAPL",
                           [&](const message& m) { got_c.push_back(text_of(m.bytes)); });
    });
    on(3, [&](endpoint& e) {
        return e.subscribe("other/**",
                           [&](const message& m) { got_d.push_back(text_of(m.bytes)); });
    });
    ASSERT_TRUE(pump_until([&] {
        return a.peer_wants("b", "md/eq/AAPL") && a.peer_wants("c", "md/eq/AAPL") &&
               a.peer_wants("d", "other/x");
    }));
    EXPECT_FALSE(a.peer_wants("d", "md/eq/AAPL"));
    for (int i = 0; i < 2000; ++i) {
        const auto r = on(
            0, [&](endpoint& e) { return e.publish("md/eq/AAPL", bytes_of(std::to_string(i))); });
        ASSERT_EQ(r.peers_sent, 2u);
        if (i % 100 == 0) step();
    }
    on(0, [&](endpoint& e) { return e.publish("md/eq/MSFT", bytes_of("only-b")); });
    ASSERT_TRUE(pump_until([&] { return got_b.size() == 2001 && got_c.size() == 2000; }));
    for (int i = 0; i < 2000; ++i) {
        ASSERT_EQ(got_b[i], std::to_string(i));
        ASSERT_EQ(got_c[i], std::to_string(i));
    }
    EXPECT_EQ(got_b.back(), "only-b");
    EXPECT_TRUE(got_d.empty());
    ASSERT_TRUE(pump_until([&] { return a.unacked("b") == 0 && a.unacked("c") == 0; }));
}

TEST_F(EndpointTest, RpcRepliesAndTypedErrors) {
    start(1, "server");
    endpoint& client = start(0, "client", {1});
    on(1, [&](endpoint& e) {
        e.serve("echo", [](const message& m) {
            return rpc_reply{wire::RpcStatus::Ok, m.bytes, {}};
        });
        e.serve("fail", [](const message&) {
            return rpc_reply{wire::RpcStatus::HandlerError, {}, "bad input"};
        });
        return 0;
    });
    ASSERT_TRUE(pump_until([&] { return client.connected("server"); }));
    std::vector<std::string> replies;
    std::vector<wire::RpcStatus> statuses;
    auto record = [&](const rpc_result& r) {
        statuses.push_back(r.status);
        replies.push_back(r.status == wire::RpcStatus::Ok ? text_of(r.payload)
                                                          : std::string(r.message));
    };
    on(0, [&](endpoint& e) {
        EXPECT_EQ(e.call("server", "echo", bytes_of("ping"), ns_per_s, record), outcome::accepted);
        EXPECT_EQ(e.call("server", "fail", bytes_of("x"), ns_per_s, record), outcome::accepted);
        EXPECT_EQ(e.call("server", "nope", bytes_of("x"), ns_per_s, record), outcome::accepted);
        EXPECT_EQ(e.call("nobody", "echo", bytes_of("x"), ns_per_s, record), outcome::unknown_peer);
        return 0;
    });
    ASSERT_TRUE(pump_until([&] { return replies.size() == 3; }));
    EXPECT_EQ(replies[0], "ping");
    EXPECT_EQ(statuses[1], wire::RpcStatus::HandlerError);
    EXPECT_EQ(replies[1], "bad input");
    EXPECT_EQ(statuses[2], wire::RpcStatus::NoSuchMethod);
}

TEST_F(EndpointTest, DeferredMethodsAnswerLaterAndNeverAnAnotherProcess) {
    endpoint& server = start(1, "server");
    endpoint& client = start(0, "client", {1});
    std::vector<std::pair<pending_reply, std::string>> owed;
    on(1, [&](endpoint& e) {
        e.serve_deferred("later", [&](const message& m, pending_reply r) {
            owed.emplace_back(std::move(r), text_of(m.bytes));
        });
        return 0;
    });
    ASSERT_TRUE(pump_until([&] { return client.connected("server"); }));
    std::vector<std::string> replies;
    auto record = [&](const rpc_result& r) {
        replies.push_back(r.status == wire::RpcStatus::Ok ? text_of(r.payload)
                                                          : std::string(r.message));
    };
    on(0, [&](endpoint& e) {
        e.call("server", "later", bytes_of("a"), 600 * ns_per_s, record);
        e.call("server", "later", bytes_of("b"), 600 * ns_per_s, record);
        return 0;
    });
    ASSERT_TRUE(pump_until([&] { return owed.size() == 2; }));
    EXPECT_TRUE(replies.empty()) << "answered before the server did: " << replies.front();
    // Answered out of order, each to its own call.
    for (int k : {1, 0}) {
        const std::string answer = owed[k].second + "!";
        EXPECT_TRUE(on(1, [&](endpoint& e) {
            return e.reply(owed[k].first, {wire::RpcStatus::Ok, bytes_of(answer), {}});
        }));
    }
    ASSERT_TRUE(pump_until([&] { return replies.size() == 2; }));
    EXPECT_EQ(replies, (std::vector<std::string>{"b!", "a!"}));

    // A reply owed to a process that has since restarted goes nowhere.
    on(0, [&](endpoint& e) { return e.call("server", "later", bytes_of("c"), ns_per_s, record); });
    ASSERT_TRUE(pump_until([&] { return owed.size() == 3; }));
    const std::string client_address = address_of(0).to_string();
    detail::bind_thread_to_shard(shards_[0].get());
    endpoints_[0].reset();
    detail::bind_thread_to_shard(nullptr);
    endpoint& reborn = start(0, "client", {1}, "test", {}, client_address);
    ASSERT_TRUE(pump_until([&] {
        return reborn.connected("server") && server.peer_session_stats("client")->peer_restarts > 0;
    }));
    EXPECT_FALSE(on(1, [&](endpoint& e) {
        return e.reply(owed[2].first, {wire::RpcStatus::Ok, bytes_of("stale"), {}});
    }));
    EXPECT_EQ(server.stats().rpc_replies_undeliverable, 1u);
}

TEST_F(EndpointTest, EveryRefusalIsTypedTheSameWayAcrossSendPublishCallAndSubscribe) {
    session_config small;
    small.max_in_flight_frames = 4;
    endpoint& b = start(1, "b", {}, "test", small);
    endpoint& a = start(0, "a", {1}, "test", small);
    on(1, [&](endpoint& e) { return e.subscribe("t/**", [](const message&) {}); });
    ASSERT_TRUE(pump_until([&] { return a.peer_wants("b", "t/x") && b.connected("a"); }));
    const std::string huge(2u << 20, 'x');  // beyond limits.max_body_bytes
    on(0, [&](endpoint& e) {
        // unknown peer
        EXPECT_EQ(e.send("nobody", 16, bytes_of("x")), outcome::unknown_peer);
        EXPECT_EQ(e.call("nobody", "m", bytes_of("x"), ns_per_s, nullptr), outcome::unknown_peer);
        // too large: never back-pressure, which would invite a retry that cannot succeed
        EXPECT_EQ(e.send("b", 16, bytes_of(huge)), outcome::too_large);
        EXPECT_EQ(e.call("b", "m", bytes_of(huge), ns_per_s, nullptr), outcome::too_large);
        const publish_result too_large = e.publish("t/x", bytes_of(huge));
        EXPECT_EQ(too_large.status, outcome::too_large);
        EXPECT_EQ(too_large.peers_too_large, 1u);
        EXPECT_FALSE(retryable(too_large.status));
        // invalid topic or pattern
        EXPECT_EQ(e.publish("t/*", bytes_of("x")).status, outcome::invalid_topic);
        const auto bad_pattern = e.subscribe("a/**/b", [](const message&) {});
        EXPECT_EQ(bad_pattern.status, outcome::invalid_topic);
        EXPECT_EQ(bad_pattern.id, 0u);
        // back-pressure: the only one worth retrying
        for (int i = 0; i < 4; ++i)
            EXPECT_EQ(e.publish("t/x", bytes_of("x")).status, outcome::accepted);
        const publish_result full = e.publish("t/x", bytes_of("x"));
        EXPECT_EQ(full.status, outcome::back_pressure);
        EXPECT_TRUE(retryable(full.status));
        return 0;
    });
    EXPECT_EQ(a.stats().publish_too_large, 1u);
    EXPECT_EQ(a.stats().publish_invalid_topic, 1u);
    EXPECT_EQ(a.stats().subscribe_invalid_pattern, 1u);
}

TEST_F(EndpointTest, CallToAVanishedPeerEndsWithDeadlineExceeded) {
    start(1, "server");
    endpoint& client = start(0, "client", {1});
    ASSERT_TRUE(pump_until([&] { return client.connected("server"); }));
    on(1, [&](endpoint& e) {
        e.shutdown();
        return 0;
    });
    ASSERT_TRUE(pump_until([&] { return !client.connected("server"); }));
    std::vector<wire::RpcStatus> statuses;
    on(0, [&](endpoint& e) {
        return e.call("server", "echo", bytes_of("x"), 5 * ns_per_ms,
                      [&](const rpc_result& r) { statuses.push_back(r.status); });
    });
    ASSERT_TRUE(pump_until([&] { return !statuses.empty(); }));
    EXPECT_EQ(statuses[0], wire::RpcStatus::DeadlineExceeded);
    EXPECT_EQ(client.stats().rpc_timeouts, 1u);
}

TEST_F(EndpointTest, StreamMessagesArriveInOrderAndCanBeRetained) {
    endpoint& b = start(1, "b");
    start(0, "a", {1});
    std::vector<std::string> got;
    buffer_handle kept;
    on(1, [&](endpoint& e) {
        e.on_stream(20, [&](const message& m) {
            got.push_back(text_of(m.bytes));
            if (got.size() == 1) kept = m.retain();
        });
        return 0;
    });
    ASSERT_TRUE(pump_until([&] { return b.connected("a") && endpoints_[0]->connected("b"); }));
    for (int i = 0; i < 100; ++i) {
        ASSERT_EQ(
            on(0, [&](endpoint& e) { return e.send("b", 20, bytes_of("m" + std::to_string(i))); }),
            outcome::accepted);
    }
    ASSERT_TRUE(pump_until([&] { return got.size() == 100; }));
    for (int i = 0; i < 100; ++i)
        EXPECT_EQ(got[i], "m" + std::to_string(i));
    EXPECT_TRUE(kept);  // the receive buffer of the first message, kept past its handler
    on(1, [&](endpoint&) {
        kept.reset();
        return 0;
    });
}

TEST_F(EndpointTest, PeerDeclaredDeadThenAliveResumesItsSessionWithoutLossOrDuplicates) {
    // Membership declared b dead (a false positive: b was only slow) while a kept sending,
    // and the connection broke meanwhile. b is the same process: the session resumes, every
    // message arrives exactly once, in order, and nothing is reported lost.
    endpoint& b = start(1, "b");
    endpoint& a = start(0, "a", {1});
    std::vector<int> got;
    std::vector<std::string> losses;
    on(1, [&](endpoint& e) {
        e.on_stream(20, [&](const message& m) { got.push_back(std::stoi(text_of(m.bytes))); });
        e.on_peer_loss([&](const peer_loss& l) { losses.emplace_back(l.peer); });
        return 0;
    });
    on(0, [&](endpoint& e) {
        e.on_peer_loss([&](const peer_loss& l) { losses.emplace_back(l.peer); });
        return 0;
    });
    ASSERT_TRUE(pump_until([&] { return b.connected("a") && a.connected("b"); }));
    int next = 0;
    auto send_some = [&](int n) { send_numbered(0, "b", 20, next, n); };
    send_some(50);
    step();
    on(0, [&](endpoint& e) {
        e.member_gone("b", false);
        return 0;
    });
    send_some(50);
    EXPECT_TRUE(on(0, [&](endpoint& e) { return e.disconnect("b"); }));
    ASSERT_TRUE(pump_until([&] { return !b.connected("a"); }));
    send_some(50);
    on(0, [&](endpoint& e) {
        e.member_alive("b");
        return 0;
    });
    ASSERT_TRUE(pump_until([&] { return got.size() == 150 && a.unacked("b") == 0; }));
    for (std::size_t i = 0; i < got.size(); ++i)
        ASSERT_EQ(got[i], static_cast<int>(i));
    EXPECT_TRUE(losses.empty());
    EXPECT_EQ(b.peer_session_stats("a")->peer_restarts, 0u);
    EXPECT_EQ(a.stats().sessions_given_up, 0u);
}

TEST_F(EndpointTest, PeerAwayPastRetentionIsGivenUpAndBothSidesCountTheSameLoss) {
    // b stops answering (its shard does not run), the connection breaks, and membership
    // calls b dead. After the retention a gives up: drops the 10 unacknowledged messages and
    // says so. When b runs again it is the same process: a's Skip tells it to jump the gap,
    // and it reports the same 10 as lost from a. Messages sent afterwards arrive, in order.
    endpoint_config_.peer_retention_ns = 20 * ns_per_ms;
    endpoint& b = start(1, "b");
    endpoint& a = start(0, "a", {1});
    std::vector<int> got;
    std::vector<peer_loss> a_losses, b_losses;
    on(1, [&](endpoint& e) {
        e.on_stream(20, [&](const message& m) { got.push_back(std::stoi(text_of(m.bytes))); });
        e.on_peer_loss([&](const peer_loss& l) { b_losses.push_back(l); });
        return 0;
    });
    on(0, [&](endpoint& e) {
        e.on_peer_loss([&](const peer_loss& l) { a_losses.push_back(l); });
        return 0;
    });
    ASSERT_TRUE(pump_until([&] { return b.connected("a") && a.connected("b"); }));
    auto send = [&](int i) {
        return on(0, [&](endpoint& e) { return e.send("b", 20, bytes_of(std::to_string(i))); });
    };
    for (int i = 0; i < 5; ++i)
        ASSERT_EQ(send(i), outcome::accepted);
    ASSERT_TRUE(pump_until([&] { return got.size() == 5 && a.unacked("b") == 0; }));

    // The connection breaks and b does not come back in time: the next 10 never leave a.
    EXPECT_TRUE(on(0, [&](endpoint& e) { return e.disconnect("b"); }));
    ASSERT_TRUE(pump_until_on({0}, [&] { return !a.connected("b"); }));
    for (int i = 5; i < 15; ++i)
        ASSERT_EQ(send(i), outcome::accepted);
    on(0, [&](endpoint& e) {
        e.member_gone("b", false);
        return 0;
    });
    ASSERT_TRUE(pump_until_on({0}, [&] { return !a_losses.empty(); }));
    EXPECT_EQ(a_losses[0].reason, loss_reason::retention_expired);
    EXPECT_EQ(a_losses[0].not_delivered_to, 10u);
    EXPECT_EQ(a.unacked("b"), 0u);
    EXPECT_EQ(got.size(), 5u);

    for (int i = 15; i < 20; ++i)
        ASSERT_EQ(send(i), outcome::accepted);
    ASSERT_TRUE(pump_until([&] { return got.size() == 10 && a.unacked("b") == 0; }));
    ASSERT_EQ(b_losses.size(), 1u);
    EXPECT_EQ(b_losses[0].reason, loss_reason::peer_gave_up);
    EXPECT_EQ(b_losses[0].not_delivered_from, 10u);
    for (int i = 0; i < 10; ++i)
        EXPECT_EQ(got[static_cast<std::size_t>(i)], i < 5 ? i : i + 10);
    EXPECT_EQ(a_losses.size(), 1u);  // said once
    EXPECT_EQ(b.peer_session_stats("a")->duplicates_dropped, 0u);
}

TEST_F(EndpointTest, WrongClusterIsRefusedAndCountedWhileOthersKeepWorking) {
    endpoint& a = start(0, "a");
    start(1, "good", {0});
    start(2, "intruder", {0}, "other-cluster");
    ASSERT_TRUE(pump_until([&] { return a.connected("good") && a.stats().wrong_cluster > 0; }));
    EXPECT_FALSE(a.connected("intruder"));
    EXPECT_TRUE(a.connected("good"));
}

// A raw TCP client that writes `bytes` to `to` and closes.
void send_raw(const transport::address& to, const std::string& bytes) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_EQ(::connect(fd, to.sa(), to.length), 0);
    ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    ::close(fd);
}

std::string raw_frame(wire::FrameHeader header, std::size_t body_bytes) {
    std::string out(sizeof header, '\0');
    std::memcpy(out.data(), &header, sizeof header);
    out.append(body_bytes, 'x');
    return out;
}

TEST_F(EndpointUringTest, MessagesOfEverySizeSurviveBeingSplitAcrossReads) {
    // Small receive buffers cut frames everywhere: inside headers, bodies and padding. Large
    // runs leave from the session's blocks in place, small ones are copied: both are here.
    uring_.recv_buffer_bytes = 1000;
    endpoint& b = start(1, "b");
    start(0, "a", {1});
    std::vector<std::vector<std::byte>> got;
    on(1, [&](endpoint& e) {
        e.on_stream(20,
                    [&](const message& m) { got.emplace_back(m.bytes.begin(), m.bytes.end()); });
        return 0;
    });
    ASSERT_TRUE(pump_until([&] { return b.connected("a") && endpoints_[0]->connected("b"); }));
    const std::vector<std::size_t> sizes = {1,     7,     8,     24,   25,      999,   1000,
                                            1001,  4096,  8191,  8192, 20000,   65536, 3,
                                            70001, 16384, 12345, 2,    300000,  64,    131072,
                                            5,     99999, 40,    1,    1 << 19, 33,    8200};
    const auto pattern = [](std::size_t size, std::size_t index) {
        std::vector<std::byte> body(size);
        for (std::size_t i = 0; i < size; ++i)
            body[i] = static_cast<std::byte>((i * 131 + index * 7) & 0xff);
        return body;
    };
    std::size_t next = 0;
    ASSERT_TRUE(pump_until([&] {
        while (next < sizes.size() && on(0, [&](endpoint& e) {
                                          return e.send("b", 20, pattern(sizes[next], next));
                                      }) == outcome::accepted) {
            ++next;
        }
        return got.size() == sizes.size();
    }));
    for (std::size_t i = 0; i < sizes.size(); ++i)
        EXPECT_EQ(got[i], pattern(sizes[i], i)) << "message " << i << " of " << sizes[i] << " B";
    EXPECT_EQ(b.stats().frames_refused, 0u);
}

TEST_F(EndpointUringTest, GarbageTruncatedAndOversizedInputAreRefusedWithReasons) {
    endpoint& a = start(0, "a");
    start(1, "good", {0});
    ASSERT_TRUE(pump_until([&] { return a.connected("good"); }));
    const auto where = address_of(0);
    send_raw(where, std::string(64, '\xff'));  // not a frame at all
    ASSERT_TRUE(pump_until([&] { return a.stats().frames_refused >= 1; }));
    send_raw(where, raw_frame(wire::make_header(wire::FrameKind::Hello, 1u << 30, 0, 0, 0, 0), 0));
    ASSERT_TRUE(pump_until(
        [&] { return a.stats().refused_by[static_cast<int>(wire::frame_error::oversized)] == 1; }));
    send_raw(where, raw_frame(wire::make_header(wire::FrameKind::Hello, 40, 0, 0, 0, 0), 40));
    ASSERT_TRUE(pump_until(
        [&] { return a.stats().refused_by[static_cast<int>(wire::frame_error::bad_body)] == 1; }));
    send_raw(where, raw_frame(wire::make_header(wire::FrameKind::Data, 8, 16, 1, 0, 0), 8));
    ASSERT_TRUE(pump_until([&] { return a.stats().protocol_violations == 1; }));  // no Hello
    send_raw(where, raw_frame(wire::make_header(wire::FrameKind::Data, 100, 16, 1, 0, 0), 10));
    const auto refused_before = a.stats().frames_refused;
    for (int i = 0; i < 2000; ++i)
        step();  // truncated then closed: nothing delivered
    EXPECT_EQ(a.stats().frames_refused, refused_before);
    EXPECT_TRUE(a.connected("good"));  // the well-behaved peer was never disturbed
    std::vector<std::string> got;
    on(0, [&](endpoint& e) {
        e.on_stream(16, [&](const message& m) { got.push_back(text_of(m.bytes)); });
        return 0;
    });
    on(1, [&](endpoint& e) { return e.send("a", 16, bytes_of("still here")); });
    ASSERT_TRUE(pump_until([&] { return got.size() == 1; }));
}

TEST_F(EndpointTest, FullWindowIsBackPressureThatClearsWhenTheConsumerCatchesUp) {
    session_config small;
    small.max_in_flight_frames = 32;
    endpoint& b = start(1, "b", {}, "test", small);
    endpoint& a = start(0, "a", {1}, "test", small);
    std::vector<int> got;
    on(1, [&](endpoint& e) {
        e.on_stream(16, [&](const message& m) { got.push_back(std::stoi(text_of(m.bytes))); });
        return 0;
    });
    ASSERT_TRUE(pump_until([&] { return a.connected("b") && b.connected("a"); }));
    int sent = 0;
    while (on(0, [&](endpoint& e) { return e.send("b", 16, bytes_of(std::to_string(sent))); }) ==
           outcome::accepted)
        ++sent;
    EXPECT_EQ(sent, 32);  // the consumer has not run: the producer is held back
    ASSERT_TRUE(pump_until([&] { return a.unacked("b") == 0; }));
    EXPECT_EQ(on(0, [&](endpoint& e) { return e.send("b", 16, bytes_of(std::to_string(sent))); }),
              outcome::accepted);
    ASSERT_TRUE(pump_until([&] { return got.size() == 33u; }));
    for (int i = 0; i < 33; ++i)
        EXPECT_EQ(got[i], i);
}

TEST_F(EndpointTest, RestartedPeerOnTheSameAddressIsRedialedAndItsUnackedTailReported) {
    endpoint& b = start(1, "b");
    endpoint& a = start(0, "a", {1});
    std::vector<int> got;
    on(1, [&](endpoint& e) {
        e.on_stream(16, [&](const message& m) { got.push_back(std::stoi(text_of(m.bytes))); });
        return 0;
    });
    ASSERT_TRUE(pump_until([&] { return a.connected("b"); }));
    int next = 0;
    for (; next < 500; ++next)
        on(0, [&](endpoint& e) { return e.send("b", 16, bytes_of(std::to_string(next))); });
    for (int i = 0; i < 3; ++i)
        step();
    // Cut every connection of b's while frames are in flight.
    on(1, [&](endpoint& e) {
        e.shutdown();
        return 0;
    });
    ASSERT_TRUE(pump_until([&] { return !a.connected("b"); }));
    for (; next < 1000; ++next)
        on(0, [&](endpoint& e) { return e.send("b", 16, bytes_of(std::to_string(next))); });
    // b comes back as a new process on the same address: a's redial finds it.
    const std::string b_address = address_of(1).to_string();
    detail::bind_thread_to_shard(shards_[1].get());
    endpoints_[1].reset();
    detail::bind_thread_to_shard(nullptr);
    (void)b;
    got.clear();
    start(1, "b", {}, "test", {}, b_address);
    on(1, [&](endpoint& e) {
        e.on_stream(16, [&](const message& m) { got.push_back(std::stoi(text_of(m.bytes))); });
        return 0;
    });
    ASSERT_TRUE(pump_until([&] { return a.connected("b") && a.unacked("b") == 0; }));
    // The restarted b is a new process: what the old one had not acknowledged is dropped
    // and reported, never resent to a process that did not ask for it.
    EXPECT_TRUE(got.empty());
    EXPECT_EQ(a.stats().peer_restarts, 1u);
    EXPECT_EQ(a.stats().messages_lost_to, a.peer_session_stats("b")->messages_discarded);
    EXPECT_GE(a.stats().messages_lost_to, 500u);  // at least what was sent while it was gone
    for (int i = 0; i < 10; ++i, ++next)
        on(0, [&](endpoint& e) { return e.send("b", 16, bytes_of(std::to_string(next))); });
    ASSERT_TRUE(pump_until([&] { return got.size() == 10 && a.unacked("b") == 0; }));
    for (int i = 0; i < 10; ++i)
        EXPECT_EQ(got[static_cast<std::size_t>(i)], 1000 + i);
}

TEST_F(EndpointUringTest, DelayedAckKeepsATimerSoASleepingShardStillSendsIt) {
    endpoint& b = start(1, "b");
    endpoint& a = start(0, "a", {1});
    int got = 0;
    on(1, [&](endpoint& e) {
        e.on_stream(16, [&](const message&) { ++got; });
        return 0;
    });
    ASSERT_TRUE(pump_until([&] { return a.connected("b") && b.connected("a"); }));
    on(0, [&](endpoint& e) { return e.send("b", 16, bytes_of("x")); });
    ASSERT_TRUE(pump_until([&] { return got == 1; }));
    // b owes a an ack, delayed by design. With nothing else to do, b's shard would sleep in
    // the kernel until its next timer: there must be one, no later than the ack is due.
    EXPECT_GT(a.unacked("b"), 0u);
    EXPECT_LE(shards_[1]->timers().next_wakeup_ns(), clock().now_ns() + ns_per_ms);
    ASSERT_TRUE(pump_until([&] { return a.unacked("b") == 0; }));
}

// ---- datagram peers (UDP) ----

TEST_F(EndpointTest, DatagramPeersPublishInOrderWithManyFramesPerDatagram) {
    endpoint& b = start(1, "b");
    endpoint& a = start_datagram(0, "a", {1});
    std::vector<int> got;
    on(1, [&](endpoint& e) {
        return e.subscribe("u/**",
                           [&](const message& m) { got.push_back(std::stoi(text_of(m.bytes))); });
    });
    ASSERT_TRUE(pump_until([&] { return a.peer_wants("b", "u/x") && b.connected("a"); }));
    ASSERT_TRUE(publish_numbered_until(0, "u/x", 5000, "", [&] { return got.size() == 5000; }))
        << "got " << got.size() << ", retransmitted "
        << a.peer_session_stats("b")->frames_retransmitted;
    for (int i = 0; i < 5000; ++i)
        ASSERT_EQ(got[i], i);
    const auto* s = a.peer_session_stats("b");
    ASSERT_NE(s, nullptr);
    EXPECT_LT(a.stats().datagrams_sent * 4, s->frames_transmitted);  // frames were packed
    EXPECT_EQ(b.stats().datagrams_dropped, 0u);
}

TEST_F(EndpointUringTest, OutOfDatagramSendSlotsDelaysFramesInsteadOfLosingThem) {
    endpoint& b = start(1, "b");
    uring_.datagram_send_slots = 4;  // far fewer than one burst needs
    uring_.udp_gso = false;          // (batches would carry them: the slots are under test)
    endpoint& a = start_datagram(0, "a", {1});
    std::vector<int> got;
    on(1, [&](endpoint& e) {
        return e.subscribe("u/**",
                           [&](const message& m) { got.push_back(std::stoi(text_of(m.bytes))); });
    });
    ASSERT_TRUE(pump_until([&] { return a.peer_wants("b", "u/x") && b.connected("a"); }));
    const std::string big(1000, 'x');  // one frame per datagram
    ASSERT_TRUE(
        publish_numbered_until(0, "u/x", 2000, " " + big, [&] { return got.size() == 2000; }));
    for (int i = 0; i < 2000; ++i)
        ASSERT_EQ(got[i], i);
    EXPECT_GT(a.stats().transport_full, 0u);                         // the limit was hit...
    EXPECT_EQ(a.peer_session_stats("b")->frames_retransmitted, 0u);  // ...and cost no resend
}

TEST_F(EndpointTest, RpcOverDatagramsSplitsLargeMessagesAndRefusesOversizedOnes) {
    start(1, "server");
    endpoint& client = start_datagram(0, "client", {1});
    on(1, [&](endpoint& e) {
        e.serve("echo", [](const message& m) {
            return rpc_reply{wire::RpcStatus::Ok, m.bytes, {}};
        });
        return 0;
    });
    ASSERT_TRUE(pump_until([&] { return client.connected("server"); }));
    std::string reply;
    on(0, [&](endpoint& e) {
        return e.call("server", "echo", bytes_of("over udp"), ns_per_s,
                      [&](const rpc_result& r) { reply = text_of(r.payload); });
    });
    ASSERT_TRUE(pump_until([&] { return !reply.empty(); }));
    EXPECT_EQ(reply, "over udp");
    // Beyond one 1472-byte datagram: split into fragments, reassembled, verified, echoed
    // (the reply is split too).
    std::string big(40'000, 'x');
    for (std::size_t i = 0; i < big.size(); ++i)
        big[i] = static_cast<char>('a' + i % 26);
    reply.clear();
    ASSERT_EQ(on(0,
                 [&](endpoint& e) {
                     return e.call("server", "echo", bytes_of(big), ns_per_s,
                                   [&](const rpc_result& r) { reply = text_of(r.payload); });
                 }),
              outcome::accepted);
    ASSERT_TRUE(pump_until([&] { return !reply.empty(); }));
    EXPECT_EQ(reply, big);
    EXPECT_GT(client.peer_session_stats("server")->messages_split, 0u);
    EXPECT_GT(client.peer_session_stats("server")->messages_reassembled, 0u);
    // Beyond the message limit (limits.max_body_bytes): refused before anything is sent.
    const std::string huge(2u << 20, 'x');
    EXPECT_EQ(on(0,
                 [&](endpoint& e) {
                     return e.call("server", "echo", bytes_of(huge), ns_per_s, nullptr);
                 }),
              outcome::too_large);
}

TEST_F(EndpointUringTest, BadDatagramsAndUnknownSendersAreDroppedAndCounted) {
    endpoint& a = start(0, "a");
    const auto to = address_of(0);
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    auto send_udp = [&](const std::string& bytes) {
        ASSERT_EQ(::sendto(fd, bytes.data(), bytes.size(), 0, to.sa(), to.length),
                  static_cast<ssize_t>(bytes.size()));
    };
    send_udp(std::string(40, '\x01'));  // garbage
    send_udp(
        raw_frame(wire::make_header(wire::FrameKind::Data, 100, 16, 1, 0, 0), 20));    // truncated
    send_udp(raw_frame(wire::make_header(wire::FrameKind::Data, 8, 16, 1, 0, 0), 8));  // no Hello
    ASSERT_TRUE(pump_until([&] { return a.stats().datagrams_received == 3; }));
    ::close(fd);
    EXPECT_EQ(a.stats().datagrams_dropped, 3u);
    EXPECT_EQ(a.stats().refused_by[static_cast<int>(wire::frame_error::truncated)], 1u);
    EXPECT_EQ(a.stats().datagram_unknown_sender, 1u);
}

TEST_F(EndpointUringTest, ForgedSendersCannotGrowTheAddressTableOrOurAnswers) {
    endpoint_config_.max_datagram_addresses = 4;
    endpoint& a = start(0, "a");
    const auto to = address_of(0);
    std::vector<int> strangers;
    for (int i = 0; i < 10; ++i) {  // each its own source port: a different address
        strangers.push_back(::socket(AF_INET, SOCK_DGRAM, 0));
        const std::string frame =
            raw_frame(wire::make_header(wire::FrameKind::Data, 8, 16, 1, 0, 0), 8);
        ASSERT_EQ(::sendto(strangers.back(), frame.data(), frame.size(), 0, to.sa(), to.length),
                  static_cast<ssize_t>(frame.size()));
    }
    ASSERT_TRUE(pump_until([&] { return a.stats().datagrams_received == 10; }));
    for (int fd : strangers)
        ::close(fd);
    EXPECT_EQ(a.stats().datagram_unknown_sender, 10u);  // every one dropped and counted
    EXPECT_EQ(a.stats().datagrams_dropped, 10u);
    EXPECT_EQ(a.stats().datagrams_sent, 4u);  // introduced ourselves to the first four only
}

TEST_F(EndpointTest, RestartedDatagramPeerIsReintroducedAndTheUnackedTailIsReported) {
    start(1, "b");
    endpoint& a = start_datagram(0, "a", {1});
    std::vector<int> got;
    auto listen_on_b = [&] {
        on(1, [&](endpoint& e) {
            e.on_stream(16, [&](const message& m) { got.push_back(std::stoi(text_of(m.bytes))); });
            return 0;
        });
    };
    listen_on_b();
    ASSERT_TRUE(pump_until([&] { return a.connected("b") && endpoints_[1]->connected("a"); }));
    for (int i = 0; i < 100; ++i)
        on(0, [&](endpoint& e) { return e.send("b", 16, bytes_of(std::to_string(i))); });
    ASSERT_TRUE(pump_until([&] { return got.size() == 100 && a.unacked("b") == 0; }));
    // b restarts on the same address and does not dial a: a's next frames reach a stranger,
    // which introduces itself; a sees the new incarnation, drops what the old b never
    // acknowledged, and reports it.
    const std::string b_address = address_of(1).to_string();
    detail::bind_thread_to_shard(shards_[1].get());
    endpoints_[1].reset();
    detail::bind_thread_to_shard(nullptr);
    got.clear();
    start(1, "b", {}, "test", {}, b_address);
    listen_on_b();
    std::vector<peer_loss> losses;
    on(0, [&](endpoint& e) {
        e.on_peer_loss([&](const peer_loss& l) { losses.push_back(l); });
        return 0;
    });
    for (int i = 100; i < 200; ++i)
        on(0, [&](endpoint& e) { return e.send("b", 16, bytes_of(std::to_string(i))); });
    ASSERT_TRUE(pump_until([&] { return !losses.empty(); }));
    EXPECT_EQ(losses[0].reason, loss_reason::peer_restarted);
    EXPECT_EQ(losses[0].not_delivered_to + got.size(), 100u);  // each one accounted for once
    const std::size_t before = got.size();
    for (int i = 200; i < 210; ++i)
        on(0, [&](endpoint& e) { return e.send("b", 16, bytes_of(std::to_string(i))); });
    ASSERT_TRUE(pump_until([&] { return got.size() == before + 10 && a.unacked("b") == 0; }));
    for (std::size_t i = 0; i < 10; ++i)
        ASSERT_EQ(got[before + i], 200 + static_cast<int>(i));
    EXPECT_EQ(a.peer_session_stats("b")->peer_restarts, 1u);
}

// ---- the priority lane ----

TEST_F(EndpointUringTest, ReplicationBatchesLeaveAheadOfBulkFramesInTheSameFlush) {
    endpoint& b = start(1, "b");
    endpoint& a = start(0, "a", {1});
    std::vector<char> arrivals;  // 'R' a replication batch, 'D' a bulk message
    std::vector<std::string> batches;
    on(1, [&](endpoint& e) {
        e.on_stream(20, [&](const message&) { arrivals.push_back('D'); });
        e.on_replication([&](std::string_view peer, std::span<const std::byte> batch) {
            EXPECT_EQ(peer, "a");
            arrivals.push_back('R');
            batches.push_back(text_of(batch));
        });
        return 0;
    });
    ASSERT_TRUE(pump_until([&] { return b.connected("a") && a.connected("b"); }));
    // Bulk data queued first, the batch after it, all before the next flush: the batch
    // must reach the peer first.
    const std::string bulk(4096, 'x');
    int queued = 0;
    while (queued < 64 && on(0, [&](endpoint& e) { return e.send("b", 20, bytes_of(bulk)); }) ==
                              outcome::accepted) {
        ++queued;
    }
    ASSERT_GT(queued, 8);
    ASSERT_EQ(on(0, [&](endpoint& e) { return e.send_replication("b", bytes_of("vote")); }),
              outcome::accepted);
    ASSERT_EQ(on(0, [&](endpoint& e) { return e.send_replication("b", bytes_of("append")); }),
              outcome::accepted);
    ASSERT_TRUE(
        pump_until([&] { return arrivals.size() == static_cast<std::size_t>(queued) + 2; }));
    EXPECT_EQ(arrivals[0], 'R');
    EXPECT_EQ(arrivals[1], 'R');
    EXPECT_EQ(batches, (std::vector<std::string>{"vote", "append"}));
    EXPECT_EQ(a.stats().replication_sent, 2u);
    EXPECT_EQ(b.stats().replication_received, 2u);

    // Refusals say why, and take nothing.
    EXPECT_EQ(on(0, [&](endpoint& e) { return e.send_replication("nobody", bytes_of("x")); }),
              outcome::unknown_peer);
    const std::string huge(a.replication_limit("b") + 1, 'h');
    EXPECT_EQ(on(0, [&](endpoint& e) { return e.send_replication("b", bytes_of(huge)); }),
              outcome::too_large);
    EXPECT_EQ(a.stats().replication_sent, 2u);
}

TEST_F(EndpointTest, ReplicationBatchesTravelOverDatagramLinksPackedPerDatagram) {
    endpoint& b = start(1, "b");
    endpoint& a = start_datagram(0, "a", {1});
    std::vector<std::string> batches;
    on(1, [&](endpoint& e) {
        e.on_replication([&](std::string_view, std::span<const std::byte> batch) {
            batches.push_back(text_of(batch));
        });
        return 0;
    });
    ASSERT_TRUE(pump_until([&] { return b.connected("a") && a.connected("b"); }));
    EXPECT_EQ(a.replication_limit("b"), (1472 - 32) & ~std::size_t{7});
    const std::uint64_t datagrams_before = a.stats().datagrams_sent;
    for (int i = 0; i < 20; ++i) {
        ASSERT_EQ(on(0,
                     [&](endpoint& e) {
                         return e.send_replication("b", bytes_of("beat" + std::to_string(i)));
                     }),
                  outcome::accepted);
    }
    ASSERT_TRUE(pump_until([&] { return batches.size() == 20; }));
    for (int i = 0; i < 20; ++i)
        EXPECT_EQ(batches[i], "beat" + std::to_string(i));
    EXPECT_LT(a.stats().datagrams_sent - datagrams_before, 5u);  // many frames per datagram
}

}  // namespace
}  // namespace ringmesh::messaging
