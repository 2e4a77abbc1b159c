// ringmesh_node — the node daemon: one process, N shards, a messaging endpoint on every shard
// (peers spread over them by shard_for_peer), configured by a TOML file with command-line
// overrides. SIGINT/SIGTERM stop it gracefully (queued messages drained, connections closed,
// report printed).
//
// Built-in workloads (tools/node_workload.h) make it the main job's building block and the
// integration tests' peer; they run on the shards --workload-shards names, through the
// messaging API every shard has, whichever shard holds a peer's session:
//   --subscribe PATTERN   count deliveries, check order per publisher, one-way latency
//   --publish TOPIC       publish sequence-numbered, timestamped messages (rate or max)
//   --send PEER           the same, point to point on a stream
//   --rpc PEER            closed-loop "echo" calls, round-trip latency
// Every node serves "echo". Reports are printed on exit, one line per workload.
//
// With [replication] (or --replica NAME=ID for every replica) the node also runs Raft groups
// (tools/node_replication.h), spread over its shards by cluster::shard_for_group, each
// serving the replicated key-value service that tools/ringmesh_kvbench drives or replicated
// topics; their state is in the status file and the exit report. A group reaches its
// replicas through its shard's messaging API, whichever shard holds their sessions, and the
// batches peers send are routed to the groups' shards (cluster::raft_batch_router).
//
// With a gossip address (membership.listen or --gossip) the node also runs SWIM/Lifeguard
// membership on shard 0 (engine/cluster composes it with shard 0's endpoint; its verdicts
// reach the other shards' endpoints through shard_messaging): it joins through the
// seeds, prints one line per membership event ("[n1] member n3 dead ...") and one per loss
// report ("[n1] peer n2 restarted: ..."), rewrites the status file with the member table
// every second, and announces a graceful leave when it stops. SIGHUP re-reads
// membership.keyring from the config file (key rotation without a restart).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <fmt/ranges.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "engine/cluster/cluster_member.h"
#include "engine/cluster/raft_placement.h"
#include "engine/core/errc.h"
#include "engine/core/histogram.h"
#include "engine/core/log.h"
#include "engine/core/random.h"
#include "engine/membership/gossip_agent.h"
#include "engine/messaging/endpoint.h"
#include "engine/messaging/shard_messaging.h"
#include "engine/node.h"
#include "tools/node_config.h"
#include "tools/node_metrics.h"
#include "tools/node_replication.h"
#include "tools/node_workload.h"
#include "transport/secure/secure_transport.h"
#include "transport/uring/uring_transport.h"

namespace rm = ringmesh;
namespace msg = ringmesh::messaging;

namespace {

/// One shard's part of the node. Its members are created on the shard's thread as the node
/// starts and torn down there as it stops (on_stop hooks); main reads the workload's figures
/// after the shard threads have been joined.
struct shard_part {
    std::unique_ptr<rm::cluster::member> member;  // shard 0: its endpoint and membership
    std::unique_ptr<msg::endpoint> endpoint;      // another endpoint shard's
    msg::endpoint* ep = nullptr;                  // this shard's endpoint, if it runs one
    rm::transport::secure::secure_transport* secure = nullptr;  // its secure layer, if any
    std::unique_ptr<msg::shard_messaging> api;
    std::unique_ptr<rm::tools::shard_workload> work;
    // with [replication]: the groups placed on this shard, and where inbound batches go
    std::unique_ptr<rm::cluster::raft_batch_router> router;
    std::unique_ptr<rm::tools::node_replication> replication;
};

/// The node's state. Shard 0 owns the membership and replication fields; atomics are read by
/// main.
struct workload {
    explicit workload(unsigned shards) : view(shards), parts(shards) {}

    rm::tools::workload_options options;
    rm::tools::node_view view;
    std::vector<shard_part> parts;
    std::unique_ptr<msg::messaging_directory> directory;
    rm::shard* home = nullptr;  // shard 0
    int log_fd = -1;
    pthread_t main_thread{};     // told (SIGUSR1) when finished: it waits for signals
    std::string transport_name;  // the backend the endpoints run on
    // the engine's side of the cluster: membership (gossip) on shard 0, and what each shard's
    // replication groups show the node (the status file, readiness)
    rm::membership::gossip_agent* gossip = nullptr;
    std::unique_ptr<rm::tools::replication_board> replication_board;  // with [replication]
    rm::tools::node_metrics* metrics = nullptr;                       // every shard's, main's
    std::atomic<bool> leave_requested{false};
    std::atomic<std::uint64_t> lost_to{0}, lost_from{0};  // loss reports, summed
    // SIGHUP re-reads the keyring from the config file (main thread); shard 0 applies it.
    std::mutex keyring_mutex;
    std::optional<std::vector<rm::membership::key_bytes>> new_keyring;
    std::vector<rm::membership::key_bytes> installed_keys;  // shard 0's copy
    // The keys every shard's secure layer proves with (authenticated mode); SIGHUP replaces.
    std::shared_ptr<rm::transport::secure::key_store> data_plane_keys;
    // The certificates every shard's TLS sessions start with (encrypted mode); SIGHUP reloads.
    std::shared_ptr<rm::transport::secure::tls_credentials> tls_credentials;
    rm::cluster::member* member() const { return parts.front().member.get(); }
};

// Key rotation on a live node: every listed key is installed, the first becomes the one that
// seals, and keys no longer listed are removed. Roll it out in three edits of every node's
// config (add the new key; move it first; drop the old one), a SIGHUP after each.
void apply_keyring(rm::membership::keyring& ring,
                   const std::vector<rm::membership::key_bytes>& keys,
                   const std::vector<rm::membership::key_bytes>& previous, const std::string& id) {
    for (const auto& k : keys)
        (void)ring.install(k);
    (void)ring.use(keys.front());
    for (const auto& k : previous) {
        if (std::find(keys.begin(), keys.end(), k) == keys.end()) (void)ring.remove(k);
    }
    std::printf("[%s] keyring reloaded: %zu key(s)\n", id.c_str(), ring.key_count());
}

const char* state_name(rm::membership::member_state s) {
    return rm::membership::to_string(s);
}

// The status file: the replication groups (with [replication]), then one line per member
// (with gossip), written whole and renamed into place so a reader never sees half a table.
void write_status(const workload& w, const std::string& path) {
    const std::string tmp = path + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "w");
    if (f == nullptr) return;
    if (w.replication_board) w.replication_board->write_status(f);
    if (w.gossip == nullptr) {
        std::fclose(f);
        std::rename(tmp.c_str(), path.c_str());
        return;
    }
    const auto& swim = w.gossip->state();
    std::fprintf(f, "# %s: %zu alive of %zu known; health %d\n", swim.self().name.c_str(),
                 swim.alive_count(), swim.members().size(), swim.health_score());
    const auto& gs = w.gossip->stats();
    std::fprintf(f, "# gossip: datagrams in %llu out %llu, refused %llu\n",
                 static_cast<unsigned long long>(gs.datagrams_in),
                 static_cast<unsigned long long>(gs.datagrams_out),
                 static_cast<unsigned long long>(gs.refused()));
    std::fprintf(f, "%-16s %-22s %-8s %11s %s\n", "member", "address", "state", "incarnation",
                 "tags");
    for (const auto& m : swim.members()) {
        std::string tags;
        for (const auto& [k, v] : m.meta.tags) {
            if (!tags.empty()) tags += ',';
            tags.append(k).append("=").append(v);
        }
        std::fprintf(f, "%-16s %-22s %-8s %11llu %s\n", m.name.c_str(), m.address.c_str(),
                     state_name(m.state), static_cast<unsigned long long>(m.incarnation),
                     tags.c_str());
    }
    std::fclose(f);
    std::rename(tmp.c_str(), path.c_str());
}

