// A node's metrics endpoint as an operator meets it: ringmesh_node processes under load,
// scraped over HTTP like Prometheus would; the exposition checked by Prometheus' own
// `promtool check metrics`; counters rising between scrapes; /healthz and /readyz answering
// with their status codes (not ready while a peer is unreachable, or while a replication
// group has no leader); a metrics address that cannot be had refused at start-up; and the live
// view (ringmesh_top, argv[2]) reading a node under load.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/process_util.h"

namespace {

using namespace ringmesh::it;

struct http_answer {
    int status = 0;  // 0: no answer
    std::string body;
};

// A plain HTTP/1.0 GET on loopback (the test's own client: what curl would do).
http_answer http_get(int port, const std::string& path) {
    http_answer a;
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<std::uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        ::close(fd);
        return a;
    }
    const std::string request = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size())) {
        ::close(fd);
        return a;
    }
    std::string response;
    char buf[16384];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
        response.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    const std::size_t space = response.find(' ');
    const std::size_t body = response.find("\r\n\r\n");
    if (space == std::string::npos || body == std::string::npos) return a;
    a.status = std::atoi(response.c_str() + space + 1);
    a.body = response.substr(body + 4);
    return a;
}

// The value of the first sample line starting with `series` (name and labels as exposed).
std::optional<double> sample_value(const std::string& exposition, const std::string& series) {
    std::size_t at = 0;
    while ((at = exposition.find(series, at)) != std::string::npos) {
        if (at == 0 || exposition[at - 1] == '\n') {
            const std::size_t space = exposition.find(' ', at + series.size());
            if (space != std::string::npos) return std::stod(exposition.substr(space + 1));
        }
        at += series.size();
    }
    return std::nullopt;
}

// Waits (bounded) for an answer that satisfies `good`.
template <typename Good>
http_answer wait_for_answer(int port, const std::string& path, Good&& good, int seconds = 20) {
    http_answer a;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < until) {
        a = http_get(port, path);
        if (good(a)) return a;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));  // paces the polling
    }
    return a;
}

// `promtool check metrics` on an exposition: its exit status and what it said.
std::pair<int, std::string> promtool_check(const std::string& exposition) {
    const std::string in = temp_dir() + "/scrape.prom", out = temp_dir() + "/promtool.out";
    std::ofstream(in) << exposition;
    const int rc = std::system(("promtool check metrics < " + in + " > " + out + " 2>&1").c_str());
    std::ifstream said(out);
    std::stringstream text;
    text << said.rdbuf();
    return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, text.str()};
}

bool have_promtool() {
    return sh("command -v promtool") == 0;
}

