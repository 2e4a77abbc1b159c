// ringmesh_top — a live view of a running node, refreshed like top: readiness, per-shard loop
// utilisation and stalls, members, the sessions per peer (frames and bytes each way per
// second, retransmissions, in flight, link health), traffic, RPC latency over the last
// refresh, the busiest topics, and replication groups (term, leadership, commit and applied
// index, fsyncs). It reads the node's metrics endpoint ([metrics]
// listen), which each shard answers between two iterations of its loop, so it works while the
// shards busy-spin and costs the node one snapshot per refresh. --json prints one object per
// refresh instead, for scripts; --count bounds the refreshes.
#include <curl/curl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

/// The value of label `label` in a series key ("name{a=\"x\",b=\"y\"}"); empty when absent.
std::string label_of(const std::string& series, const std::string& label) {
    const std::string tag = label + "=\"";
    const std::size_t at = series.find(tag);
    if (at == std::string::npos) return {};
    const std::size_t from = at + tag.size();
    return series.substr(from, series.find('"', from) - from);
}

/// One scrape: every sample by series ("name{labels}") and, for the views, by name and the
/// value of one label.
struct scrape {
    std::map<std::string, double> series;
    bool ok = false;
    std::string error;

    /// Sum over the series of `name` whose labels contain `having` (e.g. peer="n2").
    double sum(const std::string& name, const std::string& having = {}) const {
        double total = 0;
        for (auto it = series.lower_bound(name); it != series.end(); ++it) {
            if (it->first.compare(0, name.size(), name) != 0) break;
            const char next = it->first.size() > name.size() ? it->first[name.size()] : '\0';
            if (next != '{' && next != '\0') continue;
            if (having.empty() || it->first.find(having) != std::string::npos) total += it->second;
        }
        return total;
    }
    /// The values of label `label` among the series of `name`.
    std::set<std::string> label_values(const std::string& name, const std::string& label) const {
        std::set<std::string> out;
        for (auto it = series.lower_bound(name + "{"); it != series.end(); ++it) {
            if (it->first.compare(0, name.size() + 1, name + "{") != 0) break;
            if (it->first.find(label + "=\"") != std::string::npos)
                out.insert(label_of(it->first, label));
        }
        return out;
    }
    /// The shards whose series of `name` carry `having` (e.g. the shard that holds a peer's
    /// session), comma-separated; "-" when none does.
    std::string shards_with(const std::string& name, const std::string& having) const {
        std::set<std::string> found;
        for (auto it = series.lower_bound(name + "{"); it != series.end(); ++it) {
            if (it->first.compare(0, name.size() + 1, name + "{") != 0) break;
            if (it->first.find(having) != std::string::npos)
                found.insert(label_of(it->first, "shard"));
        }
        std::string out;
        for (const std::string& shard : found)
            out += (out.empty() ? "" : ",") + shard;
        return out.empty() ? "-" : out;
    }
};

std::size_t keep(char* data, std::size_t size, std::size_t n, void* out) {
    static_cast<std::string*>(out)->append(data, size * n);
    return size * n;
}

scrape fetch(CURL* curl, const std::string& url) {
    scrape s;
    std::string body;
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    const CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK || status != 200) {
        s.error = rc != CURLE_OK ? curl_easy_strerror(rc) : "HTTP " + std::to_string(status);
        return s;
    }
    std::size_t at = 0;
    while (at < body.size()) {
        std::size_t end = body.find('\n', at);
        if (end == std::string::npos) end = body.size();
        const std::string line = body.substr(at, end - at);
        at = end + 1;
        if (line.empty() || line[0] == '#') continue;
        const std::size_t space = line.rfind(' ');
        if (space == std::string::npos) continue;
        s.series[line.substr(0, space)] = std::strtod(line.c_str() + space + 1, nullptr);
    }
    s.ok = true;
    return s;
}

struct view_options {
    std::string address = "127.0.0.1:9464";
    double interval = 1;
    int count = 0;  // 0: until interrupted
    bool json = false;
    bool terminal = false;  // stdout is a terminal: each refresh redraws the screen
};

/// Per-second rate of a counter between two scrapes.
double rate(const scrape& now, const scrape& before, double seconds, const std::string& name,
            const std::string& having = {}) {
    if (seconds <= 0) return 0;
    return (now.sum(name, having) - before.sum(name, having)) / seconds;
}

