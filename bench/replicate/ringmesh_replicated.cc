// ringmesh in the replicate scenario: three ringmesh_node replicas on loopback, each running
// the key-value group (1) and the replicated-topic group (2), logs fdatasync'd in the scratch
// directory; ringmesh_kvbench is the client (its --summary and --history files are read here).
// The leader is found from the nodes' status files (rewritten every second).
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "bench/replicate/child_process.h"
#include "bench/replicate/replicate.h"
#include "engine/core/clock.h"

namespace ringmesh::bench {
namespace {

constexpr int replicas = 3;
constexpr int topic_group = 2;

/// One group's line of a node's status file.
struct group_status {
    bool leader = false;
    std::uint64_t term = 0, commit = 0, applied = 0, fsyncs = 0;
};

std::optional<group_status> read_group_status(const std::string& path, int group) {
    std::ifstream in(path);
    std::optional<group_status> out;
    bool in_group = false;
    for (std::string line; std::getline(in, line);) {
        std::istringstream words(line);
        std::string first;
        words >> first;
        if (first == std::to_string(group)) {
            group_status g;
            std::string role, leader;
            words >> role >> g.term >> leader >> g.commit >> g.applied;
            g.leader = role == "leader";
            out = g;
            in_group = true;
        } else if (first == "storage" && in_group && out) {
            std::string word;
            words >> word >> out->fsyncs;  // "storage fsyncs N ..."
        } else if (!first.empty() && first != "follower") {
            in_group = false;
        }
    }
    return out;
}

/// The kvbench --summary file: "name value" lines.
std::map<std::string, double> read_summary(const std::string& path) {
    std::map<std::string, double> out;
    std::ifstream in(path);
    std::string name;
    double value = 0;
    while (in >> name >> value)
        out[name] = value;
    return out;
}

measured from_summary(const std::map<std::string, double>& s, const std::string& op) {
    auto get = [&s](const std::string& k) {
        auto it = s.find(k);
        return it == s.end() ? 0.0 : it->second;
    };
    measured m;
    m.count = static_cast<std::uint64_t>(get(op + ".count"));
    m.ok = m.count > 0;
    if (!m.ok) m.error = "no " + op + " succeeded";
    m.seconds = get("seconds");
    m.p50_us = get(op + ".p50_ns") / 1e3;
    m.p99_us = get(op + ".p99_ns") / 1e3;
    m.p999_us = get(op + ".p999_ns") / 1e3;
    return m;
}

/// A number after "key": in a JSON line as kvbench writes it (0 for null or absent).
long long json_number(const std::string& line, const std::string& key) {
    const std::size_t at = line.find("\"" + key + "\":");
    if (at == std::string::npos) return 0;
    return std::atoll(line.c_str() + at + key.size() + 3);
}

class ringmesh_cluster {
  public:
    ringmesh_cluster(const replicate_options& o, std::string dir) : o_(o), dir_(std::move(dir)) {
        base_port_ = reserve_ports(replicas);
        config_ = dir_ + "/ringmesh.toml";
        std::ofstream cfg(config_);
        cfg << "[replication]\nheartbeat_ms = " << o.heartbeat_ms
            << "\nelection_timeout_min_ms = " << o.election_min_ms
            << "\nelection_timeout_max_ms = " << o.election_max_ms << "\n";
    }
    ~ringmesh_cluster() {
        for (child_process& n : nodes_)
            stop_child(n, SIGTERM);
    }
    ringmesh_cluster(const ringmesh_cluster&) = delete;
    ringmesh_cluster& operator=(const ringmesh_cluster&) = delete;

    std::string start() {
        nodes_.resize(replicas);
        for (int i = 0; i < replicas; ++i)
            start_node(i);
        for (int i = 0; i < replicas; ++i) {
            if (!wait_listening(nodes_[static_cast<std::size_t>(i)], port(i), 20))
                return "n" + std::to_string(i + 1) + " did not start: " + tail_of(log(i));
        }
        for (int group : {1, topic_group}) {
            if (wait_for_leader(group, 20) < 0)
                return "no leader of group " + std::to_string(group) + " in 20 s";
        }
        return {};
    }

    void start_node(int i) {
        std::vector<std::string> args = {"-c", config_, "--id", name(i), "--listen", addr(i),
                                         "--data-dir", dir_ + "/" + name(i), "--topic-group", "2",
                                         "--status-file", status(i), "--idle", "backoff",
                                         "--seconds", "3600",
                                         // What this scenario measures is replication; the
                                         // security modes have their cost measured apart.
                                         "--security", "none"};
        for (int j = 0; j < replicas; ++j) {
            args.push_back("--replica");
            args.push_back(name(j) + "=" + std::to_string(j + 1));
            if (j < i) {
                args.push_back("--peer");
                args.push_back(addr(j));
            }
        }
        nodes_[static_cast<std::size_t>(i)] =
            spawn_child(name(i), o_.tools_dir + "/ringmesh_node", args, log(i));
    }

