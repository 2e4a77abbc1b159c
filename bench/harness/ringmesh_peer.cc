// ringmesh through its public API: a one-shard node per process, the endpoint's send() on a
// user stream for stream/rate (back-pressure honoured: a full window waits), and a closed
// loop of send() and an echo for ping-pong. TCP (a dialed peer) or UDP (a datagram peer).
// ringmesh-tcp-auth is ringmesh-tcp in security mode authenticated (transport/secure: the
// keyring handshake, then a tag on every record of up to 16 KiB); ringmesh-tls is ringmesh-tcp
// in security mode encrypted (TLS 1.3 with mutual certificates from one CA, a record per
// flush).
// ringmesh-tcp-scraped is ringmesh-tcp with each process serving its metrics over HTTP and a
// thread of its own scraping them every 100 ms, as Prometheus would: what observability costs.
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "bench/harness/harness.h"
#include "engine/messaging/endpoint.h"
#include "engine/node.h"
#include "transport/secure/cert_issuer.h"
#include "transport/secure/secure_transport.h"
#include "transport/select.h"
#include "transport/uring/uring_transport.h"
#ifdef RINGMESH_BENCH_SCRAPE
#include <curl/curl.h>

#include "engine/metrics/messaging_figures.h"
#include "engine/metrics/metrics_http.h"
#endif

namespace ringmesh::bench {
namespace {

constexpr std::uint32_t bench_stream = 16;
constexpr const char* receiver_id = "bench-recv";

std::optional<transport::secure::cert_issuer>& tls_ca_slot() {
    static std::optional<transport::secure::cert_issuer> ca;
    return ca;
}

const transport::secure::cert_issuer& tls_ca() {
    prepare_tls_ca();  // (already made before the fork: this only reads it)
    return *tls_ca_slot();
}

#ifdef RINGMESH_BENCH_SCRAPE
std::size_t discard(char*, std::size_t size, std::size_t n, void*) {
    return size * n;
}

/// Serves a shard's metrics on an ephemeral port and scrapes them every 100 ms from a thread
/// of the process, until destroyed.
class scraper {
  public:
    explicit scraper(metrics::shard_metrics& m) {
        auto http =
            metrics::metrics_http::start({"127.0.0.1:0", std::chrono::milliseconds(250)}, {&m});
        if (!http) return;
        http_ = std::move(http).value();
        thread_ = std::thread([this] {
            CURL* curl = curl_easy_init();
            const std::string url =
                "http://127.0.0.1:" + std::to_string(http_->port()) + "/metrics";
            curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
            curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
            curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 2000L);
            while (!stop_.load()) {
                if (curl_easy_perform(curl) == CURLE_OK) ++scrapes_;
                std::this_thread::sleep_for(std::chrono::milliseconds(100));  // paces the scrapes
            }
            curl_easy_cleanup(curl);
        });
    }
    ~scraper() {
        stop_.store(true);
        if (thread_.joinable()) thread_.join();
        http_.reset();
    }
    scraper(const scraper&) = delete;
    scraper& operator=(const scraper&) = delete;