/// Quantile `q` of the values a histogram (`name`, in seconds) took between two scrapes: the
/// upper bound of the first bucket whose count reaches it, as Prometheus' buckets allow. A
/// negative result: nothing was recorded in between.
double window_quantile(const scrape& now, const scrape& before, const std::string& name, double q) {
    std::vector<std::pair<double, double>> buckets;  // (le, count in the window)
    const std::string prefix = name + "_bucket{";
    for (auto it = now.series.lower_bound(prefix); it != now.series.end(); ++it) {
        if (it->first.compare(0, prefix.size(), prefix) != 0) break;
        const std::size_t at = it->first.find("le=\"");
        if (at == std::string::npos) continue;
        const double le = std::strtod(it->first.c_str() + at + 4, nullptr);  // "+Inf" parses
        const auto then = before.series.find(it->first);
        buckets.emplace_back(le, it->second - (then == before.series.end() ? 0 : then->second));
    }
    std::sort(buckets.begin(), buckets.end());
    if (buckets.empty() || buckets.back().second <= 0) return -1;
    const double rank = q * buckets.back().second;
    for (const auto& [le, cumulative] : buckets) {
        if (cumulative >= rank) return le;
    }
    return buckets.back().first;
}

/// Each member's name and state, from ringmesh_membership_member_state{member,state}.
std::vector<std::pair<std::string, std::string>> members(const scrape& now) {
    std::vector<std::pair<std::string, std::string>> out;
    const std::string prefix = "ringmesh_membership_member_state{";
    for (auto it = now.series.lower_bound(prefix); it != now.series.end(); ++it) {
        if (it->first.compare(0, prefix.size(), prefix) != 0) break;
        out.emplace_back(label_of(it->first, "member"), label_of(it->first, "state"));
    }
    return out;
}

/// A duration in seconds as text in µs for the view ("-" when there is none).
std::string micros(double seconds) {
    if (seconds < 0) return "-";
    char text[32];
    std::snprintf(text, sizeof text, "%.0f", seconds * 1e6);
    return text;
}

/// The topics with the highest message rate (published and received) in the window, busiest
/// first, at most `limit`.
std::vector<std::pair<std::string, double>> busiest_topics(const scrape& now, const scrape& before,
                                                           double seconds, std::size_t limit) {
    std::vector<std::pair<std::string, double>> topics;
    for (const std::string& t : now.label_values("ringmesh_topic_messages_total", "topic")) {
        topics.emplace_back(
            t, rate(now, before, seconds, "ringmesh_topic_messages_total", "topic=\"" + t + "\""));
    }
    std::sort(topics.begin(), topics.end(),
              [](const auto& a, const auto& b) { return a.second > b.second; });
    if (topics.size() > limit) topics.resize(limit);
    return topics;
}

