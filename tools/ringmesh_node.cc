// ringmesh_node — the node daemon: one process, N shards, a messaging endpoint on shard 0,
// configured by a TOML file with command-line overrides. SIGINT/SIGTERM stop it gracefully
// (queued messages drained, connections closed, report printed).
//
// Built-in workloads make it the main job's building block and the integration tests' peer:
//   --subscribe PATTERN   count deliveries, check order per publisher, one-way latency
//   --publish TOPIC       publish sequence-numbered, timestamped messages (rate or max)
//   --rpc PEER            closed-loop "echo" calls, round-trip latency
// Every node serves "echo". Reports are printed on exit, one line per workload.
//
// With [replication] (or --replica NAME=ID for every replica) the node also runs Raft groups
// on shard 0 (tools/node_replication.h), each serving the replicated key-value service that
// tools/ringmesh_kvbench drives; their state is in the status file and the exit report.
//
// With a gossip address (membership.listen or --gossip) the node also runs SWIM/Lifeguard
// membership on shard 0 (engine/cluster composes it with messaging): it joins through the
// seeds, prints one line per membership event ("[n1] member n3 dead ...") and one per loss
// report ("[n1] peer n2 restarted: ..."), rewrites the status file with the member table
// every second, and announces a graceful leave when it stops. SIGHUP re-reads
// membership.keyring from the config file (key rotation without a restart).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
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
#include "engine/core/errc.h"
#include "engine/core/histogram.h"
#include "engine/core/log.h"
#include "engine/membership/gossip_agent.h"
#include "engine/messaging/endpoint.h"
#include "engine/node.h"
#include "tools/node_config.h"
#include "tools/node_metrics.h"
#include "tools/node_replication.h"
#include "transport/uring/uring_transport.h"

namespace rm = ringmesh;
namespace msg = ringmesh::messaging;

