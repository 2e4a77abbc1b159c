// The DPDK floor: what a net_memif pair does with no library in the way — raw Ethernet frames
// through rte_eth_tx_burst/rte_eth_rx_burst, no ARP, no IP/UDP, no checksums, no sessions.
// stream: bursts of 32 frames as fast as the ring takes them; pingpong: one frame each way,
// both sides busy-polling.
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <cstring>
#include <vector>

#include "bench/harness/harness.h"

namespace ringmesh::bench {
namespace {

struct memif_port {
    std::uint16_t port = 0;
    rte_mempool* pool = nullptr;
    std::string error;
};

memif_port open_memif(const run_config& c, bool receiving) {
    memif_port m;
    if (!receiving && !wait_for_memif_server(c)) {
        m.error = "the memif server never came up";
        return m;
    }
    if (receiving) remove_memif_files(c, true);
    std::vector<std::string> args{"raw-dpdk"};
    for (auto& a : memif_eal_args(c, receiving))
        args.push_back(std::move(a));
    std::vector<char*> argv;
    argv.reserve(args.size());
    for (auto& a : args)
        argv.push_back(a.data());
    if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
        m.error = std::string("EAL: ") + rte_strerror(rte_errno);
        return m;
    }
    if (rte_eth_dev_get_port_by_name("net_memif0", &m.port) != 0) {
        m.error = "no net_memif0";
        return m;
    }
    m.pool = rte_pktmbuf_pool_create("raw", 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
    rte_eth_conf conf{};
    if (m.pool == nullptr || rte_eth_dev_configure(m.port, 1, 1, &conf) != 0 ||
        rte_eth_rx_queue_setup(m.port, 0, 1024, 0, nullptr, m.pool) != 0 ||
        rte_eth_tx_queue_setup(m.port, 0, 1024, 0, nullptr) != 0 ||
        rte_eth_dev_start(m.port) != 0) {
        m.error = "memif port setup failed";
        return m;
    }
    // The link is up once the client has connected to the server (bounded wait).
    for (int i = 0; i < 5000; ++i) {
        rte_eth_link link{};
        rte_eth_link_get_nowait(m.port, &link);
        if (link.link_status == RTE_ETH_LINK_UP) return m;
        rte_delay_us_sleep(1000);
    }
    m.error = "memif link never came up";
    return m;
}

void close_memif(memif_port& m, const run_config& c, bool receiving) {
    rte_eth_dev_stop(m.port);
    rte_eal_cleanup();
    remove_memif_files(c, receiving);
}

// Frames carry the harness message after a 14-byte Ethernet header.
constexpr std::size_t eth = 14;

bool send_frame(memif_port& m, const std::vector<std::byte>& msg) {
    rte_mbuf* b = rte_pktmbuf_alloc(m.pool);
    if (b == nullptr) return false;
    auto* p = rte_pktmbuf_mtod(b, std::byte*);
    std::memset(p, 0xff, eth);
    std::memcpy(p + eth, msg.data(), msg.size());
    b->data_len = b->pkt_len = static_cast<std::uint32_t>(eth + msg.size());
    while (rte_eth_tx_burst(m.port, 0, &b, 1) == 0) {
    }
    return true;
}

bool receive_frame(memif_port& m, std::vector<std::byte>& msg, double seconds) {
    const time_ns give_up = monotonic_clock::read() + static_cast<time_ns>(seconds * 1e9);
    rte_mbuf* b = nullptr;
    while (rte_eth_rx_burst(m.port, 0, &b, 1) == 0) {
        if (monotonic_clock::read() > give_up) return false;
    }
    std::memcpy(msg.data(), rte_pktmbuf_mtod(b, std::byte*) + eth, msg.size());
    rte_pktmbuf_free(b);
    return true;
}

run_result receiver(const run_config& c) {
    memif_port m = open_memif(c, true);
    if (!m.error.empty()) return run_result::failed("raw-dpdk: " + m.error);
    receive_tally tally;
    rte_mbuf* burst[32];
    const time_ns give_up = monotonic_clock::read() + static_cast<time_ns>((c.seconds + 20) * 1e9);
    while (!tally.done && monotonic_clock::read() < give_up) {
        const std::uint16_t n = rte_eth_rx_burst(m.port, 0, burst, 32);
        for (std::uint16_t i = 0; i < n; ++i) {
            auto* p = rte_pktmbuf_mtod(burst[i], std::byte*) + eth;
            if (c.what == scenario::pingpong) {
                const bool end = kind_of(p) == msg_end;
                while (rte_eth_tx_burst(m.port, 0, &burst[i], 1) == 0) {  // echo the frame
                }
                tally.done = tally.done || end;
                continue;
            }
            tally.on_message(p, c.what == scenario::rate);
            rte_pktmbuf_free(burst[i]);
        }
    }
    close_memif(m, c, true);
    return c.what == scenario::pingpong ? run_result{} : tally.result(c.what == scenario::rate);
}

run_result sender(const run_config& c) {
    memif_port m = open_memif(c, false);
    if (!m.error.empty()) return run_result::failed("raw-dpdk: " + m.error);
    std::vector<std::byte> msg(c.payload_bytes);
    run_result r;
    if (c.what == scenario::pingpong) {
        r = windowed_round_trips(
            c, 1, msg, [&](const std::vector<std::byte>& out) { return send_frame(m, out); },
            [&](std::vector<std::byte>& in) { return receive_frame(m, in, 5); });
    } else {
        const time_ns end = monotonic_clock::read() + static_cast<time_ns>(c.seconds * 1e9);
        std::uint64_t seq = 0;
        rte_mbuf* burst[32];
        for (time_ns now = monotonic_clock::read(); now < end; now = monotonic_clock::read()) {
            if (rte_pktmbuf_alloc_bulk(m.pool, burst, 32) != 0) continue;
            for (auto* b : burst) {  // one clock read per burst, as every sender here
                auto* p = rte_pktmbuf_mtod(b, std::byte*);
                std::memset(p, 0xff, eth);
                stamp(p + eth, msg_data, seq++, now);
                b->data_len = b->pkt_len = static_cast<std::uint32_t>(eth + c.payload_bytes);
            }
            std::uint16_t sent = 0;
            while (sent < 32)
                sent += rte_eth_tx_burst(m.port, 0, burst + sent, 32 - sent);
        }
        stamp(msg.data(), msg_end, seq, 0);
        send_frame(m, msg);
    }
    close_memif(m, c, false);
    return r;
}

bool supports(const run_config& c, std::string* why) {
    if (c.what != scenario::stream && c.what != scenario::pingpong) {
        *why = "the DPDK floor runs stream and pingpong";
        return false;
    }
    if (c.payload_bytes + eth > 1514) {
        *why = "one frame per message";
        return false;
    }
    return true;
}

}  // namespace

const system_roles raw_dpdk_roles{"raw-dpdk", receiver, sender, supports};

}  // namespace ringmesh::bench