void print_view(const view_options& o, const scrape& now, const scrape& before, double seconds,
                bool first) {
    const bool ready = now.sum("ringmesh_node_ready", "reason=\"ready\"") >= 1;
    std::string reason;
    for (const std::string& r : now.label_values("ringmesh_node_ready", "reason"))
        reason = r;
    if (o.terminal) std::printf("\x1b[H\x1b[2J");  // home, clear
    std::printf("ringmesh node %s - %s%s; refresh %.1f s\n\n", o.address.c_str(),
                ready ? "ready" : "NOT READY: ", ready ? "" : reason.c_str(), o.interval);
    // Per shard: its loop, the peers whose sessions it holds, and what crosses to and from
    // the node's other shards (records: sends, publishes, calls, deliveries).
    std::printf("%-6s %12s %8s %10s %10s %14s %6s %12s %12s\n", "shard", "iterations/s", "busy %",
                "stalls", "parks/s", "max iteration", "peers", "to shards/s", "from shards/s");
    for (const std::string& shard : now.label_values("ringmesh_loop_iterations_total", "shard")) {
        const std::string having = "shard=\"" + shard + "\"";
        const double it = rate(now, before, seconds, "ringmesh_loop_iterations_total", having);
        const double busy =
            rate(now, before, seconds, "ringmesh_loop_busy_iterations_total", having);
        std::printf("%-6s %12.0f %8.1f %10.0f %10.0f %11.2f ms %6.0f %12.0f %12.0f\n",
                    shard.c_str(), it, it > 0 ? 100 * busy / it : 0,
                    now.sum("ringmesh_loop_stalls_total", having),
                    rate(now, before, seconds, "ringmesh_loop_parks_total", having),
                    1e3 * now.sum("ringmesh_loop_max_iteration_seconds", having),
                    now.sum("ringmesh_peers_connected", having),
                    rate(now, before, seconds, "ringmesh_cross_shard_records_total",
                         "direction=\"out\"," + having),
                    rate(now, before, seconds, "ringmesh_cross_shard_records_total",
                         "direction=\"in\"," + having));
    }
    std::printf(
        "\nmembers alive %.0f, Lifeguard health %.0f; peers connected %.0f; in %.1f MB/s, "
        "out %.1f MB/s\n",
        now.sum("ringmesh_membership_alive_members"), now.sum("ringmesh_membership_health_score"),
        now.sum("ringmesh_peers_connected"),
        rate(now, before, seconds, "ringmesh_transport_bytes_total", "direction=\"received\"") /
            1e6,
        rate(now, before, seconds, "ringmesh_transport_bytes_total", "direction=\"sent\"") / 1e6);
    if (const auto known = members(now); !known.empty()) {
        std::printf("members:");
        for (const auto& [name, state] : known)
            std::printf(" %s %s;", name.c_str(), state.c_str());
        std::printf("\n");
    }
    std::printf("\n%-14s %5s %12s %12s %8s %8s %12s %10s %10s %9s %8s %8s\n", "peer", "shard",
                "frames out/s", "frames in/s", "MB/s out", "MB/s in", "retransmit/s", "in flight",
                "stalls/s", "srtt us", "resent", "quality");
    for (const std::string& peer : now.label_values("ringmesh_session_frames_sent_total", "peer")) {
        const std::string having = "peer=\"" + peer + "\"";
        std::printf(
            "%-14s %5s %12.0f %12.0f %8.1f %8.1f %12.0f %10.0f %10.0f %9.0f %7.1f%% %8.2f\n",
            peer.c_str(), now.shards_with("ringmesh_session_frames_sent_total", having).c_str(),
            rate(now, before, seconds, "ringmesh_session_frames_sent_total", having),
            rate(now, before, seconds, "ringmesh_session_frames_delivered_total", having),
            rate(now, before, seconds, "ringmesh_session_bytes_total",
                 having + ",direction=\"sent\"") /
                1e6,
            rate(now, before, seconds, "ringmesh_session_bytes_total",
                 having + ",direction=\"received\"") /
                1e6,
            rate(now, before, seconds, "ringmesh_session_frames_retransmitted_total", having),
            now.sum("ringmesh_session_unacked_frames", having),
            rate(now, before, seconds, "ringmesh_session_credit_stalls_total", having),
            1e6 * now.sum("ringmesh_link_smoothed_rtt_seconds", having),
            100 * now.sum("ringmesh_link_resent_ratio", having),
            now.sum("ringmesh_link_quality", having));
    }
    std::printf(
        "\npublished/s %.0f, delivered/s %.0f, rpc calls/s %.0f served/s %.0f, refused "
        "frames %.0f\n",
        rate(now, before, seconds, "ringmesh_published_total"),
        rate(now, before, seconds, "ringmesh_delivered_total"),
        rate(now, before, seconds, "ringmesh_rpc_calls_total"),
        rate(now, before, seconds, "ringmesh_rpc_served_total"),
        now.sum("ringmesh_frames_refused_total"));
    std::printf(
        "rpc round trip over the refresh: p50 %s us, p99 %s us; log lines %.0f (%.0f "
        "suppressed)\n",
        micros(window_quantile(now, before, "ringmesh_rpc_latency_seconds", 0.5)).c_str(),
        micros(window_quantile(now, before, "ringmesh_rpc_latency_seconds", 0.99)).c_str(),
        now.sum("ringmesh_log_lines_total"), now.sum("ringmesh_log_lines_suppressed_total"));
    const auto topics = busiest_topics(now, before, seconds, 8);
    if (!topics.empty()) {
        std::printf("\n%-32s %12s %12s\n", "topic", "published/s", "received/s");
        for (const auto& [topic, total] : topics) {
            const std::string having = "topic=\"" + topic + "\"";
            std::printf("%-32s %12.0f %12.0f\n", topic.c_str(),
                        rate(now, before, seconds, "ringmesh_topic_messages_total",
                             having + ",direction=\"published\""),
                        rate(now, before, seconds, "ringmesh_topic_messages_total",
                             having + ",direction=\"received\""));
        }
    }
    const auto groups = now.label_values("ringmesh_raft_term", "group");
    if (!groups.empty()) {
        std::printf("\n%-6s %-8s %6s %12s %12s %10s %12s\n", "group", "role", "term", "commit",
                    "applied", "commits/s", "fsyncs/s");
        for (const std::string& g : groups) {
            const std::string having = "group=\"" + g + "\"";
            std::printf("%-6s %-8s %6.0f %12.0f %12.0f %10.0f %12.0f\n", g.c_str(),
                        now.sum("ringmesh_raft_leader", having) >= 1 ? "leader" : "follower",
                        now.sum("ringmesh_raft_term", having),
                        now.sum("ringmesh_raft_commit_index", having),
                        now.sum("ringmesh_raft_applied_index", having),
                        rate(now, before, seconds, "ringmesh_raft_commit_index", having),
                        rate(now, before, seconds, "ringmesh_raft_fsyncs_total", having));
        }
    }
    if (first) std::printf("\n(rates from the next refresh on)\n");
    std::fflush(stdout);
}

