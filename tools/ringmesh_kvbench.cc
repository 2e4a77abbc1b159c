// ringmesh_kvbench — a load client for the replicated key-value service (engine/kv) that
// ringmesh_node serves with [replication], and (--publish-topic) for its replicated topics. N
// clients, one operation outstanding each, for a bounded time: gets, puts and appends over a key
// space, reported as throughput and latency percentiles per operation, with a progress line every
// second. The longest time no write succeeded is reported too: across a leader's failure it is the
// failover time clients see.
//
// With --summary FILE the figures are also written as "name value" lines (publish.count,
// publish.p50_ns, ..., longest_write_gap_ns), for the bench harness to read.
//
// With --final-read FILE every key is read once after the run (JSON lines: key, value,
// status), so a test can hold the history against the final state.
//
// With --history FILE every operation is written as one JSON object per line, for external
// linearizability checkers (Jepsen's Knossos or Elle, Porcupine):
//   {"op":"append","key":"k7","value":"3.41;","call":123,"return":456,"client":3,"status":"ok"}
// op: get, put or append; value: for a get the value observed ("" when absent); call and
// return: monotonic ns (return null when no reply came); client: one operation outstanding
// per client; status: ok, fail (certainly not applied) or unknown (a timed-out write).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/core/histogram.h"
#include "engine/kv/kv_client.h"
#include "engine/kv/kv_service.h"
#include "engine/membership/keyring.h"
#include "engine/messaging/endpoint.h"
#include "engine/node.h"
#include "engine/topics/topic_publisher.h"
#include "transport/secure/secure_transport.h"
#include "transport/uring/uring_transport.h"

namespace rm = ringmesh;

