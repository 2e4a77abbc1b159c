#include "tools/node_metrics.h"

#include "engine/core/errc.h"
#include "tools/node_replication.h"
#include "transport/uring/uring_transport.h"
#ifdef RINGMESH_METRICS_HTTP
#include "engine/metrics/metrics_http.h"
#endif

namespace ringmesh::tools {

namespace {

using metrics::metric_sink;

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
    m.counter("ringmesh_messages_lost_total",
              "Messages a peer never acknowledged (it restarted or stayed away).",
              d(s.messages_lost_to));
    m.counter("ringmesh_replication_batches_total", "Replication lane batches, by direction.",
              d(s.replication_sent), {{"direction", "sent"}});
    m.counter("ringmesh_replication_batches_total", "Replication lane batches, by direction.",
              d(s.replication_received), {{"direction", "received"}});
    m.gauge("ringmesh_peers_connected", "Peers with an established session.",
            d(ep.connected_peers().size()));
    // Per peer (bounded: the cluster's members).
    for (const std::string& peer : ep.connected_peers()) {
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
        per_peer("ringmesh_session_credit_stalls_total",
                 "Sends to the peer refused for want of window (back-pressure).",
                 ss->back_pressure);
        m.gauge("ringmesh_session_unacked_frames", "Frames in flight to the peer.",
                d(ep.unacked(peer)), {{"peer", peer}});
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

void gossip_figures(const membership::gossip_agent& g, metric_sink& m) {
    const membership::swim_stats& sw = g.state().stats();
    m.counter("ringmesh_membership_probes_total", "SWIM probes sent.", d(sw.probes));
    m.counter("ringmesh_membership_probes_failed_total", "Probes with no ack in their period.",
              d(sw.probes_failed));
    m.counter("ringmesh_membership_suspicions_total", "Members suspected by this node.",
              d(sw.suspicions_raised));
    m.counter("ringmesh_membership_deaths_total", "Members declared dead by this node.",
              d(sw.declared_dead));
    m.counter("ringmesh_membership_refutations_total", "Times this node refuted a rumour.",
              d(sw.refutations));
    m.gauge("ringmesh_membership_health_score",
            "Lifeguard local health: 0 healthy, up to awareness_max.",
            static_cast<double>(g.state().health_score()));
    m.gauge("ringmesh_membership_alive_members", "Members this node believes alive.",
            d(g.state().alive_count()));
    const membership::agent_stats& a = g.stats();
    for (int i = 1; i < static_cast<int>(a.refused_by_keyring.size()); ++i) {
        m.counter("ringmesh_membership_refused_total", "Gossip refused, by reason.",
                  d(a.refused_by_keyring[static_cast<std::size_t>(i)]),
                  {{"reason", membership::to_string(static_cast<membership::open_status>(i))}});
    }
    for (int i = 1; i < static_cast<int>(membership::gossip_error::count); ++i) {
        m.counter("ringmesh_membership_refused_total", "Gossip refused, by reason.",
                  d(a.refused_by_codec[static_cast<std::size_t>(i)]),
                  {{"reason", membership::to_string(static_cast<membership::gossip_error>(i))}});
    }
}

}  // namespace

node_metrics::node_metrics(unsigned shard_count) : shards_(shard_count) {}

node_metrics::~node_metrics() {
    stop_serving();
}

void node_metrics::install(shard& s) {
    auto& mine = shards_.at(s.id());
    mine = std::make_unique<metrics::shard_metrics>(s);
    s.on_stop([&mine] { mine.reset(); });
}

void node_metrics::watch(messaging::endpoint& ep, const membership::gossip_agent* gossip,
                         const node_replication* replication, bool expects_peers) {
    metrics::shard_metrics& m = *shards_.at(0);
    m.add_source([&ep](metric_sink& sink) {
        endpoint_figures(ep, sink);
        if (const auto* u = dynamic_cast<const transport::uring_transport*>(&ep.transport()))
            uring_figures(u->stats(), sink);
    });
    if (gossip != nullptr)
        m.add_source([gossip](metric_sink& sink) { gossip_figures(*gossip, sink); });
    if (replication != nullptr)
        m.add_source([replication](metric_sink& sink) { replication->write_metrics(sink); });
    // Readiness: connected to a peer (when it has any to reach), and with replication every
    // group led by someone.
    m.add_source([&ep, replication, expects_peers](metric_sink& sink) {
        std::string reason;
        if (expects_peers && ep.connected_peers().empty()) reason = "no_peer_connected";
        if (reason.empty() && replication != nullptr) reason = replication->not_ready_reason();
        sink.gauge("ringmesh_node_ready",
                   "1 when the node is ready to serve (joined; with replication, every group "
                   "has a leader), 0 with the reason otherwise.",
                   reason.empty() ? 1 : 0, {{"reason", reason.empty() ? "ready" : reason}});
    });
}

result<int> node_metrics::serve(const std::string& listen) {
#ifdef RINGMESH_METRICS_HTTP
    std::vector<metrics::shard_metrics*> shards;
    for (auto& s : shards_)
        shards.push_back(s.get());
    metrics::metrics_http_config c;
    c.listen = listen;
    auto http = metrics::metrics_http::start(c, shards);
    if (!http) return http.err();
    http_ = std::move(http).value();
    return http_->port();
#else
    (void)listen;
    return make_error(core_errc::bad_config,
                      "metrics: this build has no HTTP exposition (it needs prometheus-cpp and "
                      "civetweb); use --metrics off");
#endif
}

void node_metrics::stop_serving() {
    http_.reset();
}

}  // namespace ringmesh::tools