void print_json(const scrape& now, const scrape& before, double seconds) {
    std::printf("{\"ready\": %s, \"shards\": [",
                now.sum("ringmesh_node_ready", "reason=\"ready\"") >= 1 ? "true" : "false");
    const char* sep = "";
    for (const std::string& shard : now.label_values("ringmesh_loop_iterations_total", "shard")) {
        const std::string having = "shard=\"" + shard + "\"";
        const double it = rate(now, before, seconds, "ringmesh_loop_iterations_total", having);
        const double busy =
            rate(now, before, seconds, "ringmesh_loop_busy_iterations_total", having);
        std::printf(
            "%s{\"shard\": %s, \"iterations_per_s\": %.0f, \"utilisation\": %.4f, "
            "\"stalls\": %.0f, \"peers\": %.0f, \"to_shards_per_s\": %.0f, "
            "\"from_shards_per_s\": %.0f}",
            sep, shard.c_str(), it, it > 0 ? busy / it : 0,
            now.sum("ringmesh_loop_stalls_total", having),
            now.sum("ringmesh_peers_connected", having),
            rate(now, before, seconds, "ringmesh_cross_shard_records_total",
                 "direction=\"out\"," + having),
            rate(now, before, seconds, "ringmesh_cross_shard_records_total",
                 "direction=\"in\"," + having));
        sep = ", ";
    }
    std::printf("], \"peers\": [");
    sep = "";
    for (const std::string& peer : now.label_values("ringmesh_session_frames_sent_total", "peer")) {
        const std::string having = "peer=\"" + peer + "\"";
        std::printf(
            "%s{\"peer\": \"%s\", \"shard\": \"%s\", \"frames_out_per_s\": %.0f, "
            "\"frames_in_per_s\": %.0f, "
            "\"bytes_out_per_s\": %.0f, \"bytes_in_per_s\": %.0f, "
            "\"retransmits_per_s\": %.0f, \"in_flight\": %.0f, \"smoothed_rtt_us\": %.1f, "
            "\"resent_ratio\": %.4f, \"quality\": %.3f}",
            sep, peer.c_str(),
            now.shards_with("ringmesh_session_frames_sent_total", having).c_str(),
            rate(now, before, seconds, "ringmesh_session_frames_sent_total", having),
            rate(now, before, seconds, "ringmesh_session_frames_delivered_total", having),
            rate(now, before, seconds, "ringmesh_session_bytes_total",
                 having + ",direction=\"sent\""),
            rate(now, before, seconds, "ringmesh_session_bytes_total",
                 having + ",direction=\"received\""),
            rate(now, before, seconds, "ringmesh_session_frames_retransmitted_total", having),
            now.sum("ringmesh_session_unacked_frames", having),
            1e6 * now.sum("ringmesh_link_smoothed_rtt_seconds", having),
            now.sum("ringmesh_link_resent_ratio", having),
            now.sum("ringmesh_link_quality", having));
        sep = ", ";
    }
    std::printf("], \"groups\": [");
    sep = "";
    for (const std::string& g : now.label_values("ringmesh_raft_term", "group")) {
        const std::string having = "group=\"" + g + "\"";
        std::printf(
            "%s{\"group\": %s, \"leader\": %s, \"term\": %.0f, \"commit\": %.0f, "
            "\"applied\": %.0f}",
            sep, g.c_str(), now.sum("ringmesh_raft_leader", having) >= 1 ? "true" : "false",
            now.sum("ringmesh_raft_term", having), now.sum("ringmesh_raft_commit_index", having),
            now.sum("ringmesh_raft_applied_index", having));
        sep = ", ";
    }
    std::printf("], \"members\": [");
    sep = "";
    for (const auto& [name, state] : members(now)) {
        std::printf("%s{\"member\": \"%s\", \"state\": \"%s\"}", sep, name.c_str(), state.c_str());
        sep = ", ";
    }
    std::printf("], \"topics\": [");
    sep = "";
    for (const auto& [topic, total] : busiest_topics(now, before, seconds, 64)) {
        const std::string having = "topic=\"" + topic + "\"";
        std::printf("%s{\"topic\": \"%s\", \"published_per_s\": %.0f, \"received_per_s\": %.0f}",
                    sep, topic.c_str(),
                    rate(now, before, seconds, "ringmesh_topic_messages_total",
                         having + ",direction=\"published\""),
                    rate(now, before, seconds, "ringmesh_topic_messages_total",
                         having + ",direction=\"received\""));
        sep = ", ";
    }
    const double rpc_p50 = window_quantile(now, before, "ringmesh_rpc_latency_seconds", 0.5);
    const double rpc_p99 = window_quantile(now, before, "ringmesh_rpc_latency_seconds", 0.99);
    std::printf(
        "], \"members_alive\": %.0f, \"published_per_s\": %.0f, \"delivered_per_s\": %.0f, "
        "\"rpc_p50_us\": %s, \"rpc_p99_us\": %s}\n",
        now.sum("ringmesh_membership_alive_members"),
        rate(now, before, seconds, "ringmesh_published_total"),
        rate(now, before, seconds, "ringmesh_delivered_total"),
        rpc_p50 < 0 ? "null" : micros(rpc_p50).c_str(),
        rpc_p99 < 0 ? "null" : micros(rpc_p99).c_str());
    std::fflush(stdout);
}

