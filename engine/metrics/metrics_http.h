// A node's metrics over HTTP: /metrics in the Prometheus text format (prometheus-cpp's
// serializer over every shard's snapshot, shard_metrics.h), /healthz (200 while the process
// serves), /readyz (200 when the node says it is ready, 503 with the reason otherwise). The
// HTTP server is civetweb, as prometheus-cpp's own exposer uses, run here directly so that
// the health endpoints can answer with their status codes. Off unless started: the library
// never opens a port by itself; the daemon starts one ([metrics] listen).
//
// Readiness is a metric like the others: a shard's source writes the gauge
// ringmesh_node_ready (1 or 0) with a bounded reason label; /readyz reads it from a fresh
// snapshot (no gauge at all: ready).
//
// Owned by the control thread that started it; it serves from its own threads and must be
// destroyed before the shard_metrics it reads.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/result.h"
#include "engine/metrics/shard_metrics.h"

class CivetServer;

namespace ringmesh::metrics {

struct metrics_http_config {
    std::string listen = "127.0.0.1:9464";        ///< host:port; port 0 picks a free one
    std::chrono::milliseconds collect_wait{250};  ///< per shard, before a stale snapshot
};

class metrics_http {
  public:
    static result<std::unique_ptr<metrics_http>> start(metrics_http_config config,
                                                       std::vector<shard_metrics*> shards);
    ~metrics_http();
    metrics_http(const metrics_http&) = delete;
    metrics_http& operator=(const metrics_http&) = delete;

    /// The port it listens on (the one picked, for port 0).
    int port() const noexcept { return port_; }

    /// The exposition text of a fresh snapshot of every shard (what GET /metrics answers).
    std::string exposition() const;
    /// Ready, or why not (what GET /readyz answers).
    bool ready(std::string* why) const;

  private:
    struct handlers;
    metrics_http() = default;
    std::vector<family> collect() const;

    metrics_http_config config_;
    std::vector<shard_metrics*> shards_;
    std::unique_ptr<handlers> handlers_;
    std::unique_ptr<CivetServer> server_;
    int port_ = 0;
};

}  // namespace ringmesh::metrics