  private:
    std::unique_ptr<metrics::metrics_http> http_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::uint64_t scrapes_ = 0;
};
#else
class scraper {};
#endif

/// One process's state; plain fields belong to its shard, atomics are read by main.
struct side {
    run_config config;
    std::unique_ptr<messaging::endpoint> ep;
    std::atomic<bool> finished{false};
    std::string failure;
    receive_tally tally;         // receiver
    std::vector<std::byte> msg;  // sender
    std::uint64_t seq = 0;
    time_ns start_ns = 0, end_ns = 0;
    bool end_queued = false;
    bool waiting_echo = false;
    time_ns ping_sent_ns = 0;
    latency_histogram rtt;
    int outstanding = 0;  // rpc
    std::uint64_t replies = 0;
    std::atomic<bool> connected{false};  // idle: the pair found each other
#ifdef RINGMESH_BENCH_SCRAPE
    std::unique_ptr<metrics::shard_metrics> metrics;  // ringmesh-tcp-scraped, on the shard
#endif
    std::unique_ptr<scraper> scrape;  // main's
};

double cpu_seconds() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

using installer = std::function<void(shard&, side&)>;

std::unique_ptr<node> start_node(side& s, const std::string& id, bool receiving,
                                 const installer& install) {
    node_config nc;
    nc.cores = {receiving ? s.config.receiver_core : s.config.sender_core};
    nc.shard.idle.kind = s.config.block ? idle_kind::block : idle_kind::busy_spin;
    auto n = node::create(nc);
    if (!n) {
        s.failure = n.err().message();
        return nullptr;
    }
    if (s.config.dpdk && receiving) remove_memif_files(s.config, true);  // a stale socket
    if (s.config.dpdk && !receiving && !wait_for_memif_server(s.config)) {
        s.failure = "the memif server never came up";
        return nullptr;
    }
    auto started = (*n)->start([&](shard& sh) {
        // DPDK: each side owns one end of a memif pair, with its own IPv4 on it.
        const std::string host = !s.config.dpdk ? "127.0.0.1"
                                 : receiving    ? "10.250.0.1"
                                                : "10.250.0.2";
        auto opened = transport::open_transport(
            s.config.dpdk ? transport::backend::dpdk : transport::backend::uring, s.config.dpdk,
            {memif_eal_args(s.config, receiving), "net_memif0", host}, {}, sh.id(), &sh);
        if (!opened) {
            s.failure = opened.err().message();
            return;
        }
        std::unique_ptr<transport::transport> t = std::move(opened->backend_transport);
        if (s.config.authenticated || s.config.encrypted) {
            // Both sides hold the same (fixed) key: the handshake and a tag per record.
            transport::secure::secure_settings ss;
            ss.identity = {"bench", id,
                           s.config.encrypted ? transport::secure::security_mode::encrypted
                                              : transport::secure::security_mode::authenticated};
            ss.keys = std::make_shared<transport::secure::key_store>(
                std::vector<transport::secure::key_bytes>{
                    transport::secure::key_bytes(32, std::byte{0x5a})});
            if (s.config.encrypted) {
                auto pem = tls_ca().issue(id);
                auto ctx =
                    pem ? transport::secure::tls_context::from_pem(*pem, id)
                        : result<std::shared_ptr<const transport::secure::tls_context>>(pem.err());
                if (!ctx) {
                    s.failure = ctx.err().message();
                    return;
                }
                ss.tls = std::make_shared<transport::secure::tls_credentials>(*ctx);
            }
            ss.owner = sh.id();
            auto wrapped = transport::secure::secure_transport::wrap(std::move(t), std::move(ss));
            if (!wrapped) {
                s.failure = wrapped.err().message();
                return;
            }
            t = std::move(wrapped).value();
        }
        messaging::endpoint_config ec;
        ec.node_id = id;
        ec.cluster_id = "bench";
        const int port = receiving ? receiver_port(s.config, s.config.receiver_index)
                         : s.config.what == scenario::fanin
                             ? fanin_sender_port(s.config, s.config.sender_index)
                             : s.config.port + 1;
        ec.listen = *transport::address::parse(host + ":" + std::to_string(port));
        for (int r = 0; !receiving && r < receiver_count(s.config); ++r) {
            const std::string there_host = s.config.dpdk ? "10.250.0.1" : "127.0.0.1";
            auto there = *transport::address::parse(there_host + ":" +
                                                    std::to_string(receiver_port(s.config, r)));
            (s.config.udp || s.config.dpdk ? ec.datagram_peers : ec.peers).push_back(there);
        }
        auto e = messaging::endpoint::create(sh, std::move(t), ec);
        if (!e) {
            s.failure = e.err().message();
            return;
        }
        s.ep = std::move(e).value();
        side* sp = &s;
#ifdef RINGMESH_BENCH_SCRAPE
        if (s.config.scraped) {
            s.metrics = std::make_unique<metrics::shard_metrics>(sh);
            messaging::endpoint* ep = s.ep.get();
            s.metrics->add_source(
                [ep](metrics::metric_sink& m) { metrics::write_messaging_figures(*ep, m); });
            sh.on_stop([sp] { sp->metrics.reset(); });
        }
#endif
        s.ep->on_peer_event([sp](std::string_view, messaging::peer_event event) {
            if (event == messaging::peer_event::connected) sp->connected.store(true);
        });
        install(sh, s);
    });
    if (!started || !s.failure.empty()) {
        if (s.failure.empty()) s.failure = started.err().message();
        (*n)->stop();
        return nullptr;
    }
#ifdef RINGMESH_BENCH_SCRAPE
    if (s.metrics) s.scrape = std::make_unique<scraper>(*s.metrics);
#endif
    return std::move(n).value();
}

// Waits (bounded) for the shard to say it is done, then stops the node.
void finish(node& n, side& s, double timeout_s) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (!s.finished.load() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    s.scrape.reset();  // no scrape reads the shard while it stops
    n.stop();
    detail::bind_thread_to_shard(&n.shard_at(0));  // the endpoint's buffers go home here
    s.ep.reset();
    detail::bind_thread_to_shard(nullptr);
}

// idle: once connected and settled, the CPU this process uses over `seconds`.
run_result measure_idle(node& n, side& s) {
    for (int i = 0; i < 5000 && !s.connected.load(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (!s.connected.load()) return run_result::failed("idle: the nodes never connected");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let the handshake settle
    const double cpu0 = cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(s.config.seconds));
    run_result r;
    r.ok = true;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.cpu_fraction = (cpu_seconds() - cpu0) / r.seconds;
    s.finished.store(true);
    finish(n, s, 1);
    return r;
}

run_result receiver(const run_config& c) {
    if (c.what == scenario::fanin) return ringmesh_fanin_receiver(c);
    side s;
    s.config = c;
    // The one-to-one scenarios' receiver is receiver_id; fan-out subscribers add their index.
    const std::string id = c.what == scenario::fanout
                               ? std::string(receiver_id) + "-" + std::to_string(c.receiver_index)
                               : std::string(receiver_id);
    auto n = start_node(s, id, true, [](shard&, side& me) {
        side* sp = &me;
        me.ep->subscribe("bench/**", [sp](const messaging::message& m) {
            sp->tally.on_message(m.bytes.data(), false);
            if (sp->tally.done) sp->finished.store(true);
        });
        me.ep->serve("echo", [sp](const messaging::message& m) {
            if (kind_of(m.bytes.data()) == msg_end) sp->finished.store(true);
            return messaging::rpc_reply{wire::RpcStatus::Ok, m.bytes, {}};
        });
        me.ep->on_stream(bench_stream, [sp](const messaging::message& m) {
            if (sp->config.what == scenario::pingpong) {
                sp->ep->send(m.peer, bench_stream, m.bytes);  // echo
                if (kind_of(m.bytes.data()) == msg_end) sp->finished.store(true);
                return;
            }
            sp->tally.on_message(m.bytes.data(), sp->config.what == scenario::rate);
            if (sp->tally.done) sp->finished.store(true);
        });
    });
    if (!n) return run_result::failed("ringmesh: " + s.failure);
    if (c.what == scenario::idle) return measure_idle(*n, s);
    finish(*n, s, c.seconds + 30);
    if (c.dpdk) remove_memif_files(c, true);
    if (c.what == scenario::pingpong || c.what == scenario::rpc) return {};
    return s.tally.result(c.what == scenario::rate);
}

std::size_t stream_step(side& s, time_ns now) {
    if (!s.ep->connected(receiver_id)) return 0;
    if (s.start_ns == 0) {
        s.start_ns = now;
        s.end_ns = now + static_cast<time_ns>(s.config.seconds * 1e9);
    }
    if (s.end_queued) {
        if (s.ep->unacked(receiver_id) == 0) s.finished.store(true);
        return 0;
    }
    const rate_schedule schedule{s.start_ns,
                                 s.config.rate_per_s > 0 ? 1e9 / s.config.rate_per_s : 0};
    std::size_t work = 0;
    const time_ns t = monotonic_clock::read();  // once per batch, as every sender here
    for (; work < static_cast<std::size_t>(batch_size); ++work) {
        if (t >= s.end_ns) {
            stamp(s.msg.data(), msg_end, s.seq, 0);
            s.end_queued =
                s.ep->send(receiver_id, bench_stream, s.msg) == messaging::outcome::accepted;
            break;
        }
        const time_ns due = schedule.due(s.seq);
        if (s.config.rate_per_s > 0 && due > t) break;
        stamp(s.msg.data(), msg_data, s.seq, s.config.rate_per_s > 0 ? due : t);
        if (s.ep->send(receiver_id, bench_stream, s.msg) != messaging::outcome::accepted) break;
        ++s.seq;
    }
    return work;
}

// fanout: publish to every subscriber once all of them subscribed; a message is published
// only when every subscriber's window has room, so none is skipped for anyone.
std::size_t fanout_step(side& s, time_ns) {
    constexpr std::string_view topic = "bench/fan";
    if (s.ep->subscribers(topic) < static_cast<std::size_t>(s.config.fanout)) return 0;
    if (s.start_ns == 0) {
        s.start_ns = monotonic_clock::read();
        s.end_ns = s.start_ns + static_cast<time_ns>(s.config.seconds * 1e9);
    }
    if (s.end_queued) {
        std::uint64_t unacked = 0;
        for (const auto& peer : s.ep->connected_peers())
            unacked += s.ep->unacked(peer);
        if (unacked == 0) s.finished.store(true);
        return 0;
    }
    std::size_t work = 0;
    for (; work < 512 && s.ep->publish_ready(topic); ++work) {
        const time_ns t = monotonic_clock::read();
        const bool last = t >= s.end_ns;
        stamp(s.msg.data(), last ? msg_end : msg_data, s.seq, t);
        // Counted only once the engine took it; a refusal no retry can cure ends the run.
        const messaging::outcome taken = s.ep->publish(topic, s.msg).status;
        if (taken != messaging::outcome::accepted) {
            if (!messaging::retryable(taken)) {
                std::fprintf(stderr, "ringmesh_peer: publish refused (%s); stopping\n",
                             messaging::to_string(taken));
                s.end_queued = true;
            }
            break;
        }
        ++s.seq;
        if (last) {
            s.end_queued = true;
            break;
        }
    }
    return work;
}

std::size_t ping_step(side& s, time_ns) {
    if (!s.ep->connected(receiver_id) || s.waiting_echo || s.end_queued) return 0;
    const time_ns now = monotonic_clock::read();
    if (s.start_ns == 0) {
        s.start_ns = now;
        s.end_ns = now + static_cast<time_ns>(s.config.seconds * 1e9);
    }
    const bool last = now >= s.end_ns;
    stamp(s.msg.data(), last ? msg_end : msg_data, s.seq, now);
    if (s.ep->send(receiver_id, bench_stream, s.msg) != messaging::outcome::accepted) return 0;
    s.ping_sent_ns = now;
    s.waiting_echo = true;
    s.end_queued = last;
    return 1;
}

std::size_t rpc_step(side& s, time_ns) {
    if (!s.ep->connected(receiver_id) || s.end_queued) return 0;
    const time_ns now = monotonic_clock::read();
    if (s.start_ns == 0) {
        s.start_ns = now;
        s.end_ns = now + static_cast<time_ns>(s.config.seconds * 1e9);
    }
    side* sp = &s;
    auto on_reply = [sp](const messaging::rpc_result& r) {
        --sp->outstanding;
        if (r.status != wire::RpcStatus::Ok || r.payload.size() < header_bytes) return;
        if (kind_of(r.payload.data()) == msg_end) {
            sp->finished.store(true);
            return;
        }
        sp->rtt.record(monotonic_clock::read() - sent_of(r.payload.data()));
        ++sp->replies;
    };
    std::size_t work = 0;
    if (now >= s.end_ns) {
        if (s.outstanding > 0) return 0;  // drain, then say goodbye
        stamp(s.msg.data(), msg_end, s.seq, now);
        if (s.ep->call(receiver_id, "echo", s.msg, 10 * ns_per_s, on_reply) ==
            messaging::outcome::accepted) {
            ++s.outstanding;
            s.end_queued = true;
        }
        return 1;
    }
    while (s.outstanding < rpc_window) {
        stamp(s.msg.data(), msg_data, s.seq, monotonic_clock::read());
        if (s.ep->call(receiver_id, "echo", s.msg, 10 * ns_per_s, on_reply) !=
            messaging::outcome::accepted) {
            break;
        }
        ++s.outstanding;
        ++s.seq;
        ++work;
    }
    return work;
}

run_result sender(const run_config& c) {
    side s;
    s.config = c;
    s.msg.assign(c.payload_bytes, std::byte{0});
    // fanin's publishers are named so that a 2-shard receiver holds one on each shard.
    const std::string id = c.what == scenario::fanin ? "bench-pub-" + std::to_string(c.sender_index)
                                                     : std::string("bench-send");
    auto n = start_node(s, id, false, [](shard& sh, side& me) {
        side* sp = &me;
        me.ep->on_stream(bench_stream, [sp](const messaging::message& m) {  // ping-pong echo
            const time_ns back = monotonic_clock::read();
            if (kind_of(m.bytes.data()) == msg_end) {
                sp->finished.store(true);
                return;
            }
            sp->rtt.record(back - sp->ping_sent_ns);
            ++sp->seq;
            sp->waiting_echo = false;
        });
        sh.add_poller(poll_step::protocol, [sp](time_ns now) -> std::size_t {
            switch (sp->config.what) {
                case scenario::pingpong:
                    return ping_step(*sp, now);
                case scenario::rpc:
                    return rpc_step(*sp, now);
                case scenario::idle:
                    return 0;
                case scenario::fanout:
                    return fanout_step(*sp, now);
                default:
                    return stream_step(*sp, now);
            }
        });
    });
    if (!n) return run_result::failed("ringmesh: " + s.failure);
    if (c.what == scenario::idle) return measure_idle(*n, s);
    finish(*n, s, c.seconds + 30);
    if (c.dpdk) remove_memif_files(c, false);
    run_result r;
    if (c.what == scenario::rpc) {
        r.ok = s.replies > 0;
        if (!r.ok) std::strcpy(r.error, "no reply");
        r.messages = s.replies;
        r.seconds = static_cast<double>(s.end_ns - s.start_ns) / 1e9;
        r.fill_latency(s.rtt);
    } else if (c.what == scenario::pingpong) {
        r.ok = s.seq > 0;
        if (!r.ok) std::strcpy(r.error, "no round trip completed");
        r.messages = s.seq;
        r.seconds = static_cast<double>(s.end_ns - s.start_ns) / 1e9;
        r.fill_latency(s.rtt);
    }
    return r;
}

bool supports_udp(const run_config& c, std::string* why) {
    // Larger messages are split into datagram-sized fragments, as many as one window holds.
    if (c.payload_bytes > std::size_t{512} << 10) {
        *why = "a message must fit one datagram window (1,024 fragments)";
        return false;
    }
    return true;
}
bool supports_tcp(const run_config&, std::string*) {
    return true;
}

bool supports_dpdk(const run_config& c, std::string* why) {
    if (c.what == scenario::fanout || c.what == scenario::idle) {
        *why = "the memif pair joins two processes";
        return false;
    }
    return supports_udp(c, why);
}

}  // namespace

void prepare_tls_ca() {
    if (!tls_ca_slot())
        tls_ca_slot().emplace(transport::secure::cert_issuer::create("bench-ca").value());
}

const system_roles ringmesh_tcp_roles{"ringmesh-tcp", receiver, sender, supports_tcp};
const system_roles ringmesh_udp_roles{"ringmesh-udp", receiver, sender, supports_udp};
const system_roles ringmesh_dpdk_roles{"ringmesh-dpdk", receiver, sender, supports_dpdk};

}  // namespace ringmesh::bench