int run(int argc, char** argv) {
    CLI::App app{"ringmesh top: a live view of a running node, from its metrics endpoint"};
    view_options o;
    app.add_option("address", o.address, "the node's metrics address (host:port)");
    app.add_option("--interval", o.interval, "seconds between refreshes")
        ->check(CLI::Range(0.1, 3600.0));
    app.add_option("--count", o.count, "refreshes, then exit (0: until interrupted)")
        ->check(CLI::Range(0, 1'000'000));
    app.add_flag("--json", o.json, "one JSON object per refresh instead of the view");
    CLI11_PARSE(app, argc, argv);
    o.terminal = ::isatty(STDOUT_FILENO) != 0;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL* curl = curl_easy_init();
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, keep);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
    const std::string url = "http://" + o.address + "/metrics";
    scrape before;
    auto before_at = std::chrono::steady_clock::now();
    int exit_code = 0;
    for (int i = 0; o.count == 0 || i <= o.count; ++i) {
        const auto at = std::chrono::steady_clock::now();
        scrape now = fetch(curl, url);
        if (!now.ok) {
            std::fprintf(stderr, "ringmesh top: %s: %s\n", url.c_str(), now.error.c_str());
            exit_code = 1;
            break;
        }
        const double seconds = std::chrono::duration<double>(at - before_at).count();
        // The first scrape only sets the baseline for rates (shown, without them, in the view).
        if (o.json) {
            if (i > 0) print_json(now, before, seconds);
        } else {
            // On a terminal the baseline is shown at once; into a pipe or a file only views
            // with rates are written, one after another.
            if (o.terminal || i > 0)
                print_view(o, now, i > 0 ? before : now, i > 0 ? seconds : 0, i == 0);
        }
        before = std::move(now);
        before_at = at;
        if (o.count != 0 && i == o.count) break;
        std::this_thread::sleep_for(std::chrono::duration<double>(o.interval));  // the refresh
    }
    curl_easy_cleanup(curl);
    return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ringmesh top: %s\n", e.what());
        return 1;
    }
}
