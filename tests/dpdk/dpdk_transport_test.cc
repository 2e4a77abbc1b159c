// The DPDK transport on virtual devices, in one process: two net_memif ports joined by one
// socket (server and client), each driven like a shard's transport. Real Ethernet frames,
// ARP, IPv4 and UDP checksums, zero-copy receive; then whole endpoints with sessions on top,
// and the auto/dpdk/uring selection. Skips (exit 77) only where EAL cannot start at all.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "engine/messaging/endpoint.h"
#include "tests/support/backend_skip.h"
#include "tests/support/bytes.h"
#include "transport/dpdk/dpdk_transport.h"
#include "transport/select.h"

namespace ringmesh::transport {
namespace {

std::string socket_path() {
    return "/tmp/ringmesh-memif-" + std::to_string(::getpid()) + ".sock";
}

dpdk_config memif_config(int side) {
    dpdk_config c;
    c.eal_args = {
        "--no-huge",     "-m",
        "512",           "--no-pci",
        "--file-prefix", "rmtest" + std::to_string(::getpid()),
        "--log-level",   "*:error",
        "--vdev",        "net_memif0,role=server,id=0,socket-abstract=no,socket=" + socket_path(),
        "--vdev",        "net_memif1,role=client,id=0,socket-abstract=no,socket=" + socket_path()};
    c.port = side == 0 ? "net_memif0" : "net_memif1";
    c.ip = side == 0 ? "10.240.0.1" : "10.240.0.2";
    c.mbufs = 4095;
    return c;
}

struct collector final : event_handler {
    std::vector<std::string> got;
    std::vector<std::string> from;
    buffer_handle kept;
    void on_connected(connection_id, bool) override {}
    void on_received(connection_id, buffer_handle) override {}
    void on_datagram(const address& src, std::span<const std::byte> payload,
                     buffer_handle owner) override {
        got.emplace_back(reinterpret_cast<const char*>(payload.data()), payload.size());
        from.push_back(src.to_string());
        if (!kept) kept = std::move(owner);  // the first one is held past the handler
    }
    void on_closed(connection_id, close_reason, int) override {}
};

class DpdkTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        auto a = dpdk_transport::create(memif_config(0), 0);
        if (!a) return setup_failed(a.err());
        auto b = dpdk_transport::create(memif_config(1), 1);
        if (!b) return setup_failed(b.err());
        a_ = std::move(a).value().release();
        b_ = std::move(b).value().release();
        ASSERT_TRUE(a_->listen(*address::parse("10.240.0.1:9000")));
        ASSERT_TRUE(b_->listen(*address::parse("10.240.0.2:9000")));
    }
    static void TearDownTestSuite() {
        // The ports stay open until exit; their files need not outlive the test.
        std::filesystem::remove(socket_path());
        std::filesystem::remove_all("/var/run/dpdk/rmtest" + std::to_string(::getpid()));
    }
    // Only "unsupported here" skips; any other setup error fails every test of the suite.
    static void setup_failed(const error& e) {
        (test_support::unsupported(e) ? skip_reason_ : setup_error_) = e.message();
    }
    void SetUp() override {
        if (!setup_error_.empty()) FAIL() << "DPDK failed to start: " << setup_error_;
        if (a_ == nullptr) GTEST_SKIP() << "DPDK is not supported here: " << skip_reason_;
    }
    // Polls both ports until done() (bounded: a liveness limit, not a timing check).
    bool pump(collector& ca, collector& cb, const std::function<bool()>& done) {
        for (int i = 0; i < 2'000'000 && !done(); ++i) {
            a_->poll(monotonic_clock::read(), ca);
            b_->poll(monotonic_clock::read(), cb);
            a_->flush();
            b_->flush();
        }
        return done();
    }
    static inline dpdk_transport* a_ = nullptr;
    static inline dpdk_transport* b_ = nullptr;
    static inline std::string skip_reason_;
    static inline std::string setup_error_;
};

using test_support::bytes_of;

