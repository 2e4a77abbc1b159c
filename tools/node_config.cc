#include "tools/node_config.h"

#include <toml++/toml.h>
#include <algorithm>
#include <set>

#include "engine/core/errc.h"

namespace ringmesh::tools {

namespace {

error bad(const std::string& what) {
    return make_error(core_errc::bad_config, what);
}

// Reads an optional integer key into `out`, checking its range.
template <typename T>
result<void> read_int(const toml::table& t, const char* section, const char* key, T& out,
                      std::int64_t min, std::int64_t max) {
    const toml::node* n = t.get(key);
    if (!n) return ok();
    const auto v = n->value<std::int64_t>();
    if (!v || *v < min || *v > max) {
        return bad(std::string(section) + "." + key + " must be an integer in [" +
                   std::to_string(min) + ", " + std::to_string(max) + "]");
    }
    out = static_cast<T>(*v);
    return ok();
}

result<void> read_string(const toml::table& t, const char* section, const char* key,
                         std::string& out) {
    const toml::node* n = t.get(key);
    if (!n) return ok();
    const auto v = n->value<std::string>();
    if (!v) return bad(std::string(section) + "." + key + " must be a string");
    out = *v;
    return ok();
}

result<void> check_keys(const toml::table& t, const char* section,
                        std::initializer_list<const char*> known) {
    for (const auto& [key, value] : t) {
        bool found = false;
        for (const char* k : known)
            found = found || key.str() == k;
        if (!found)
            return bad("unknown setting " + std::string(section) + "." + std::string(key.str()));
    }
    return ok();
}

#define RM_TRY(expr)                                \
    do {                                            \
        if (auto r_ = (expr); !r_) return r_.err(); \
    } while (false)

result<void> read_node_section(const toml::table& t, node_settings& s) {
    RM_TRY(check_keys(
        t, "node",
        {"id", "cluster", "listen", "peers", "udp_peers", "shards", "cores", "idle", "transport"}));
    std::string backend;
    RM_TRY(read_string(t, "node", "transport", backend));
    if (!backend.empty()) {
        const auto b = transport::parse_backend(backend);
        if (!b) return bad("node.transport must be auto, dpdk or uring, not '" + backend + "'");
        s.backend = *b;
    }
    RM_TRY(read_string(t, "node", "id", s.endpoint.node_id));
    RM_TRY(read_string(t, "node", "cluster", s.endpoint.cluster_id));
    RM_TRY(read_string(t, "node", "listen", s.listen_text));
    RM_TRY(read_int(t, "node", "shards", s.node.shard_count, 1, 1024));
    for (auto [key, out] :
         {std::pair{"peers", &s.peer_texts}, std::pair{"udp_peers", &s.udp_peer_texts}}) {
        const auto* peers = t.get(key);
        if (!peers) continue;
        const auto* arr = peers->as_array();
        const std::string what =
            std::string("node.") + key + " must be an array of \"host:port\" strings";
        if (!arr) return bad(what);
        for (const auto& p : *arr) {
            const auto v = p.value<std::string>();
            if (!v) return bad(what);
            out->push_back(*v);
        }
    }
    if (const auto* cores = t.get("cores")) {
        const auto* arr = cores->as_array();
        if (!arr) return bad("node.cores must be an array of core numbers");
        for (const auto& c : *arr) {
            const auto v = c.value<std::int64_t>();
            if (!v || *v < 0) return bad("node.cores must be an array of core numbers");
            s.node.cores.push_back(static_cast<int>(*v));
        }
    }
    std::string idle;
    RM_TRY(read_string(t, "node", "idle", idle));
    if (!idle.empty()) {
        const auto kind = parse_idle_kind(idle);
        if (!kind) return bad("node.idle must be busy_spin, backoff or block, not '" + idle + "'");
        s.node.shard.idle.kind = *kind;
    }
    return ok();
}

result<void> read_limits_section(const toml::table& t, node_settings& s) {
    RM_TRY(check_keys(
        t, "limits",
        {"max_body_bytes", "max_name_bytes", "max_in_flight_frames", "max_in_flight_bytes",
         "receive_window_frames", "ack_delay_us", "ack_after_bytes", "handshake_timeout_ms"}));
    RM_TRY(read_int(t, "limits", "max_body_bytes", s.endpoint.limits.max_body_bytes, 64, 64 << 20));
    RM_TRY(read_int(t, "limits", "max_name_bytes", s.endpoint.limits.max_name_bytes, 8, 4096));
    RM_TRY(read_int(t, "limits", "max_in_flight_frames", s.endpoint.session.max_in_flight_frames, 1,
                    1 << 24));
    RM_TRY(read_int(t, "limits", "max_in_flight_bytes", s.endpoint.session.max_in_flight_bytes,
                    4096, std::int64_t{1} << 34));
    RM_TRY(read_int(t, "limits", "receive_window_frames", s.endpoint.session.receive_window_frames,
                    4, 1 << 24));
    RM_TRY(read_int(t, "limits", "ack_after_bytes", s.endpoint.session.ack_after_bytes, 1024,
                    std::int64_t{1} << 34));
    std::int64_t ack_delay_us = s.endpoint.session.ack_delay_ns / ns_per_us;
    RM_TRY(read_int(t, "limits", "ack_delay_us", ack_delay_us, 0, 1'000'000));
    s.endpoint.session.ack_delay_ns = ack_delay_us * ns_per_us;
    std::int64_t handshake_ms = s.endpoint.handshake_timeout_ns / ns_per_ms;
    RM_TRY(read_int(t, "limits", "handshake_timeout_ms", handshake_ms, 1, 600'000));
    s.endpoint.handshake_timeout_ns = handshake_ms * ns_per_ms;
    return ok();
}

result<void> read_transport_section(const toml::table& t, node_settings& s) {
    RM_TRY(check_keys(t, "transport",
                      {"ring_entries", "max_connections", "recv_buffer_count", "recv_buffer_bytes",
                       "send_zc_threshold_bytes", "max_send_batch_bytes", "connect_timeout_ms"}));
    RM_TRY(read_int(t, "transport", "ring_entries", s.uring.ring_entries, 8, 32768));
    RM_TRY(read_int(t, "transport", "max_connections", s.uring.max_connections, 1, 65536));
    RM_TRY(read_int(t, "transport", "recv_buffer_count", s.uring.recv_buffer_count, 1, 32768));
    RM_TRY(read_int(t, "transport", "recv_buffer_bytes", s.uring.recv_buffer_bytes, 512, 1 << 24));
    RM_TRY(read_int(t, "transport", "send_zc_threshold_bytes", s.uring.send_zc_threshold_bytes, 0,
                    1 << 30));
    RM_TRY(read_int(t, "transport", "max_send_batch_bytes", s.uring.max_send_batch_bytes, 4096,
                    1 << 30));
    std::int64_t connect_ms = s.uring.connect_timeout_ns / ns_per_ms;
    RM_TRY(read_int(t, "transport", "connect_timeout_ms", connect_ms, 1, 600'000));
    s.uring.connect_timeout_ns = connect_ms * ns_per_ms;
    return ok();
}

result<void> read_strings(const toml::table& t, const char* section, const char* key,
                          std::vector<std::string>& out) {
    const toml::node* n = t.get(key);
    if (!n) return ok();
    const std::string what = std::string(section) + "." + key + " must be an array of strings";
    const auto* arr = n->as_array();
    if (!arr) return bad(what);
    for (const auto& item : *arr) {
        const auto v = item.value<std::string>();
        if (!v) return bad(what);
        out.push_back(*v);
    }
    return ok();
}

result<void> read_ms(const toml::table& t, const char* key, time_ns& out, std::int64_t min,
                     std::int64_t max) {
    std::int64_t ms = out / ns_per_ms;
    RM_TRY(read_int(t, "membership", key, ms, min, max));
    out = ms * ns_per_ms;
    return ok();
}

result<void> read_dpdk_section(const toml::table& t, node_settings& s) {
    RM_TRY(check_keys(t, "dpdk", {"eal_args", "port", "ip", "mtu", "mbufs", "start_timeout_ms"}));
    RM_TRY(read_strings(t, "dpdk", "eal_args", s.dpdk.eal_args));
    RM_TRY(read_string(t, "dpdk", "port", s.dpdk.port));
    RM_TRY(read_string(t, "dpdk", "ip", s.dpdk.ip));
    RM_TRY(read_int(t, "dpdk", "mtu", s.dpdk.mtu, 576, 9000));
    RM_TRY(read_int(t, "dpdk", "mbufs", s.dpdk.mbufs, 1023, 1 << 22));
    std::int64_t start_timeout_ms = s.dpdk.start_timeout_ns / ns_per_ms;
    RM_TRY(read_int(t, "dpdk", "start_timeout_ms", start_timeout_ms, 0, 600'000));
    s.dpdk.start_timeout_ns = start_timeout_ms * ns_per_ms;
    return ok();
}

result<void> read_membership_section(const toml::table& t, node_settings& s) {
    auto& m = s.membership;
    RM_TRY(check_keys(
        t, "membership",
        {"listen", "seeds", "keyring", "probe_interval_ms", "probe_timeout_ms", "indirect_checks",
         "suspicion_mult", "push_pull_interval_ms", "lifeguard", "tags", "status_file"}));
    RM_TRY(read_string(t, "membership", "listen", m.listen_text));
    RM_TRY(read_strings(t, "membership", "seeds", m.seeds));
    RM_TRY(read_strings(t, "membership", "keyring", m.key_texts));
    RM_TRY(read_ms(t, "probe_interval_ms", m.swim.probe_interval, 10, 60'000));
    RM_TRY(read_ms(t, "probe_timeout_ms", m.swim.probe_timeout, 1, 60'000));
    RM_TRY(read_ms(t, "push_pull_interval_ms", m.swim.push_pull_interval, 100, 3'600'000));
    RM_TRY(read_int(t, "membership", "indirect_checks", m.swim.indirect_checks, 0, 16));
    RM_TRY(read_int(t, "membership", "suspicion_mult", m.swim.suspicion_mult, 1, 100));
    if (const toml::node* n = t.get("lifeguard")) {
        const auto v = n->value<bool>();
        if (!v) return bad("membership.lifeguard must be true or false");
        m.swim.lifeguard = *v;
    }
    if (const toml::node* n = t.get("tags")) {
        const auto* tags = n->as_table();
        if (!tags) return bad("membership.tags must be a table of strings");
        for (const auto& [key, value] : *tags) {
            const auto v = value.value<std::string>();
            if (!v) return bad("membership.tags." + std::string(key.str()) + " must be a string");
            m.tags.emplace_back(std::string(key.str()), *v);
        }
    }
    RM_TRY(read_string(t, "membership", "status_file", m.status_file));
    return ok();
}

result<void> read_replication_section(const toml::table& t, node_settings& s) {
    auto& r = s.replication;
    RM_TRY(check_keys(t, "replication",
                      {"dir", "replicas", "groups", "topic_group", "retention_mb", "retention_s",
                       "heartbeat_ms", "election_timeout_min_ms", "election_timeout_max_ms",
                       "snapshot_every", "segment_mb", "lease_reads"}));
    RM_TRY(read_int(t, "replication", "topic_group", r.topic_group, 0, 65535));
    std::int64_t retention_mb = static_cast<std::int64_t>(r.retention_bytes >> 20);
    RM_TRY(read_int(t, "replication", "retention_mb", retention_mb, 1, 1 << 20));
    r.retention_bytes = static_cast<std::uint64_t>(retention_mb) << 20;
    std::int64_t retention_s = static_cast<std::int64_t>(r.retention_ms / 1000);
    RM_TRY(read_int(t, "replication", "retention_s", retention_s, 0, std::int64_t{1} << 32));
    r.retention_ms = static_cast<std::uint64_t>(retention_s) * 1000;
    RM_TRY(read_string(t, "replication", "dir", r.dir));
    RM_TRY(read_strings(t, "replication", "replicas", r.replica_texts));
    if (const toml::node* n = t.get("groups")) {
        const auto* arr = n->as_array();
        const char* what = "replication.groups must be an array of group ids (1..65535)";
        if (arr == nullptr || arr->empty()) return bad(what);
        r.groups.clear();
        for (const auto& g : *arr) {
            const auto v = g.value<std::int64_t>();
            if (!v || *v < 1 || *v > 65535) return bad(what);
            r.groups.push_back(static_cast<std::uint32_t>(*v));
        }
    }
    for (auto [key, out] : {std::pair{"heartbeat_ms", &r.heartbeat},
                            std::pair{"election_timeout_min_ms", &r.election_timeout_min},
                            std::pair{"election_timeout_max_ms", &r.election_timeout_max}}) {
        std::int64_t ms = *out / ns_per_ms;
        RM_TRY(read_int(t, "replication", key, ms, 1, 600'000));
        *out = ms * ns_per_ms;
    }
    RM_TRY(read_int(t, "replication", "snapshot_every", r.snapshot_every, 16, 1'000'000'000));
    std::int64_t segment_mb = static_cast<std::int64_t>(r.segment_bytes >> 20);
    RM_TRY(read_int(t, "replication", "segment_mb", segment_mb, 1, 65536));
    r.segment_bytes = static_cast<std::uint64_t>(segment_mb) << 20;
    if (const toml::node* n = t.get("lease_reads")) {
        const auto v = n->value<bool>();
        if (!v) return bad("replication.lease_reads must be true or false");
        r.lease_reads = *v;
    }
    return ok();
}

/// "name=id" texts into the replica directory, checked: ids and names unique, this node in it.
result<void> finish_replication(replication_settings& r, const std::string& self) {
    r.replicas.clear();
    std::set<std::string> names;
    std::set<std::uint64_t> ids;
    for (const std::string& text : r.replica_texts) {
        const std::size_t eq = text.find('=');
        std::uint64_t id = 0;
        const std::string name = eq == std::string::npos ? std::string{} : text.substr(0, eq);
        try {
            if (eq != std::string::npos) id = std::stoull(text.substr(eq + 1));
        } catch (const std::exception&) {
            id = 0;
        }
        if (name.empty() || id == 0)
            return bad("replication.replicas: '" + text + "' is not NAME=ID (ID from 1)");
        if (!names.insert(name).second || !ids.insert(id).second)
            return bad("replication.replicas: '" + text + "' repeats a name or an id");
        r.replicas.push_back({id, name});
    }
    if (!names.contains(self))
        return bad("replication.replicas must list this node (" + self + ")");
    if (std::find(r.groups.begin(), r.groups.end(), r.topic_group) != r.groups.end())
        return bad("replication.topic_group must not be one of replication.groups (key-value)");
    if (r.election_timeout_min >= r.election_timeout_max || r.heartbeat >= r.election_timeout_min)
        return bad("replication: heartbeat_ms < election_timeout_min_ms < election_timeout_max_ms");
    return ok();
}

}  // namespace

result<node_settings> load_node_settings(const std::string& path) {
    node_settings s;
    toml::table root;
    try {
        root = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
        return bad(path + ": " + std::string(e.description()) + " at line " +
                   std::to_string(e.source().begin.line));
    }
    RM_TRY(check_keys(root, "",
                      {"node", "limits", "transport", "membership", "dpdk", "replication",
                       "metrics", "log", "security"}));
    auto section = [&](const char* name) -> const toml::table* {
        const toml::node* n = root.get(name);
        return n ? n->as_table() : nullptr;
    };
    for (const char* name : {"node", "limits", "transport", "membership", "dpdk", "replication",
                             "metrics", "log", "security"}) {
        if (root.get(name) && !section(name)) return bad(std::string(name) + " must be a table");
    }
    if (const auto* t = section("node")) RM_TRY(read_node_section(*t, s));
    if (const auto* t = section("limits")) RM_TRY(read_limits_section(*t, s));
    if (const auto* t = section("transport")) RM_TRY(read_transport_section(*t, s));
    if (const auto* t = section("membership")) RM_TRY(read_membership_section(*t, s));
    if (const auto* t = section("dpdk")) RM_TRY(read_dpdk_section(*t, s));
    if (const auto* t = section("replication")) RM_TRY(read_replication_section(*t, s));
    if (const auto* t = section("security")) {
        RM_TRY(check_keys(*t, "security",
                          {"mode", "ca_file", "cert_file", "key_file", "handshake_timeout_ms"}));
        RM_TRY(read_int(*t, "security", "handshake_timeout_ms", s.security.handshake_timeout_ms,
                        100, 120'000));
        RM_TRY(read_string(*t, "security", "mode", s.security.mode_text));
        RM_TRY(read_string(*t, "security", "ca_file", s.security.tls_files.ca_file));
        RM_TRY(read_string(*t, "security", "cert_file", s.security.tls_files.cert_file));
        RM_TRY(read_string(*t, "security", "key_file", s.security.tls_files.key_file));
    }
    if (const auto* t = section("metrics")) {
        RM_TRY(check_keys(*t, "metrics", {"listen"}));
        if (t->get("listen") != nullptr) {
            RM_TRY(read_string(*t, "metrics", "listen", s.metrics_listen));
            s.metrics_listen_explicit = true;
        }
    }
    if (const auto* t = section("log")) {
        RM_TRY(check_keys(*t, "log", {"level"}));
        if (t->get("level") != nullptr) {
            std::string level;
            RM_TRY(read_string(*t, "log", "level", level));
            const auto parsed = log::parse_level(level);
            if (!parsed) return bad("log.level must be trace, debug, info, warn, error or off");
            s.log_level = *parsed;
        }
    }
    return s;
}

result<std::vector<membership::key_bytes>> parse_keyring(const std::vector<std::string>& texts) {
    std::vector<membership::key_bytes> keys;
    for (std::size_t i = 0; i < texts.size(); ++i) {
        auto key = membership::keyring::parse_key(texts[i]);
        if (!key)
            return bad("membership.keyring[" + std::to_string(i) + "]: " + key.err().message());
        keys.push_back(std::move(key).value());
    }
    return keys;
}

namespace {

result<void> finish_security(node_settings& s) {
    using transport::secure::security_mode;
    security_settings& sec = s.security;
    const auto& files = sec.tls_files;
    const bool any_file =
        !files.ca_file.empty() || !files.cert_file.empty() || !files.key_file.empty();
    if (any_file && !files.complete()) {
        return bad(
            "security: ca_file, cert_file and key_file go together "
            "(--tls-ca, --tls-cert, --tls-key)");
    }
    auto mode = transport::secure::resolve_security_mode(sec.mode_text, !s.membership.keys.empty(),
                                                         files.complete());
    if (!mode) return mode.err();
    sec.mode = *mode;
    // Datagram sessions (UDP, DPDK) prove the keyring, in either secured mode.
    const bool datagrams = s.backend == transport::backend::dpdk || !s.udp_peer_texts.empty();
    if (sec.mode == security_mode::encrypted && datagrams && s.membership.keys.empty()) {
        return bad(
            "security.mode = \"encrypted\" seals datagrams (node.udp_peers, node.transport = "
            "\"dpdk\") with keys from a keyring handshake: configure membership.keyring "
            "(--key) too");
    }
    if (sec.mode == security_mode::encrypted) {
        auto loaded = transport::secure::tls_context::load(files, s.endpoint.node_id);
        if (!loaded) return loaded.err();
        sec.tls = std::move(loaded).value();
    }
    return ok();
}

}  // namespace

result<void> finish_node_settings(node_settings& s) {
    if (s.endpoint.node_id.empty()) return bad("node.id is required (or --id)");
    if (s.metrics_listen != "off") {
        if (auto a = transport::address::parse(s.metrics_listen); !a)
            return bad("metrics.listen: " + a.err().message() + " (or \"off\")");
    }
    auto listen = transport::address::parse(s.listen_text);
    if (!listen) return bad("node.listen: " + listen.err().message());
    s.endpoint.listen = *listen;
    s.endpoint.peers.clear();
    s.endpoint.datagram_peers.clear();
    for (const auto& text : s.peer_texts) {
        auto peer = transport::address::parse(text);
        if (!peer) return bad("node.peers: " + peer.err().message());
        s.endpoint.peers.push_back(*peer);
    }
    for (const auto& text : s.udp_peer_texts) {
        auto peer = transport::address::parse(text);
        if (!peer) return bad("node.udp_peers: " + peer.err().message());
        s.endpoint.datagram_peers.push_back(*peer);
    }
    if (s.backend == transport::backend::dpdk && !s.dpdk_configured()) {
        return bad("node.transport = \"dpdk\" needs dpdk.ip (this node's IPv4 on the port)");
    }
    if (s.backend == transport::backend::dpdk && !s.peer_texts.empty()) {
        return bad("the DPDK transport carries datagrams only: use node.udp_peers, not node.peers");
    }
    auto& m = s.membership;
    if (!m.enabled() && !m.seeds.empty()) {
        return bad("membership.seeds need membership.listen (or --gossip)");
    }
    // The keyring seals gossip and proves this node to its peers on the data plane.
    auto keys = parse_keyring(m.key_texts);
    if (!keys) return keys.err();
    m.keys = std::move(keys).value();
    RM_TRY(finish_security(s));
    if (m.enabled()) {
        if (auto a = transport::address::parse(m.listen_text); !a) {
            return bad("membership.listen: " + a.err().message());
        }
        for (const auto& seed : m.seeds) {
            if (auto a = transport::address::parse(seed); !a) {
                return bad("membership.seeds: '" + seed + "': " + a.err().message());
            }
        }
        if (m.swim.probe_timeout >= m.swim.probe_interval) {
            return bad("membership.probe_timeout_ms must be shorter than probe_interval_ms");
        }
    }
    const std::uint32_t n = s.uring.recv_buffer_count;
    if ((n & (n - 1)) != 0) return bad("transport.recv_buffer_count must be a power of two");
    if (s.replication.enabled()) RM_TRY(finish_replication(s.replication, s.endpoint.node_id));
    // Every shard runs an endpoint (the Raft groups, on whichever shard they are placed,
    // reach the replicas that other shards hold through shard_messaging).
    s.endpoint_shards = std::max<std::uint32_t>(s.node.shard_count, 1);
    if (s.endpoint_shards > 1) {
        if (listen->port() == 0) {
            return bad(
                "node.listen needs a fixed port with several shards (shard k listens on "
                "its port + k)");
        }
        if (listen->port() + s.endpoint_shards - 1 > 65535)
            return bad("node.listen: no room for a port per shard above it");
    }
    return ok();
}

}  // namespace ringmesh::tools