// Shard 0, on the membership poller's cadence: key rotation and the leave request from the
// main thread, and the status file once a second.
std::size_t membership_chores(workload& w) {
    if (w.gossip == nullptr) return 0;
    std::size_t work = 0;
    if (w.leave_requested.exchange(false)) {
        w.member()->leave();
        ++work;
    }
    std::unique_lock lock(w.keyring_mutex, std::try_to_lock);
    if (lock.owns_lock() && w.new_keyring) {
        apply_keyring(w.gossip->keys(), *w.new_keyring, w.installed_keys,
                      w.gossip->state().self().name);
        w.installed_keys = std::move(*w.new_keyring);
        w.new_keyring.reset();
        ++work;
    }
    return work;
}

void schedule_status(workload& w, const std::string& path) {
    workload* wp = &w;
    w.home->timers().schedule_at(w.home->now_ns() + rm::ns_per_s, [wp, path] {
        write_status(*wp, path);
        schedule_status(*wp, path);
    });
}

// Gossip is light: a small ring of its own, apart from the data path's, sharing the shard's
// sleep through its eventfd.
rm::result<std::unique_ptr<rm::transport::transport>> open_gossip_ring(
    rm::shard& s, const rm::tools::node_settings& settings) {
    rm::transport::uring_config uc = settings.uring;
    uc.ring_entries = 256;
    uc.max_connections = 64;
    uc.recv_buffer_count = 64;
    uc.recv_buffer_bytes = std::size_t{64} << 10;
    uc.datagram_send_slots = 256;
    auto t = rm::transport::uring_transport::create(uc, s.id());
    if (!t) return t.err();
    return std::unique_ptr<rm::transport::transport>(std::move(t).value());
}

rm::membership::agent_config gossip_config(const rm::tools::node_settings& settings) {
    const auto& m = settings.membership;
    rm::membership::agent_config config;
    config.cluster_id = settings.endpoint.cluster_id;
    config.listen = *rm::transport::address::parse(m.listen_text);
    config.swim = m.swim;
    config.swim.name = settings.endpoint.node_id;
    config.swim.address = m.listen_text;
    config.swim.seeds = m.seeds;
    config.swim.meta.shard_count = static_cast<std::uint16_t>(settings.node.shard_count);
    config.swim.meta.addresses = {{"tcp", settings.listen_text}};
    config.swim.meta.tags = m.tags;
    return config;
}

void print_membership(const rm::membership::gossip_agent& g) {
    const auto& st = g.stats();
    const auto& sw = g.state().stats();
    auto u = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
    const auto& self = g.state().self();
    std::printf(
        "[%s] membership: %zu alive of %zu known, incarnation %llu, health %d; probes %llu "
        "(failed %llu), suspicions raised %llu, declared dead %llu, refutations %llu; gossip "
        "refused %llu (auth %llu, unencrypted %llu, malformed %llu, wrong cluster %llu)\n",
        self.name.c_str(), g.state().alive_count(), g.state().members().size(), u(self.incarnation),
        g.state().health_score(), u(sw.probes), u(sw.probes_failed), u(sw.suspicions_raised),
        u(sw.declared_dead), u(sw.refutations), u(st.refused()),
        u(st.refused_by_keyring[static_cast<int>(rm::membership::open_status::auth_failed)]),
        u(st.refused_by_keyring[static_cast<int>(rm::membership::open_status::unencrypted)]),
        u(st.refused_by_codec[static_cast<int>(rm::membership::gossip_error::malformed)]),
        u(st.refused_by_codec[static_cast<int>(rm::membership::gossip_error::wrong_cluster)]));
    for (const auto& m : g.state().members()) {
        std::printf("[%s]   %-16s %-22s %-8s incarnation %llu\n", self.name.c_str(), m.name.c_str(),
                    m.address.c_str(), state_name(m.state), u(m.incarnation));
    }
}