TEST_F(DpdkTest, DatagramsCrossTheMemifPairAfterArpWithChecksumsAndZeroCopy) {
    collector ca, cb;
    const address to_b = *address::parse("10.240.0.2:9000");
    for (int i = 0; i < 100; ++i)
        ASSERT_EQ(a_->send_datagram(to_b, bytes_of("d" + std::to_string(i))), 2u + (i >= 10));
    ASSERT_TRUE(pump(ca, cb, [&] { return cb.got.size() == 100; }))
        << "got " << cb.got.size() << "; a: tx " << a_->stats().tx_datagrams << " arp "
        << a_->stats().tx_arp << "; b: rx " << b_->stats().rx_packets << " bad checksum "
        << b_->stats().rx_bad_checksum;
    for (int i = 0; i < 100; ++i)
        EXPECT_EQ(cb.got[i], "d" + std::to_string(i));  // one link, one queue: in order
    EXPECT_EQ(cb.from[0], "10.240.0.1:9000");
    EXPECT_GE(a_->stats().tx_arp, 1u);  // a asked who has 10.240.0.2
    EXPECT_GE(b_->stats().rx_arp, 1u);  // and b answered
    EXPECT_EQ(b_->stats().rx_bad_checksum, 0u);
    // The first payload still lives in its mbuf, held by the handle.
    ASSERT_TRUE(cb.kept);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(cb.kept.bytes().data()), cb.kept.size()),
              "d0");
    const std::size_t free_before = b_->receive_pool().available();
    cb.kept.reset();
    EXPECT_EQ(b_->receive_pool().available(), free_before + 1);
    // And back: b learned a's address from the ARP request, no new request needed.
    const std::uint64_t arp_before = b_->stats().tx_arp;
    ASSERT_EQ(b_->send_datagram(*address::parse("10.240.0.1:9000"), bytes_of("back")), 4u);
    ASSERT_TRUE(pump(ca, cb, [&] { return ca.got.size() == 1; }));
    EXPECT_EQ(ca.got[0], "back");
    EXPECT_EQ(b_->stats().tx_arp, arp_before);
    ca.kept.reset();
}

TEST_F(DpdkTest, LargeDatagramsLeaveFromTheCallersMemoryWhichIsHeldUntilSent) {
    // memif is a virtual device that chains mbufs: a large payload is attached as an
    // external buffer behind the headers instead of being copied into the mbuf. memif has no
    // checksum offload, so the UDP checksum is computed in software over both segments.
    ASSERT_TRUE(a_->stats().external_tx) << "net_memif offers multi-segment transmit";
    collector ca, cb;
    std::string text(1400, ' ');
    for (std::size_t i = 0; i < text.size(); ++i)
        text[i] = static_cast<char>('A' + i % 26);
    auto memory = std::make_shared<std::string>(text);
    const shared_bytes_owner owner = memory;
    const std::uint64_t external_before = a_->stats().tx_external;
    ASSERT_EQ(a_->send_datagram(*address::parse("10.240.0.2:9000"), bytes_of(*memory), owner),
              text.size());
    EXPECT_EQ(a_->stats().tx_external, external_before + 1);
    EXPECT_GT(memory.use_count(), 2) << "the mbuf holds the memory until the device is done";
    ASSERT_TRUE(pump(ca, cb, [&] { return cb.got.size() == 1; }));
    EXPECT_EQ(cb.got[0], text);
    EXPECT_EQ(b_->stats().rx_bad_checksum, 0u);  // the checksum covers both segments
    EXPECT_EQ(memory.use_count(), 2) << "sent: only the test's references are left";
    // Small payloads are copied: a second mbuf would cost more than the copy.
    ASSERT_EQ(a_->send_datagram(*address::parse("10.240.0.2:9000"), bytes_of("tiny"), owner), 4u);
    EXPECT_EQ(a_->stats().tx_external, external_before + 1);
    ASSERT_TRUE(pump(ca, cb, [&] { return cb.got.size() == 2; }));
    cb.kept.reset();
}

TEST_F(DpdkTest, OversizedDatagramsAreRefusedAndCounted) {
    const std::string big(a_->caps().max_datagram_bytes + 1, 'x');
    EXPECT_EQ(a_->send_datagram(*address::parse("10.240.0.2:9000"), bytes_of(big)), 0u);
    EXPECT_GE(a_->stats().tx_oversized, 1u);
    EXPECT_EQ(a_->caps().max_datagram_bytes, 1472u);
    EXPECT_FALSE(a_->caps().streams);
    EXPECT_FALSE(a_->connect(*address::parse("10.240.0.2:9000")));
}

TEST_F(DpdkTest, AutoFallsBackToIoUringWithAReasonAndDpdkRefuses) {
    dpdk_config missing = memif_config(0);
    missing.port = "net_nosuchport";
    auto chosen = open_transport(backend::automatic, true, missing, {}, 2);
    ASSERT_TRUE(chosen) << chosen.err().message();
    EXPECT_EQ(chosen->chosen, backend::uring);
    EXPECT_NE(chosen->note.find("no port named 'net_nosuchport'"), std::string::npos)
        << chosen->note;
    auto strict = open_transport(backend::dpdk, true, missing, {}, 2);
    ASSERT_FALSE(strict);
    EXPECT_NE(strict.err().message().find("net_nosuchport"), std::string::npos);
    auto unconfigured = open_transport(backend::automatic, false, {}, {}, 2);
    ASSERT_TRUE(unconfigured);
    EXPECT_EQ(unconfigured->chosen, backend::uring);
    EXPECT_NE(unconfigured->note.find("DPDK unavailable"), std::string::npos);
}

}  // namespace
}  // namespace ringmesh::transport
