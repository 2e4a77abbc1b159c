// The node daemon's configuration: a TOML file, then command-line overrides. Every setting
// has a default that works on loopback; a bad value is a clear error naming the key.
#pragma once

#include <string>
#include <vector>

#include "engine/cluster/raft_link.h"
#include "engine/core/log.h"
#include "engine/core/result.h"
#include "engine/membership/keyring.h"
#include "engine/membership/swim.h"
#include "engine/messaging/endpoint.h"
#include "engine/node.h"
#include "transport/secure/auth_handshake.h"
#include "transport/secure/tls_context.h"
#include "transport/select.h"
#include "transport/uring/uring_transport.h"

namespace ringmesh::tools {

/// Gossip membership ([membership]); on when it has a listen address.
struct membership_settings {
    std::string listen_text;             ///< gossip UDP + push-pull TCP address
    std::vector<std::string> seeds;      ///< gossip addresses to join through
    std::vector<std::string> key_texts;  ///< base64 AES keys; the first one seals
    std::vector<membership::key_bytes> keys;
    membership::swim_config swim;  ///< timings and Lifeguard; names filled in at start
    std::vector<std::pair<std::string, std::string>> tags;
    std::string status_file;  ///< rewritten every second with the member table
    bool enabled() const noexcept { return !listen_text.empty(); }
};

/// Raft replication ([replication]); on when it names the replicas. Every replica runs every
/// listed group. Each of `groups` serves the replicated key-value service (engine/kv): group
/// 1 at the RPC method "kv", group g at "kv/g"; `topic_group` (when not 0) carries the
/// replicated topics (engine/topics) at "topics.publish".
struct replication_settings {
    std::string dir = "ringmesh-data";         ///< one subdirectory per group
    std::vector<std::string> replica_texts;    ///< "name=id": every replica, this node too
    std::vector<cluster::raft_peer> replicas;  ///< parsed from replica_texts
    std::vector<std::uint32_t> groups{1};
    std::uint32_t topic_group = 0;
    std::uint64_t retention_bytes = 64ull << 20;  ///< replicated topics: kept per group
    std::uint64_t retention_ms = 0;               ///< 0: no age limit
    time_ns heartbeat = 50 * ns_per_ms;
    time_ns election_timeout_min = 300 * ns_per_ms;
    time_ns election_timeout_max = 600 * ns_per_ms;
    std::uint64_t snapshot_every = 10'000;  ///< applied entries between snapshots
    std::uint64_t segment_bytes = 64ull << 20;
    bool lease_reads = true;  ///< clients may ask for lease reads
    bool enabled() const noexcept { return !replica_texts.empty(); }
    /// Every group a replica runs: the key-value groups, then the topic group if set.
    std::vector<std::uint32_t> all_groups() const {
        std::vector<std::uint32_t> all = groups;
        if (topic_group != 0) all.push_back(topic_group);
        return all;
    }
};

/// [security]: how the data plane lets peers in (transport/secure). `mode` unset: encrypted
/// when certificates are configured, authenticated when membership.keyring holds a key, and
/// otherwise an error — `none` runs only when asked for. finish_node_settings fills `mode`
/// and, for encrypted, loads and checks the certificates (`tls`).
struct security_settings {
    std::string mode_text;  ///< as configured ("none", "authenticated", "encrypted"), or empty
    transport::secure::security_mode mode = transport::secure::security_mode::authenticated;
    transport::secure::tls_files tls_files;  ///< ca_file, cert_file, key_file (PEM)
    /// A peer that has not finished its handshake by then is refused (counted as timeout).
    std::int64_t handshake_timeout_ms = 5000;
    std::shared_ptr<const transport::secure::tls_context> tls;  ///< loaded: mode encrypted
};

struct node_settings {
    node_config node;                     ///< shards, cores, idle strategy
    messaging::endpoint_config endpoint;  ///< ids, listen, peers, limits, session
    transport::uring_config uring;
    transport::backend backend = transport::backend::automatic;  ///< node.transport
    transport::dpdk_config dpdk;                                 ///< [dpdk]
    bool dpdk_configured() const noexcept { return !dpdk.ip.empty(); }
    std::string listen_text = "127.0.0.1:7400";
    std::vector<std::string> peer_texts;
    std::vector<std::string> udp_peer_texts;
    membership_settings membership;
    replication_settings replication;
    security_settings security;
    /// [metrics] listen: /metrics, /healthz and /readyz over HTTP; "off" for none. The
    /// default is on; when its port is taken the node runs on without metrics (and says so),
    /// while a listen address set explicitly must work.
    std::string metrics_listen = "127.0.0.1:9464";
    /// [log] level: lines below it are not written (engine and daemon alike).
    log::level log_level = log::level::info;
    bool metrics_listen_explicit = false;
    /// Set by finish_node_settings: the shards that run a messaging endpoint (every shard,
    /// each listening on node.listen's port plus its index).
    std::uint32_t endpoint_shards = 1;
};

/// Reads `path` (TOML). Unknown keys are errors: a typo must not silently fall back to a default.
result<node_settings> load_node_settings(const std::string& path);

/// membership.keyring's base64 texts as keys; a bad one is an error naming its index.
result<std::vector<membership::key_bytes>> parse_keyring(const std::vector<std::string>& texts);

/// Resolves the addresses and cross-checks the settings after overrides were applied.
result<void> finish_node_settings(node_settings& settings);

}  // namespace ringmesh::tools