// One endpoint's lines of the exit report; shard 0's carry the node id alone, the others'
// name their shard.
void print_endpoint_stats(const msg::endpoint& ep, rm::shard_id shard) {
    const auto& s = ep.stats();
    auto u = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
    const std::string who =
        shard == 0 ? ep.node_id() : ep.node_id() + " shard " + std::to_string(shard);
    std::printf(
        "[%s] connections in %llu out %llu, handshakes %llu, frames refused %llu "
        "(wrong cluster %llu, protocol violations %llu, handshake timeouts %llu); "
        "datagrams in %llu out %llu dropped %llu; redirected %llu, handed to owner %llu\n",
        who.c_str(), u(s.connections_accepted), u(s.connections_dialed), u(s.handshakes),
        u(s.frames_refused), u(s.wrong_cluster), u(s.protocol_violations), u(s.handshake_timeouts),
        u(s.datagrams_received), u(s.datagrams_sent), u(s.datagrams_dropped), u(s.redirected),
        u(s.handed_to_owner));
    for (const auto& peer : ep.connected_peers()) {
        const auto* ss = ep.peer_session_stats(peer);
        std::printf(
            "[%s] session with %s: transmitted %llu, retransmitted %llu, acked %llu, "
            "delivered %llu, duplicates %llu, unacked %llu\n",
            who.c_str(), peer.c_str(), u(ss->frames_transmitted), u(ss->frames_retransmitted),
            u(ss->frames_acked), u(ss->frames_delivered), u(ss->duplicates_dropped),
            u(ep.unacked(peer)));
    }
}

// The secure layer's line of the exit report: who was proven, who was refused and why.
void print_security_stats(const rm::transport::secure::secure_transport& t, const std::string& self,
                          rm::shard_id shard) {
    namespace sec = rm::transport::secure;
    const sec::secure_stats& s = t.stats();
    auto u = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
    std::string refusals;
    for (std::size_t r = 1; r < s.refused.size(); ++r) {
        if (s.refused[r] == 0) continue;
        refusals += refusals.empty() ? " (" : ", ";
        refusals += std::string(sec::to_string(static_cast<sec::auth_refusal>(r))) + " " +
                    std::to_string(s.refused[r]);
    }
    if (!refusals.empty()) refusals += ")";
    const std::string who = shard == 0 ? self : self + " shard " + std::to_string(shard);
    std::printf(
        "[%s] security %s: %llu peers proven, %llu refused%s; records sealed %llu, opened "
        "%llu, refused %llu; datagram sessions %llu, datagrams sealed %llu, opened %llu, "
        "refused %llu, replayed %llu, dropped %llu\n",
        who.c_str(), sec::to_string(t.mode()), u(s.handshakes), u(s.refused_total()),
        refusals.c_str(), u(s.records_sealed), u(s.records_opened), u(s.records_refused),
        u(s.datagram_handshakes), u(s.datagrams_sealed), u(s.datagrams_opened),
        u(s.datagrams_refused), u(s.datagrams_replayed), u(s.datagrams_dropped));
}

bool every_peer_acked(const msg::endpoint& ep) {
    for (const auto& peer : ep.connected_peers()) {
        if (ep.unacked(peer) > 0) return false;
    }
    return true;
}

// Membership's verdicts (shard 0) reach the endpoints of the other shards; cluster::member
// has applied them to shard 0's own.
void share_verdict(msg::shard_messaging& api, const rm::membership::member_event& e) {
    using kind = rm::membership::member_event::kind;
    switch (e.what) {
        case kind::dead:
        case kind::left:
            api.share_member_verdict(e.name, true, e.what == kind::left);
            break;
        case kind::joined:
        case kind::alive:
        case kind::updated:
            api.share_member_verdict(e.name, false, false);
            break;
        case kind::suspect:
            break;
    }
}

// Shard `s`'s messaging endpoint: its own transport (its own queue of a DPDK port), listening
// on node.listen's port plus its index. Shard 0 dials the configured peers (one another
// shard owns is handed to it) and runs membership with its endpoint.
std::optional<std::string> start_endpoint(rm::shard& s, workload& w,
                                          const rm::tools::node_settings& settings) {
    const rm::shard_id k = s.id();
    rm::transport::dpdk_config dpdk = settings.dpdk;
    dpdk.queues = static_cast<std::uint16_t>(settings.endpoint_shards);
    dpdk.queue = static_cast<std::uint16_t>(k);
    // With a secure layer, every stream and every datagram of the backend goes through it.
    const bool secured = settings.security.mode != rm::transport::secure::security_mode::none;
    auto opened = rm::transport::open_transport(settings.backend, settings.dpdk_configured(), dpdk,
                                                settings.uring, k, &s);
    if (!opened) return opened.err().message();
    if (k == 0) {
        if (!opened->note.empty()) rm::log::info("transport", "{}", opened->note);
        w.transport_name = rm::transport::to_string(opened->chosen);
    }
    shard_part& part = w.parts[k];
    if (secured) {
        rm::transport::secure::secure_settings ss;
        ss.identity = {settings.endpoint.cluster_id, settings.endpoint.node_id,
                       settings.security.mode};
        ss.keys = w.data_plane_keys;
        ss.tls = w.tls_credentials;
        ss.handshake_timeout_ns = settings.security.handshake_timeout_ms * rm::ns_per_ms;
        ss.owner = k;
        auto wrapped = rm::transport::secure::secure_transport::wrap(
            std::move(opened->backend_transport), std::move(ss));
        if (!wrapped) return "security: " + wrapped.err().message();
        part.secure = wrapped->get();
        opened->backend_transport = std::move(wrapped).value();
    }
    msg::endpoint_config config = settings.endpoint;
    config.node_shards = settings.endpoint_shards;
    config.node_shard = k;
    config.listen = config.listen->with_port(static_cast<std::uint16_t>(config.listen->port() + k));
    if (k != 0) {
        config.peers.clear();  // shard 0 dials them all; each is handed to its owner
        config.datagram_peers.clear();
    }
    if (k == 0) {
        rm::cluster::member_config mc;
        mc.messaging = std::move(config);
        std::unique_ptr<rm::transport::transport> gossip_ring;
        if (settings.membership.enabled()) {
            auto ring = open_gossip_ring(s, settings);
            if (!ring) return "membership: " + ring.err().message();
            gossip_ring = std::move(ring).value();
            mc.membership = gossip_config(settings);
            mc.keys = settings.membership.keys;
        }
        auto member = rm::cluster::member::create(s, std::move(opened->backend_transport),
                                                  std::move(gossip_ring), std::move(mc));
        if (!member) return member.err().message();
        part.member = std::move(member).value();
        part.ep = &part.member->messaging();
        w.gossip = part.member->membership();
    } else {
        auto ep = msg::endpoint::create(s, std::move(opened->backend_transport), std::move(config));
        if (!ep) return ep.err().message();
        part.endpoint = std::move(ep).value();
        part.ep = part.endpoint.get();
    }
    const std::string self = settings.endpoint.node_id;
    part.ep->on_peer_loss([&w, self](const msg::peer_loss& loss) {
        w.lost_to += loss.not_delivered_to;
        w.lost_from += loss.not_delivered_from;
        std::printf(
            "[%s] peer %.*s: %s; %llu message(s) not delivered to it, %llu frame(s) "
            "not delivered from it\n",
            self.c_str(), static_cast<int>(loss.peer.size()), loss.peer.data(),
            msg::to_string(loss.reason), static_cast<unsigned long long>(loss.not_delivered_to),
            static_cast<unsigned long long>(loss.not_delivered_from));
    });
    // What the workload shards need to know of this endpoint, on a duty cycle; and the
    // graceful close main asks for at the end.
    s.add_poller(
        rm::poll_step::protocol,
        [&w, &part, k, shut = false](rm::time_ns) mutable -> std::size_t {
            if (!shut && w.view.shutdown_requested.load(std::memory_order_relaxed)) {
                shut = true;
                part.ep->shutdown();
                return 1;
            }
            w.view.update(k, every_peer_acked(*part.ep));
            return 0;
        },
        200 * rm::ns_per_us);
    return std::nullopt;
}

