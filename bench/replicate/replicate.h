// The replicate scenario of ringmesh_bench: a replicated log on 3 replicas on loopback, next
// to NATS JetStream (a 3-server nats-server cluster with a 3-replica file stream) and etcd (a
// 3-member cluster), all in one run, with the storage floor measured in the same run:
//   - storage floor: 4 KiB append + fdatasync, p50/p99;
//   - commit latency: one outstanding 256 B publish awaiting its acknowledgement;
//   - throughput: many outstanding publishes, committed entries/s (and entries per fsync);
//   - key-value puts: one client (latency) and many clients (throughput), ringmesh's KV
//     service against etcd;
//   - failover: kill -9 of the leader to the first commit on the new leader, repeatedly.
// Each system's servers are processes started and ended here (by PID), in a scratch
// directory that is removed afterwards.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/histogram.h"

namespace ringmesh::bench {

struct replicate_options {
    double seconds = 3;    ///< per measurement
    int failovers = 10;    ///< leader kills (the median of these is reported)
    int window = 256;      ///< outstanding publishes in the throughput runs
    int kv_clients = 256;  ///< clients in the key-value throughput runs
    std::size_t payload_bytes = 256;
    std::vector<std::string> systems{"ringmesh", "jetstream", "etcd"};
    std::string tools_dir;  ///< where ringmesh_node and ringmesh_kvbench are
    std::string work_dir;   ///< scratch (data directories, logs); empty: a fresh /tmp one
    std::string json;       ///< results file; empty: none
    int election_min_ms = 150, election_max_ms = 300, heartbeat_ms = 30;
};

/// A latency distribution and a rate, as measured.
struct measured {
    bool ok = false;
    std::string error;
    std::uint64_t count = 0;
    double seconds = 0;
    double p50_us = 0, p99_us = 0, p999_us = 0;
    double per_second() const { return seconds > 0 ? static_cast<double>(count) / seconds : 0; }
    static measured from(const latency_histogram& h, double seconds);
    static measured failed(std::string why) {
        measured m;
        m.error = std::move(why);
        return m;
    }
};

/// One system's figures (a figure it has no counterpart for stays !ok with an empty error).
struct replicate_figures {
    std::string system;
    std::string acknowledgement;  ///< what an acknowledgement means for this system
    measured publish_one;         ///< one outstanding publish, awaiting each acknowledgement
    measured publish_window;      ///< many outstanding
    double entries_per_fsync = 0;
    measured put_one, put_many;  ///< key-value puts: one client, many clients
    std::vector<double> failover_ms;
    std::string error;  ///< the cluster did not come up
};

/// 4 KiB appends, each followed by fdatasync, by `writers` threads at once (each to its own
/// file: 3 is what three replicas on one disk do); the latency one writer saw.
measured storage_floor(const std::string& dir, double seconds, int writers = 1);
replicate_figures run_ringmesh_replicated(const replicate_options& o, const std::string& dir);
replicate_figures run_jetstream(const replicate_options& o, const std::string& dir);
replicate_figures run_etcd(const replicate_options& o, const std::string& dir);

/// The scenario: runs the systems asked for, prints the table and writes the JSON.
int run_replicate(const replicate_options& o);

}  // namespace ringmesh::bench
