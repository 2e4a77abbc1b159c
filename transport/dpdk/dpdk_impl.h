// The DPDK backend's state, shared by its setup and data-path files. Private: includes DPDK.
#pragma once

#include <netinet/in.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "transport/dpdk/dpdk_transport.h"

namespace ringmesh::transport {

struct dpdk_transport::impl {
    dpdk_config config;
    shard_id owner = no_shard;
    shard* owner_shard = nullptr;  // given at creation: the way to the port's other queues
    std::uint16_t port = 0;
    std::uint16_t queue = 0;
    struct port_share* share = nullptr;  // the port, as the shards using it see it
    std::vector<rte_mbuf*> handed_in;    // datagrams for us that landed on another queue
    std::string port_name;
    rte_mempool* pool = nullptr;
    rte_ether_addr mac{};
    std::uint32_t ip_be = 0;  // network order
    std::uint16_t udp_port_be = 0;
    std::uint16_t mtu = 1500;
    bool started = false;
    address listen_address;

    // Receive: each datagram handed up is a slot of `holders` whose data points into the
    // mbuf kept in held[slot index]; the pool's return hook frees the mbuf.
    std::unique_ptr<buffer_pool> holders;
    std::vector<rte_mbuf*> held;

    // Transmit: built this iteration, handed over in one rte_eth_tx_burst by flush().
    std::vector<rte_mbuf*> tx;
    // External payloads: one record per datagram sent in place, from a process-wide pool
    // (the device may free the mbuf on any thread, after this transport is gone).
    rte_mempool* external_pool = nullptr;

    /// A datagram's Ethernet/IPv4/UDP headers for `payload_bytes` to `to`, at the front of an
    /// empty mbuf `m`; returns the UDP header (checksum still to fill), nullptr if no room.
    rte_udp_hdr* write_headers(rte_mbuf* m, const sockaddr_in& to, std::size_t payload_bytes);
    /// Fills the checksums of the finished datagram `m` and queues it (or waits for ARP).
    void finish_datagram(rte_mbuf* m);

    // ARP: resolved addresses, and datagrams waiting for one.
    struct arp_entry {
        rte_ether_addr mac{};
        time_ns resolved_at = 0;
    };
    struct arp_wait {
        std::vector<rte_mbuf*> packets;  // complete but for the destination MAC
        time_ns last_request = INT64_MIN / 2;
        int attempts = 0;
    };
    std::unordered_map<std::uint32_t, arp_entry> arp;  // by IPv4 (network order)
    std::unordered_map<std::uint32_t, arp_wait> arp_waiting;
    std::size_t arp_waiting_packets = 0;

    // ARP news a sibling's full ring could not take yet: retried each poll.
    struct arp_share {
        impl* sibling;
        std::uint32_t ip_be;
        rte_ether_addr mac;
    };
    std::vector<arp_share> arp_shares_pending;
    static constexpr std::size_t arp_shares_max = 1024;

    time_ns now = 0;
    dpdk_stats stats;

    // data path (dpdk_datapath.cc)
    void receive(rte_mbuf* m, event_handler& handler);
    bool hand_off(rte_mbuf* m, std::uint16_t udp_port_be);
    void handle_arp(rte_mbuf* m);
    /// Records where `ip_be` is and sends what waited for it.
    void learn(std::uint32_t ip_be, const rte_ether_addr& where);
    void send_arp(std::uint16_t opcode, const rte_ether_addr& to_mac, std::uint32_t to_ip_be);
    void resolve(std::uint32_t ip_be, rte_mbuf* packet);
    void arp_tick();
    /// Tells `sibling` (on another queue of the port) where `ip_be` is; false: its ring was
    /// full, try again later.
    bool share_arp(impl* sibling, std::uint32_t ip_be, const rte_ether_addr& where);
    void retry_arp_shares();
    void release_held(buffer_slot* slot);
};

/// One datagram payload sent in place: the mbuf's external-buffer record and the owner that
/// keeps the bytes alive. Lives in a process-wide mempool (external_payload_pool) and goes
/// back there with the mbuf, on whichever thread the device frees it.
struct external_payload {
    rte_mbuf_ext_shared_info shinfo;
    shared_bytes_owner owner;
    rte_mempool* pool;
};
/// The process's pool of external_payload records (created on first use); nullptr when
/// there is no memory for it.
rte_mempool* external_payload_pool(int socket);

/// A port shared by the shards of one process: configured once with a queue per shard,
/// started when every queue is set up, stopped when the last transport goes.
struct port_share {
    std::mutex mutex;
    std::uint16_t queues = 0, set_up = 0, open = 0;
    std::atomic<bool> started{false};
    /// Which transport owns which UDP port: copy-on-write, so the data path reads it
    /// without a lock (snapshots are kept until the port closes).
    struct owner_entry {
        std::uint16_t udp_port_be;
        dpdk_transport::impl* owner;
    };
    std::atomic<const std::vector<owner_entry>*> owners{nullptr};
    std::vector<std::unique_ptr<std::vector<owner_entry>>> snapshots;
};

}  // namespace ringmesh::transport