TEST(MetricsTest, AScrapeUnderLoadPassesPromtoolAndItsCountersRise) {
    ASSERT_TRUE(have_promtool()) << "promtool (Debian prometheus) is installed by tools/ringmesh";
    const int sub_port = free_port(), pub_port = free_port(), metrics_port = free_port();
    process sub =
        spawn("metrics-sub", {"--id", "sub", "--listen", addr(sub_port), "--subscribe", "it/**",
                              "--rpc", "pub", "--metrics", addr(metrics_port), "--seconds", "30"});
    ASSERT_TRUE(wait_listening(sub_port)) << output_of(sub);
    process pub = spawn("metrics-pub", {"--id", "pub", "--listen", addr(pub_port), "--peer",
                                        addr(sub_port), "--publish", "it/load", "--rate", "20000",
                                        "--seconds", "8", "--metrics", "off"});
    ASSERT_TRUE(wait_listening(metrics_port)) << output_of(sub);

    EXPECT_EQ(http_get(metrics_port, "/healthz").status, 200);
    const http_answer ready = wait_for_answer(metrics_port, "/readyz",
                                              [](const http_answer& a) { return a.status == 200; });
    EXPECT_EQ(ready.status, 200) << ready.body;

    const std::string delivered = "ringmesh_delivered_total{origin=\"remote\",shard=\"0\"}";
    const http_answer first = wait_for_answer(metrics_port, "/metrics", [&](const http_answer& a) {
        return sample_value(a.body, delivered).value_or(0) > 0;
    });
    ASSERT_EQ(first.status, 200);
    const double before = sample_value(first.body, delivered).value_or(0);
    ASSERT_GT(before, 0) << first.body;
    // (and an answered call: the subscriber calls the publisher once it has connected)
    const std::string answered = "ringmesh_rpc_latency_seconds_count{shard=\"0\"}";
    const http_answer second = wait_for_answer(metrics_port, "/metrics", [&](const http_answer& a) {
        return sample_value(a.body, delivered).value_or(0) > before &&
               sample_value(a.body, answered).value_or(0) > 0;
    });
    EXPECT_GT(sample_value(second.body, delivered).value_or(0), before) << "no deliveries counted";

    const auto [rc, said] = promtool_check(second.body);
    EXPECT_EQ(rc, 0) << said << "\n" << second.body.substr(0, 4000);
    for (const char* family :
         {"ringmesh_loop_iterations_total{shard=\"0\"}", "ringmesh_loop_busy_iterations_total",
          "ringmesh_transport_bytes_total{direction=\"received\"",
          "ringmesh_session_frames_delivered_total{peer=\"pub\"", "ringmesh_peers_connected",
          "ringmesh_node_ready{reason=\"ready\"", "ringmesh_metrics_stale_shards",
          "ringmesh_link_quality{peer=\"pub\"",
          "ringmesh_session_bytes_total{peer=\"pub\",direction=\"received\"",
          "ringmesh_session_connections_total{peer=\"pub\"",
          "ringmesh_topic_messages_total{topic=\"it/load\",direction=\"received\"",
          "ringmesh_rpc_latency_seconds_count", "ringmesh_log_lines_total{level=\"info\"}",
          "ringmesh_log_lines_suppressed_total"}) {
        EXPECT_NE(second.body.find(family), std::string::npos) << family << " missing";
    }
    // The live view, as a script reads it: one JSON object per refresh.
    if (!tool_binary.empty()) {
        process top =
            spawn_program("top", tool_binary,
                          {addr(metrics_port), "--json", "--count", "1", "--interval", "0.5"});
        EXPECT_EQ(wait_exit(top), 0) << output_of(top);
        const std::string view = output_of(top);
        EXPECT_NE(view.find("\"ready\": true"), std::string::npos) << view;
        EXPECT_NE(view.find("{\"peer\": \"pub\""), std::string::npos) << view;
        EXPECT_NE(view.find("\"shard\": 0"), std::string::npos) << view;
        EXPECT_NE(view.find("\"quality\": "), std::string::npos) << view;
        EXPECT_NE(view.find("{\"topic\": \"it/load\""), std::string::npos) << view;
        EXPECT_NE(view.find("\"bytes_in_per_s\": "), std::string::npos) << view;
    }
    EXPECT_EQ(wait_exit(pub), 0) << output_of(pub);
    ::kill(sub.pid, SIGTERM);
    EXPECT_EQ(wait_exit(sub), 0) << output_of(sub);
    std::printf("metrics: %zu bytes per scrape under load; %g deliveries counted, promtool: %s\n",
                second.body.size(), *sample_value(second.body, delivered),
                said.empty() ? "no findings" : said.c_str());
}