// A shard's share of replication: the router that takes the batches its endpoint receives to
// the groups' shards (on every shard, before any group claims batches), and the groups
// cluster::shard_for_group places here.
std::optional<std::string> start_replication(rm::shard& s, workload& w,
                                             rm::tools::node_settings& settings) {
    shard_part& part = w.parts[s.id()];
    const auto& r = settings.replication;
    const auto shard_count = static_cast<unsigned>(w.parts.size());
    part.router = std::make_unique<rm::cluster::raft_batch_router>(
        settings.endpoint.cluster_id,
        rm::tools::node_replication::self_id(r, settings.endpoint.node_id), shard_count);
    part.api->route_replication(
        [router = part.router.get()](std::span<const std::byte> batch,
                                     const msg::shard_messaging::replication_sink& to) {
            router->route(batch, to);
        });
    auto started = rm::tools::node_replication::start(s, *part.api, settings.endpoint.cluster_id, r,
                                                      shard_count);
    if (!started) return "replication: " + started.err().message();
    part.replication = std::move(started).value();
    if (!part.replication) return std::nullopt;  // no group placed here
    if (!w.options.replicated_subscribe.empty() && part.replication->has_topic_group() &&
        !part.replication->subscribe(w.options.replicated_subscribe, w.options.replicated_resume)) {
        return "--replicated-subscribe needs a valid pattern and a writable "
               "--replicated-resume file";
    }
    part.replication->publish(*w.replication_board, 250 * rm::ns_per_ms, part.router.get());
    w.metrics->watch_replication(s, *part.replication);
    // Before the endpoint goes: on_stop hooks run in reverse order.
    s.on_stop([&part] { part.replication.reset(); });
    return std::nullopt;
}

// Shard 0's share of the node: the echo service, replication, membership's printing and
// chores, and the node-wide metrics.
std::optional<std::string> start_shard0(rm::shard& s, workload& w,
                                        rm::tools::node_settings& settings) {
    shard_part& part = w.parts[0];
    w.home = &s;
    part.api->serve("echo", [](const msg::message& m) {
        return msg::rpc_reply{rm::wire::RpcStatus::Ok, m.bytes, {}};
    });
    if (settings.replication.enabled()) {
        const auto& r = settings.replication;
        if (!w.options.replicated_subscribe.empty() && r.topic_group == 0)
            return "--replicated-subscribe needs replication.topic_group";
        rm::log::info("replication",
                      "{} key-value group(s){} of {} replicas over {} shard(s), logs in {}",
                      r.groups.size(), r.topic_group != 0 ? " and a topic group" : "",
                      r.replicas.size(), w.parts.size(), r.dir);
        if (!settings.membership.status_file.empty() && !settings.membership.enabled())
            schedule_status(w, settings.membership.status_file);
    }
    if (w.gossip != nullptr) {
        w.installed_keys = settings.membership.keys;
        const std::string self = settings.endpoint.node_id;
        part.member->on_member_event([self, &part](const rm::membership::member_event& e) {
            share_verdict(*part.api, e);
            std::printf("[%s] member %s %s at %s incarnation %llu\n", self.c_str(), e.name.c_str(),
                        rm::membership::to_string(e.what), e.address.c_str(),
                        static_cast<unsigned long long>(e.incarnation));
        });
        const auto& m = settings.membership;
        rm::log::write(m.keys.empty() ? rm::log::level::warn : rm::log::level::info, "membership",
                       "gossip on {}, {} seed(s), {}, Lifeguard {}", m.listen_text, m.seeds.size(),
                       m.keys.empty() ? "UNENCRYPTED (no keyring)" : "AES-GCM keyring",
                       m.swim.lifeguard ? "on" : "off");
        if (!m.status_file.empty()) schedule_status(w, m.status_file);
        // Key rotation and the leave request come from the main thread; looked at on a
        // duty cycle, and at once when the main thread wakes the shard.
        s.add_poller(
            rm::poll_step::protocol, [&w](rm::time_ns) { return membership_chores(w); },
            1 * rm::ns_per_ms);
    }
    w.metrics->watch_node(*part.api, w.gossip, w.replication_board.get(),
                          !settings.peer_texts.empty() || !settings.udp_peer_texts.empty() ||
                              !settings.membership.seeds.empty());
    return std::nullopt;
}