namespace {

struct options {
    std::string id;
    std::string cluster = "ringmesh";
    std::vector<std::string> servers;  // host:port
    int clients = 8;
    double seconds = 5;
    int keys = 100;
    int read_percent = 50;
    int append_percent = 25;  // of all operations; the rest are puts
    std::size_t value_bytes = 16;
    bool lease = false;
    std::string history;
    std::string publish_topic;  // publish to this replicated topic instead of key-value ops
    std::string final_read;     // after the run: every key read once, written here
    std::string summary;        // the figures as "name value" lines
    int attempt_timeout_ms = 500;
    int deadline_ms = 5000;
    std::uint32_t group = 1;             // the key-value group, at its method (kv::method_of_group)
    std::vector<std::string> key_texts;  // the cluster keyring (base64): mode authenticated
    std::string security;  // none, authenticated or encrypted; as resolve_security_mode
    rm::transport::secure::tls_files tls;  // encrypted: this client's certificate
};

struct history_line {
    const char* op;
    std::string key;
    std::string value;
    rm::time_ns call = 0;
    rm::time_ns ret = 0;  // 0: no reply
    int client = 0;
    rm::kv::kv_verdict verdict = rm::kv::kv_verdict::ok;
};

/// Shard 0's state; the atomics are read by the main thread for the progress line.
struct bench {
    options o;
    std::unique_ptr<rm::messaging::endpoint> endpoint;
    std::vector<std::unique_ptr<rm::kv::kv_client>> clients;
    std::vector<std::unique_ptr<rm::topics::topic_publisher>> publishers;
    std::mt19937_64 rng{std::random_device{}()};
    bool started = false;
    rm::time_ns started_at = 0, stop_at = 0;
    rm::latency_histogram get_ns, put_ns, append_ns, publish_ns;
    std::uint64_t failed = 0, unknown = 0;
    rm::time_ns last_write_ok = 0, longest_write_gap = 0;
    std::vector<history_line> history;
    std::atomic<std::uint64_t> done{0};
    std::atomic<int> open{0};
    std::atomic<bool> connected{false};
    std::atomic<bool> finished{false};
    std::uint64_t counter = 0;
    // --final-read: every key's value after the run (empty optional: the read failed).
    bool final_started = false;
    std::vector<std::optional<std::string>> finals;
    int finals_open = 0;
};

/// After the timed run: every key read once (linearizably), then the run is finished.
void read_finals(bench& b) {
    b.final_started = true;
    b.finals.assign(static_cast<std::size_t>(b.o.keys), std::nullopt);
    b.finals_open = b.o.keys;
    for (int k = 0; k < b.o.keys; ++k) {
        rm::kv::kv_client& client = *b.clients[static_cast<std::size_t>(k % b.o.clients)];
        client.get("k" + std::to_string(k), [&b, k](const rm::kv::kv_outcome& o) {
            if (o.verdict == rm::kv::kv_verdict::ok) {
                b.finals[static_cast<std::size_t>(k)] =
                    std::string(reinterpret_cast<const char*>(o.value.data()), o.value.size());
            }
            if (--b.finals_open == 0) b.finished.store(true);
        });
    }
}

std::string token(bench& b, int client) {
    std::string v = std::to_string(client) + "." + std::to_string(++b.counter) + ";";
    if (v.size() < b.o.value_bytes) v.insert(0, b.o.value_bytes - v.size(), '_');
    return v;
}

void next(bench& b, int c);

void complete(bench& b, int c, history_line line, const rm::kv::kv_outcome& o) {
    const rm::time_ns now = rm::monotonic_clock::read();
    line.verdict = o.verdict;
    line.ret = o.verdict == rm::kv::kv_verdict::unknown ? 0 : now;
    const bool write = std::string_view(line.op) != "get";
    if (std::string_view(line.op) == "get" && o.verdict == rm::kv::kv_verdict::ok)
        line.value.assign(reinterpret_cast<const char*>(o.value.data()), o.value.size());
    if (o.verdict == rm::kv::kv_verdict::ok) {
        const std::string_view op(line.op);
        rm::latency_histogram& h = !write            ? b.get_ns
                                   : op == "put"     ? b.put_ns
                                   : op == "publish" ? b.publish_ns
                                                     : b.append_ns;
        h.record(now - line.call);
        if (write) {
            b.longest_write_gap = std::max(b.longest_write_gap, now - b.last_write_ok);
            b.last_write_ok = now;
        }
    } else if (o.verdict == rm::kv::kv_verdict::fail) {
        ++b.failed;
    } else {
        ++b.unknown;
    }
    if (!b.o.history.empty()) b.history.push_back(std::move(line));
    b.done.fetch_add(1, std::memory_order_relaxed);
    b.open.fetch_sub(1, std::memory_order_relaxed);
    next(b, c);
}

void next(bench& b, int c) {
    const rm::time_ns now = rm::monotonic_clock::read();
    if (now >= b.stop_at) {
        if (b.open.load() != 0 || b.final_started) return;
        if (b.o.final_read.empty()) {
            b.finished.store(true);
        } else {
            read_finals(b);
        }
        return;
    }
    b.open.fetch_add(1, std::memory_order_relaxed);
    if (!b.o.publish_topic.empty()) {
        history_line line{"publish", b.o.publish_topic,     token(b, c), now, 0,
                          c,         rm::kv::kv_verdict::ok};
        const auto bytes = std::as_bytes(std::span(line.value.data(), line.value.size()));
        b.publishers[static_cast<std::size_t>(c)]->publish(
            b.o.publish_topic, bytes, [&b, c, line](const rm::topics::publish_outcome& o) {
                rm::kv::kv_outcome as_kv;
                as_kv.verdict = o.verdict;
                as_kv.index = o.index;
                complete(b, c, line, as_kv);
            });
        return;
    }
    rm::kv::kv_client& client = *b.clients[static_cast<std::size_t>(c)];
    const std::string key = "k" + std::to_string(b.rng() % static_cast<std::uint64_t>(b.o.keys));
    const int dice = static_cast<int>(b.rng() % 100);
    history_line line{"get", key, {}, now, 0, c, rm::kv::kv_verdict::ok};
    auto done = [&b, c](history_line l) {
        return [&b, c, l = std::move(l)](const rm::kv::kv_outcome& o) { complete(b, c, l, o); };
    };
    if (dice < b.o.read_percent) {
        client.get(key, done(line), b.o.lease);
        return;
    }
    line.value = token(b, c);
    const auto bytes = std::as_bytes(std::span(line.value.data(), line.value.size()));
    if (dice < b.o.read_percent + b.o.append_percent) {
        line.op = "append";
        client.append(key, bytes, done(line));
    } else {
        line.op = "put";
        client.put(key, bytes, done(line));
    }
}

void json_string(std::FILE* f, const std::string& s) {
    std::fputc('"', f);
    for (char ch : s) {
        if (ch == '"' || ch == '\\') std::fputc('\\', f);
        if (static_cast<unsigned char>(ch) < 0x20) {
            std::fprintf(f, "\\u%04x", ch);
            continue;
        }
        std::fputc(ch, f);
    }
    std::fputc('"', f);
}

bool write_history(const bench& b) {
    std::FILE* f = std::fopen(b.o.history.c_str(), "w");
    if (f == nullptr) return false;
    for (const history_line& l : b.history) {
        std::fprintf(f, "{\"op\":\"%s\",\"key\":", l.op);
        json_string(f, l.key);
        std::fputs(",\"value\":", f);
        json_string(f, l.value);
        std::fprintf(f, ",\"call\":%lld,\"return\":", static_cast<long long>(l.call));
        if (l.ret == 0) {
            std::fputs("null", f);
        } else {
            std::fprintf(f, "%lld", static_cast<long long>(l.ret));
        }
        std::fprintf(f, ",\"client\":%d,\"status\":\"%s\"}\n", l.client,
                     rm::cluster::to_string(l.verdict));
    }
    return std::fclose(f) == 0;
}

bool write_summary(const bench& b, double seconds) {
    std::FILE* f = std::fopen(b.o.summary.c_str(), "w");
    if (f == nullptr) return false;
    std::fprintf(f, "clients %d\nseconds %.6f\n", b.o.clients, seconds);
    for (auto [op, h] : {std::pair{"get", &b.get_ns}, std::pair{"put", &b.put_ns},
                         std::pair{"append", &b.append_ns}, std::pair{"publish", &b.publish_ns}}) {
        std::fprintf(f, "%s.count %llu\n", op, static_cast<unsigned long long>(h->count()));
        if (h->count() == 0) continue;
        std::fprintf(
            f, "%s.p50_ns %lld\n%s.p99_ns %lld\n%s.p999_ns %lld\n%s.max_ns %lld\n", op,
            static_cast<long long>(h->quantile(0.5)), op, static_cast<long long>(h->quantile(0.99)),
            op, static_cast<long long>(h->quantile(0.999)), op, static_cast<long long>(h->max()));
    }
    std::fprintf(f, "failed %llu\nunknown %llu\nlongest_write_gap_ns %lld\n",
                 static_cast<unsigned long long>(b.failed),
                 static_cast<unsigned long long>(b.unknown),
                 static_cast<long long>(b.longest_write_gap));
    return std::fclose(f) == 0;
}

void print_latency(const char* op, const rm::latency_histogram& h, double seconds) {
    if (h.count() == 0) return;
    std::printf(
        "  %-6s %9llu ok  %9.0f ops/s   p50 %7.1f us  p99 %8.1f us  p99.9 %8.1f us  max %8.1f us\n",
        op, static_cast<unsigned long long>(h.count()), static_cast<double>(h.count()) / seconds,
        static_cast<double>(h.quantile(0.50)) / 1e3, static_cast<double>(h.quantile(0.99)) / 1e3,
        static_cast<double>(h.quantile(0.999)) / 1e3, static_cast<double>(h.max()) / 1e3);
}

int run(int argc, char** argv) {
    CLI::App app{"ringmesh key-value load client"};
    options o;
    app.add_option("--server", o.servers, "a node's host:port; repeat for each")->required();
    app.add_option("--id", o.id, "this client's node id (default kvbench-PID)");
    app.add_option("--cluster", o.cluster, "cluster id");
    app.add_option("--key", o.key_texts, "cluster key, base64, to prove this client; repeat");
    app.add_option("--security", o.security,
                   "none, authenticated or encrypted (default: encrypted with certificates, "
                   "authenticated with a key); as the nodes run");
    app.add_option("--tls-ca", o.tls.ca_file, "CA certificate(s) of the cluster, PEM");
    app.add_option("--tls-cert", o.tls.cert_file,
                   "this client's certificate, PEM; it must name --id");
    app.add_option("--tls-key", o.tls.key_file, "this client's private key, PEM");
    app.add_option("--group", o.group, "the key-value group to drive (1: method \"kv\")")
        ->check(CLI::Range(1, 65535));
    app.add_option("--clients", o.clients, "concurrent clients")->check(CLI::Range(1, 4096));
    app.add_option("--seconds", o.seconds, "how long to run")->check(CLI::Range(0.1, 3600.0));
    app.add_option("--keys", o.keys, "key space")->check(CLI::Range(1, 10'000'000));
    app.add_option("--read-percent", o.read_percent, "gets, in % of operations")
        ->check(CLI::Range(0, 100));
    app.add_option("--append-percent", o.append_percent, "appends, in % (the rest: puts)")
        ->check(CLI::Range(0, 100));
    app.add_option("--value-bytes", o.value_bytes, "bytes per put or append")
        ->check(CLI::Range(8, 64 * 1024));
    app.add_flag("--lease", o.lease, "gets are lease reads (no read index round)");
    app.add_option("--history", o.history, "write every operation here, one JSON object a line");
    app.add_option("--publish-topic", o.publish_topic,
                   "publish to this replicated topic (the nodes' topic group) instead");
    app.add_option("--final-read", o.final_read,
                   "after the run, read every key once and write them here (JSON lines)");
    app.add_option("--summary", o.summary, "write the figures here as \"name value\" lines");
    app.add_option("--attempt-timeout-ms", o.attempt_timeout_ms, "one attempt's deadline");
    app.add_option("--deadline-ms", o.deadline_ms, "one operation's deadline, retries included");
    CLI11_PARSE(app, argc, argv);
    if (o.read_percent + o.append_percent > 100) {
        std::fprintf(stderr, "ringmesh_kvbench: --read-percent + --append-percent over 100\n");
        return 2;
    }
    if (o.id.empty()) o.id = "kvbench-" + std::to_string(::getpid());

    // The same rule as the nodes': encrypted with certificates, authenticated with a key,
    // `none` only when asked for.
    std::vector<rm::transport::secure::key_bytes> keys;
    for (const std::string& text : o.key_texts) {
        auto k = rm::membership::keyring::parse_key(text);
        if (!k) {
            std::fprintf(stderr, "ringmesh_kvbench: --key: %s\n", k.err().message().c_str());
            return 2;
        }
        keys.push_back(std::move(k).value());
    }
    const auto mode =
        rm::transport::secure::resolve_security_mode(o.security, !keys.empty(), o.tls.complete());
    if (!mode) {
        std::fprintf(stderr, "ringmesh_kvbench: %s (as the nodes run)\n",
                     mode.err().message().c_str());
        return 2;
    }
    auto key_store = std::make_shared<rm::transport::secure::key_store>(keys);
    std::shared_ptr<rm::transport::secure::tls_credentials> tls;
    if (*mode == rm::transport::secure::security_mode::encrypted) {
        auto loaded = rm::transport::secure::tls_context::load(o.tls, o.id);
        if (!loaded) {
            std::fprintf(stderr, "ringmesh_kvbench: %s\n", loaded.err().message().c_str());
            return 2;
        }
        tls = std::make_shared<rm::transport::secure::tls_credentials>(*loaded);
    }
    rm::node_config nc;
    nc.pin_threads = false;
    auto node = rm::node::create(nc);
    if (!node) {
        std::fprintf(stderr, "ringmesh_kvbench: %s\n", node.err().message().c_str());
        return 2;
    }
    bench b;
    b.o = o;
    std::string failure;
    auto started = (*node)->start([&](rm::shard& s) {
        auto t = rm::transport::uring_transport::create(rm::transport::uring_config{}, s.id());
        if (!t) {
            failure = t.err().message();
            return;
        }
        rm::messaging::endpoint_config ec;
        ec.cluster_id = o.cluster;
        ec.node_id = o.id;
        std::unique_ptr<rm::transport::transport> transport = std::move(t).value();
        if (*mode != rm::transport::secure::security_mode::none) {
            rm::transport::secure::secure_settings ss;
            ss.identity = {o.cluster, o.id, *mode};
            ss.keys = key_store;
            ss.tls = tls;
            ss.owner = s.id();
            auto wrapped =
                rm::transport::secure::secure_transport::wrap(std::move(transport), std::move(ss));
            if (!wrapped) {
                failure = wrapped.err().message();
                return;
            }
            transport = std::move(wrapped).value();
        }
        for (const std::string& server : o.servers) {
            auto a = rm::transport::address::parse(server);
            if (!a) {
                failure = "--server " + server + ": " + a.err().message();
                return;
            }
            ec.peers.push_back(*a);
        }
        auto e = rm::messaging::endpoint::create(s, std::move(transport), std::move(ec));
        if (!e) {
            failure = e.err().message();
            return;
        }
        b.endpoint = std::move(e).value();
        s.on_stop([&b] {
            b.publishers.clear();
            b.clients.clear();
            b.endpoint->shutdown();
            b.endpoint.reset();
        });
        // Starts once every server is connected; their names come from their handshakes.
        s.add_poller(rm::poll_step::protocol, [&b](rm::time_ns) -> std::size_t {
            if (b.started) return 0;
            const std::vector<std::string> peers = b.endpoint->connected_peers();
            if (peers.size() < b.o.servers.size()) return 0;
            b.started = true;
            b.connected.store(true);
            rm::cluster::leader_caller_config calls;
            calls.servers = peers;
            calls.attempt_timeout = b.o.attempt_timeout_ms * rm::ns_per_ms;
            calls.deadline = b.o.deadline_ms * rm::ns_per_ms;
            rm::cluster::leader_caller_config kv_calls = calls;
            kv_calls.method = rm::kv::method_of_group(b.o.group);
            for (int c = 0; c < b.o.clients; ++c)
                b.clients.push_back(std::make_unique<rm::kv::kv_client>(
                    *b.endpoint, rm::kv::kv_client_config{kv_calls, 0}));
            rm::topics::topic_publisher_config pc;
            pc.calls = calls;
            for (int c = 0; c < b.o.clients && !b.o.publish_topic.empty(); ++c)
                b.publishers.push_back(
                    std::make_unique<rm::topics::topic_publisher>(*b.endpoint, pc));
            b.started_at = rm::monotonic_clock::read();
            b.last_write_ok = b.started_at;
            b.stop_at = b.started_at + static_cast<rm::time_ns>(b.o.seconds * 1e9);
            for (int c = 0; c < b.o.clients; ++c)
                next(b, c);
            return 1;
        });
    });
    if (!started || !failure.empty()) {
        std::fprintf(stderr, "ringmesh_kvbench: %s\n",
                     failure.empty() ? started.err().message().c_str() : failure.c_str());
        (*node)->stop();
        return 1;
    }
    // Progress once a second, until the clients are done (or connecting takes too long).
    const auto connect_by = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    std::uint64_t last = 0;
    while (!b.finished.load()) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        if (!b.connected.load()) {
            if (std::chrono::steady_clock::now() > connect_by) {
                std::fprintf(stderr, "ringmesh_kvbench: not connected to every --server in 10 s\n");
                (*node)->stop();
                return 1;
            }
            continue;
        }
        const std::uint64_t done = b.done.load();
        std::fprintf(stderr, "\rkvbench: %llu operations, %llu/s, %d open   ",
                     static_cast<unsigned long long>(done),
                     static_cast<unsigned long long>(done - last), b.open.load());
        last = done;
    }
    std::fprintf(stderr, "\n");
    (*node)->stop();
    const double seconds = static_cast<double>(b.stop_at - b.started_at) / 1e9;
    if (o.publish_topic.empty()) {
        std::printf(
            "kvbench: %d clients, %.1f s, %d keys, %d%% gets%s, %d%% appends, %zu-byte values\n",
            o.clients, seconds, o.keys, o.read_percent, o.lease ? " (lease)" : "", o.append_percent,
            o.value_bytes);
    } else {
        std::printf(
            "kvbench: %d publishers, %.1f s, replicated topic %s, %zu-byte messages, "
            "each awaiting its commit\n",
            o.clients, seconds, o.publish_topic.c_str(), o.value_bytes);
    }
    print_latency("get", b.get_ns, seconds);
    print_latency("put", b.put_ns, seconds);
    print_latency("append", b.append_ns, seconds);
    print_latency("publish", b.publish_ns, seconds);
    std::printf("  failed %llu, unknown %llu; longest time without a successful write %.1f ms\n",
                static_cast<unsigned long long>(b.failed),
                static_cast<unsigned long long>(b.unknown),
                static_cast<double>(b.longest_write_gap) / 1e6);
    if (!o.summary.empty() && !write_summary(b, seconds)) {
        std::fprintf(stderr, "ringmesh_kvbench: cannot write %s\n", o.summary.c_str());
        return 1;
    }
    if (!o.history.empty()) {
        if (!write_history(b)) {
            std::fprintf(stderr, "ringmesh_kvbench: cannot write %s\n", o.history.c_str());
            return 1;
        }
        std::printf("  history: %zu operations in %s\n", b.history.size(), o.history.c_str());
    }
    if (!o.final_read.empty()) {
        std::FILE* f = std::fopen(o.final_read.c_str(), "w");
        if (f == nullptr) {
            std::fprintf(stderr, "ringmesh_kvbench: cannot write %s\n", o.final_read.c_str());
            return 1;
        }
        std::size_t unread = 0;
        for (int k = 0; k < o.keys; ++k) {
            const auto& v = b.finals[static_cast<std::size_t>(k)];
            unread += v ? 0 : 1;
            std::fprintf(f, "{\"key\":\"k%d\",\"value\":", k);
            json_string(f, v.value_or(""));
            std::fprintf(f, ",\"status\":\"%s\"}\n", v ? "ok" : "fail");
        }
        std::fclose(f);
        std::printf("  final read: %d keys, %zu unread, in %s\n", o.keys, unread,
                    o.final_read.c_str());
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ringmesh_kvbench: %s\n", e.what());
        return 1;
    }
}
