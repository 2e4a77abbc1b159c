#include "engine/metrics/messaging_figures.h"

#include "transport/dpdk/dpdk_transport.h"
#include "transport/uring/uring_transport.h"

namespace ringmesh::metrics {

namespace {

double d(std::uint64_t v) {
    return static_cast<double>(v);
}

void endpoint_figures(const messaging::endpoint& ep, metric_sink& m) {
    const messaging::endpoint_stats& s = ep.stats();
    m.counter("ringmesh_connections_accepted_total", "Connections accepted.",
              d(s.connections_accepted));
    m.counter("ringmesh_connections_dialed_total", "Connections dialed.", d(s.connections_dialed));
    m.counter("ringmesh_handshakes_total", "Handshakes completed.", d(s.handshakes));
    m.counter("ringmesh_reconnect_attempts_total", "Reconnection attempts.",
              d(s.reconnect_attempts));
    m.counter("ringmesh_peer_restarts_total", "Peers seen restarted.", d(s.peer_restarts));
    m.counter("ringmesh_frames_received_total", "Frames received.", d(s.frames_received));
    for (std::size_t i = 1; i < s.refused_by.size(); ++i) {
        m.counter("ringmesh_frames_refused_total", "Frames refused, by reason.", d(s.refused_by[i]),
                  {{"reason", std::string(wire::to_string(static_cast<wire::frame_error>(i)))}});
    }
    for (auto [reason, v] : {std::pair{"wrong_cluster", s.wrong_cluster},
                             std::pair{"protocol_violation", s.protocol_violations},
                             std::pair{"handshake_timeout", s.handshake_timeouts},
                             std::pair{"duplicate_connection", s.duplicate_connections}}) {
        m.counter("ringmesh_connections_refused_total", "Connections refused, by reason.", d(v),
                  {{"reason", reason}});
    }
    m.counter("ringmesh_published_total", "Messages published.", d(s.published));
    m.counter("ringmesh_delivered_total", "Messages delivered to subscribers, by origin.",
              d(s.delivered_local), {{"origin", "local"}});
    m.counter("ringmesh_delivered_total", "Messages delivered to subscribers, by origin.",
              d(s.delivered_remote), {{"origin", "remote"}});
    m.counter("ringmesh_transport_back_pressure_total",
              "Sends the transport refused (queue full): back-pressure seen by callers.",
              d(s.transport_full));
    m.counter("ringmesh_rpc_calls_total", "RPC calls made.", d(s.rpc_calls));
    m.counter("ringmesh_rpc_served_total", "RPC calls served.", d(s.rpc_served));
    m.counter("ringmesh_rpc_timeouts_total", "RPC calls that timed out.", d(s.rpc_timeouts));
    m.counter("ringmesh_rpc_no_such_method_total", "RPC calls to a method nobody serves.",
              d(s.rpc_no_such_method));
    if (const latency_histogram* rtt = ep.rpc_latency()) {
        m.latency("ringmesh_rpc_latency_seconds",
                  "Round trips of the calls made here that were answered (by a reply of any "
                  "status), from the call to its reply.",
                  *rtt);
    }
    // Per topic: bounded by endpoint_config::topic_metrics_limit, the rest as "_other".
    ep.per_topic().for_each([&](std::string_view topic, const messaging::topic_counts::counts& c) {
        m.counter("ringmesh_topic_messages_total",
                  "Messages per topic: published here, or received from peers (the first "
                  "topic_metrics_limit topics by name, the rest as _other).",
                  d(c.published), {{"topic", std::string(topic)}, {"direction", "published"}});
        m.counter("ringmesh_topic_messages_total",
                  "Messages per topic: published here, or received from peers (the first "
                  "topic_metrics_limit topics by name, the rest as _other).",
                  d(c.received), {{"topic", std::string(topic)}, {"direction", "received"}});
    });
    m.counter("ringmesh_messages_lost_total",
              "Messages a peer never acknowledged (it restarted or stayed away).",
              d(s.messages_lost_to));
    m.counter("ringmesh_replication_batches_total", "Replication lane batches, by direction.",
              d(s.replication_sent), {{"direction", "sent"}});
    m.counter("ringmesh_replication_batches_total", "Replication lane batches, by direction.",
              d(s.replication_received), {{"direction", "received"}});
    const std::vector<std::string> peers = ep.connected_peers();
    m.gauge("ringmesh_peers_connected", "Peers with an established session.", d(peers.size()));
    // Per peer (bounded: the cluster's members).
    for (const std::string& peer : peers) {
        const messaging::session_stats* ss = ep.peer_session_stats(peer);
        if (ss == nullptr) continue;
        auto per_peer = [&](const char* name, const char* help, std::uint64_t v) {
            m.counter(name, help, d(v), {{"peer", peer}});
        };
        per_peer("ringmesh_session_frames_sent_total", "Frames transmitted to the peer.",
                 ss->frames_transmitted);
        per_peer("ringmesh_session_frames_retransmitted_total", "Frames sent again to the peer.",
                 ss->frames_retransmitted);
        per_peer("ringmesh_session_frames_acked_total", "Frames the peer acknowledged.",
                 ss->frames_acked);
        per_peer("ringmesh_session_frames_delivered_total", "Frames from the peer delivered.",
                 ss->frames_delivered);
        per_peer("ringmesh_session_duplicates_dropped_total", "Duplicate frames from the peer.",
                 ss->duplicates_dropped);
        m.counter("ringmesh_session_bytes_total",
                  "Session bytes by direction, frame headers included (sent: every "
                  "transmission; received: delivered in order).",
                  d(ss->bytes_transmitted), {{"peer", peer}, {"direction", "sent"}});
        m.counter("ringmesh_session_bytes_total",
                  "Session bytes by direction, frame headers included (sent: every "
                  "transmission; received: delivered in order).",
                  d(ss->bytes_delivered), {{"peer", peer}, {"direction", "received"}});
        per_peer("ringmesh_session_connections_total",
                 "Connections the session with the peer ran on (reconnects: one less).",
                 ss->connections);
        per_peer("ringmesh_session_credit_stalls_total",
                 "Sends to the peer refused for want of window (back-pressure).",
                 ss->back_pressure);
        m.gauge("ringmesh_session_unacked_frames", "Frames in flight to the peer.",
                d(ep.unacked(peer)), {{"peer", peer}});
        // Link health, from the session's acknowledgements (session::link_health); only once an
        // ack timed a round trip or told of a resend: before that there is no health to tell
        // (a quality of 1 would be a guess).
        const auto h = ep.peer_link_health(peer);
        if (h && ((h->rtt != nullptr && h->rtt->count() > 0) || h->retransmitted_ratio > 0)) {
            if (h->rtt != nullptr) {
                m.latency("ringmesh_link_rtt_seconds",
                          "Round trips to the peer, from the last send of a frame to its ack "
                          "(frames sent once).",
                          *h->rtt, {{"peer", peer}});
            }
            m.gauge("ringmesh_link_smoothed_rtt_seconds", "Smoothed round trip (EWMA 1/8).",
                    static_cast<double>(h->smoothed_rtt_ns) / 1e9, {{"peer", peer}});
            m.gauge("ringmesh_link_resent_ratio",
                    "Share of acknowledged frames sent more than once (EWMA 1/16 per ack).",
                    h->retransmitted_ratio, {{"peer", peer}});
            m.gauge("ringmesh_link_quality",
                    "0..1: max(0, 1 - 10 * resent ratio) / (1 + smoothed RTT / 1 ms).", h->quality,
                    {{"peer", peer}});
        }
    }
}

void uring_figures(const transport::uring_stats& s, metric_sink& m) {
    m.counter("ringmesh_transport_bytes_total", "Bytes through the transport, by direction.",
              d(s.bytes_sent), {{"direction", "sent"}});
    m.counter("ringmesh_transport_bytes_total", "Bytes through the transport, by direction.",
              d(s.bytes_received), {{"direction", "received"}});
    m.counter("ringmesh_transport_sends_total", "Send operations submitted.", d(s.sends));
    m.counter("ringmesh_transport_zero_copy_sends_total", "SEND_ZC operations.", d(s.send_zc));
    m.counter("ringmesh_transport_gso_sends_total", "Datagram batches sent with UDP_SEGMENT.",
              d(s.gso_sends));
    m.counter("ringmesh_transport_recv_no_buffers_total",
              "Receives that found the provided-buffer ring empty (ENOBUFS).",
              d(s.recv_no_buffers));
    m.counter("ringmesh_transport_submits_total", "io_uring submissions.", d(s.submits));
    m.counter("ringmesh_transport_io_errors_total", "Operations that failed.", d(s.io_errors));
}

void dpdk_figures(const transport::dpdk_stats& s, metric_sink& m) {
    const auto packets = [&](const char* direction, std::uint64_t v) {
        m.counter("ringmesh_dpdk_datagrams_total", "UDP datagrams through the DPDK port.", d(v),
                  {{"direction", direction}});
    };
    packets("received", s.rx_datagrams);
    packets("sent", s.tx_datagrams);
    m.counter("ringmesh_dpdk_rx_packets_total", "Packets taken from the port's RX queue.",
              d(s.rx_packets));
    m.counter("ringmesh_dpdk_bursts_total", "RX bursts that returned packets.", d(s.bursts));
    for (auto [reason, v] :
         {std::pair{"not_ours", s.rx_dropped_not_ours},
          std::pair{"bad_checksum", s.rx_bad_checksum}, std::pair{"malformed", s.rx_malformed},
          std::pair{"ip_fragment", s.rx_fragments}, std::pair{"no_holder", s.rx_no_holder},
          std::pair{"handoff_ring_full", s.rx_handoff_dropped}}) {
        m.counter("ringmesh_dpdk_rx_dropped_total", "Received packets dropped, by reason.", d(v),
                  {{"reason", reason}});
    }
    for (auto [reason, v] :
         {std::pair{"no_mbuf", s.tx_no_mbuf}, std::pair{"oversized", s.tx_oversized},
          std::pair{"tx_ring_full", s.tx_ring_full},
          std::pair{"arp_unresolved", s.arp_unresolved_drops},
          std::pair{"arp_pending_full", s.arp_pending_full}}) {
        m.counter("ringmesh_dpdk_tx_dropped_total", "Datagrams not sent, by reason.", d(v),
                  {{"reason", reason}});
    }
    m.counter("ringmesh_dpdk_tx_external_total",
              "Datagrams sent from the caller's memory as external mbufs (uncopied).",
              d(s.tx_external));
    m.counter("ringmesh_dpdk_rx_handed_off_total",
              "Datagrams for another shard's queue, handed to it over the cross-core ring.",
              d(s.rx_handed_off));
    m.counter("ringmesh_dpdk_arp_total", "ARP packets, by direction.", d(s.rx_arp),
              {{"direction", "received"}});
    m.counter("ringmesh_dpdk_arp_total", "ARP packets, by direction.", d(s.tx_arp),
              {{"direction", "sent"}});
}

}  // namespace

void write_messaging_figures(messaging::endpoint& ep, metric_sink& sink) {
    endpoint_figures(ep, sink);
    if (const auto* u = dynamic_cast<const transport::uring_transport*>(&ep.transport())) {
        uring_figures(u->stats(), sink);
    } else if (const auto* p = dynamic_cast<const transport::dpdk_transport*>(&ep.transport())) {
        dpdk_figures(p->stats(), sink);
    }
}

}  // namespace ringmesh::metrics