std::optional<std::string> install(rm::shard& s, workload& w, rm::tools::node_settings& settings) {
    w.metrics->install(s);
    const rm::shard_id k = s.id();
    shard_part& part = w.parts[k];
    // Registered first, so it runs last: the endpoint (whose handlers point into the
    // messaging API) goes before the API.
    s.on_stop([&part] {
        part.endpoint.reset();
        part.member.reset();
        part.api.reset();
    });
    if (k < settings.endpoint_shards) {
        if (auto failed = start_endpoint(s, w, settings)) return failed;
        w.metrics->watch_endpoint(s, *part.ep);
        if (part.secure != nullptr) w.metrics->watch_security(s, *part.secure);
    }
    part.api = std::make_unique<msg::shard_messaging>(s, *w.directory, part.ep);
    w.metrics->watch_cross_shard(s, *part.api);
    if (settings.replication.enabled()) {
        if (auto failed = start_replication(s, w, settings)) return failed;
    }
    if (k == 0) {
        if (auto failed = start_shard0(s, w, settings)) return failed;
    }
    const auto& shards = w.options.shards;
    if (std::find(shards.begin(), shards.end(), k) != shards.end()) {
        workload* wp = &w;
        part.work = std::make_unique<rm::tools::shard_workload>(
            s, *part.api, w.options, w.view, w.log_fd, [wp] {
                if (wp->view.finished_shards.fetch_add(1) + 1 == wp->options.shards.size())
                    pthread_kill(wp->main_thread, SIGUSR1);  // wake the main thread's wait
            });
        if (auto failed = part.work->start()) return failed;
    }
    // The exit report's endpoint and membership lines, taken here just before teardown.
    const std::string self = settings.endpoint.node_id;
    s.on_stop([&w, &part, k, self] {
        if (part.ep != nullptr) print_endpoint_stats(*part.ep, k);
        if (part.secure != nullptr) print_security_stats(*part.secure, self, k);
        if (part.replication) part.replication->report(self);
        if (part.router && part.ep != nullptr) {
            const rm::cluster::raft_router_stats& r = part.router->stats();
            std::printf(
                "[%s] replication batches routed on shard %u: %llu whole, %llu split into %llu\n",
                self.c_str(), k, static_cast<unsigned long long>(r.whole),
                static_cast<unsigned long long>(r.split), static_cast<unsigned long long>(r.parts));
        }
        if (k == 0 && w.gossip != nullptr) print_membership(*w.gossip);
    });
    return std::nullopt;
}

// SIGHUP in encrypted mode: the certificate files are read again (the same paths: a renewal
// replaces the files) and checked as at start-up; new handshakes use them, established
// sessions keep theirs. A set that fails the checks leaves the current one in force.
void reload_certificates(workload& w, const rm::transport::secure::tls_files& files) {
    if (!w.tls_credentials) return;
    const std::string& id = w.directory->node_id();
    auto loaded = rm::transport::secure::tls_context::load(files, id);
    if (!loaded) {
        rm::log::error("node", "SIGHUP: {}; keeping the current certificates",
                       loaded.err().message());
        return;
    }
    w.tls_credentials->replace(*loaded);
    std::printf("[%s] certificates reloaded: valid until %s\n", id.c_str(),
                (*loaded)->not_after().c_str());
}

void reload_keyring(const std::string& config_path, workload& w) {
    if (config_path.empty() || (w.gossip == nullptr && !w.data_plane_keys)) {
        rm::log::warn("node", "SIGHUP: no config file with a keyring to reload");
        return;
    }
    auto loaded = rm::tools::load_node_settings(config_path);
    auto keys = loaded ? rm::tools::parse_keyring(loaded->membership.key_texts)
                       : rm::result<std::vector<rm::membership::key_bytes>>(loaded.err());
    if (!keys) {
        rm::log::error("node", "SIGHUP: {}; keeping the current keys", keys.err().message());
        return;
    }
    if (keys->empty()) {
        rm::log::error("node", "SIGHUP: the new keyring is empty; keeping the current keys");
        return;
    }
    // New handshakes prove with the new keys at once; proven sessions keep their record keys.
    if (w.data_plane_keys) {
        w.data_plane_keys->replace(*keys);
        // The running node's name (the file may leave the id to the command line).
        std::printf("[%s] data plane keys replaced: %zu key(s)\n", w.directory->node_id().c_str(),
                    keys->size());
    }
    if (w.gossip == nullptr) return;
    std::lock_guard lock(w.keyring_mutex);
    w.new_keyring = std::move(keys).value();
}

// The workload's lines: the node's totals, then (with several workload shards) each shard's.
void print_reports(const workload& w, const std::string& id) {
    rm::tools::workload_report total;
    for (const auto& part : w.parts) {
        if (part.work) total.add(part.work->figures());
    }
    const std::uint64_t refused = total.publish_refused;
    rm::tools::print_workload_report(total, w.options, id);
    if (w.options.shards.size() > 1) {
        for (const auto& part : w.parts) {
            if (part.work) {
                rm::tools::print_workload_report(part.work->figures(), w.options,
                                                 id + " shard " + std::to_string(part.work->id()));
            }
        }
    }
    if (w.lost_to > 0 || w.lost_from > 0 || refused > 0) {
        std::printf(
            "[%s] not delivered (reported by the engine): %llu to peers, %llu from "
            "peers; %llu publish(es) refused\n",
            id.c_str(), static_cast<unsigned long long>(w.lost_to.load()),
            static_cast<unsigned long long>(w.lost_from.load()),
            static_cast<unsigned long long>(refused));
    }
}

