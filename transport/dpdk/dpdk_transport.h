// The DPDK backend: UDP/IPv4 over Ethernet on a DPDK poll-mode driver (a real NIC, or the
// virtual net_memif, net_af_packet, net_af_xdp, net_tap), with ARP, correct IPv4 and UDP
// checksums (offloaded when the port can) and zero-copy receive: the handler's payload span
// points into the mbuf, and the buffer handle it gets keeps that mbuf alive. Datagrams only
// (caps().streams is false): peers reach it as datagram peers, and an io_uring UDP node on the
// other side of the wire speaks the same protocol.
//
// No DPDK type appears here: the rest of the engine never includes DPDK headers. Built only
// when meson finds libdpdk; otherwise create() explains that it was built without it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "transport/transport.h"

namespace ringmesh {
class shard;
}

namespace ringmesh::transport {

struct dpdk_config {
    /// EAL arguments, e.g. {"--no-huge", "-m", "512", "--no-pci", "--file-prefix", "n1",
    /// "--vdev", "net_memif0,role=server,socket=/run/rm.sock,socket-abstract=no"}.
    /// EAL starts once per process, with the first transport's arguments.
    std::vector<std::string> eal_args;
    std::string port;  ///< device name ("net_memif0") or PCI address; empty: the first port
    std::string ip;    ///< this node's IPv4 address on that port (the port has no kernel IP)
    /// Shards sharing the port: each opens its own transport with its own `queue` (0 ..
    /// queues-1), its own RX/TX queue pair and mbuf pool. With several, RSS spreads flows
    /// over the queues where the port offers it; a datagram that lands on another shard's
    /// queue (its UDP port names the owner) is handed over through the cross-core rings.
    std::uint16_t queues = 1;
    std::uint16_t queue = 0;
    std::uint16_t mtu = 1500;
    unsigned rx_descriptors = 1024, tx_descriptors = 1024;
    unsigned mbufs = 8191;
    unsigned receive_holders = 1024;          ///< received datagrams handlers may hold at once
    time_ns arp_timeout_ns = 300 * ns_per_s;  ///< a resolved entry is refreshed after this
    time_ns arp_retry_ns = 200 * ns_per_ms;
    int arp_attempts = 5;                ///< then what waited for the address is dropped (counted)
    std::size_t arp_pending_max = 1024;  ///< datagrams waiting for an address, in all
    /// A port whose peer is not there yet does not start (a memif client before its server):
    /// starting is retried for this long, with one line saying so, before giving up.
    time_ns start_timeout_ns = 10 * ns_per_s;
};

struct dpdk_stats {
    std::uint64_t rx_packets = 0, rx_datagrams = 0, rx_arp = 0, rx_dropped_not_ours = 0;
    std::uint64_t rx_bad_checksum = 0, rx_malformed = 0, rx_fragments = 0, rx_no_holder = 0;
    std::uint64_t tx_datagrams = 0, tx_arp = 0, tx_no_mbuf = 0, tx_oversized = 0;
    std::uint64_t tx_ring_full = 0, arp_unresolved_drops = 0, arp_pending_full = 0;
    std::uint64_t bursts = 0;
    std::uint64_t tx_external = 0;  ///< datagrams sent from the caller's memory, uncopied
    std::uint64_t rx_handed_off = 0, rx_handed_in = 0, rx_handoff_dropped = 0;
    /// ARP news for the shards on the other queues: retried while their rings are full;
    /// dropped (counted) only beyond a bound, when they re-resolve by themselves.
    std::uint64_t arp_shares_retried = 0, arp_shares_dropped = 0;
    bool checksum_offload_tx = false, checksum_offload_rx = false;
    /// Whether large datagrams go out as external buffers: the port chains mbufs on transmit
    /// and is a virtual device (it copies; a NIC would DMA from memory DPDK never mapped).
    bool external_tx = false;
};

class dpdk_transport final : public transport {
  public:
    /// Starts EAL (first call in the process), opens the port with one RX/TX queue and one
    /// mbuf pool for shard `owner`. Fails with a reason when DPDK cannot start (no hugepages,
    /// bad EAL arguments), no port is usable, or `ip` is not an IPv4 address.
    /// `owner_shard` (the shard `owner` names, when the transport runs on one) is how it hands
    /// datagrams and ARP news to the shards on the port's other queues; it is given, never
    /// looked up. Without it a transport is alone on its port: a datagram for another queue
    /// is dropped and counted.
    static result<std::unique_ptr<dpdk_transport>> create(const dpdk_config& config, shard_id owner,
                                                          shard* owner_shard = nullptr);
    ~dpdk_transport() override;

    result<void> listen(const address& local) override;
    /// Streams are not offered: fails with transport_errc::not_supported.
    result<connection_id> connect(const address& remote) override;
    void close(connection_id conn) override;
    std::size_t poll(time_ns now, event_handler& handler) override;
    using transport::send;  // the in-place overload copies
    std::size_t send(connection_id conn, std::span<const std::byte> bytes) override;
    std::size_t send_datagram(const address& to, std::span<const std::byte> bytes) override;
    /// Large datagrams leave without a copy: headers in one mbuf, the payload attached as an
    /// external buffer behind it (where the port chains mbufs and does not DMA; see
    /// dpdk_stats::external_tx).
    std::size_t send_datagram(const address& to, std::span<const std::byte> bytes,
                              const shared_bytes_owner& owner) override;
    std::size_t flush() override;
    /// A poll-mode driver has nothing to sleep in: waits at most a short slice on the wake fd.
    void wait(time_ns timeout_ns, std::span<const int> wake_fds) override;
    capabilities caps() const noexcept override;

    const dpdk_stats& stats() const noexcept;
    /// Where the node listens: the configured IPv4 and the UDP port given to listen().
    const address& listen_address() const noexcept;
    std::string port_name() const;
    /// The receive holders' pool (the shard routes foreign releases back to it).
    buffer_pool& receive_pool() noexcept;

    struct impl;

  private:
    explicit dpdk_transport(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
};

}  // namespace ringmesh::transport