    /// Which running node leads `group` (the highest term a leader reports), -1 if none.
    int leader_of(int group) const {
        int best = -1;
        std::uint64_t best_term = 0;
        for (int i = 0; i < replicas; ++i) {
            if (!nodes_[static_cast<std::size_t>(i)].running()) continue;
            auto g = read_group_status(status(i), group);
            if (g && g->leader && g->term >= best_term) {
                best = i;
                best_term = g->term;
            }
        }
        return best;
    }
    int wait_for_leader(int group, double seconds, int other_than = -1) const {
        const auto until =
            std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
        while (std::chrono::steady_clock::now() < until) {
            const int l = leader_of(group);
            if (l >= 0 && l != other_than) return l;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));  // paces the polling
        }
        return -1;
    }

    /// Waits until node `i` has applied what `group`'s leader had committed when asked (the
    /// status files are rewritten every second); false after `seconds`.
    bool wait_caught_up(int i, int group, double seconds) const {
        const int l = wait_for_leader(group, seconds);
        if (l < 0) return false;
        const auto lv = read_group_status(status(l), group);
        if (!lv) return false;
        const auto until =
            std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
        while (std::chrono::steady_clock::now() < until) {
            const auto v = read_group_status(status(i), group);
            if (v && v->applied >= lv->commit) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));  // paces the polling
        }
        return false;
    }

    /// Runs ringmesh_kvbench against the cluster; its summary (empty when it failed).
    std::map<std::string, double> kvbench(std::vector<std::string> args, const std::string& tag,
                                          double seconds, std::string* error) {
        const std::string summary = dir_ + "/kvbench-" + tag + ".summary";
        args.insert(args.end(), {"--seconds", std::to_string(seconds), "--summary", summary,
                                 "--security", "none"});
        for (int i = 0; i < replicas; ++i) {
            args.push_back("--server");
            args.push_back(addr(i));
        }
        child_process bench = spawn_child("kvbench-" + tag, o_.tools_dir + "/ringmesh_kvbench",
                                          args, dir_ + "/kvbench-" + tag + ".log");
        const int status = wait_child(bench, seconds + 60);
        if (status != 0) {
            stop_child(bench, SIGKILL);
            *error = "kvbench " + tag + " exited with " + std::to_string(status) + ": " +
                     tail_of(bench.log);
            return {};
        }
        return read_summary(summary);
    }

    child_process& node(int i) { return nodes_[static_cast<std::size_t>(i)]; }
    std::string status(int i) const { return dir_ + "/" + name(i) + ".status"; }
    const std::string& dir() const { return dir_; }

  private:
    static std::string name(int i) { return "n" + std::to_string(i + 1); }
    int port(int i) const { return base_port_ + i; }
    std::string addr(int i) const { return "127.0.0.1:" + std::to_string(port(i)); }
    std::string log(int i) const { return dir_ + "/" + name(i) + ".log"; }

    const replicate_options& o_;
    std::string dir_, config_;
    int base_port_ = 0;
    std::vector<child_process> nodes_;
};

