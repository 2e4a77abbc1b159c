#include "engine/metrics/metrics_http.h"

#include <CivetServer.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <limits>

#include "engine/core/errc.h"
#include "engine/core/log.h"

namespace ringmesh::metrics {

namespace {

prometheus::MetricFamily to_prometheus(const family& f) {
    prometheus::MetricFamily out;
    out.name = f.name;
    out.help = f.help;
    out.type = f.kind == metric_kind::counter ? prometheus::MetricType::Counter
               : f.kind == metric_kind::gauge ? prometheus::MetricType::Gauge
                                              : prometheus::MetricType::Histogram;
    for (const sample& s : f.samples) {
        prometheus::ClientMetric m;
        for (const label& l : s.labels)
            m.label.push_back({l.name, l.value});
        switch (f.kind) {
            case metric_kind::counter:
                m.counter.value = s.value;
                break;
            case metric_kind::gauge:
                m.gauge.value = s.value;
                break;
            case metric_kind::histogram:
                m.histogram.sample_count = s.count;
                m.histogram.sample_sum = s.sum;
                for (const auto& [bound, cumulative] : s.buckets)
                    m.histogram.bucket.push_back({cumulative, bound});
                m.histogram.bucket.push_back({s.count, std::numeric_limits<double>::infinity()});
                break;
        }
        out.metric.push_back(std::move(m));
    }
    return out;
}

void answer(mg_connection* conn, int status, const char* content_type, const std::string& body) {
    if (status == 200) {
        mg_send_http_ok(conn, content_type, static_cast<long long>(body.size()));
        mg_write(conn, body.data(), body.size());
    } else {
        mg_send_http_error(conn, status, "%s", body.c_str());
    }
}

}  // namespace

struct metrics_http::handlers {
    struct metrics_page final : CivetHandler {
        const metrics_http* owner = nullptr;
        bool handleGet(CivetServer*, mg_connection* conn) override {
            answer(conn, 200, "text/plain; version=0.0.4; charset=utf-8", owner->exposition());
            return true;
        }
    };
    struct health_page final : CivetHandler {
        bool handleGet(CivetServer*, mg_connection* conn) override {
            answer(conn, 200, "text/plain", "ok\n");
            return true;
        }
    };
    struct ready_page final : CivetHandler {
        const metrics_http* owner = nullptr;
        bool handleGet(CivetServer*, mg_connection* conn) override {
            std::string why;
            if (owner->ready(&why)) {
                answer(conn, 200, "text/plain", "ready\n");
            } else {
                answer(conn, 503, "text/plain", "not ready: " + why + "\n");
            }
            return true;
        }
    };
    metrics_page metrics;
    health_page health;
    ready_page ready;
};

result<std::unique_ptr<metrics_http>> metrics_http::start(metrics_http_config config,
                                                          std::vector<shard_metrics*> shards) {
    std::unique_ptr<metrics_http> m(new metrics_http());
    m->config_ = std::move(config);
    m->shards_ = std::move(shards);
    m->handlers_ = std::make_unique<handlers>();
    m->handlers_->metrics.owner = m.get();
    m->handlers_->ready.owner = m.get();
    const std::vector<std::string> options = {"listening_ports", m->config_.listen, "num_threads",
                                              "2"};
    try {
        m->server_ = std::make_unique<CivetServer>(options);
    } catch (const CivetException& e) {
        return make_error(core_errc::bad_config,
                          "metrics: cannot listen on " + m->config_.listen + ": " + e.what());
    }
    m->server_->addHandler("/metrics", &m->handlers_->metrics);
    m->server_->addHandler("/healthz", &m->handlers_->health);
    m->server_->addHandler("/readyz", &m->handlers_->ready);
    const std::vector<int> ports = m->server_->getListeningPorts();
    m->port_ = ports.empty() ? 0 : ports.front();
    return m;
}

metrics_http::~metrics_http() {
    if (server_) server_->close();  // joins its threads: no handler runs after this
}

std::vector<family> metrics_http::collect() const {
    std::vector<family> all;
    std::uint64_t stale = 0;
    for (shard_metrics* s : shards_) {
        bool fresh = false;
        merge_families(all, s->collect(config_.collect_wait, &fresh));
        stale += fresh ? 0 : 1;
    }
    family f{"ringmesh_metrics_stale_shards",
             "Shards that did not answer this scrape in time (their previous figures shown).",
             metric_kind::gauge,
             {}};
    f.samples.push_back({{}, static_cast<double>(stale), {}, 0, 0});
    all.push_back(std::move(f));
    // The process's log lines (engine/core/log.h): one figure for all shards.
    const log::totals lines = log::counted();
    family written{
        "ringmesh_log_lines_total", "Log lines written, by level.", metric_kind::counter, {}};
    for (std::size_t i = 0; i < log::level_count; ++i) {
        written.samples.push_back({{{"level", std::string(log::name(static_cast<log::level>(i)))}},
                                   static_cast<double>(lines.lines[i]),
                                   {},
                                   0,
                                   0});
    }
    all.push_back(std::move(written));
    family held{"ringmesh_log_lines_suppressed_total",
                "Log lines a call site's rate limit held back (added when the site next writes).",
                metric_kind::counter,
                {}};
    held.samples.push_back({{}, static_cast<double>(lines.suppressed), {}, 0, 0});
    all.push_back(std::move(held));
    return all;
}

std::string metrics_http::exposition() const {
    std::vector<prometheus::MetricFamily> families;
    for (const family& f : collect())
        families.push_back(to_prometheus(f));
    return prometheus::TextSerializer().Serialize(families);
}

bool metrics_http::ready(std::string* why) const {
    for (const family& f : collect()) {
        if (f.name != "ringmesh_node_ready") continue;
        for (const sample& s : f.samples) {
            if (s.value >= 1) continue;
            for (const label& l : s.labels) {
                if (l.name == "reason") *why = l.value;
            }
            if (why->empty()) *why = "the node says so";
            return false;
        }
    }
    return true;
}

}  // namespace ringmesh::metrics
