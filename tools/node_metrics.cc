#include "tools/node_metrics.h"

#include "engine/core/errc.h"
#include "engine/metrics/messaging_figures.h"
#include "tools/node_replication.h"
#ifdef RINGMESH_METRICS_HTTP
#include "engine/metrics/metrics_http.h"
#endif

namespace ringmesh::tools {

namespace {

using metrics::metric_sink;

double d(std::uint64_t v) {
    return static_cast<double>(v);
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
    // One series per member (bounded by the cluster's size), its state as a label: the view's
    // member table.
    for (const membership::member_record& r : g.state().members()) {
        m.gauge("ringmesh_membership_member_state",
                "1 for each member this node knows, with the state it believes it in.", 1,
                {{"member", r.name}, {"state", membership::to_string(r.state)}});
    }
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

void node_metrics::watch_endpoint(shard& s, messaging::endpoint& ep) {
    shards_.at(s.id())->add_source(
        [&ep](metric_sink& sink) { metrics::write_messaging_figures(ep, sink); });
}

void node_metrics::watch_security(shard& s, const transport::secure::secure_transport& t) {
    namespace sec = transport::secure;
    shards_.at(s.id())->add_source([&t](metric_sink& m) {
        const sec::secure_stats& st = t.stats();
        const char* handshakes = "Peers proven by the secure layer's handshake, by lane.";
        m.counter("ringmesh_security_handshakes_total", handshakes, d(st.handshakes),
                  {{"lane", "stream"}});
        m.counter("ringmesh_security_handshakes_total", handshakes, d(st.datagram_handshakes),
                  {{"lane", "datagram"}});
        for (std::size_t r = 1; r < st.refused.size(); ++r) {
            m.counter("ringmesh_security_refusals_total",
                      "Handshakes refused by the secure layer, by reason.", d(st.refused[r]),
                      {{"reason", sec::to_string(static_cast<sec::auth_refusal>(r))}});
        }
        m.counter("ringmesh_security_records_total", "Protected stream records, by direction.",
                  d(st.records_sealed), {{"direction", "sealed"}});
        m.counter("ringmesh_security_records_total", "Protected stream records, by direction.",
                  d(st.records_opened), {{"direction", "opened"}});
        const char* datagrams = "Datagrams through the secure layer, by what became of them.";
        for (const auto& [what, n] :
             {std::pair{"sealed", st.datagrams_sealed}, std::pair{"opened", st.datagrams_opened},
              std::pair{"refused", st.datagrams_refused},
              std::pair{"replayed", st.datagrams_replayed},
              std::pair{"dropped", st.datagrams_dropped}}) {
            m.counter("ringmesh_security_datagrams_total", datagrams, d(n), {{"outcome", what}});
        }
        m.counter("ringmesh_security_records_refused_total",
                  "Records whose tag or length failed: the connection was closed.",
                  d(st.records_refused));
    });
}

void node_metrics::watch_cross_shard(shard& s, const messaging::shard_messaging& api) {
    if (shards_.size() < 2) return;  // nothing crosses
    shards_.at(s.id())->add_source([&api](metric_sink& m) {
        const messaging::shard_messaging_stats& st = api.stats();
        m.counter("ringmesh_cross_shard_records_total",
                  "Sends, publishes, calls and deliveries handed between this shard and the "
                  "node's other shards.",
                  d(st.records_out), {{"direction", "out"}});
        m.counter("ringmesh_cross_shard_records_total",
                  "Sends, publishes, calls and deliveries handed between this shard and the "
                  "node's other shards.",
                  d(st.records_in), {{"direction", "in"}});
        m.counter("ringmesh_cross_shard_batches_total",
                  "Batches of records handed between shards (one per destination per iteration).",
                  d(st.batches_out), {{"direction", "out"}});
        m.counter("ringmesh_cross_shard_batches_total",
                  "Batches of records handed between shards (one per destination per iteration).",
                  d(st.batches_in), {{"direction", "in"}});
        m.counter("ringmesh_cross_shard_back_pressure_total",
                  "Calls on this shard refused because another shard's bound was full.",
                  d(st.back_pressure));
        m.counter("ringmesh_cross_shard_blocked_total",
                  "Iterations a batch from another shard waited here for a peer's window.",
                  d(st.blocked_retries));
        m.counter("ringmesh_cross_shard_undeliverable_total",
                  "Records accepted on another shard that this owner could not deliver.",
                  d(st.undeliverable));
    });
}

void node_metrics::watch_replication(shard& s, const node_replication& replication) {
    shards_.at(s.id())->add_source(
        [&replication](metric_sink& sink) { replication.write_metrics(sink); });
}

void node_metrics::watch_node(const messaging::shard_messaging& api,
                              const membership::gossip_agent* gossip,
                              const replication_board* replication, bool expects_peers) {
    metrics::shard_metrics& m = *shards_.at(0);
    if (gossip != nullptr)
        m.add_source([gossip](metric_sink& sink) { gossip_figures(*gossip, sink); });
    // Readiness: connected to a peer, on any shard (when it has any to reach), and with
    // replication every group led by someone.
    m.add_source([&api, replication, expects_peers](metric_sink& sink) {
        std::string reason;
        if (expects_peers && api.connected_peers().empty()) reason = "no_peer_connected";
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