/// Kills the topic group's leader `o.failovers` times under a steady publish load, restarting
/// it from its data directory each time once a new leader is up, and waiting for it to catch
/// up before the next kill. Each failover is the time from the kill to the first publish
/// acknowledged whose call began after the kill: it includes the new leader's first commit, so
/// it is an upper bound of kill-to-first-commit.
std::vector<double> measure_failovers(const replicate_options& o, ringmesh_cluster& c,
                                      std::string* error) {
    const double per_kill_s = 5;
    const double seconds = 2 + per_kill_s * o.failovers;
    const std::string history = c.dir() + "/failover-history.jsonl";
    std::vector<time_ns> kills;
    std::string bench_error;
    std::thread bench([&] {
        c.kvbench({"--publish-topic", "bench/failover", "--clients", "4", "--value-bytes",
                   std::to_string(o.payload_bytes), "--history", history, "--attempt-timeout-ms",
                   "50", "--deadline-ms", "10000"},
                  "failover", seconds, &bench_error);
    });
    const auto started = std::chrono::steady_clock::now();
    const auto stop_killing = started + std::chrono::duration<double>(seconds - per_kill_s);
    std::this_thread::sleep_for(std::chrono::seconds(1));  // paces the fault: load first
    while (static_cast<int>(kills.size()) < o.failovers &&
           std::chrono::steady_clock::now() < stop_killing) {
        const int victim = c.wait_for_leader(topic_group, 5);
        if (victim < 0) break;
        kills.push_back(monotonic_clock::read());
        stop_child(c.node(victim), SIGKILL);
        std::remove(c.status(victim).c_str());  // its last words said "leader"
        if (c.wait_for_leader(topic_group, 10, victim) < 0) break;
        c.start_node(victim);
        // A healthy cluster before the next kill: the restarted replica has recovered its log
        // and caught up (else the next election waits for it, and measures its recovery).
        if (!c.wait_caught_up(victim, topic_group, 20)) break;
    }
    bench.join();
    {
        std::ofstream record(c.dir() + "/failover-kills.txt");
        for (time_ns k : kills)
            record << k << "\n";
    }
    if (!bench_error.empty()) {
        *error = bench_error;
        return {};
    }
    struct acked {
        time_ns call, ret;
    };
    std::vector<acked> oks;
    std::ifstream in(history);
    for (std::string line; std::getline(in, line);) {
        if (line.find("\"status\":\"ok\"") == std::string::npos) continue;
        oks.push_back({json_number(line, "call"), json_number(line, "return")});
    }
    std::vector<double> out;
    for (std::size_t k = 0; k < kills.size(); ++k) {
        time_ns first = 0;
        for (const acked& a : oks) {
            if (a.call >= kills[k] && (first == 0 || a.ret < first)) first = a.ret;
        }
        if (first != 0 && (k + 1 == kills.size() || first < kills[k + 1]))
            out.push_back(static_cast<double>(first - kills[k]) / 1e6);
    }
    if (out.size() < kills.size())
        *error = std::to_string(kills.size() - out.size()) + " failover(s) saw no commit";
    return out;
}

}  // namespace

replicate_figures run_ringmesh_replicated(const replicate_options& o, const std::string& dir) {
    replicate_figures f;
    f.system = "ringmesh";
    f.acknowledgement = "fdatasync'd on a majority (2 of 3), committed";
    ringmesh_cluster c(o, dir);
    if (std::string why = c.start(); !why.empty()) {
        f.error = why;
        return f;
    }
    const std::string payload = std::to_string(o.payload_bytes);
    std::string error;
    auto summary =
        c.kvbench({"--publish-topic", "bench/one", "--clients", "1", "--value-bytes", payload},
                  "publish-one", o.seconds, &error);
    f.publish_one = summary.empty() ? measured::failed(error) : from_summary(summary, "publish");

    const int leader = c.leader_of(topic_group);
    group_status before;
    bool have_before = false;
    if (leader >= 0) {
        if (auto g = read_group_status(c.status(leader), topic_group)) {
            before = *g;
            have_before = true;
        }
    }
    summary = c.kvbench({"--publish-topic", "bench/window", "--clients", std::to_string(o.window),
                         "--value-bytes", payload},
                        "publish-window", o.seconds, &error);
    f.publish_window = summary.empty() ? measured::failed(error) : from_summary(summary, "publish");
    if (have_before) {
        // The status file is rewritten every second: wait for a rewrite after the run.
        std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // paces the polling
        const auto after = read_group_status(c.status(leader), topic_group);
        if (after && after->leader && after->fsyncs > before.fsyncs) {
            f.entries_per_fsync = static_cast<double>(after->commit - before.commit) /
                                  static_cast<double>(after->fsyncs - before.fsyncs);
        }
    }
    const std::vector<std::string> puts = {"--read-percent", "0",     "--append-percent", "0",
                                           "--keys",         "10000", "--value-bytes",    payload};
    auto with_clients = [&puts](int n) {
        std::vector<std::string> a = puts;
        a.insert(a.end(), {"--clients", std::to_string(n)});
        return a;
    };
    summary = c.kvbench(with_clients(1), "put-one", o.seconds, &error);
    f.put_one = summary.empty() ? measured::failed(error) : from_summary(summary, "put");
    summary = c.kvbench(with_clients(o.kv_clients), "put-many", o.seconds, &error);
    f.put_many = summary.empty() ? measured::failed(error) : from_summary(summary, "put");

    if (o.failovers > 0) {
        std::string failover_error;
        f.failover_ms = measure_failovers(o, c, &failover_error);
        if (!failover_error.empty()) f.error = "failover: " + failover_error;
    }
    return f;
}

}  // namespace ringmesh::bench
