// The daemon's metrics ([metrics] listen, --metrics): a shard_metrics on every shard (its loop
// figures, its endpoint's messaging and sessions per peer, its transport, what crosses to other
// shards, the replication groups it runs), and on shard 0 gossip membership and the readiness
// gauge /readyz reads;
// served over HTTP by engine/metrics/metrics_http.h.
//
// Owned by the daemon's main(): install() on each shard's thread while the node starts (the
// shard's part goes on its own thread when it stops), serve() and stop_serving() on the main
// thread between start and stop.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/core/result.h"
#include "engine/core/shard.h"
#include "engine/membership/gossip_agent.h"
#include "engine/messaging/endpoint.h"
#include "engine/messaging/shard_messaging.h"
#include "engine/metrics/shard_metrics.h"
#include "transport/secure/secure_transport.h"

namespace ringmesh::metrics {
class metrics_http;
}

namespace ringmesh::tools {

class node_replication;
class replication_board;

class node_metrics {
  public:
    explicit node_metrics(unsigned shard_count);
    ~node_metrics();
    node_metrics(const node_metrics&) = delete;
    node_metrics& operator=(const node_metrics&) = delete;

    /// On shard `s`'s thread, as the node starts.
    void install(shard& s);
    /// On shard `s`, after install(): the messaging endpoint it runs (its sessions per peer,
    /// its transport).
    void watch_endpoint(shard& s, messaging::endpoint& ep);
    /// On shard `s`, after install(): its endpoint's secure layer (proven peers, refusals by
    /// reason, records).
    void watch_security(shard& s, const transport::secure::secure_transport& t);
    /// On shard `s`, after install(): what crosses between it and the other shards.
    void watch_cross_shard(shard& s, const messaging::shard_messaging& api);
    /// On shard `s`, after install(): the replication groups it runs.
    void watch_replication(shard& s, const node_replication& replication);
    /// Shard 0: the node-wide figures. `gossip` and `replication` may be null (readiness
    /// waits for every replication group to have a leader); `expects_peers`: the node is
    /// not ready until some shard is connected to one.
    void watch_node(const messaging::shard_messaging& api, const membership::gossip_agent* gossip,
                    const replication_board* replication, bool expects_peers);

    /// Main thread, after the node started: serves /metrics, /healthz and /readyz on
    /// `listen`; the port it got. An error when it cannot listen (or was built without
    /// prometheus-cpp and civetweb).
    result<int> serve(const std::string& listen);
    /// Main thread, before the node stops.
    void stop_serving();

  private:
    std::vector<std::unique_ptr<metrics::shard_metrics>> shards_;
    std::unique_ptr<metrics::metrics_http> http_;
};

}  // namespace ringmesh::tools
