// The secure layer under real endpoints (on the simulated network), in both of its modes
// (authenticated: the keyring; encrypted: TLS 1.3 with certificates): proven peers do
// messaging as before; a keyless stranger, a wrong key or another CA, and a Hello that names
// someone else than the handshake proved are refused and counted and never reach a handler;
// a byte changed on the wire closes the connection before anything of it is delivered, and
// the sessions resend so that every message still arrives exactly once, in order.
#include "transport/secure/secure_transport.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "tests/unit/engine/messaging/endpoint_fixture.h"
#include "transport/secure/cert_issuer.h"

namespace ringmesh::transport::secure {
namespace {

using messaging::endpoint;
using messaging::message;
using messaging::outcome;
using test_support::bytes_of;
using test_support::text_of;

key_bytes key(unsigned char fill) {
    return key_bytes(32, static_cast<std::byte>(fill));
}

/// Between the secure layer and the network: flips one bit of the next chunk it receives
/// once armed, as a meddling middlebox would.
class tampering_transport final : public transport, private event_handler {
  public:
    explicit tampering_transport(std::unique_ptr<transport> inner) : inner_(std::move(inner)) {}
    bool armed = false;
    int flipped = 0;
    bool armed_datagrams = false;       // flips a bit of every 50th sealed datagram
    std::vector<std::byte> wire_bytes;  // every datagram that arrived, as it came

    result<void> listen(const address& a) override { return inner_->listen(a); }
    result<connection_id> connect(const address& a) override { return inner_->connect(a); }
    void close(connection_id c) override { inner_->close(c); }
    std::size_t poll(time_ns now, event_handler& h) override {
        upper_ = &h;
        return inner_->poll(now, *this);
    }
    std::size_t send(connection_id c, std::span<const std::byte> b) override {
        return inner_->send(c, b);
    }
    std::size_t send_datagram(const address& to, std::span<const std::byte> b) override {
        return inner_->send_datagram(to, b);
    }
    std::size_t flush() override { return inner_->flush(); }
    void wait(time_ns t, std::span<const int> fds) override { inner_->wait(t, fds); }
    capabilities caps() const noexcept override { return inner_->caps(); }

  private:
    void on_connected(connection_id c, bool inbound) override { upper_->on_connected(c, inbound); }
    void on_received(connection_id c, buffer_handle chunk) override {
        if (armed && chunk.size() > 8) {
            chunk.storage()[chunk.size() / 2] ^= std::byte{0x10};
            armed = false;
            ++flipped;
        }
        upper_->on_received(c, std::move(chunk));
    }
    void on_datagram(const address& from, std::span<const std::byte> p, buffer_handle o) override {
        wire_bytes.insert(wire_bytes.end(), p.begin(), p.end());
        if (armed_datagrams && p.size() > 40 && p[0] == sealed_datagram_type &&
            ++datagrams_ % 50 == 0) {
            const std::size_t at = static_cast<std::size_t>(p.data() - o.storage().data());
            o.storage()[at + p.size() / 2] ^= std::byte{0x01};
            ++flipped;
        }
        upper_->on_datagram(from, p, std::move(o));
    }
    void on_closed(connection_id c, close_reason r, int e) override { upper_->on_closed(c, r, e); }