TEST(MetricsTest, ReplicaMetricsShowTheLeaderAndReadinessWaitsForIt) {
    ASSERT_TRUE(have_promtool()) << "promtool (Debian prometheus) is installed by tools/ringmesh";
    const std::string dir = temp_dir() + "/metrics-replicas";
    std::vector<int> ports, metrics_ports;
    for (int i = 0; i < 3; ++i) {
        ports.push_back(free_port());
        metrics_ports.push_back(free_port());
    }
    // One replica alone first: no quorum, so no leader, so not ready.
    auto args = [&](int i) {
        std::vector<std::string> a = {"--id",       "r" + std::to_string(i),
                                      "--listen",   addr(ports[i]),
                                      "--metrics",  addr(metrics_ports[i]),
                                      "--data-dir", dir + "/r" + std::to_string(i),
                                      "--idle",     "block",
                                      "--seconds",  "30"};
        for (int j = 0; j < 3; ++j) {
            a.insert(a.end(), {"--replica", "r" + std::to_string(j) + "=" + std::to_string(j + 1)});
            if (j < i) a.insert(a.end(), {"--peer", addr(ports[j])});
        }
        return a;
    };
    std::vector<process> nodes;
    nodes.push_back(spawn("metrics-r0", args(0)));
    ASSERT_TRUE(wait_listening(metrics_ports[0])) << output_of(nodes[0]);
    const http_answer lonely = http_get(metrics_ports[0], "/readyz");
    EXPECT_EQ(lonely.status, 503) << lonely.body;
    EXPECT_NE(lonely.body.find("no_leader_group_1"), std::string::npos) << lonely.body;

    for (int i = 1; i < 3; ++i)
        nodes.push_back(spawn("metrics-r" + std::to_string(i), args(i)));
    for (int i = 0; i < 3; ++i) {
        const http_answer ready = wait_for_answer(
            metrics_ports[i], "/readyz", [](const http_answer& a) { return a.status == 200; });
        EXPECT_EQ(ready.status, 200) << "r" << i << ": " << ready.body;
    }
    int leaders = 0;
    std::string leader_scrape;
    for (int i = 0; i < 3; ++i) {
        const http_answer m = http_get(metrics_ports[i], "/metrics");
        ASSERT_EQ(m.status, 200);
        if (sample_value(m.body, "ringmesh_raft_leader{group=\"1\",shard=\"0\"}").value_or(0) ==
            1) {
            ++leaders;
            leader_scrape = m.body;
        }
    }
    EXPECT_EQ(leaders, 1);
    ASSERT_FALSE(leader_scrape.empty());
    EXPECT_GE(
        sample_value(leader_scrape, "ringmesh_raft_term{group=\"1\",shard=\"0\"}").value_or(0), 1);
    EXPECT_NE(leader_scrape.find("ringmesh_raft_group_commit_seconds_bucket{group=\"1\""),
              std::string::npos);
    const auto [rc, said] = promtool_check(leader_scrape);
    EXPECT_EQ(rc, 0) << said;
    for (process& p : nodes) {
        ::kill(p.pid, SIGTERM);
        EXPECT_EQ(wait_exit(p), 0) << output_of(p);
    }
}

TEST(MetricsTest, AMetricsAddressThatCannotBeHadIsRefusedAtStartUp) {
    const int taken = free_port(), port = free_port();
    process holder = spawn("metrics-holder", {"--id", "holder", "--listen", addr(free_port()),
                                              "--metrics", addr(taken), "--seconds", "20"});
    ASSERT_TRUE(wait_listening(taken)) << output_of(holder);
    process second = spawn("metrics-second", {"--id", "second", "--listen", addr(port), "--metrics",
                                              addr(taken), "--seconds", "20"});
    EXPECT_NE(wait_exit(second), 0);
    EXPECT_NE(output_of(second).find("metrics: cannot listen on"), std::string::npos)
        << output_of(second);
    // Unreachable peer: alive, not ready, and says why.
    const http_answer health = http_get(taken, "/healthz");
    EXPECT_EQ(health.status, 200);
    ::kill(holder.pid, SIGTERM);
    EXPECT_EQ(wait_exit(holder), 0) << output_of(holder);

    const int lonely_metrics = free_port();
    process lonely = spawn("metrics-lonely", {"--id", "lonely", "--listen", addr(free_port()),
                                              "--peer", addr(free_port()), "--metrics",
                                              addr(lonely_metrics), "--seconds", "20"});
    ASSERT_TRUE(wait_listening(lonely_metrics)) << output_of(lonely);
    const http_answer not_ready = http_get(lonely_metrics, "/readyz");
    EXPECT_EQ(not_ready.status, 503);
    EXPECT_NE(not_ready.body.find("no_peer_connected"), std::string::npos) << not_ready.body;
    ::kill(lonely.pid, SIGTERM);
    EXPECT_EQ(wait_exit(lonely), 0) << output_of(lonely);
}

}  // namespace

int main(int argc, char** argv) {
    return run_with_node_binary(argc, argv);
}