namespace {

struct workload_options {
    std::vector<std::string> subscribe;
    std::string publish_topic;
    double rate = 0;          // messages/s; 0: as fast as the windows allow
    std::uint64_t count = 0;  // 0: until the run ends
    std::size_t payload_bytes = 64;
    std::size_t wait_subscribers = 0;
    std::string rpc_peer;
    std::string delivery_log;  // one 8-byte sequence number per delivery
    double seconds = 0;        // 0: until a signal
    double drain_seconds = 10;
    bool linger = false;  // after --count, keep serving peers until --seconds or a signal
    std::string replicated_subscribe;  // read the replicated topics matching this, from 1
    std::string replicated_resume;     // ... recording them here, resuming after its last
};

/// Shard 0's workload state. Plain fields belong to shard 0; atomics are read by main.
struct workload {
    workload_options options;
    msg::endpoint* ep = nullptr;
    rm::shard* home = nullptr;
    rm::timer_id pacing;                // wakes a sleeping shard at the next send time
    std::atomic<bool> finished{false};  // --count published and acknowledged
    pthread_t main_thread{};            // told (SIGUSR1) when finished: it waits for signals
    std::atomic<bool> stop_sending{false};
    std::atomic<bool> drained{false};
    std::atomic<bool> shutdown_requested{false};
    // publisher
    std::uint64_t published = 0;
    std::uint64_t publish_refused = 0;  // the engine refused: never counted as published
    bool calls_refused = false;         // a call no retry can cure: said once, calls stop
    rm::time_ns first_publish_ns = 0, last_publish_ns = 0;
    std::uint64_t publish_blocked = 0;
    // subscriber
    std::uint64_t received = 0, in_order = 0, duplicates = 0, gaps = 0;
    std::uint64_t last_seq = 0;
    bool have_seq = false;
    rm::time_ns first_receive_ns = 0, last_receive_ns = 0;
    rm::latency_histogram one_way;
    int log_fd = -1;
    // rpc client
    bool call_outstanding = false;
    std::uint64_t calls_ok = 0, calls_failed = 0;
    rm::latency_histogram rtt;
    std::vector<std::byte> payload;
    std::string transport_name;  // the backend the endpoint runs on
    // the engine's side of the cluster: messaging (ep) and membership (gossip)
    std::unique_ptr<rm::cluster::member> member;
    rm::membership::gossip_agent* gossip = nullptr;
    std::unique_ptr<rm::tools::node_replication> replication;  // [replication], on shard 0
    rm::tools::node_metrics* metrics = nullptr;                // every shard's, main's
    std::atomic<bool> leave_requested{false};
    std::uint64_t lost_to = 0, lost_from = 0;  // loss reports, summed
    // SIGHUP re-reads the keyring from the config file (main thread); shard 0 applies it.
    std::mutex keyring_mutex;
    std::optional<std::vector<rm::membership::key_bytes>> new_keyring;
    std::vector<rm::membership::key_bytes> installed_keys;  // shard 0's copy
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
    if (w.replication) w.replication->write_status(f);
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
        w.member->leave();
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

void on_delivery(workload& w, const msg::message& m) {
    const rm::time_ns now = rm::monotonic_clock::read();
    if (m.bytes.size() < 16) return;
    std::uint64_t seq;
    rm::time_ns sent_ns;
    std::memcpy(&seq, m.bytes.data(), 8);
    std::memcpy(&sent_ns, m.bytes.data() + 8, 8);
    if (w.received++ == 0) w.first_receive_ns = now;
    w.last_receive_ns = now;
    w.one_way.record(now - sent_ns);
    if (!w.have_seq || seq == w.last_seq + 1) {
        ++w.in_order;
    } else if (seq <= w.last_seq) {
        ++w.duplicates;
    } else {
        ++w.gaps;
    }
    if (!w.have_seq || seq > w.last_seq) w.last_seq = seq;
    w.have_seq = true;
    // write(2), not stdio: what was delivered survives a kill -9 of this process.
    if (w.log_fd >= 0) [[maybe_unused]]
        auto n = ::write(w.log_fd, &seq, sizeof seq);
}

std::size_t publish_step(workload& w, rm::time_ns now) {
    const auto& o = w.options;
    if (o.publish_topic.empty() || w.stop_sending.load(std::memory_order_relaxed)) return 0;
    if (o.count && w.published >= o.count) return 0;
    if (w.ep->subscribers(o.publish_topic) < o.wait_subscribers) return 0;
    if (w.first_publish_ns == 0) w.first_publish_ns = now;
    std::size_t work = 0;
    for (; work < 256; ++work) {
        if (o.count && w.published >= o.count) break;
        if (o.rate > 0) {
            const auto due =
                w.first_publish_ns +
                static_cast<rm::time_ns>(static_cast<double>(w.published) * 1e9 / o.rate);
            if (due > now) {
                // Ahead of schedule: make sure the loop wakes for the next message even when
                // the idle strategy sleeps in the kernel.
                if (!w.home->timers().pending(w.pacing)) {
                    w.pacing = w.home->timers().schedule_at(due, [] {});
                }
                break;
            }
        }
        if (!w.ep->publish_ready(o.publish_topic)) {
            ++w.publish_blocked;  // a subscriber is behind: wait for its acks (back-pressure)
            break;
        }
        const std::uint64_t seq = w.published + 1;
        const rm::time_ns sent_ns = rm::monotonic_clock::read();
        std::memcpy(w.payload.data(), &seq, 8);
        std::memcpy(w.payload.data() + 8, &sent_ns, 8);
        const msg::publish_result r = w.ep->publish(o.publish_topic, w.payload);
        if (r.status != msg::outcome::accepted && !msg::retryable(r.status)) {
            // Retrying cannot help: say it once, count it, and stop publishing.
            if (w.publish_refused++ == 0) {
                rm::log::error("node",
                               "publish refused ({}): a {} B message on {}; the frame limit is "
                               "limits.max_body_bytes; not publishing",
                               msg::to_string(r.status), o.payload_bytes, o.publish_topic);
            }
            w.stop_sending.store(true);
            break;
        }
        ++w.published;
        w.last_publish_ns = sent_ns;
    }
    return work;
}

std::size_t rpc_step(workload& w) {
    if (w.options.rpc_peer.empty() || w.call_outstanding || w.calls_refused ||
        w.stop_sending.load(std::memory_order_relaxed) || !w.ep->connected(w.options.rpc_peer)) {
        return 0;
    }
    workload* wp = &w;
    const auto outcome = w.ep->call(w.options.rpc_peer, "echo", w.payload, rm::ns_per_s,
                                    [wp](const msg::rpc_result& r) {
                                        wp->call_outstanding = false;
                                        if (r.status == rm::wire::RpcStatus::Ok) {
                                            ++wp->calls_ok;
                                            wp->rtt.record(r.rtt_ns);
                                        } else {
                                            ++wp->calls_failed;
                                        }
                                    });
    w.call_outstanding = outcome == msg::outcome::accepted;
    if (outcome != msg::outcome::accepted && !msg::retryable(outcome) &&
        outcome != msg::outcome::unknown_peer) {  // (unknown until it first connects)
        rm::log::error("node", "call to {} refused ({}); not calling", w.options.rpc_peer,
                       msg::to_string(outcome));
        w.calls_refused = true;  // said once; no call is counted
    }
    return 1;
}

bool all_acked(workload& w) {
    for (const auto& peer : w.ep->connected_peers()) {
        if (w.ep->unacked(peer) > 0) return false;
    }
    return !w.call_outstanding;
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

void install(rm::shard& s, workload& w, rm::tools::node_settings& settings, std::string& failure) {
    w.metrics->install(s);
    if (s.id() != 0) return;
    auto opened = rm::transport::open_transport(settings.backend, settings.dpdk_configured(),
                                                settings.dpdk, settings.uring, s.id(), &s);
    if (!opened) {
        failure = opened.err().message();
        return;
    }
    if (!opened->note.empty()) rm::log::info("transport", "{}", opened->note);
    w.transport_name = rm::transport::to_string(opened->chosen);
    rm::cluster::member_config mc;
    mc.messaging = settings.endpoint;
    std::unique_ptr<rm::transport::transport> gossip_ring;
    if (settings.membership.enabled()) {
        auto ring = open_gossip_ring(s, settings);
        if (!ring) {
            failure = "membership: " + ring.err().message();
            return;
        }
        gossip_ring = std::move(ring).value();
        mc.membership = gossip_config(settings);
        mc.keys = settings.membership.keys;
    }
    auto member = rm::cluster::member::create(s, std::move(opened->backend_transport),
                                              std::move(gossip_ring), std::move(mc));
    if (!member) {
        failure = member.err().message();
        return;
    }
    w.member = std::move(member).value();
    // Torn down on this shard's own thread when the node stops, after the report is taken.
    s.on_stop([&w] { w.member.reset(); });
    w.ep = &w.member->messaging();
    w.gossip = w.member->membership();
    w.home = &s;
    const std::string self = settings.endpoint.node_id;
    w.ep->on_peer_loss([&w, self](const msg::peer_loss& loss) {
        w.lost_to += loss.not_delivered_to;
        w.lost_from += loss.not_delivered_from;
        std::printf(
            "[%s] peer %.*s: %s; %llu message(s) not delivered to it, %llu frame(s) "
            "not delivered from it\n",
            self.c_str(), static_cast<int>(loss.peer.size()), loss.peer.data(),
            msg::to_string(loss.reason), static_cast<unsigned long long>(loss.not_delivered_to),
            static_cast<unsigned long long>(loss.not_delivered_from));
    });
    w.ep->serve("echo", [](const msg::message& m) {
        return msg::rpc_reply{rm::wire::RpcStatus::Ok, m.bytes, {}};
    });
    if (settings.replication.enabled()) {
        auto started = rm::tools::node_replication::start(s, *w.ep, settings.endpoint.cluster_id,
                                                          settings.replication);
        if (!started) {
            failure = "replication: " + started.err().message();
            return;
        }
        w.replication = std::move(started).value();
        if (!w.options.replicated_subscribe.empty() &&
            !w.replication->subscribe(w.options.replicated_subscribe,
                                      w.options.replicated_resume)) {
            failure =
                "--replicated-subscribe needs replication.topic_group, a valid pattern and a "
                "writable --replicated-resume file";
            return;
        }
        // Before the member (and its endpoint) goes: on_stop hooks run in reverse order.
        s.on_stop([&w] { w.replication.reset(); });
        const auto& r = settings.replication;
        rm::log::info("replication", "{} key-value group(s){} of {} replicas, logs in {}",
                      r.groups.size(), r.topic_group != 0 ? " and a topic group" : "",
                      r.replicas.size(), r.dir);
        if (!settings.membership.status_file.empty() && !settings.membership.enabled())
            schedule_status(w, settings.membership.status_file);
    }
    for (const auto& pattern : w.options.subscribe) {
        const auto subscribed =
            w.ep->subscribe(pattern, [&w](const msg::message& m) { on_delivery(w, m); });
        if (subscribed.status != msg::outcome::accepted) {
            failure = std::string(msg::to_string(subscribed.status)) + ": subscription pattern '" +
                      pattern + "'";
            return;
        }
    }
    if (w.gossip != nullptr) {
        w.installed_keys = settings.membership.keys;
        w.member->on_member_event([self](const rm::membership::member_event& e) {
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
    w.metrics->watch(*w.ep, w.gossip, w.replication.get(),
                     !settings.peer_texts.empty() || !settings.udp_peer_texts.empty() ||
                         !settings.membership.seeds.empty());
    workload* wp = &w;
    s.add_poller(rm::poll_step::protocol, [wp](rm::time_ns now) -> std::size_t {
        if (wp->shutdown_requested.load(std::memory_order_relaxed)) {
            wp->shutdown_requested.store(false);
            wp->ep->shutdown();
            return 1;
        }
        const std::size_t work = publish_step(*wp, now) + rpc_step(*wp);
        if (wp->stop_sending.load(std::memory_order_relaxed)) {
            wp->drained.store(all_acked(*wp), std::memory_order_relaxed);
        } else if (wp->options.count && !wp->options.linger && wp->published == wp->options.count &&
                   wp->options.rpc_peer.empty() && all_acked(*wp)) {
            if (!wp->finished.exchange(true, std::memory_order_relaxed)) {
                pthread_kill(wp->main_thread, SIGUSR1);  // wake the main thread's signal wait
            }
        }
        return work;
    });
}

double pct_us(const rm::latency_histogram& h, double q) {
    return static_cast<double>(h.quantile(q)) / 1e3;
}

void report(const workload& w, const std::string& id) {
    const auto& o = w.options;
    if (!o.publish_topic.empty()) {
        const double secs = static_cast<double>(w.last_publish_ns - w.first_publish_ns) / 1e9;
        std::printf(
            "[%s] published %llu messages of %zu B on %s in %.2f s: %.0f msg/s "
            "(%llu waits for subscriber acks)\n",
            id.c_str(), static_cast<unsigned long long>(w.published), o.payload_bytes,
            o.publish_topic.c_str(), secs, secs > 0 ? static_cast<double>(w.published) / secs : 0.0,
            static_cast<unsigned long long>(w.publish_blocked));
    }
    if (!o.subscribe.empty()) {
        const double secs = static_cast<double>(w.last_receive_ns - w.first_receive_ns) / 1e9;
        std::printf(
            "[%s] received %llu messages in %.2f s: %.0f msg/s; one-way latency p50 %.1f us, "
            "p99 %.1f us, p99.9 %.1f us, max %.1f us; in order %llu, duplicates %llu, gaps %llu\n",
            id.c_str(), static_cast<unsigned long long>(w.received), secs,
            secs > 0 ? static_cast<double>(w.received) / secs : 0.0, pct_us(w.one_way, 0.5),
            pct_us(w.one_way, 0.99), pct_us(w.one_way, 0.999),
            static_cast<double>(w.one_way.max()) / 1e3, static_cast<unsigned long long>(w.in_order),
            static_cast<unsigned long long>(w.duplicates), static_cast<unsigned long long>(w.gaps));
    }
    if (!o.rpc_peer.empty()) {
        std::printf(
            "[%s] rpc echo to %s: %llu ok, %llu failed; round trip p50 %.1f us, p99 %.1f us, "
            "p99.9 %.1f us\n",
            id.c_str(), o.rpc_peer.c_str(), static_cast<unsigned long long>(w.calls_ok),
            static_cast<unsigned long long>(w.calls_failed), pct_us(w.rtt, 0.5),
            pct_us(w.rtt, 0.99), pct_us(w.rtt, 0.999));
    }
    if (w.lost_to > 0 || w.lost_from > 0 || w.publish_refused > 0) {
        std::printf(
            "[%s] not delivered (reported by the engine): %llu to peers, %llu from "
            "peers; %llu publish(es) refused\n",
            id.c_str(), static_cast<unsigned long long>(w.lost_to),
            static_cast<unsigned long long>(w.lost_from),
            static_cast<unsigned long long>(w.publish_refused));
    }
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

void print_endpoint_stats(const msg::endpoint& ep) {
    const auto& s = ep.stats();
    auto u = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
    std::printf(
        "[%s] connections in %llu out %llu, handshakes %llu, frames refused %llu "
        "(wrong cluster %llu, protocol violations %llu, handshake timeouts %llu); "
        "datagrams in %llu out %llu dropped %llu\n",
        ep.node_id().c_str(), u(s.connections_accepted), u(s.connections_dialed), u(s.handshakes),
        u(s.frames_refused), u(s.wrong_cluster), u(s.protocol_violations), u(s.handshake_timeouts),
        u(s.datagrams_received), u(s.datagrams_sent), u(s.datagrams_dropped));
    for (const auto& peer : ep.connected_peers()) {
        const auto* ss = ep.peer_session_stats(peer);
        std::printf(
            "[%s] session with %s: transmitted %llu, retransmitted %llu, acked %llu, "
            "delivered %llu, duplicates %llu, unacked %llu\n",
            ep.node_id().c_str(), peer.c_str(), u(ss->frames_transmitted),
            u(ss->frames_retransmitted), u(ss->frames_acked), u(ss->frames_delivered),
            u(ss->duplicates_dropped), u(ep.unacked(peer)));
    }
}

void reload_keyring(const std::string& config_path, workload& w) {
    if (config_path.empty() || w.gossip == nullptr) {
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
    std::lock_guard lock(w.keyring_mutex);
    w.new_keyring = std::move(keys).value();
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
    workload_options wo;
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
    app.add_option("--key", keys, "cluster key, base64 (first one seals); repeat for several");
    app.add_option("--status-file", status_file, "rewrite the member table here every second");
    std::vector<std::string> replicas;
    std::string data_dir;
    app.add_option("--replica", replicas,
                   "NAME=ID: a Raft replica (this node too); repeat for each. Turns replication "
                   "and the key-value service on");
    app.add_option("--data-dir", data_dir, "replication logs and snapshots (replication.dir)");
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
    if (!replicas.empty()) settings.replication.replica_texts = replicas;
    if (!data_dir.empty()) settings.replication.dir = data_dir;
    if (!metrics_listen.empty()) {
        settings.metrics_listen = metrics_listen;
        settings.metrics_listen_explicit = true;
    }
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

    workload w;
    w.main_thread = pthread_self();
    w.options = wo;
    w.payload.assign(wo.payload_bytes, std::byte{0});
    if (!wo.delivery_log.empty()) {
        w.log_fd = ::open(wo.delivery_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (w.log_fd < 0) {
            std::fprintf(stderr, "ringmesh_node: %s: %s\n", wo.delivery_log.c_str(),
                         rm::errno_text(errno).c_str());
            return 2;
        }
    }
    auto node = rm::node::create(settings.node);
    if (!node) {
        rm::log::error("node", "{}", node.err().message());
        return 2;
    }
    std::string failure;
    rm::tools::node_metrics node_metrics(settings.node.shard_count);
    w.metrics = &node_metrics;
    if (auto started = (*node)->start([&](rm::shard& s) { install(s, w, settings, failure); });
        !started || !failure.empty()) {
        rm::log::error("node", "{}", failure.empty() ? started.err().message() : failure);
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
    rm::log::info("node", "{} listening on {} (cluster {}, {} shard(s), idle {}, transport {})",
                  settings.endpoint.node_id, settings.listen_text, settings.endpoint.cluster_id,
                  settings.node.shard_count, rm::to_string(settings.node.shard.idle.kind),
                  w.transport_name);

    // Run until a signal, the --seconds deadline, or (with --count) everything acknowledged.
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::duration<double>(wo.seconds > 0 ? wo.seconds : 1e9);
    // Sleeps until then: no tick (a shard that finishes sends SIGUSR1).
    int sig = -1;
    while (sig <= 0 && !w.finished.load() && std::chrono::steady_clock::now() < deadline) {
        const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(
            deadline - std::chrono::steady_clock::now());
        timespec wait{};
        rm::to_timespec(
            std::max<rm::time_ns>(0, std::min<rm::time_ns>(left.count(), 3600 * rm::ns_per_s)),
            wait);
        sig = sigtimedwait(&signals, nullptr, &wait);
        if (sig == SIGHUP) {
            reload_keyring(config_path, w);
            sig = -1;
        } else if (sig == SIGUSR1) {
            sig = -1;  // finished: the loop condition ends it
        }
    }
    // Stop generating work, let every peer acknowledge what was sent, then close.
    w.stop_sending.store(true);
    rm::shard& shard0 = (*node)->shard_at(0);
    if (w.gossip != nullptr) w.leave_requested.store(true);  // tell the cluster we go
    shard0.wake();  // a shard asleep in the kernel must see the flag now
    const auto drain_until = std::chrono::steady_clock::now() +
                             std::chrono::duration<double>(sig > 0 ? 2.0 : wo.drain_seconds);
    while (!w.drained.load() && std::chrono::steady_clock::now() < drain_until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        shard0.wake();
    }
    w.shutdown_requested.store(true);
    shard0.wake();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    // The report is taken on shard 0 itself, just before its loop ends; then stop() tears
    // the cluster member down there (its on_stop hook).
    std::atomic<bool> reported{false};
    (*node)->shard_at(0).on_stop([&] {
        report(w, settings.endpoint.node_id);
        print_endpoint_stats(*w.ep);
        if (w.gossip != nullptr) print_membership(*w.gossip);
        if (w.replication) w.replication->report(settings.endpoint.node_id);
        reported.store(true);
    });
    node_metrics.stop_serving();  // no scrape reads the shards while they stop
    (*node)->stop();
    if (w.log_fd >= 0) ::close(w.log_fd);
    return reported.load() ? 0 : 1;
}

}  // namespace
