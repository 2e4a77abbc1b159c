// DPDK data path: burst receive, Ethernet/ARP/IPv4/UDP in and out, one tx_burst per flush.
#include <arpa/inet.h>
#include <rte_arp.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include <algorithm>
#include <cstring>
#include <new>

#include "engine/core/shard.h"
#include "engine/core/shard_waker.h"
#include "transport/dpdk/dpdk_impl.h"
#include "transport/inet_checksum.h"

namespace ringmesh::transport {

namespace {

constexpr std::size_t burst = 32;
constexpr std::size_t eth_len = sizeof(rte_ether_hdr);
constexpr std::size_t ip_len = sizeof(rte_ipv4_hdr);
constexpr std::size_t udp_len = sizeof(rte_udp_hdr);

address address_of(std::uint32_t ip_be, std::uint16_t port_be) {
    address a;
    auto* sin = reinterpret_cast<sockaddr_in*>(&a.storage);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = ip_be;
    sin->sin_port = port_be;
    a.length = sizeof(sockaddr_in);
    return a;
}

bool is_broadcast(const rte_ether_addr& a) {
    return rte_is_broadcast_ether_addr(&a) != 0;
}

}  // namespace

// ---- receive ----

std::size_t dpdk_transport::poll(time_ns now, event_handler& handler) {
    impl& p = *impl_;
    p.now = now;
    if (p.share != nullptr && !p.share->started.load(std::memory_order_acquire)) return 0;
    std::size_t work = 0;
    if (!p.handed_in.empty()) {  // datagrams siblings received on their queues for us
        std::vector<rte_mbuf*> mine;
        mine.swap(p.handed_in);
        for (rte_mbuf* m : mine) {
            ++p.stats.rx_handed_in;
            p.receive(m, handler);
        }
        work += mine.size();
    }
    rte_mbuf* packets[burst];
    const std::uint16_t n = rte_eth_rx_burst(p.port, p.queue, packets, burst);
    if (n > 0) ++p.stats.bursts;
    for (std::uint16_t i = 0; i < n; ++i) {
        if (i + 1 < n) rte_prefetch0(rte_pktmbuf_mtod(packets[i + 1], void*));
        p.receive(packets[i], handler);
    }
    p.arp_tick();
    return work + n;
}

bool dpdk_transport::impl::hand_off(rte_mbuf* m, std::uint16_t to_udp_port_be) {
    const auto* owners = share != nullptr ? share->owners.load(std::memory_order_acquire) : nullptr;
    if (owners == nullptr) return false;
    impl* target = nullptr;
    for (const auto& e : *owners) {
        if (e.udp_port_be == to_udp_port_be && e.owner != this) target = e.owner;
    }
    if (target == nullptr || owner_shard == nullptr) return false;
    const auto outcome =
        owner_shard->submit_to(target->owner, [m, target] { target->handed_in.push_back(m); });
    if (outcome != submit_outcome::accepted) {
        ++stats.rx_handoff_dropped;  // the ring to that shard is full: lost, counted
        rte_pktmbuf_free(m);
        return true;
    }
    ++stats.rx_handed_off;
    return true;
}

void dpdk_transport::impl::receive(rte_mbuf* m, event_handler& handler) {
    // Every refusal frees the mbuf and counts why.
    auto drop = [m](std::uint64_t& counter) {
        ++counter;
        rte_pktmbuf_free(m);
    };
    ++stats.rx_packets;
    const std::size_t len = rte_pktmbuf_data_len(m);
    if (m->nb_segs != 1 || len < eth_len) return drop(stats.rx_malformed);
    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    if (!rte_is_same_ether_addr(&eth->dst_addr, &mac) && !is_broadcast(eth->dst_addr))
        return drop(stats.rx_dropped_not_ours);
    const std::uint16_t type = rte_be_to_cpu_16(eth->ether_type);
    if (type == RTE_ETHER_TYPE_ARP) {
        handle_arp(m);
        rte_pktmbuf_free(m);
        return;
    }
    if (type != RTE_ETHER_TYPE_IPV4 || len < eth_len + ip_len + udp_len)
        return drop(stats.rx_dropped_not_ours);
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
    const std::size_t ihl = rte_ipv4_hdr_len(ip);
    const std::size_t total = rte_be_to_cpu_16(ip->total_length);
    if ((ip->version_ihl >> 4) != 4 || ihl < ip_len || total < ihl + udp_len ||
        eth_len + total > len)
        return drop(stats.rx_malformed);
    if (ip->dst_addr != ip_be || ip->next_proto_id != IPPROTO_UDP)
        return drop(stats.rx_dropped_not_ours);
    if ((rte_be_to_cpu_16(ip->fragment_offset) &
         (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) != 0)
        return drop(stats.rx_fragments);  // the session layer keeps datagrams within the MTU
    auto* udp = reinterpret_cast<rte_udp_hdr*>(reinterpret_cast<std::byte*>(ip) + ihl);
    const std::size_t udp_total = rte_be_to_cpu_16(udp->dgram_len);
    if (udp_total < udp_len || udp_total > total - ihl) return drop(stats.rx_malformed);
    if (udp->dst_port != udp_port_be) {
        // RSS put another shard's datagram on our queue: its UDP port names the owner.
        if (hand_off(m, udp->dst_port)) return;
        return drop(stats.rx_dropped_not_ours);
    }
    // Checksums: trust the NIC's verdict when it gives one, compute otherwise.
    const std::uint64_t ip_flag = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
    const std::uint64_t l4_flag = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
    const auto bytes_at = [](const void* p, std::size_t n) {
        return std::span<const std::byte>(static_cast<const std::byte*>(p), n);
    };
    const bool ip_ok =
        ip_flag == RTE_MBUF_F_RX_IP_CKSUM_GOOD ||
        (ip_flag != RTE_MBUF_F_RX_IP_CKSUM_BAD && inet::verifies(inet::add(bytes_at(ip, ihl))));
    const bool udp_ok = l4_flag == RTE_MBUF_F_RX_L4_CKSUM_GOOD ||
                        (l4_flag != RTE_MBUF_F_RX_L4_CKSUM_BAD &&
                         (udp->dgram_cksum == 0 ||
                          inet::verifies(inet::add(
                              bytes_at(udp, udp_total),
                              inet::ipv4_pseudo_header(ip->src_addr, ip->dst_addr, IPPROTO_UDP,
                                                       static_cast<std::uint16_t>(udp_total))))));
    if (!ip_ok || !udp_ok) return drop(stats.rx_bad_checksum);
    // Zero copy: a holder slot points into the mbuf; its last handle frees the mbuf.
    buffer_slot* slot = holders->try_take_raw();
    if (slot == nullptr)
        return drop(stats.rx_no_holder);  // handlers hold every holder: back-pressure, counted
    slot->data = reinterpret_cast<std::byte*>(udp + 1);
    slot->size_bytes = static_cast<std::uint32_t>(udp_total - udp_len);
    held[slot->index] = m;
    buffer_handle keeps_mbuf = buffer_handle::adopt_raw(slot);
    const std::span<const std::byte> payload = keeps_mbuf.bytes();
    ++stats.rx_datagrams;
    handler.on_datagram(address_of(ip->src_addr, udp->src_port), payload, std::move(keeps_mbuf));
}

void dpdk_transport::impl::release_held(buffer_slot* slot) {
    rte_pktmbuf_free(held[slot->index]);
    held[slot->index] = nullptr;
}

// ---- ARP ----

void dpdk_transport::impl::handle_arp(rte_mbuf* m) {
    ++stats.rx_arp;
    if (rte_pktmbuf_data_len(m) < eth_len + sizeof(rte_arp_hdr)) return;
    const auto* arp_hdr = rte_pktmbuf_mtod_offset(m, const rte_arp_hdr*, eth_len);
    if (rte_be_to_cpu_16(arp_hdr->arp_hardware) != RTE_ARP_HRD_ETHER ||
        rte_be_to_cpu_16(arp_hdr->arp_protocol) != RTE_ETHER_TYPE_IPV4) {
        return;
    }
    const rte_arp_ipv4& d = arp_hdr->arp_data;
    const std::uint16_t op = rte_be_to_cpu_16(arp_hdr->arp_opcode);
    // Learn the sender either way (a request tells us where its sender is, too), and tell
    // the shards on the port's other queues: the answer to their request may land here.
    if (d.arp_sip != 0) {
        learn(d.arp_sip, d.arp_sha);
        const auto* owners =
            share != nullptr ? share->owners.load(std::memory_order_acquire) : nullptr;
        for (std::size_t i = 0; owners != nullptr && owner_shard != nullptr && i < owners->size();
             ++i) {
            impl* sibling = (*owners)[i].owner;
            if (sibling == this || share_arp(sibling, d.arp_sip, d.arp_sha)) continue;
            // Its ring is full: keep the news and try again on the next polls, up to a bound
            // (beyond it the sibling resolves the address itself, by its own request).
            if (arp_shares_pending.size() >= arp_shares_max) {
                ++stats.arp_shares_dropped;
                continue;
            }
            arp_shares_pending.push_back({sibling, d.arp_sip, d.arp_sha});
        }
    }
    if (op == RTE_ARP_OP_REQUEST && d.arp_tip == ip_be)
        send_arp(RTE_ARP_OP_REPLY, d.arp_sha, d.arp_sip);
}

void dpdk_transport::impl::learn(std::uint32_t ip, const rte_ether_addr& where) {
    arp[ip] = {where, now};
    auto it = arp_waiting.find(ip);
    if (it == arp_waiting.end()) return;
    for (rte_mbuf* packet : it->second.packets) {
        auto* eth = rte_pktmbuf_mtod(packet, rte_ether_hdr*);
        rte_ether_addr_copy(&where, &eth->dst_addr);
        tx.push_back(packet);
    }
    arp_waiting_packets -= it->second.packets.size();
    arp_waiting.erase(it);
}

void dpdk_transport::impl::send_arp(std::uint16_t opcode, const rte_ether_addr& to_mac,
                                    std::uint32_t to_ip_be) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    if (m == nullptr) {
        ++stats.tx_no_mbuf;
        return;
    }
    auto* eth =
        reinterpret_cast<rte_ether_hdr*>(rte_pktmbuf_append(m, eth_len + sizeof(rte_arp_hdr)));
    auto* a = reinterpret_cast<rte_arp_hdr*>(eth + 1);
    const bool request = opcode == RTE_ARP_OP_REQUEST;
    rte_ether_addr broadcast;
    memset(&broadcast, 0xff, sizeof broadcast);
    rte_ether_addr_copy(request ? &broadcast : &to_mac, &eth->dst_addr);
    rte_ether_addr_copy(&mac, &eth->src_addr);
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
    a->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
    a->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    a->arp_hlen = RTE_ETHER_ADDR_LEN;
    a->arp_plen = 4;
    a->arp_opcode = rte_cpu_to_be_16(opcode);
    rte_ether_addr_copy(&mac, &a->arp_data.arp_sha);
    a->arp_data.arp_sip = ip_be;
    if (request) {
        memset(&a->arp_data.arp_tha, 0, sizeof a->arp_data.arp_tha);
    } else {
        rte_ether_addr_copy(&to_mac, &a->arp_data.arp_tha);
    }
    a->arp_data.arp_tip = to_ip_be;
    tx.push_back(m);
    ++stats.tx_arp;
}

void dpdk_transport::impl::resolve(std::uint32_t ip, rte_mbuf* packet) {
    if (arp_waiting_packets >= config.arp_pending_max) {
        ++stats.arp_pending_full;
        rte_pktmbuf_free(packet);
        return;
    }
    arp_wait& w = arp_waiting[ip];
    w.packets.push_back(packet);
    ++arp_waiting_packets;
    if (now - w.last_request >= config.arp_retry_ns) {
        w.last_request = now;
        ++w.attempts;
        send_arp(RTE_ARP_OP_REQUEST, {}, ip);
    }
}

bool dpdk_transport::impl::share_arp(impl* sibling, std::uint32_t ip, const rte_ether_addr& where) {
    return owner_shard->submit_to(sibling->owner, [sibling, ip, where] {
        sibling->learn(ip, where);
    }) == submit_outcome::accepted;
}

void dpdk_transport::impl::retry_arp_shares() {
    std::erase_if(arp_shares_pending, [this](const arp_share& pending) {
        if (!share_arp(pending.sibling, pending.ip_be, pending.mac)) return false;
        ++stats.arp_shares_retried;
        return true;
    });
}

void dpdk_transport::impl::arp_tick() {
    if (!arp_shares_pending.empty()) retry_arp_shares();
    for (auto it = arp_waiting.begin(); it != arp_waiting.end();) {
        arp_wait& w = it->second;
        if (now - w.last_request < config.arp_retry_ns) {
            ++it;
            continue;
        }
        if (w.attempts >= config.arp_attempts) {
            // Nobody answers for that address: what waited for it is lost (the sessions
            // above retransmit), counted.
            stats.arp_unresolved_drops += w.packets.size();
            arp_waiting_packets -= w.packets.size();
            for (rte_mbuf* m : w.packets)
                rte_pktmbuf_free(m);
            it = arp_waiting.erase(it);
            continue;
        }
        w.last_request = now;
        ++w.attempts;
        send_arp(RTE_ARP_OP_REQUEST, {}, it->first);
        ++it;
    }
}

// ---- transmit ----

namespace {

void release_external(void*, void* opaque) {
    auto* e = static_cast<external_payload*>(opaque);
    rte_mempool* pool = e->pool;
    e->~external_payload();  // drops the owner: the session may reuse its block
    rte_mempool_put(pool, e);
}

// Below this a copy into the header mbuf costs less than a second mbuf and a record.
constexpr std::size_t min_external_bytes = 512;

}  // namespace

rte_udp_hdr* dpdk_transport::impl::write_headers(rte_mbuf* m, const sockaddr_in& to,
                                                 std::size_t payload_bytes) {
    auto* eth = reinterpret_cast<rte_ether_hdr*>(
        rte_pktmbuf_append(m, static_cast<std::uint16_t>(eth_len + ip_len + udp_len)));
    if (eth == nullptr) return nullptr;
    rte_ether_addr_copy(&mac, &eth->src_addr);
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->type_of_service = 0;
    ip->total_length =
        rte_cpu_to_be_16(static_cast<std::uint16_t>(ip_len + udp_len + payload_bytes));
    ip->packet_id = 0;
    ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
    ip->time_to_live = 64;
    ip->next_proto_id = IPPROTO_UDP;
    ip->hdr_checksum = 0;
    ip->src_addr = ip_be;
    ip->dst_addr = to.sin_addr.s_addr;
    auto* udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
    udp->src_port = udp_port_be;
    udp->dst_port = to.sin_port;
    udp->dgram_len = rte_cpu_to_be_16(static_cast<std::uint16_t>(udp_len + payload_bytes));
    udp->dgram_cksum = 0;
    return udp;
}

void dpdk_transport::impl::finish_datagram(rte_mbuf* m) {
    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
    auto* udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
    if (stats.checksum_offload_tx) {
        m->l2_len = eth_len;
        m->l3_len = ip_len;
        m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_UDP_CKSUM;
        udp->dgram_cksum = rte_ipv4_phdr_cksum(ip, m->ol_flags);
    } else {
        ip->hdr_checksum = inet::ipv4_header_field(
            std::span<const std::byte>(reinterpret_cast<const std::byte*>(ip), ip_len));
        // Over every segment: the payload may be an external buffer behind the headers.
        std::uint64_t sum = inet::ipv4_pseudo_header(ip->src_addr, ip->dst_addr, IPPROTO_UDP,
                                                     rte_be_to_cpu_16(udp->dgram_len));
        std::size_t skip = eth_len + ip_len;  // the UDP header starts the sum
        for (const rte_mbuf* seg = m; seg != nullptr; seg = seg->next) {
            sum = inet::add(
                std::span<const std::byte>(rte_pktmbuf_mtod_offset(seg, const std::byte*, skip),
                                           seg->data_len - skip),
                sum);
            skip = 0;
        }
        udp->dgram_cksum = inet::udp_field(sum);
    }
    ++stats.tx_datagrams;
    auto entry = arp.find(ip->dst_addr);
    if (entry != arp.end() && now - entry->second.resolved_at < config.arp_timeout_ns) {
        rte_ether_addr_copy(&entry->second.mac, &eth->dst_addr);
        tx.push_back(m);
    } else {
        resolve(ip->dst_addr, m);
    }
}

std::size_t dpdk_transport::send_datagram(const address& to, std::span<const std::byte> bytes) {
    return send_datagram(to, bytes, shared_bytes_owner{});
}

std::size_t dpdk_transport::send_datagram(const address& to, std::span<const std::byte> bytes,
                                          const shared_bytes_owner& owner) {
    impl& p = *impl_;
    if (to.family() != AF_INET) return 0;
    if (bytes.size() > caps().max_datagram_bytes) {
        ++p.stats.tx_oversized;
        return 0;
    }
    if (p.tx.size() >= 4 * burst * 4) {
        ++p.stats.tx_ring_full;  // the port is behind: back-pressure until the next flush
        return 0;
    }
    rte_mbuf* m = rte_pktmbuf_alloc(p.pool);
    if (m == nullptr) {
        ++p.stats.tx_no_mbuf;
        return 0;
    }
    const auto& sin = *reinterpret_cast<const sockaddr_in*>(to.sa());
    rte_udp_hdr* udp = p.write_headers(m, sin, bytes.size());
    if (udp == nullptr) {
        rte_pktmbuf_free(m);
        ++p.stats.tx_oversized;
        return 0;
    }
    const bool in_place = owner && p.stats.external_tx && bytes.size() >= min_external_bytes;
    rte_mbuf* payload = in_place ? rte_pktmbuf_alloc(p.pool) : nullptr;
    void* record = nullptr;
    if (payload != nullptr && rte_mempool_get(p.external_pool, &record) != 0) {
        rte_pktmbuf_free(payload);
        payload = nullptr;  // out of records: copy this one
    }
    if (payload != nullptr) {
        // Headers in `m`, the payload attached behind it where it lies; the record holds the
        // owner until the device frees the mbuf.
        auto* e = new (record) external_payload{{}, owner, p.external_pool};
        e->shinfo.free_cb = release_external;
        e->shinfo.fcb_opaque = e;
        rte_mbuf_ext_refcnt_set(&e->shinfo, 1);
        auto* data = const_cast<std::byte*>(bytes.data());
        // Only virtual devices get here, and they read with the CPU: the IOVA is the address.
        rte_pktmbuf_attach_extbuf(payload, data, reinterpret_cast<rte_iova_t>(data),
                                  static_cast<std::uint16_t>(bytes.size()), &e->shinfo);
        payload->data_off = 0;
        payload->data_len = static_cast<std::uint16_t>(bytes.size());
        payload->pkt_len = bytes.size();
        rte_pktmbuf_chain(m, payload);
        ++p.stats.tx_external;
    } else {
        char* tail = rte_pktmbuf_append(m, static_cast<std::uint16_t>(bytes.size()));
        if (tail == nullptr) {  // larger than one mbuf's data room
            rte_pktmbuf_free(m);
            ++p.stats.tx_oversized;
            return 0;
        }
        std::memcpy(tail, bytes.data(), bytes.size());
    }
    p.finish_datagram(m);
    return bytes.size();
}

std::size_t dpdk_transport::flush() {
    impl& p = *impl_;
    if (p.tx.empty()) return 0;
    // A port shared by several shards starts once every queue is set up; until then what
    // a shard sends waits here (the device must not see a burst before it started).
    if (p.share != nullptr && !p.share->started.load(std::memory_order_acquire)) return 0;
    const std::uint16_t sent =
        rte_eth_tx_burst(p.port, p.queue, p.tx.data(), static_cast<std::uint16_t>(p.tx.size()));
    // What the ring did not take waits for the next flush (send_datagram pushes back first).
    p.tx.erase(p.tx.begin(), p.tx.begin() + sent);
    return sent > 0 ? 1 : 0;
}

void dpdk_transport::wait(time_ns timeout_ns, std::span<const int> wake_fds) {
    // Nothing to sleep in (no RX interrupts on virtual devices): doze briefly on the wake
    // fds so a parked shard gives the core back, and poll again.
    constexpr time_ns slice = 50 * ns_per_us;
    const time_ns t = timeout_ns < 0 ? slice : std::min(timeout_ns, slice);
    shard_waker::wait_on_fds(wake_fds, t);
}

}  // namespace ringmesh::transport
