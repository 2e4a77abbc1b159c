// ringmesh_bench — throughput and latency of ringmesh next to ZeroMQ and the raw kernel floor,
// measured in one run: systems alternate (A/B/A/B) within each repetition, every figure is
// the median of the repetitions, and ratios are printed against ZeroMQ and the floor.
// Writes a JSON file with every run and an SVG chart (throughput bars, latency spectrum).
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "bench/harness/harness.h"
#include "bench/replicate/child_process.h"
#ifdef RINGMESH_BENCH_REPLICATE
#include "bench/replicate/replicate.h"
#endif

namespace rb = ringmesh::bench;

namespace ringmesh::bench {
void pin_to_core(int core) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(core, &set);
    ::sched_setaffinity(0, sizeof set, &set);
}
}  // namespace ringmesh::bench

namespace {

const char* name_of(rb::scenario s) {
    switch (s) {
        case rb::scenario::stream:
            return "stream";
        case rb::scenario::pingpong:
            return "pingpong";
        case rb::scenario::rate:
            return "rate";
        case rb::scenario::rpc:
            return "rpc";
        case rb::scenario::idle:
            return "idle";
        case rb::scenario::fanout:
            return "fanout";
        case rb::scenario::fanin:
            return "fanin";
    }
    return "?";
}

// Runs the sides as pinned child processes (one sender; one receiver, or `fanout` of them);
// the measuring sides write their results to a pipe. Every wait is bounded and a side that
// does not exit is ended by its PID.
rb::run_result run_pair(const rb::system_roles& sys, const rb::run_config& c) {
    int fds[2];
    if (::pipe(fds) != 0) return rb::run_result::failed("pipe");
    // stream/rate/fanout: the receivers measure; pingpong/rpc: the client; idle: both (CPU).
    const bool receiver_measures = c.what != rb::scenario::pingpong && c.what != rb::scenario::rpc;
    const bool both_measure = c.what == rb::scenario::idle;
    auto spawn = [&](bool receiving, int index) {
        const pid_t pid = ::fork();
        if (pid == 0) {
            ::close(fds[0]);
            rb::run_config mine = c;
            (receiving ? mine.receiver_index : mine.sender_index) = index;
            rb::pin_to_core(receiving ? c.receiver_core : c.sender_core);
            const rb::run_result r = receiving ? sys.receiver(mine) : sys.sender(mine);
            if (both_measure || receiving == receiver_measures) {
                [[maybe_unused]] ssize_t n = ::write(fds[1], &r, sizeof r);
            }
            ::_exit(0);
        }
        return pid;
    };
    const int receivers = rb::receiver_count(c);
    std::vector<pid_t> children;
    children.reserve(static_cast<std::size_t>(receivers) + 1);
    for (int i = 0; i < receivers; ++i)
        children.push_back(spawn(true, i));
    for (int i = 0; i < rb::sender_count(c); ++i)
        children.push_back(spawn(false, i));
    ::close(fds[1]);
    const int reports = both_measure ? 2 : (receiver_measures ? receivers : 1);
    rb::run_result result = rb::run_result::failed("no result (a side crashed or hung)");
    pollfd pfd{fds[0], POLLIN, 0};
    const int timeout_ms = static_cast<int>((c.seconds + 40) * 1000);  // bounded: never hangs
    for (int got = 0; got < reports; ++got) {
        rb::run_result r;
        if (::poll(&pfd, 1, timeout_ms) != 1 ||
            ::read(fds[0], &r, sizeof r) != static_cast<ssize_t>(sizeof r)) {
            result = rb::run_result::failed("no result (a side crashed or hung)");
            break;
        }
        if (got == 0) {
            result = r;
            result.slowest_per_second = r.per_second();
        } else {  // idle: CPU adds up; fanout: deliveries add up, the slowest subscriber counts
            result.ok = result.ok && r.ok;
            result.cpu_fraction += r.cpu_fraction;
            result.messages += r.messages;
            result.seconds = std::max(result.seconds, r.seconds);
            result.slowest_per_second = std::min(result.slowest_per_second, r.per_second());
        }
    }
    ::close(fds[0]);
    for (pid_t pid : children) {
        for (int i = 0; i < 500 && ::waitpid(pid, nullptr, WNOHANG) == 0; ++i)
            ::usleep(10'000);
        if (::waitpid(pid, nullptr, WNOHANG) == 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    }
    return result;
}

struct sample {
    std::string system;
    rb::scenario what;
    std::size_t payload;
    double rate;  // offered (rate scenario)
    int repetition;
    rb::run_result r;
};

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

struct key {
    std::string system;
    rb::scenario what;
    std::size_t payload;
    double rate;
    bool operator<(const key& o) const {
        return std::tie(system, what, payload, rate) <
               std::tie(o.system, o.what, o.payload, o.rate);
    }
};

struct summary {
    bool ok = false;
    double msgs_per_s = 0;
    double cpu_fraction = 0;
    double slowest_per_s = 0;
    std::array<double, 6> latency_us{};
};

std::map<key, summary> summarize(const std::vector<sample>& samples) {
    std::map<key, std::vector<const sample*>> groups;
    for (const auto& s : samples)
        groups[{s.system, s.what, s.payload, s.rate}].push_back(&s);
    std::map<key, summary> out;
    for (const auto& [k, g] : groups) {
        summary sm;
        std::vector<double> rates, cpu, slowest;
        std::array<std::vector<double>, 6> lat;
        for (const sample* s : g) {
            if (!s->r.ok) continue;
            rates.push_back(s->r.per_second());
            cpu.push_back(s->r.cpu_fraction);
            slowest.push_back(s->r.slowest_per_second);
            for (std::size_t i = 0; i < 6; ++i)
                lat[i].push_back(static_cast<double>(s->r.latency_ns[i]) / 1e3);
        }
        sm.ok = !rates.empty();
        sm.msgs_per_s = median(rates);
        sm.cpu_fraction = median(cpu);
        sm.slowest_per_s = median(slowest);
        for (std::size_t i = 0; i < 6; ++i)
            sm.latency_us[i] = median(lat[i]);
        out[k] = sm;
    }
    return out;
}

std::string human_rate(double v) {
    char buf[32];
    if (v >= 1e6)
        std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
    else if (v >= 1e3)
        std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
    else
        std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
}

void print_tables(const std::map<key, summary>& sums, const std::vector<std::string>& systems) {
    std::map<std::pair<rb::scenario, std::size_t>, bool> rows;
    for (const auto& [k, s] : sums) {
        if (k.what != rb::scenario::rate) rows[{k.what, k.payload}] = true;
    }
    for (rb::scenario what : {rb::scenario::stream, rb::scenario::pingpong}) {
        if (std::none_of(rows.begin(), rows.end(),
                         [what](const auto& row) { return row.first.first == what; })) {
            continue;  // not run
        }
        std::printf("\n%s (%s)\n%-8s", name_of(what),
                    what == rb::scenario::stream ? "messages/s, median"
                                                 : "round trip p50 / p99 / p99.9 us, median",
                    "payload");
        for (const auto& sys : systems)
            std::printf(" %22s", sys.c_str());
        std::printf("   ringmesh-tcp against the others\n");
        for (const auto& [row, _] : rows) {
            if (row.first != what) continue;
            std::printf("%-8zu", row.second);
            for (const auto& sys : systems) {
                auto it = sums.find({sys, what, row.second, 0});
                if (it == sums.end() || !it->second.ok) {
                    std::printf(" %22s", "n/a");
                } else if (what == rb::scenario::stream) {
                    std::printf(" %22s", human_rate(it->second.msgs_per_s).c_str());
                } else {
                    char cell[48];
                    std::snprintf(cell, sizeof cell, "%.1f / %.1f / %.1f", it->second.latency_us[0],
                                  it->second.latency_us[2], it->second.latency_us[3]);
                    std::printf(" %22s", cell);
                }
            }
            const std::size_t payload = row.second;  // (a lambda cannot capture a binding)
            auto get = [&](const std::string& sys) { return sums.find({sys, what, payload, 0}); };
            // ringmesh-tcp against each peer present in this run.
            auto rm = get("ringmesh-tcp");
            const auto have = [&](auto it) { return it != sums.end() && it->second.ok; };
            if (have(rm)) {
                const char* sep = "   ";
                for (const char* peer : {"zmq", "nats", "raw", "raw-uring"}) {
                    auto other = get(peer);
                    if (!have(other)) continue;
                    if (what == rb::scenario::stream) {
                        std::printf("%s%.2fx %s", sep,
                                    rm->second.msgs_per_s / other->second.msgs_per_s, peer);
                    } else {
                        std::printf("%sp50 %.2fx %s", sep,
                                    rm->second.latency_us[0] / other->second.latency_us[0], peer);
                    }
                    sep = ", ";
                }
                if (auto raw = get("raw"); what == rb::scenario::pingpong && have(raw)) {
                    std::printf("; p99.9 %.2fx raw",
                                rm->second.latency_us[3] / raw->second.latency_us[3]);
                }
            }
            // Authenticated (a tag per record) and encrypted (TLS) against plain, and against
            // ZeroMQ's encryption.
            for (const auto& [secured, label, plain_name] :
                 {std::tuple{"ringmesh-tcp-auth", "auth", "ringmesh-tcp"},
                  std::tuple{"ringmesh-tls", "tls", "ringmesh-tcp"},
                  std::tuple{"ringmesh-udp-sealed", "sealed udp", "ringmesh-udp"}}) {
                auto au = get(secured);
                auto plain = get(plain_name);
                if (!have(plain) || !have(au)) continue;
                const char* base = plain_name == std::string("ringmesh-tcp") ? "tcp" : "udp";
                auto cv = get("zmq-curve");
                if (what == rb::scenario::stream) {
                    std::printf("   %s %.2fx %s", label,
                                au->second.msgs_per_s / plain->second.msgs_per_s, base);
                    if (have(cv))
                        std::printf(", %.2fx zmq-curve",
                                    au->second.msgs_per_s / cv->second.msgs_per_s);
                } else {
                    std::printf("   %s p50 %.2fx %s", label,
                                au->second.latency_us[0] / plain->second.latency_us[0], base);
                }
            }
            // The same with its metrics scraped every 100 ms: what observability costs.
            if (auto sc = get("ringmesh-tcp-scraped"); have(rm) && have(sc)) {
                if (what == rb::scenario::stream) {
                    std::printf("   scraped %.3fx", sc->second.msgs_per_s / rm->second.msgs_per_s);
                } else {
                    std::printf("   scraped p50 %.3fx",
                                sc->second.latency_us[0] / rm->second.latency_us[0]);
                }
            }
            // DPDK over memif, next to ringmesh over io_uring TCP and the raw memif floor.
            auto dp = get("ringmesh-dpdk"), rd = get("raw-dpdk");
            if (dp != sums.end() && rm != sums.end() && dp->second.ok && rm->second.ok) {
                const bool floor = rd != sums.end() && rd->second.ok;
                if (what == rb::scenario::stream) {
                    std::printf("   dpdk %.2fx tcp", dp->second.msgs_per_s / rm->second.msgs_per_s);
                    if (floor) {
                        std::printf(", %.2fx raw-dpdk",
                                    dp->second.msgs_per_s / rd->second.msgs_per_s);
                    }
                } else {
                    std::printf("   dpdk p50 %.2fx tcp",
                                dp->second.latency_us[0] / rm->second.latency_us[0]);
                    if (floor) {
                        std::printf(", %.2fx raw-dpdk",
                                    dp->second.latency_us[0] / rd->second.latency_us[0]);
                    }
                }
            }
            std::printf("\n");
        }
    }
    bool any_fanout = false;
    for (const auto& [k, s] : sums)
        any_fanout |= k.what == rb::scenario::fanout;
    if (any_fanout) {
        std::printf("\nfanout (1 publisher -> subscribers on one core; messages/s, median)\n");
        std::printf("%-20s %8s %18s %18s\n", "system", "payload", "slowest subscriber",
                    "all deliveries");
        for (const auto& [k, s] : sums) {
            if (k.what != rb::scenario::fanout) continue;
            if (!s.ok) {
                std::printf("%-20s %8zu %18s\n", k.system.c_str(), k.payload, "n/a");
                continue;
            }
            std::printf("%-20s %8zu %18s %18s\n", k.system.c_str(), k.payload,
                        human_rate(s.slowest_per_s).c_str(), human_rate(s.msgs_per_s).c_str());
        }
    }
    bool any_fanin = false;
    for (const auto& [k, s] : sums)
        any_fanin |= k.what == rb::scenario::fanin;
    if (any_fanin) {
        std::printf(
            "\nfanin (2 publisher processes on core 0 -> one node; its shards on cores 1, 0; "
            "messages/s received, median)\n");
        std::printf("%-36s %8s %14s %10s\n", "receiving node", "payload", "messages/s", "ratio");
        double one_shard = 0;
        for (const auto& [k, s] : sums) {
            if (k.what != rb::scenario::fanin) continue;
            if (!s.ok) {
                std::printf("%-36s %8zu %14s\n", k.system.c_str(), k.payload, "n/a");
                continue;
            }
            if (one_shard == 0) one_shard = s.msgs_per_s;  // the 1-shard row sorts first
            std::printf("%-36s %8zu %14s %9.2fx\n", k.system.c_str(), k.payload,
                        human_rate(s.msgs_per_s).c_str(), s.msgs_per_s / one_shard);
        }
    }
    bool any_rpc = false;
    for (const auto& [k, s] : sums)
        any_rpc |= k.what == rb::scenario::rpc;
    if (any_rpc) {
        std::printf("\nrpc (%d requests outstanding; calls/s and round trip us, median)\n",
                    rb::rpc_window);
        std::printf("%-20s %8s %12s %10s %10s %10s\n", "system", "payload", "calls/s", "p50", "p99",
                    "p99.9");
        for (const auto& [k, s] : sums) {
            if (k.what != rb::scenario::rpc) continue;
            if (!s.ok) {
                std::printf("%-20s %8zu %12s\n", k.system.c_str(), k.payload, "n/a");
                continue;
            }
            std::printf("%-20s %8zu %12s %10.1f %10.1f %10.1f\n", k.system.c_str(), k.payload,
                        human_rate(s.msgs_per_s).c_str(), s.latency_us[0], s.latency_us[2],
                        s.latency_us[3]);
        }
    }
    for (const auto& [k, s] : sums) {
        if (k.what == rb::scenario::idle && s.ok) {
            std::printf(
                "\nidle: a connected 2-node %s cluster with the block strategy uses %.2f %% "
                "of one core (both processes, median)\n",
                k.system.c_str(), 100 * s.cpu_fraction);
        }
    }
    bool any_rate = false;
    for (const auto& [k, s] : sums)
        any_rate |= k.what == rb::scenario::rate;
    if (!any_rate) return;
    std::printf("\nrate (open loop, one-way latency from the intended send time, us, median)\n");
    std::printf("%-14s %10s %10s %10s %10s %10s %10s\n", "system", "offered/s", "p50", "p99",
                "p99.9", "p99.99", "max");
    for (const auto& [k, s] : sums) {
        if (k.what != rb::scenario::rate) continue;
        if (!s.ok) {
            std::printf("%-14s %10s %10s\n", k.system.c_str(), human_rate(k.rate).c_str(), "n/a");
            continue;
        }
        std::printf("%-14s %10s %10.1f %10.1f %10.1f %10.1f %10.1f\n", k.system.c_str(),
                    human_rate(k.rate).c_str(), s.latency_us[0], s.latency_us[2], s.latency_us[3],
                    s.latency_us[4], s.latency_us[5]);
    }
}

void write_json(const std::string& path, const std::vector<sample>& samples,
                const std::map<key, summary>& sums) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f) return;
    std::fprintf(f, "{\n  \"runs\": [\n");
    for (std::size_t i = 0; i < samples.size(); ++i) {
        const auto& s = samples[i];
        std::fprintf(
            f,
            "    {\"system\": \"%s\", \"scenario\": \"%s\", \"payload_bytes\": %zu, "
            "\"offered_per_s\": %.0f, \"repetition\": %d, \"ok\": %s, \"error\": \"%s\", "
            "\"messages\": %llu, \"seconds\": %.4f, \"messages_per_s\": %.0f, "
            "\"latency_ns\": {\"p50\": %lld, \"p90\": %lld, \"p99\": %lld, \"p99.9\": %lld, "
            "\"p99.99\": %lld, \"max\": %lld}}%s\n",
            s.system.c_str(), name_of(s.what), s.payload, s.rate, s.repetition,
            s.r.ok ? "true" : "false", s.r.error, static_cast<unsigned long long>(s.r.messages),
            s.r.seconds, s.r.per_second(), static_cast<long long>(s.r.latency_ns[0]),
            static_cast<long long>(s.r.latency_ns[1]), static_cast<long long>(s.r.latency_ns[2]),
            static_cast<long long>(s.r.latency_ns[3]), static_cast<long long>(s.r.latency_ns[4]),
            static_cast<long long>(s.r.latency_ns[5]), i + 1 < samples.size() ? "," : "");
    }
    std::fprintf(f, "  ],\n  \"medians\": [\n");
    std::size_t i = 0;
    for (const auto& [k, s] : sums) {
        std::fprintf(
            f,
            "    {\"system\": \"%s\", \"scenario\": \"%s\", \"payload_bytes\": %zu, "
            "\"offered_per_s\": %.0f, \"ok\": %s, \"messages_per_s\": %.0f, "
            "\"cpu_fraction\": %.4f, \"latency_us\": [%.2f, %.2f, %.2f, %.2f, %.2f, %.2f]}%s\n",
            k.system.c_str(), name_of(k.what), k.payload, k.rate, s.ok ? "true" : "false",
            s.msgs_per_s, s.cpu_fraction, s.latency_us[0], s.latency_us[1], s.latency_us[2],
            s.latency_us[3], s.latency_us[4], s.latency_us[5], ++i < sums.size() ? "," : "");
    }
    std::fprintf(f, "  ]\n}\n");
    std::fclose(f);
}

// Two panels: stream throughput bars per payload and system; the 64-byte ping-pong latency
// spectrum (p50 .. p99.99) per system on a log scale.
void write_svg(const std::string& path, const std::map<key, summary>& sums,
               const std::vector<std::string>& systems) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f) return;
    const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"};
    std::fprintf(f,
                 "<svg xmlns='http://www.w3.org/2000/svg' width='1000' height='420' "
                 "font-family='sans-serif' font-size='12'>\n<rect width='1000' height='420' "
                 "fill='white'/>\n");
    std::fprintf(f, "<text x='20' y='24' font-size='15'>stream: messages/s (median)</text>\n");
    std::vector<std::size_t> payloads;
    double max_rate = 1;
    for (const auto& [k, s] : sums) {
        if (k.what != rb::scenario::stream || !s.ok) continue;
        if (std::find(payloads.begin(), payloads.end(), k.payload) == payloads.end())
            payloads.push_back(k.payload);
        max_rate = std::max(max_rate, s.msgs_per_s);
    }
    std::sort(payloads.begin(), payloads.end());
    const double group_w = 440.0 / static_cast<double>(std::max<std::size_t>(1, payloads.size()));
    const double bar_w = (group_w - 20) / static_cast<double>(systems.size());
    for (std::size_t p = 0; p < payloads.size(); ++p) {
        for (std::size_t si = 0; si < systems.size(); ++si) {
            auto it = sums.find({systems[si], rb::scenario::stream, payloads[p], 0});
            if (it == sums.end() || !it->second.ok) continue;
            const double h = 300.0 * it->second.msgs_per_s / max_rate;
            const double x =
                30 + static_cast<double>(p) * group_w + static_cast<double>(si) * bar_w;
            std::fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='%s'/>\n", x,
                         350 - h, bar_w - 2, h, colors[si % 5]);
            std::fprintf(f,
                         "<text x='%.1f' y='%.1f' font-size='9' transform='rotate(-90 %.1f "
                         "%.1f)'>%s</text>\n",
                         x + bar_w / 2 + 3, 345 - h, x + bar_w / 2 + 3, 345 - h,
                         human_rate(it->second.msgs_per_s).c_str());
        }
        std::fprintf(f, "<text x='%.1f' y='370'>%zu B</text>\n",
                     30 + static_cast<double>(p) * group_w + group_w / 3, payloads[p]);
    }
    std::fprintf(f,
                 "<text x='520' y='24' font-size='15'>pingpong 64 B: round trip us (median), log "
                 "scale</text>\n");
    const char* labels[] = {"p50", "p90", "p99", "p99.9", "p99.99"};
    auto ypos = [](double us) {
        return 350 - 300 * (std::log10(std::max(us, 1.0)) / 4.0);
    };  // 1us..10ms
    for (int d = 0; d <= 4; ++d) {
        const double y = ypos(std::pow(10, d));
        std::fprintf(f,
                     "<line x1='560' y1='%.1f' x2='980' y2='%.1f' stroke='#ddd'/><text x='522' "
                     "y='%.1f'>%g</text>\n",
                     y, y, y + 4, std::pow(10, d));
    }
    for (int i = 0; i < 5; ++i)
        std::fprintf(f, "<text x='%d' y='370'>%s</text>\n", 560 + i * 100, labels[i]);
    for (std::size_t si = 0; si < systems.size(); ++si) {
        auto it = sums.find({systems[si], rb::scenario::pingpong, 64, 0});
        if (it == sums.end() || !it->second.ok) continue;
        std::string points;
        for (int i = 0; i < 5; ++i) {
            char pt[32];
            std::snprintf(pt, sizeof pt, "%d,%.1f ", 570 + i * 100,
                          ypos(it->second.latency_us[static_cast<std::size_t>(i)]));
            points += pt;
        }
        std::fprintf(f, "<polyline points='%s' fill='none' stroke='%s' stroke-width='2'/>\n",
                     points.c_str(), colors[si % 5]);
    }
    for (std::size_t si = 0; si < systems.size(); ++si) {
        std::fprintf(f,
                     "<rect x='%zu' y='395' width='12' height='12' fill='%s'/><text x='%zu' "
                     "y='406'>%s</text>\n",
                     30 + si * 160, colors[si % 5], 46 + si * 160, systems[si].c_str());
    }
    std::fprintf(f, "</svg>\n");
    std::fclose(f);
}

