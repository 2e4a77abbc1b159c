// The messaging layer's figures for a shard_metrics source: the endpoint (connections,
// frames received and refused by reason, pub/sub, RPC, the replication lane), its sessions
// per peer (frames each way, retransmissions, credit stalls, in flight) and, on io_uring, the
// transport (bytes, sends, ENOBUFS, GSO). Call it on the endpoint's shard.
#pragma once

#include "engine/messaging/endpoint.h"
#include "engine/metrics/metric_sink.h"

namespace ringmesh::metrics {

void write_messaging_figures(messaging::endpoint& ep, metric_sink& sink);

}  // namespace ringmesh::metrics
