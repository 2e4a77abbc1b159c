// Whole endpoints (handshake, sessions, pub/sub, RPC) over the DPDK transport: two shards in
// one process, each on its own net_memif port of one memif socket. Delivery must be complete,
// in order and without duplicates: the session layer's guarantees, unchanged on DPDK, and
// unchanged with every datagram sealed by the secure layer (encrypted and authenticated).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/shard.h"
#include "engine/messaging/endpoint.h"
#include "engine/metrics/messaging_figures.h"
#include "engine/smp/ring_mesh.h"
#include "tests/support/backend_skip.h"
#include "tests/support/bytes.h"
#include "transport/dpdk/dpdk_transport.h"
#include "transport/secure/cert_issuer.h"
#include "transport/secure/secure_transport.h"

namespace ringmesh {
namespace {

using messaging::endpoint;
using messaging::message;

using test_support::bytes_of;
using test_support::text_of;

transport::dpdk_config memif(int side) {
    const std::string sock = "/tmp/ringmesh-memif-ep-" + std::to_string(::getpid()) + ".sock";
    transport::dpdk_config c;
    c.eal_args = {"--no-huge",     "-m",
                  "512",           "--no-pci",
                  "--file-prefix", "rmep" + std::to_string(::getpid()),
                  "--log-level",   "*:error",
                  "--vdev",        "net_memif0,role=server,id=0,socket-abstract=no,socket=" + sock,
                  "--vdev",        "net_memif1,role=client,id=0,socket-abstract=no,socket=" + sock};
    c.port = side == 0 ? "net_memif0" : "net_memif1";
    c.ip = side == 0 ? "10.241.0.1" : "10.241.0.2";
    c.mbufs = 8191;
    return c;
}

class DpdkEndpointTest : public ::testing::Test {
  protected:
    /// none: the endpoints on the ports; otherwise each wrapped by the secure layer.
    transport::secure::security_mode mode_ = transport::secure::security_mode::none;

    void SetUp() override {
        mesh_ = std::make_unique<ring_mesh>(2, 64);
        for (shard_id id = 0; id < 2; ++id)
            shards_.push_back(std::move(shard::create(id, *mesh_, clock_, {})).value());
        for (int side = 0; side < 2; ++side) {
            auto t = transport::dpdk_transport::create(memif(side), static_cast<shard_id>(side),
                                                       shards_[side].get());
            RM_SKIP_IF_UNSUPPORTED(t, "DPDK");
            transports_.push_back(t->get());
            std::unique_ptr<transport::transport> port = std::move(t).value();
            if (mode_ != transport::secure::security_mode::none) {
                transport::secure::secure_settings ss;
                ss.identity = {"ringmesh", side == 0 ? "a" : "b", mode_};
                ss.keys = std::make_shared<transport::secure::key_store>(
                    std::vector<transport::secure::key_bytes>{
                        transport::secure::key_bytes(32, std::byte{0x42})});
                ss.owner = static_cast<shard_id>(side);
                if (mode_ == transport::secure::security_mode::encrypted) {
                    // Streams would need certificates; DPDK carries datagrams only.
                    static const auto issuer = transport::secure::cert_issuer::create("ca").value();
                    const std::string name = side == 0 ? "a" : "b";
                    ss.tls = std::make_shared<transport::secure::tls_credentials>(
                        transport::secure::tls_context::from_pem(issuer.issue(name).value(), name)
                            .value());
                }
                auto wrapped = transport::secure::secure_transport::wrap(std::move(port), ss);
                ASSERT_TRUE(wrapped) << wrapped.err().message();
                secure_.push_back(wrapped->get());
                port = std::move(wrapped).value();
            }
            messaging::endpoint_config config;
            config.node_id = side == 0 ? "a" : "b";
            config.listen = *transport::address::parse(memif(side).ip + ":7100");
            if (side == 0) config.datagram_peers = {*transport::address::parse("10.241.0.2:7100")};
            detail::bind_thread_to_shard(shards_[side].get());
            auto e = endpoint::create(*shards_[side], std::move(port), config);
            detail::bind_thread_to_shard(nullptr);
            ASSERT_TRUE(e) << e.err().message();
            endpoints_.push_back(std::move(e).value());
        }
    }
    void TearDown() override {
        for (std::size_t i = 0; i < endpoints_.size(); ++i) {
            detail::bind_thread_to_shard(shards_[i].get());
            endpoints_[i].reset();
            detail::bind_thread_to_shard(nullptr);
        }
    }
    bool pump_until(const std::function<bool()>& done, int max_rounds = 3'000'000) {
        for (int i = 0; i < max_rounds && !done(); ++i) {
            for (std::size_t s = 0; s < shards_.size(); ++s) {
                detail::bind_thread_to_shard(shards_[s].get());
                shards_[s]->run_once();
                detail::bind_thread_to_shard(nullptr);
            }
        }
        return done();
    }
    template <typename Fn>
    auto on(int side, Fn&& fn) {
        detail::bind_thread_to_shard(shards_[side].get());
        auto r = fn(*endpoints_[side]);
        detail::bind_thread_to_shard(nullptr);
        return r;
    }