/// The nats-server of the nats system, for the whole run (none when not wanted or not
/// installed: the nats runs then say why).
struct nats_broker {
    rb::child_process server;
    int port = 0;
    std::string log;
    explicit nats_broker(bool wanted) {
        const std::string program = wanted ? rb::find_program("nats-server") : "";
        if (program.empty()) return;
        const int p = rb::reserve_ports(1);
        log = rb::in_dir(std::filesystem::temp_directory_path().string(),
                         "ringmesh-bench-nats." + std::to_string(::getpid()) + ".log");
        server = rb::spawn_child("nats-server", program,
                                 {"-a", "127.0.0.1", "-p", std::to_string(p)}, log);
        if (rb::wait_listening(server, p, 10)) {
            port = p;
        } else {
            std::fprintf(stderr, "ringmesh_bench: nats-server did not start: %s\n",
                         rb::tail_of(log).c_str());
        }
    }
    ~nats_broker() {
        if (server.running()) rb::stop_child(server, SIGTERM);
        if (!log.empty()) std::remove(log.c_str());
    }
    nats_broker(const nats_broker&) = delete;
    nats_broker& operator=(const nats_broker&) = delete;
};

}  // namespace

int run_bench(int argc, char** argv) {
    CLI::App app{"ringmesh bench: ringmesh next to ZeroMQ and the raw kernel floor"};
    std::vector<std::string> scenarios{"stream", "pingpong", "rpc", "fanout",
                                       "fanin",  "rate",     "idle"};
    int fanout = 2;
    std::vector<std::string> systems{"ringmesh-tcp",
                                     "ringmesh-udp",
                                     "zmq",
                                     "raw",
                                     "raw-uring",
                                     "ringmesh-tcp-block",
                                     "ringmesh-tcp-auth",
                                     "ringmesh-tls",
                                     "ringmesh-udp-sealed",
                                     "zmq-curve"};
#ifdef RINGMESH_BENCH_NATS
    systems.insert(systems.begin() + 3, "nats");
#endif
    std::vector<std::size_t> stream_payloads{64, 1024, 65536};
    std::vector<std::size_t> ping_payloads{64, 1024};
    std::vector<double> rate_fractions{0.1, 0.5, 0.9};
    double seconds = 2;
    int repetitions = 3;
    bool block = false;
    std::string json = "bench-results.json", svg = "bench-results.svg";
    app.add_option("--scenario", scenarios,
                   "stream, pingpong, rpc, fanout, fanin, rate, idle; replicate (not by default: "
                   "replicated logs next to NATS JetStream and etcd)")
        ->delimiter(',');
    app.add_option("--fanout", fanout, "subscribers in the fanout scenario")
        ->check(CLI::Range(1, 16));
    app.add_option("--system", systems,
                   "ringmesh-tcp, ringmesh-udp, zmq, nats (NATS core through a nats-server), raw, "
                   "raw-uring (the ping-pong through "
                   "io_uring, no engine), ringmesh-tcp-block (idles in the kernel), "
                   "ringmesh-tcp-scraped (its metrics scraped every 100 ms), ringmesh-tcp-auth "
                   "(security mode authenticated), ringmesh-tls (security mode encrypted: TLS "
                   "1.3), ringmesh-udp-sealed (encrypted datagrams), zmq-curve (ZeroMQ with "
                   "CURVE); with DPDK "
                   "also ringmesh-dpdk and raw-dpdk (a net_memif pair)")
        ->delimiter(',');
    app.add_option("--stream-payloads", stream_payloads, "bytes")->delimiter(',');
    app.add_option("--pingpong-payloads", ping_payloads, "bytes")->delimiter(',');
    app.add_option("--rate-fractions", rate_fractions, "of each system's 64 B stream rate")
        ->delimiter(',');
    app.add_option("--seconds", seconds, "per run")->check(CLI::Range(0.2, 60.0));
    app.add_option("--repetitions", repetitions, "median of this many")->check(CLI::Range(1, 20));
    app.add_flag("--block", block, "ringmesh idles in the kernel instead of busy-spinning");
#ifdef RINGMESH_BENCH_REPLICATE
    rb::replicate_options replicate;
    std::string replicate_json = "bench-replicate.json";
    app.add_option("--failovers", replicate.failovers, "replicate: leader kills (median of these)")
        ->check(CLI::Range(0, 100));
    app.add_option("--window", replicate.window, "replicate: publishes outstanding (throughput)")
        ->check(CLI::Range(1, 4096));
    app.add_option("--kv-clients", replicate.kv_clients, "replicate: clients (put throughput)")
        ->check(CLI::Range(1, 4096));
    app.add_option("--replicate-systems", replicate.systems, "replicate: ringmesh, jetstream, etcd")
        ->delimiter(',');
    app.add_option("--work-dir", replicate.work_dir,
                   "replicate: data directories and logs (default: a fresh one here, removed "
                   "afterwards; must be on the disk to measure)");
    app.add_option("--tools-dir", replicate.tools_dir,
                   "replicate: where ringmesh_node and ringmesh_kvbench are (default: the build's "
                   "tools/)");
    app.add_option("--election-timeout-ms", replicate.election_min_ms,
                   "replicate: ringmesh's election timeout, from this to twice this")
        ->check(CLI::Range(20, 10'000));
    app.add_option("--heartbeat-ms", replicate.heartbeat_ms, "replicate: ringmesh's heartbeat")
        ->check(CLI::Range(5, 5'000));
    app.add_option("--replicate-json", replicate_json, "replicate: results file");
#endif
    app.add_option("--json", json, "results file");
    app.add_option("--svg", svg, "chart file");
    CLI11_PARSE(app, argc, argv);

    std::map<std::string, const rb::system_roles*> known{
        {"ringmesh-tcp", &rb::ringmesh_tcp_roles},
        {"ringmesh-udp", &rb::ringmesh_udp_roles},
        {"zmq", &rb::zmq_roles},
#ifdef RINGMESH_BENCH_NATS
        {"nats", &rb::nats_roles},
#endif
        {"raw", &rb::raw_floor_roles},
        {"raw-uring", &rb::raw_uring_roles},
        {"ringmesh-tcp-block", &rb::ringmesh_tcp_roles},
        {"ringmesh-tcp-auth", &rb::ringmesh_tcp_roles},
        {"ringmesh-tls", &rb::ringmesh_tcp_roles},
        {"ringmesh-udp-sealed", &rb::ringmesh_udp_roles},
        {"zmq-curve", &rb::zmq_curve_roles},
#ifdef RINGMESH_BENCH_SCRAPE
        {"ringmesh-tcp-scraped", &rb::ringmesh_tcp_roles},
#endif
#ifdef RINGMESH_BENCH_DPDK
        {"ringmesh-dpdk", &rb::ringmesh_dpdk_roles},
        {"raw-dpdk", &rb::raw_dpdk_roles},
#endif
    };
    for (const auto& s : systems) {
        if (!known.count(s)) {
            std::fprintf(stderr, "ringmesh_bench: unknown system '%s'\n", s.c_str());
            return 2;
        }
    }
    // ringmesh-tls's CA, made before the roles fork (both sides trust it).
    if (std::find(systems.begin(), systems.end(), "ringmesh-tls") != systems.end())
        rb::prepare_tls_ca();
    // NATS core needs its server: one for the run, started and ended here.
    const nats_broker broker(std::find(systems.begin(), systems.end(), "nats") != systems.end());
    const int cores = static_cast<int>(std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN)));
    std::vector<sample> samples;
    int port = 23000 + static_cast<int>(::getpid() % 2000) * 10;
    std::size_t done = 0;
    auto run = [&](const std::string& sys, rb::scenario what, std::size_t payload, double rate,
                   int rep) {
        rb::run_config c;
        c.what = what;
        c.payload_bytes = std::max<std::size_t>(payload, rb::header_bytes);
        c.seconds = seconds;
        c.rate_per_s = rate;
        c.port = (port += 4);
        c.sender_core = 0;
        c.receiver_core = cores > 1 ? 1 : 0;
        c.fanout = fanout;
        // idle is about the block strategy; ringmesh-tcp-block always idles in the kernel.
        c.block = block || sys == "ringmesh-tcp-block" || what == rb::scenario::idle;
        c.udp = sys == "ringmesh-udp" || sys == "ringmesh-udp-sealed";
        c.dpdk = sys == "ringmesh-dpdk";
        c.broker_port = broker.port;
        c.scraped = sys == "ringmesh-tcp-scraped";
        c.authenticated = sys == "ringmesh-tcp-auth";
        c.encrypted = sys == "ringmesh-tls" || sys == "ringmesh-udp-sealed";
        c.curve = sys == "zmq-curve";
        std::string why;
        ++done;
        if (!known[sys]->supports(c, &why)) {
            samples.push_back({sys, what, payload, rate, rep, rb::run_result::failed(why)});
            return;
        }
        std::fprintf(stderr, "\r[%zu] %-13s %-8s %6zu B%s rep %d ...   ", done, sys.c_str(),
                     name_of(what), payload,
                     rate > 0 ? (" at " + human_rate(rate) + "/s").c_str() : "", rep + 1);
        samples.push_back({sys, what, payload, rate, rep, run_pair(*known[sys], c)});
        if (!samples.back().r.ok)
            std::fprintf(stderr, "\n  %s: %s\n", sys.c_str(), samples.back().r.error);
    };
    // fanin: ringmesh alone (a node with one shard, then two, each owning one publisher's
    // session), 64 B.
    auto run_fanin = [&](int shards, int rep) {
        rb::run_config c;
        c.what = rb::scenario::fanin;
        c.payload_bytes = 64;
        c.seconds = seconds;
        c.port = (port += 8);
        c.sender_core = 0;
        c.receiver_core = cores > 1 ? 1 : 0;
        c.receiver_shards = cores > 1 ? shards : 1;
        c.block = block;
        const std::string name =
            "ringmesh-tcp, " + std::to_string(shards) + (shards == 1 ? " shard" : " shards");
        ++done;
        std::fprintf(stderr, "\r[%zu] %-13s fanin rep %d ...   ", done, name.c_str(), rep + 1);
        samples.push_back({name, c.what, 64, 0, rep, run_pair(rb::ringmesh_tcp_roles, c)});
        if (!samples.back().r.ok)
            std::fprintf(stderr, "\n  %s: %s\n", name.c_str(), samples.back().r.error);
    };
    auto wants = [&](const char* s) {
        return std::find(scenarios.begin(), scenarios.end(), s) != scenarios.end();
    };
    // The replicate scenario runs clusters of its own, after the point-to-point scenarios.
    auto run_replicate_scenario = [&]() -> int {
#ifdef RINGMESH_BENCH_REPLICATE
        replicate.seconds = seconds;
        replicate.election_max_ms = 2 * replicate.election_min_ms;
        if (replicate.heartbeat_ms >= replicate.election_min_ms) {
            std::fprintf(stderr,
                         "ringmesh_bench: --heartbeat-ms must be under --election-timeout-ms\n");
            return 2;
        }
        replicate.json = replicate_json;
        if (replicate.tools_dir.empty()) {
            std::error_code ec;
            const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
            replicate.tools_dir = (self.parent_path().parent_path() / "tools").string();
        }
        return rb::run_replicate(replicate);
#else
        std::fprintf(stderr,
                     "ringmesh_bench: replicate needs libnats-dev and libcurl4-openssl-dev at "
                     "build time\n");
        return 2;
#endif
    };
    // Alternate systems within every repetition, so that drift on a noisy machine hits all.
    for (int rep = 0; rep < repetitions; ++rep) {
        if (wants("stream"))
            for (auto p : stream_payloads)
                for (auto& s : systems)
                    run(s, rb::scenario::stream, p, 0, rep);
        if (wants("pingpong"))
            for (auto p : ping_payloads)
                for (auto& s : systems)
                    run(s, rb::scenario::pingpong, p, 0, rep);
        if (wants("rpc"))
            for (auto& s : systems)
                run(s, rb::scenario::rpc, 64, 0, rep);
        if (wants("fanout"))
            for (auto& s : systems)
                run(s, rb::scenario::fanout, 64, 0, rep);
        if (wants("fanin")) {
            for (int shards : {1, 2})
                run_fanin(shards, rep);
        }
        if (wants("idle")) run("ringmesh-tcp", rb::scenario::idle, 64, 0, rep);
    }
    if (wants("rate")) {
        auto sums = summarize(samples);
        for (int rep = 0; rep < repetitions; ++rep) {
            for (double fraction : rate_fractions) {
                for (auto& s : systems) {
                    auto it = sums.find({s, rb::scenario::stream, 64, 0});
                    if (it == sums.end() || !it->second.ok) {
                        run(s, rb::scenario::stream, 64, 0, rep);  // need its max first
                        sums = summarize(samples);
                        it = sums.find({s, rb::scenario::stream, 64, 0});
                        if (it == sums.end() || !it->second.ok) continue;
                    }
                    run(s, rb::scenario::rate, 64, std::round(it->second.msgs_per_s * fraction),
                        rep);
                }
            }
        }
    }
    std::fprintf(stderr, "\r%60s\r", "");
    if (samples.empty() && wants("replicate")) return run_replicate_scenario();
    const auto sums = summarize(samples);
    std::printf(
        "ringmesh bench: %d repetition(s) of %.1f s, sender on core 0, receiver on core %d, "
        "ringmesh idle %s\n",
        repetitions, seconds, cores > 1 ? 1 : 0, block ? "block" : "busy_spin");
    print_tables(sums, systems);
    write_json(json, samples, sums);
    write_svg(svg, sums, systems);
    std::printf("\nwrote %s and %s\n", json.c_str(), svg.c_str());
    return wants("replicate") ? run_replicate_scenario() : 0;
}

int main(int argc, char** argv) {
    try {
        return run_bench(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ringmesh_bench: fatal: %s\n", e.what());
        return 1;
    }
}