    std::unique_ptr<transport> inner_;
    event_handler* upper_ = nullptr;
    int datagrams_ = 0;
};

/// The CAs of the encrypted runs: the cluster's, and a stranger's.
const cert_issuer& issuer(bool foreign) {
    static const cert_issuer ours = cert_issuer::create("cluster-ca").value();
    static const cert_issuer theirs = cert_issuer::create("stranger-ca").value();
    return foreign ? theirs : ours;
}

class SecureTransportTest : public messaging::test::EndpointTest,
                            public ::testing::WithParamInterface<security_mode> {
  protected:
    void SetUp() override {
        EndpointTest::SetUp();
        wrap_transport = [this](shard_id id, const std::string& name,
                                std::unique_ptr<transport> inner) -> std::unique_ptr<transport> {
            const auto& how = plan_[id];
            if (how.plain) return inner;
            if (how.tamper) {
                auto t = std::make_unique<tampering_transport>(std::move(inner));
                tamper_[id] = t.get();
                inner = std::move(t);
            }
            secure_settings s;
            const std::string proves = how.claims.empty() ? name : how.claims;
            s.identity = {"test", proves, GetParam()};
            s.keys = std::make_shared<key_store>(std::vector<key_bytes>{key(how.foreign ? 2 : 1)});
            auto pem = issuer(how.foreign).issue(proves);
            EXPECT_TRUE(pem);
            s.tls = std::make_shared<tls_credentials>(tls_context::from_pem(*pem, proves).value());
            s.owner = id;
            s.receive_buffers = how.receive_buffers;
            auto wrapped = secure_transport::wrap(std::move(inner), s);
            EXPECT_TRUE(wrapped) << wrapped.err().message();
            return std::move(wrapped).value();
        };
    }
    struct plan {
        bool plain = false;    // no secure layer at all: a keyless stranger
        bool tamper = false;   // a bit flipper below the secure layer
        bool foreign = false;  // another key, or certificates from another CA
        std::string claims;    // the name it proves, when not its endpoint's
        std::size_t receive_buffers = 64;
    };
    secure_transport& secure(shard_id id) {
        return static_cast<secure_transport&>(endpoints_[id]->transport());
    }
    bool encrypted() const { return GetParam() == security_mode::encrypted; }
    std::uint64_t refused(shard_id id, auth_refusal why) {
        return secure(id).stats().refused[static_cast<std::size_t>(why)];
    }

    plan plan_[node_count];
    tampering_transport* tamper_[node_count] = {};
};

TEST_P(SecureTransportTest, ProvenPeersPublishCallAndStreamAsBefore) {
    endpoint& b = start(1, "b");
    endpoint& a = start(0, "a", {1});
    std::vector<std::string> got;
    on(1, [&](endpoint& e) {
        e.serve("echo", [](const message& m) {
            return messaging::rpc_reply{wire::RpcStatus::Ok, m.bytes, {}};
        });
        return e.subscribe("t/**", [&](const message& m) { got.push_back(text_of(m.bytes)); });
    });
    ASSERT_TRUE(pump_until([&] { return a.connected("b") && b.subscribers("t/x") == 0; }));
    ASSERT_TRUE(pump_until([&] { return a.subscribers("t/x") == 1; }));
    for (int i = 0; i < 50; ++i)
        on(0, [&](endpoint& e) { return e.publish("t/x", bytes_of("m" + std::to_string(i))); });
    std::string echoed;
    on(0, [&](endpoint& e) {
        return e.call("b", "echo", bytes_of("ping"), 5 * ns_per_s,
                      [&](const messaging::rpc_result& r) { echoed = text_of(r.payload); });
    });
    ASSERT_TRUE(pump_until([&] { return got.size() == 50 && !echoed.empty(); }));
    for (int i = 0; i < 50; ++i)
        EXPECT_EQ(got[static_cast<std::size_t>(i)], "m" + std::to_string(i));
    EXPECT_EQ(echoed, "ping");

    // A message of many records, split across the network's chunks, arrives whole.
    std::string big(200'000, 'x');
    for (std::size_t i = 0; i < big.size(); ++i)
        big[i] = static_cast<char>('a' + i % 26);
    std::string got_big;
    on(1, [&](endpoint& e) {
        e.on_stream(21, [&](const message& m) { got_big = text_of(m.bytes); });
        return 0;
    });
    ASSERT_EQ(on(0, [&](endpoint& e) { return e.send("b", 21, bytes_of(big)); }),
              outcome::accepted);
    ASSERT_TRUE(pump_until([&] { return !got_big.empty(); }));
    EXPECT_EQ(got_big, big);
    EXPECT_EQ(secure(0).stats().handshakes, 1u);
    EXPECT_EQ(secure(1).stats().handshakes, 1u);
    EXPECT_GT(secure(0).stats().records_sealed, 0u);
    EXPECT_GT(secure(1).stats().records_opened, 0u);
    EXPECT_EQ(secure(1).stats().refused_total(), 0u);
    // Datagrams are offered, smaller by what sealing adds.
    EXPECT_TRUE(secure(0).caps().datagrams);
    EXPECT_EQ(secure(0).caps().max_datagram_bytes + sealed_datagram_overhead,
              secure(0).inner().caps().max_datagram_bytes);
}

TEST_P(SecureTransportTest, RecordsWaitInOrderWhileTheApplicationHoldsEveryReceiveBuffer) {
    plan_[1].receive_buffers = 2;
    endpoint& b = start(1, "b");
    endpoint& a = start(0, "a", {1});
    std::vector<int> got;
    std::vector<buffer_handle> held;
    bool holding = true;
    on(1, [&](endpoint& e) {
        e.on_stream(20, [&](const message& m) {
            got.push_back(std::stoi(text_of(m.bytes)));
            if (holding) held.push_back(m.retain());  // the application keeps the bytes
        });
        return 0;
    });
    ASSERT_TRUE(pump_until([&] { return a.connected("b") && b.connected("a"); }));
    int next = 0;
    send_numbered(0, "b", 20, next, 3000);
    ASSERT_TRUE(pump_until([&] { return secure(1).stats().receive_buffer_waits > 0; }));
    const std::size_t before = got.size();
    for (int i = 0; i < 200; ++i)
        step();
    EXPECT_EQ(got.size(), before) << "nothing moves while every buffer is held";
    holding = false;
    on(1, [&](endpoint&) {
        held.clear();  // the application lets go
        return 0;
    });
    ASSERT_TRUE(pump_until([&] { return got.size() == 3000; }));
    for (int i = 0; i < 3000; ++i)
        ASSERT_EQ(got[static_cast<std::size_t>(i)], i) << "exactly once, in order";
    EXPECT_EQ(secure(1).stats().records_refused, 0u);
}

TEST_P(SecureTransportTest, AKeylessStrangerIsRefusedCountedAndReceivesNothing) {
    plan_[2].plain = true;
    endpoint& b = start(1, "b");
    endpoint& intruder = start(2, "intruder", {1});
    std::vector<std::string> stolen;
    on(2, [&](endpoint& e) {
        return e.subscribe("**", [&](const message& m) { stolen.push_back(text_of(m.bytes)); });
    });
    ASSERT_TRUE(pump_until([&] { return refused(1, auth_refusal::not_secure) >= 3; }));
    for (int i = 0; i < 20; ++i)
        on(1, [&](endpoint& e) { return e.publish("secret/x", bytes_of("s")); });
    ASSERT_TRUE(pump_until([&] { return refused(1, auth_refusal::not_secure) >= 5; }));
    EXPECT_TRUE(stolen.empty());
    EXPECT_FALSE(b.connected("intruder"));
    EXPECT_FALSE(intruder.connected("b"));
    EXPECT_EQ(b.stats().handshakes, 0u) << "the endpoint never heard of it";
    EXPECT_EQ(secure(1).stats().handshakes, 0u);
}

TEST_P(SecureTransportTest, AWrongKeyOrAnotherCaIsRefusedOnBothSides) {
    plan_[0].foreign = true;
    endpoint& b = start(1, "b");
    endpoint& a = start(0, "a", {1});
    // TLS: the dialer checks the listener's certificate first and says so in an alert.
    const auto dialer_refusal =
        encrypted() ? auth_refusal::untrusted_certificate : auth_refusal::unknown_key;
    const auto listener_refusal =
        encrypted() ? auth_refusal::refused_by_peer : auth_refusal::unknown_key;
    ASSERT_TRUE(pump_until(
        [&] { return refused(1, listener_refusal) >= 2 && refused(0, dialer_refusal) >= 2; }));
    EXPECT_FALSE(a.connected("b"));
    EXPECT_FALSE(b.connected("a"));
}

TEST_P(SecureTransportTest, AHelloNamingAnotherNodeThanTheProofIsRefused) {
    plan_[0].claims = "mallory";  // holds the key, proves "mallory", says Hello as "a"
    endpoint& b = start(1, "b");
    start(0, "a", {1});
    ASSERT_TRUE(pump_until([&] { return b.stats().identity_mismatches >= 2; }));
    EXPECT_FALSE(b.connected("a"));
    EXPECT_FALSE(b.connected("mallory"));
}

TEST_P(SecureTransportTest, AFlippedBitClosesTheConnectionAndTheSessionsResendEverything) {
    plan_[1].tamper = true;
    endpoint& b = start(1, "b");
    endpoint& a = start(0, "a", {1});
    std::vector<int> got;
    on(1, [&](endpoint& e) {
        e.on_stream(20, [&](const message& m) { got.push_back(std::stoi(text_of(m.bytes))); });
        return 0;
    });
    ASSERT_TRUE(pump_until([&] { return a.connected("b") && b.connected("a"); }));
    int next = 0;
    auto send_some = [&](int n) { send_numbered(0, "b", 20, next, n); };
    send_some(20);
    ASSERT_TRUE(pump_until([&] { return got.size() == 20; }));
    tamper_[1]->armed = true;
    send_some(20);
    ASSERT_TRUE(pump_until([&] { return secure(1).stats().records_refused == 1; }));
    ASSERT_TRUE(pump_until([&] { return got.size() == 40 && a.connected("b"); }));
    send_some(20);
    ASSERT_TRUE(pump_until([&] { return got.size() == 60; }));
    for (int i = 0; i < 60; ++i)
        EXPECT_EQ(got[static_cast<std::size_t>(i)], i) << "exactly once, in order";
    EXPECT_EQ(tamper_[1]->flipped, 1);
    EXPECT_EQ(secure(1).stats().handshakes, 2u) << "one reconnection";
}

TEST_P(SecureTransportTest, DatagramPeersArriveOnceInOrderThroughLossDuplicatesAndTampering) {
    net_.set_faults({20 * ns_per_us, 200 * ns_per_us, 0.03, 0.03});
    plan_[1].tamper = true;
    endpoint& b = start(1, "b");
    endpoint& a = start_datagram(0, "a", {1});
    std::vector<int> got;
    on(1, [&](endpoint& e) {
        return e.subscribe("u/**",
                           [&](const message& m) { got.push_back(std::stoi(text_of(m.bytes))); });
    });
    ASSERT_TRUE(pump_until([&] { return a.peer_wants("b", "u/x") && b.connected("a"); }));
    tamper_[1]->armed_datagrams = true;
    ASSERT_TRUE(
        publish_numbered_until(0, "u/x", 3000, " confidential", [&] { return got.size() == 3000; }))
        << "got " << got.size();
    for (int i = 0; i < 3000; ++i)
        ASSERT_EQ(got[static_cast<std::size_t>(i)], i) << "exactly once, in order";
    const secure_stats& sb = secure(1).stats();
    EXPECT_GE(sb.datagram_handshakes, 1u);
    EXPECT_GE(secure(0).stats().datagram_handshakes, 1u);
    EXPECT_GT(sb.datagrams_opened, 3000u / 50);
    EXPECT_GT(sb.datagrams_replayed, 0u) << "the network's duplicates";
    EXPECT_EQ(sb.datagrams_refused, static_cast<std::uint64_t>(tamper_[1]->flipped));
    EXPECT_GT(tamper_[1]->flipped, 0);
    // Confidentiality: the payloads cross the wire only in encrypted form in encrypted mode.
    const std::string marker = "confidential";
    const auto& w = tamper_[1]->wire_bytes;
    const bool visible =
        std::search(w.begin(), w.end(), marker.begin(), marker.end(),
                    [](std::byte x, char c) { return x == static_cast<std::byte>(c); }) != w.end();
    EXPECT_EQ(visible, !encrypted());
    EXPECT_EQ(b.stats().identity_mismatches, 0u);
}

TEST_P(SecureTransportTest, DatagramStrangersAndWrongKeysGetNothingThrough) {
    plan_[2].plain = true;
    plan_[3].foreign = true;
    endpoint& b = start(1, "b");
    endpoint& stranger = start_datagram(2, "stranger", {1});
    endpoint& wrong = start_datagram(3, "wrong", {1});
    std::vector<std::string> stolen;
    for (shard_id id : {2, 3}) {
        on(id, [&](endpoint& e) {
            return e.subscribe("**", [&](const message& m) { stolen.push_back(text_of(m.bytes)); });
        });
    }
    ASSERT_TRUE(pump_until([&] {
        return secure(1).stats().datagrams_refused >= 2 &&
               refused(3, auth_refusal::unknown_key) >= 2;
    }));
    for (int i = 0; i < 20; ++i)
        on(1, [&](endpoint& e) { return e.publish("secret/x", bytes_of("s")); });
    for (int i = 0; i < 2000; ++i)
        step();
    EXPECT_TRUE(stolen.empty());
    EXPECT_FALSE(b.connected("stranger"));
    EXPECT_FALSE(b.connected("wrong"));
    EXPECT_FALSE(stranger.connected("b"));
    EXPECT_FALSE(wrong.connected("b"));
    EXPECT_EQ(secure(1).stats().datagrams_opened, 0u);
}

INSTANTIATE_TEST_SUITE_P(Modes, SecureTransportTest,
                         ::testing::Values(security_mode::authenticated, security_mode::encrypted),
                         [](const auto& mode) { return std::string(to_string(mode.param)); });

}  // namespace
}  // namespace ringmesh::transport::secure