int run_node(int argc, char** argv);

}  // namespace

int main(int argc, char** argv) {
    // Nothing the daemon does should throw; if something does (a bad_alloc), say so and exit
    // with an error instead of terminating without a word.
    try {
        return run_node(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ringmesh_node: fatal: %s\n", e.what());
        return 1;
    }
}

namespace {

int run_node(int argc, char** argv) {
    CLI::App app{"ringmesh node daemon"};
    std::string config_path;
    std::string id, cluster, listen, idle;
    std::vector<std::string> peers, udp_peers;
    std::vector<int> cores;
    std::uint32_t shards = 0;
    rm::tools::workload_options wo;
    app.add_option("-c,--config", config_path, "TOML configuration file")->check(CLI::ExistingFile);
    app.add_option("--id", id, "node id (overrides node.id)");
    app.add_option("--cluster", cluster, "cluster id (overrides node.cluster)");
    app.add_option("--listen", listen, "host:port to listen on (overrides node.listen)");
    app.add_option("--peer", peers, "host:port to dial; repeat for several (adds to node.peers)");
    app.add_option("--udp-peer", udp_peers, "host:port to reach over UDP; repeat for several");
    app.add_option("--shards", shards, "shard count (overrides node.shards)");
    app.add_option("--cores", cores, "cores for the shards, comma-separated")->delimiter(',');
    app.add_option("--idle", idle, "busy_spin, backoff or block (overrides node.idle)");
    app.add_option("--subscribe", wo.subscribe, "subscribe to PATTERN and measure deliveries");
    app.add_option("--publish", wo.publish_topic, "publish numbered messages on TOPIC");
    app.add_option("--rate", wo.rate, "publish rate in messages/s (0: as fast as acks allow)");
    app.add_option("--count", wo.count, "publish this many messages, then stop");
    app.add_option("--payload-bytes", wo.payload_bytes, "message size")
        ->check(CLI::Range(16, 1 << 20));
    app.add_option("--wait-subscribers", wo.wait_subscribers,
                   "publish once this many peers subscribe");
    app.add_option("--rpc", wo.rpc_peer, "closed-loop echo calls to this peer id");
    app.add_option("--send", wo.send_peer,
                   "send numbered messages to this peer id on a stream (instead of --publish)");
    app.add_option("--workload-shards", wo.shards,
                   "the shards that run the workload, comma-separated (default 0); each "
                   "publishes --count on its own")
        ->delimiter(',');
    app.add_option("--delivery-log", wo.delivery_log, "append each delivered sequence number here");
    app.add_option("--seconds", wo.seconds,
                   "run this long, then drain and exit (0: until a signal)");
    app.add_option("--drain-seconds", wo.drain_seconds, "longest wait for acks before exiting");
    app.add_flag("--linger", wo.linger,
                 "after --count is published and acknowledged, keep running (serving peers) "
                 "until --seconds or a signal");
    std::string gossip, status_file;
    std::vector<std::string> seeds, keys;
    app.add_option("--gossip", gossip, "gossip host:port: turns membership on");
    app.add_option("--seed", seeds, "gossip address to join through; repeat for several");
    app.add_option("--key", keys,
                   "cluster key, base64 (the first one seals gossip and proves this node on the "
                   "data plane); repeat for several");
    std::string security_mode;
    app.add_option("--security", security_mode,
                   "none, authenticated or encrypted (security.mode; default encrypted with "
                   "certificates, authenticated with a key)");
    rm::transport::secure::tls_files tls_files;
    app.add_option("--tls-ca", tls_files.ca_file,
                   "CA certificate(s) every peer's certificate must chain to, PEM "
                   "(security.ca_file)");
    app.add_option("--tls-cert", tls_files.cert_file,
                   "this node's certificate, PEM; it must name the node id (security.cert_file)");
    app.add_option("--tls-key", tls_files.key_file,
                   "this node's private key, PEM (security.key_file)");
    app.add_option("--status-file", status_file, "rewrite the member table here every second");
    std::vector<std::string> replicas;
    std::string data_dir;
    app.add_option("--replica", replicas,
                   "NAME=ID: a Raft replica (this node too); repeat for each. Turns replication "
                   "and the key-value service on");
    app.add_option("--data-dir", data_dir, "replication logs and snapshots (replication.dir)");
    std::vector<std::uint32_t> kv_groups;
    app.add_option("--group", kv_groups,
                   "a key-value Raft group (replication.groups, default 1); repeat for each")
        ->check(CLI::Range(1, 65535));
    std::uint32_t topic_group = 0;
    app.add_option("--topic-group", topic_group,
                   "the Raft group that carries replicated topics (replication.topic_group)");
    app.add_option("--replicated-subscribe", wo.replicated_subscribe,
                   "read the replicated topics matching PATTERN from offset 1; report at exit");
    app.add_option("--replicated-resume", wo.replicated_resume,
                   "with --replicated-subscribe: append each delivery (offset topic payload) to "
                   "FILE, and start after the last offset it records");
    std::string backend, dpdk_ip, dpdk_port, eal;
    std::string metrics_listen, log_level;
    app.add_option("--log-level", log_level,
                   "trace, debug, info, warn, error or off (overrides log.level; default info)");
    app.add_option("--metrics", metrics_listen,
                   "host:port for /metrics, /healthz and /readyz, or off (overrides "
                   "metrics.listen; default 127.0.0.1:9464)");
    app.add_option("--transport", backend, "auto, dpdk or uring (overrides node.transport)");
    app.add_option("--dpdk-ip", dpdk_ip, "this node's IPv4 on the DPDK port (dpdk.ip)");
    app.add_option("--dpdk-port", dpdk_port, "DPDK port name or PCI address (dpdk.port)");
    app.add_option("--eal", eal, "EAL arguments, space-separated (dpdk.eal_args)");
    CLI11_PARSE(app, argc, argv);

    rm::tools::node_settings settings;
    if (!config_path.empty()) {
        auto loaded = rm::tools::load_node_settings(config_path);
        if (!loaded) {
            std::fprintf(stderr, "ringmesh_node: %s\n", loaded.err().message().c_str());
            return 2;
        }
        settings = std::move(loaded).value();
    }
    if (!id.empty()) settings.endpoint.node_id = id;
    if (!cluster.empty()) settings.endpoint.cluster_id = cluster;
    if (!listen.empty()) settings.listen_text = listen;
    for (auto& p : peers)
        settings.peer_texts.push_back(p);
    for (auto& p : udp_peers)
        settings.udp_peer_texts.push_back(p);
    if (shards) settings.node.shard_count = shards;
    if (!gossip.empty()) settings.membership.listen_text = gossip;
    if (!backend.empty()) {
        const auto b = rm::transport::parse_backend(backend);
        if (!b) {
            std::fprintf(stderr, "ringmesh_node: --transport must be auto, dpdk or uring\n");
            return 2;
        }
        settings.backend = *b;
    }
    if (!dpdk_ip.empty()) settings.dpdk.ip = dpdk_ip;
    if (!dpdk_port.empty()) settings.dpdk.port = dpdk_port;
    if (!eal.empty()) {
        settings.dpdk.eal_args.clear();
        std::istringstream words(eal);
        for (std::string word; words >> word;)
            settings.dpdk.eal_args.push_back(word);
    }
    for (auto& s : seeds)
        settings.membership.seeds.push_back(s);
    if (!keys.empty()) settings.membership.key_texts = keys;
    if (!security_mode.empty()) settings.security.mode_text = security_mode;
    if (!tls_files.ca_file.empty()) settings.security.tls_files.ca_file = tls_files.ca_file;
    if (!tls_files.cert_file.empty()) settings.security.tls_files.cert_file = tls_files.cert_file;
    if (!tls_files.key_file.empty()) settings.security.tls_files.key_file = tls_files.key_file;
    if (!replicas.empty()) settings.replication.replica_texts = replicas;
    if (!data_dir.empty()) settings.replication.dir = data_dir;
    if (!metrics_listen.empty()) {
        settings.metrics_listen = metrics_listen;
        settings.metrics_listen_explicit = true;
    }
    if (!kv_groups.empty()) settings.replication.groups = kv_groups;
    if (topic_group != 0) settings.replication.topic_group = topic_group;
    if (!status_file.empty()) settings.membership.status_file = status_file;
    if (!cores.empty()) settings.node.cores = cores;
    if (!idle.empty()) {
        const auto kind = rm::parse_idle_kind(idle);
        if (!kind) {
            std::fprintf(stderr, "ringmesh_node: --idle must be busy_spin, backoff or block\n");
            return 2;
        }
        settings.node.shard.idle.kind = *kind;
    }
    if (auto finished = rm::tools::finish_node_settings(settings); !finished) {
        std::fprintf(stderr, "ringmesh_node: %s\n", finished.err().message().c_str());
        return 2;
    }
    if (!log_level.empty()) {
        const auto parsed = rm::log::parse_level(log_level);
        if (!parsed) {
            std::fprintf(stderr,
                         "ringmesh_node: --log-level must be trace, debug, info, warn, error or "
                         "off\n");
            return 2;
        }
        settings.log_level = *parsed;
    }
    rm::log::set_level(settings.log_level);
    rm::log::set_tag(settings.endpoint.node_id);  // several nodes may share one terminal

    // Signals are taken by sigtimedwait on the main thread; shard threads inherit the mask.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGHUP);
    sigaddset(&signals, SIGUSR1);  // from a shard: --count is done
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // event lines reach a pipe as they happen

    workload w(settings.node.shard_count);
    w.main_thread = pthread_self();
    w.options = wo;
    for (std::uint32_t shard : wo.shards) {
        if (shard >= settings.node.shard_count) {
            std::fprintf(stderr, "ringmesh_node: --workload-shards: shard %u of %u\n", shard,
                         settings.node.shard_count);
            return 2;
        }
    }
    if (!wo.delivery_log.empty()) {
        w.log_fd = ::open(wo.delivery_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (w.log_fd < 0) {
            std::fprintf(stderr, "ringmesh_node: %s: %s\n", wo.delivery_log.c_str(),
                         rm::errno_text(errno).c_str());
            return 2;
        }
    }
    // One incarnation for all of the node's endpoints: to a peer they are one process.
    if (settings.endpoint.incarnation == 0)
        settings.endpoint.incarnation =
            rm::random_source(rm::random_source::seed_or_os(0)).next_nonzero();
    auto node = rm::node::create(settings.node);
    if (!node) {
        rm::log::error("node", "{}", node.err().message());
        return 2;
    }
    std::vector<rm::shard_id> members;
    for (rm::shard_id k = 0; k < settings.node.shard_count; ++k)
        members.push_back(k);
    w.directory = std::make_unique<msg::messaging_directory>(settings.endpoint.node_id, members);
    for (rm::shard_id k = 0; k < settings.endpoint_shards; ++k)
        w.view.mark_endpoint(k);
    if (settings.replication.enabled()) {
        w.replication_board =
            std::make_unique<rm::tools::replication_board>(settings.node.shard_count);
        for (std::uint32_t g : settings.replication.all_groups())
            w.replication_board->expect(rm::cluster::shard_for_group(g, settings.node.shard_count));
    }
    namespace sec = rm::transport::secure;
    // Datagram sessions prove the keyring in either secured mode (and in encrypted mode also
    // encrypt); streams prove it (authenticated) or certificates (encrypted).
    if (settings.security.mode != sec::security_mode::none && !settings.membership.keys.empty())
        w.data_plane_keys = std::make_shared<sec::key_store>(settings.membership.keys);
    const std::string datagram_note =
        w.data_plane_keys
            ? std::string(
                  "; datagrams: the keyring proves every peer address, every "
                  "datagram ") +
                  (settings.security.mode == sec::security_mode::encrypted ? "encrypted (AES-GCM)"
                                                                           : "tagged") +
                  ", replays refused"
            : std::string("; no datagrams (they need a keyring)");
    if (settings.security.mode == sec::security_mode::encrypted) {
        w.tls_credentials = std::make_shared<sec::tls_credentials>(settings.security.tls);
        rm::log::info("security",
                      "mode encrypted: TLS 1.3 on every stream, both sides prove a certificate "
                      "from {} naming their node id (this node's: {}, valid until {}){}",
                      settings.security.tls_files.ca_file, settings.security.tls_files.cert_file,
                      settings.security.tls->not_after(), datagram_note);
    } else if (settings.security.mode == sec::security_mode::authenticated) {
        rm::log::info("security",
                      "mode authenticated: every peer proves the keyring ({} key(s)) in a "
                      "challenge-response handshake, every record carries a tag; not "
                      "encrypted{}",
                      settings.membership.keys.size(), datagram_note);
    } else {
        rm::log::warn("security",
                      "mode none (asked for): the data plane is open; anyone who reaches {} "
                      "can subscribe, publish and call",
                      settings.listen_text);
    }
    std::vector<std::string> failures(settings.node.shard_count);
    rm::tools::node_metrics node_metrics(settings.node.shard_count);
    w.metrics = &node_metrics;
    auto started = (*node)->start([&](rm::shard& s) {
        if (auto failed = install(s, w, settings)) failures[s.id()] = *failed;
    });
    std::string failure = started ? "" : started.err().message();
    for (const auto& f : failures) {
        if (failure.empty() && !f.empty()) failure = f;
    }
    if (!failure.empty()) {
        rm::log::error("node", "{}", failure);
        (*node)->stop();
        return 1;
    }
    if (settings.metrics_listen != "off") {
        auto serving = node_metrics.serve(settings.metrics_listen);
        if (serving) {
            rm::log::info("metrics", "on http://{}/metrics (and /healthz, /readyz), port {}",
                          settings.metrics_listen, *serving);
        } else if (settings.metrics_listen_explicit) {
            rm::log::error("node", "{}", serving.err().message());
            (*node)->stop();
            return 1;
        } else {
            rm::log::warn("node", "{}; running without metrics (--metrics sets it)",
                          serving.err().message());
        }
    }
    rm::log::info("node",
                  "{} listening on {} (cluster {}, {} shard(s), {} with an endpoint, workload on "
                  "shard(s) {}, idle {}, transport {})",
                  settings.endpoint.node_id, settings.listen_text, settings.endpoint.cluster_id,
                  settings.node.shard_count, settings.endpoint_shards, fmt::join(wo.shards, ","),
                  rm::to_string(settings.node.shard.idle.kind), w.transport_name);

    // Run until a signal, the --seconds deadline, or (with --count) everything acknowledged.
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::duration<double>(wo.seconds > 0 ? wo.seconds : 1e9);
    // Sleeps until then: no tick (the last workload shard to finish sends SIGUSR1).
    auto finished = [&] { return w.view.finished_shards.load() == wo.shards.size(); };
    int sig = -1;
    while (sig <= 0 && !finished() && std::chrono::steady_clock::now() < deadline) {
        const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(
            deadline - std::chrono::steady_clock::now());
        timespec wait{};
        rm::to_timespec(
            std::max<rm::time_ns>(0, std::min<rm::time_ns>(left.count(), 3600 * rm::ns_per_s)),
            wait);
        sig = sigtimedwait(&signals, nullptr, &wait);
        if (sig == SIGHUP) {
            reload_certificates(w, settings.security.tls_files);
            if (!w.tls_credentials || w.gossip != nullptr || w.data_plane_keys)
                reload_keyring(config_path, w);
            sig = -1;
        } else if (sig == SIGUSR1) {
            sig = -1;  // finished: the loop condition ends it
        }
    }
    // Stop generating work, let every peer acknowledge what was sent, then close.
    w.view.stop_sending.store(true);
    if (w.gossip != nullptr) w.leave_requested.store(true);  // tell the cluster we go
    auto wake_all = [&] {
        for (rm::shard_id k = 0; k < settings.node.shard_count; ++k)
            (*node)->shard_at(k).wake();  // a shard asleep in the kernel must see the flags
    };
    // Drained: every workload shard has nothing unanswered or on its way, and every endpoint
    // shard has since found all its peers' acknowledgements in.
    auto workload_idle = [&] {
        for (const auto& part : w.parts) {
            if (part.work && !part.work->idle()) return false;
        }
        return true;
    };
    const auto drain_until = std::chrono::steady_clock::now() +
                             std::chrono::duration<double>(sig > 0 ? 2.0 : wo.drain_seconds);
    std::optional<std::vector<std::uint64_t>> looked;
    while (std::chrono::steady_clock::now() < drain_until) {
        wake_all();
        std::this_thread::sleep_for(std::chrono::milliseconds(5));  // paces the drain poll
        if (!workload_idle()) {
            looked.reset();
        } else if (!looked) {
            looked = w.view.checks();
        } else if (w.view.refreshed_since(*looked)) {
            if (w.view.acked()) break;
            looked = w.view.checks();
        }
    }
    w.view.shutdown_requested.store(true);
    wake_all();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // paces: the closes go out
    // Each shard prints its endpoint's lines just before its teardown (on_stop hooks); the
    // workload's figures are read here once the shard threads have been joined.
    node_metrics.stop_serving();  // no scrape reads the shards while they stop
    (*node)->stop();
    print_reports(w, settings.endpoint.node_id);
    if (w.log_fd >= 0) ::close(w.log_fd);
    return 0;
}

}  // namespace