    monotonic_clock clock_;
    std::unique_ptr<ring_mesh> mesh_;
    std::vector<std::unique_ptr<shard>> shards_;
    std::vector<transport::dpdk_transport*> transports_;
    std::vector<transport::secure::secure_transport*> secure_;
    std::vector<std::unique_ptr<endpoint>> endpoints_;

    void publish_and_call(int count);
};

class SealedDpdkEndpointTest
    : public DpdkEndpointTest,
      public ::testing::WithParamInterface<transport::secure::security_mode> {
  protected:
    void SetUp() override {
        mode_ = GetParam();
        DpdkEndpointTest::SetUp();
    }
};

// Publishes `count` numbered messages a→b, then an echo call and one larger than the MTU.
void DpdkEndpointTest::publish_and_call(int count) {
    std::vector<int> got;
    on(1, [&](endpoint& e) {
        return e.subscribe("dpdk/**",
                           [&](const message& m) { got.push_back(std::stoi(text_of(m.bytes))); });
    });
    ASSERT_TRUE(pump_until(
        [&] { return on(0, [](endpoint& e) { return e.subscribers("dpdk/x"); }) == 1; }));
    int next = 0;
    ASSERT_TRUE(pump_until([&] {
        while (next < count && on(0, [](endpoint& e) { return e.publish_ready("dpdk/x"); })) {
            on(0, [&](endpoint& e) { return e.publish("dpdk/x", bytes_of(std::to_string(next))); });
            ++next;
        }
        return got.size() == static_cast<std::size_t>(count);
    })) << "delivered "
        << got.size() << " of " << count;
    for (int i = 0; i < count; ++i)
        ASSERT_EQ(got[i], i) << "out of order or duplicated at " << i;

    on(1, [](endpoint& e) {
        e.serve("echo", [](const message& m) {
            return messaging::rpc_reply{wire::RpcStatus::Ok, m.bytes, {}};
        });
        return 0;
    });
    std::string reply;
    on(0, [&](endpoint& e) {
        return e.call("b", "echo", bytes_of("over dpdk"), ns_per_s,
                      [&](const messaging::rpc_result& r) { reply = text_of(r.payload); });
    });
    ASSERT_TRUE(pump_until([&] { return !reply.empty(); }));
    EXPECT_EQ(reply, "over dpdk");
    // A message larger than the port's MTU: split by the session, reassembled on the far side.
    std::string big(30'000, 'd');
    for (std::size_t i = 0; i < big.size(); ++i)
        big[i] = static_cast<char>('a' + i % 23);
    reply.clear();
    on(0, [&](endpoint& e) {
        return e.call("b", "echo", bytes_of(big), ns_per_s,
                      [&](const messaging::rpc_result& r) { reply = text_of(r.payload); });
    });
    ASSERT_TRUE(pump_until([&] { return !reply.empty(); }));
    EXPECT_EQ(reply, big);
}

TEST_F(DpdkEndpointTest, PublishAndRpcOverMemifAreCompleteAndInOrder) {
    publish_and_call(20000);
    EXPECT_EQ(transports_[1]->stats().rx_bad_checksum, 0u);
    EXPECT_GT(transports_[1]->stats().rx_datagrams, 0u);
    // Its full-size pieces left from the session's blocks as external buffers, uncopied.
    EXPECT_GT(transports_[0]->stats().tx_external, 0u);
    EXPECT_GT(transports_[1]->stats().tx_external, 0u);  // and the echo's, on the way back

    // The port's figures reach the metrics, as the daemon exports them.
    metrics::metric_sink sink;
    metrics::write_messaging_figures(*endpoints_[1], sink);
    double received = -1;
    for (const metrics::family& f : sink.take()) {
        if (f.name != "ringmesh_dpdk_datagrams_total") continue;
        for (const metrics::sample& s : f.samples) {
            if (s.labels.size() == 1 && s.labels[0].value == "received") received = s.value;
        }
    }
    EXPECT_EQ(received, static_cast<double>(transports_[1]->stats().rx_datagrams));
}

TEST_P(SealedDpdkEndpointTest, SealedDatagramsOverMemifAreCompleteAndInOrder) {
    publish_and_call(20000);
    for (int side = 0; side < 2; ++side) {
        const auto& st = secure_[static_cast<std::size_t>(side)]->stats();
        EXPECT_GE(st.datagram_handshakes, 1u)
            << side << ": sealed " << st.datagrams_sealed << " opened " << st.datagrams_opened
            << " dropped " << st.datagrams_dropped << " refused " << st.datagrams_refused
            << " replayed " << st.datagrams_replayed << " refusals " << st.refused_total();
        EXPECT_GT(st.datagrams_sealed, 0u) << side;
        EXPECT_GT(st.datagrams_opened, 0u) << side;
        EXPECT_EQ(st.datagrams_refused, 0u) << side;
        EXPECT_EQ(st.refused_total(), 0u) << side;
        EXPECT_EQ(st.datagrams_dropped, 0u) << side;
    }
    EXPECT_EQ(transports_[1]->stats().rx_bad_checksum, 0u);
}

INSTANTIATE_TEST_SUITE_P(Modes, SealedDpdkEndpointTest,
                         ::testing::Values(transport::secure::security_mode::authenticated,
                                           transport::secure::security_mode::encrypted),
                         [](const auto& mode) {
                             return std::string(transport::secure::to_string(mode.param));
                         });

struct collector final : transport::event_handler {
    std::vector<std::string> got;
    void on_connected(transport::connection_id, bool) override {}
    void on_received(transport::connection_id, buffer_handle) override {}
    void on_datagram(const transport::address&, std::span<const std::byte> payload,
                     buffer_handle) override {
        got.emplace_back(reinterpret_cast<const char*>(payload.data()), payload.size());
    }
    void on_closed(transport::connection_id, transport::close_reason, int) override {}
};

TEST(DpdkQueuesTest, EachShardOwnsAQueueAndForeignDatagramsAreHandedOver) {
    // Two shards per memif port, one queue pair each. memif maps the sender's TX queue i to
    // the receiver's RX queue i, so datagrams from shard a0 (queue 0) for b1's UDP port land
    // on b0's queue: b0 hands them to b1 through the cross-core ring.
    monotonic_clock clock;
    ring_mesh mesh(4, 64);
    std::vector<std::unique_ptr<shard>> shards;
    for (shard_id id = 0; id < 4; ++id)
        shards.push_back(std::move(shard::create(id, mesh, clock, {})).value());
    std::vector<std::unique_ptr<transport::dpdk_transport>> t;
    for (int i = 0; i < 4; ++i) {
        transport::dpdk_config c = memif(i < 2 ? 0 : 1);
        c.queues = 2;
        c.queue = static_cast<std::uint16_t>(i % 2);
        detail::bind_thread_to_shard(shards[i].get());
        auto opened =
            transport::dpdk_transport::create(c, static_cast<shard_id>(i), shards[i].get());
        detail::bind_thread_to_shard(nullptr);
        RM_SKIP_IF_UNSUPPORTED(opened, "DPDK");
        ASSERT_TRUE(opened.value()->listen(
            *transport::address::parse(c.ip + ":" + std::to_string(9000 + i % 2))));
        t.push_back(std::move(opened).value());
    }
    std::vector<collector> handlers(4);
    auto pump = [&](const std::function<bool()>& done) {
        for (int round = 0; round < 2'000'000 && !done(); ++round) {
            for (int i = 0; i < 4; ++i) {
                detail::bind_thread_to_shard(shards[i].get());
                t[i]->poll(monotonic_clock::read(), handlers[i]);
                t[i]->flush();
                shards[i]->run_once();  // runs hand-overs from siblings, flushes the rings
                detail::bind_thread_to_shard(nullptr);
            }
        }
        return done();
    };
    const auto b1 = *transport::address::parse("10.241.0.2:9001");
    for (int i = 0; i < 200; ++i) {
        const std::string text = "q" + std::to_string(i);
        detail::bind_thread_to_shard(shards[0].get());
        ASSERT_EQ(t[0]->send_datagram(b1, bytes_of(text)), text.size());
        detail::bind_thread_to_shard(nullptr);
    }
    ASSERT_TRUE(pump([&] { return handlers[3].got.size() == 200; }))
        << "b1 got " << handlers[3].got.size() << "; b0 handed off " << t[2]->stats().rx_handed_off
        << ", dropped " << t[2]->stats().rx_dropped_not_ours;
    for (int i = 0; i < 200; ++i)
        EXPECT_EQ(handlers[3].got[i], "q" + std::to_string(i));
    EXPECT_TRUE(handlers[2].got.empty());  // b0 delivered none of them itself
    EXPECT_EQ(t[2]->stats().rx_handed_off, 200u);
    EXPECT_EQ(t[3]->stats().rx_handed_in, 200u);
    // And back: b1 resolves a's address itself (its request lands on a1's queue, the answer
    // on its own), and what it sends to a0's port lands on a1's queue and is handed over.
    const auto a0 = *transport::address::parse("10.241.0.1:9000");
    for (int i = 0; i < 100; ++i) {
        const std::string text = "r" + std::to_string(i);
        detail::bind_thread_to_shard(shards[3].get());
        ASSERT_EQ(t[3]->send_datagram(a0, bytes_of(text)), text.size());
        detail::bind_thread_to_shard(nullptr);
    }
    ASSERT_TRUE(pump([&] { return handlers[0].got.size() == 100; }))
        << "a0 got " << handlers[0].got.size();
    EXPECT_EQ(handlers[0].got.back(), "r99");
    EXPECT_EQ(t[1]->stats().rx_handed_off, 100u);
    for (int i = 0; i < 4; ++i) {
        detail::bind_thread_to_shard(shards[i].get());
        t[i].reset();
        detail::bind_thread_to_shard(nullptr);
    }
}

// The memif socket and EAL's runtime files go when the process is done with DPDK.
class dpdk_files final : public ::testing::Environment {
  public:
    void TearDown() override {
        std::filesystem::remove("/tmp/ringmesh-memif-ep-" + std::to_string(::getpid()) + ".sock");
        std::filesystem::remove_all("/var/run/dpdk/rmep" + std::to_string(::getpid()));
    }
};
const auto* const files_cleanup = ::testing::AddGlobalTestEnvironment(new dpdk_files);

}  // namespace
}  // namespace ringmesh
