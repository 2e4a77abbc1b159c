// etcd in the replicate scenario: a 3-member etcd cluster (Debian's etcd-server) on loopback,
// driven through its v3 JSON gateway (POST /v3/kv/put over HTTP/1.1, keep-alive) with libcurl:
// one client awaiting each put (latency), then many clients with one put outstanding each
// (throughput), every request to the leader as a Raft-aware client would send it. The gateway
// translates JSON to gRPC inside etcd; that costs etcd some microseconds a request, which a
// native gRPC client would not pay (say so next to the figures).
#include <curl/curl.h>
#include <openssl/evp.h>
#include <signal.h>

#include <chrono>
#include <thread>

#include "bench/replicate/child_process.h"
#include "bench/replicate/replicate.h"
#include "engine/core/clock.h"

namespace ringmesh::bench {
namespace {

constexpr int members = 3;

std::string base64(const std::string& in) {
    std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(in.data()),
                                  static_cast<int>(in.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::size_t keep_body(char* data, std::size_t size, std::size_t n, void* out) {
    static_cast<std::string*>(out)->append(data, size * n);
    return size * n;
}

/// One keep-alive HTTP client: a curl easy handle posting JSON to one etcd member.
struct http_client {
    CURL* curl = curl_easy_init();
    std::string body, response;
    time_ns started = 0;
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");

    http_client(const std::string& url, std::string request_body) : body(std::move(request_body)) {
        curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, keep_body);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10'000L);
        curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(curl, CURLOPT_PRIVATE, this);
    }
    ~http_client() {
        curl_easy_cleanup(curl);
        curl_slist_free_all(headers);
    }
    http_client(const http_client&) = delete;
    http_client& operator=(const http_client&) = delete;

    /// One blocking request; the HTTP status (0 when it failed).
    long perform() {
        response.clear();
        if (curl_easy_perform(curl) != CURLE_OK) return 0;
        long code = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
        return code;
    }
};

std::string json_field(const std::string& body, const std::string& key) {
    const std::size_t at = body.find("\"" + key + "\":\"");
    if (at == std::string::npos) return {};
    const std::size_t from = at + key.size() + 4;
    return body.substr(from, body.find('"', from) - from);
}

struct etcd_cluster {
    std::vector<child_process> processes;
    int client_base = 0, peer_base = 0;
    ~etcd_cluster() {
        for (child_process& p : processes)
            stop_child(p, SIGTERM);
    }
    std::string url(int i, const char* path) const {
        return "http://127.0.0.1:" + std::to_string(client_base + i) + path;
    }
};

std::string start_cluster(etcd_cluster& c, const std::string& dir) {
    const std::string etcd = find_program("etcd");
    if (etcd.empty()) return "etcd is not installed (Debian etcd-server)";
    c.client_base = reserve_ports(members);
    c.peer_base = reserve_ports(members);
    std::string initial;
    for (int i = 0; i < members; ++i)
        initial += (i ? "," : "") + std::string("e") + std::to_string(i + 1) +
                   "=http://127.0.0.1:" + std::to_string(c.peer_base + i);
    for (int i = 0; i < members; ++i) {
        const std::string name = "e" + std::to_string(i + 1);
        const std::string client = "http://127.0.0.1:" + std::to_string(c.client_base + i);
        const std::string peer = "http://127.0.0.1:" + std::to_string(c.peer_base + i);
        c.processes.push_back(spawn_child(name, etcd,
                                          {"--name",
                                           name,
                                           "--data-dir",
                                           in_dir(dir, name),
                                           "--listen-client-urls",
                                           client,
                                           "--advertise-client-urls",
                                           client,
                                           "--listen-peer-urls",
                                           peer,
                                           "--initial-advertise-peer-urls",
                                           peer,
                                           "--initial-cluster",
                                           initial,
                                           "--initial-cluster-token",
                                           "ringmesh-bench",
                                           "--initial-cluster-state",
                                           "new",
                                           "--logger",
                                           "zap",
                                           "--log-level",
                                           "warn"},
                                          in_dir(dir, name + ".log")));
    }
    for (int i = 0; i < members; ++i) {
        if (!wait_listening(c.processes[static_cast<std::size_t>(i)], c.client_base + i, 30))
            return "etcd e" + std::to_string(i + 1) +
                   " did not start: " + tail_of(c.processes[static_cast<std::size_t>(i)].log);
    }
    return {};
}

/// The member that leads (from /v3/maintenance/status), once there is one; -1 after 30 s.
int find_leader(const etcd_cluster& c) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < until) {
        for (int i = 0; i < members; ++i) {
            http_client status(c.url(i, "/v3/maintenance/status"), "{}");
            if (status.perform() != 200) continue;
            const std::string leader = json_field(status.response, "leader");
            if (!leader.empty() && leader == json_field(status.response, "member_id")) return i;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));  // paces the polling
    }
    return -1;
}

std::string put_body(int key, const std::string& value64) {
    return "{\"key\":\"" + base64("bench/k" + std::to_string(key)) + "\",\"value\":\"" + value64 +
           "\"}";
}

measured put_one_client(const std::string& url, const std::string& value64, double seconds) {
    latency_histogram h;
    const time_ns start = monotonic_clock::read();
    const time_ns end = start + static_cast<time_ns>(seconds * 1e9);
    time_ns now = start;
    http_client client(url, put_body(0, value64));
    for (int i = 0; now < end; ++i) {
        const time_ns t0 = monotonic_clock::read();
        const long code = client.perform();
        now = monotonic_clock::read();
        if (code != 200)
            return measured::failed("put: HTTP " + std::to_string(code) + " " + client.response);
        h.record(now - t0);
    }
    return measured::from(h, static_cast<double>(now - start) / 1e9);
}

measured put_many_clients(const std::string& url, const std::string& value64, int clients,
                          double seconds) {
    CURLM* multi = curl_multi_init();
    std::vector<std::unique_ptr<http_client>> handles;
    for (int i = 0; i < clients; ++i) {
        handles.push_back(std::make_unique<http_client>(url, put_body(i, value64)));
        handles.back()->started = monotonic_clock::read();
        curl_multi_add_handle(multi, handles.back()->curl);
    }
    latency_histogram h;
    std::uint64_t failed = 0;
    const time_ns start = monotonic_clock::read();
    const time_ns end = start + static_cast<time_ns>(seconds * 1e9);
    int running = clients;
    while (running > 0) {
        curl_multi_perform(multi, &running);
        int queued = 0;
        while (CURLMsg* m = curl_multi_info_read(multi, &queued)) {
            if (m->msg != CURLMSG_DONE) continue;
            http_client* c = nullptr;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &c);
            long code = 0;
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            const time_ns now = monotonic_clock::read();
            if (m->data.result == CURLE_OK && code == 200) {
                h.record(now - c->started);
            } else {
                ++failed;
            }
            curl_multi_remove_handle(multi, c->curl);
            c->response.clear();
            if (now < end) {  // this client's next put
                c->started = now;
                curl_multi_add_handle(multi, c->curl);
                ++running;
            }
        }
        if (running > 0) curl_multi_poll(multi, nullptr, 0, 100, nullptr);
    }
    const double elapsed = static_cast<double>(monotonic_clock::read() - start) / 1e9;
    handles.clear();  // (removed from the multi handle above)
    curl_multi_cleanup(multi);
    measured r = measured::from(h, elapsed);
    if (failed != 0) r.error = std::to_string(failed) + " puts failed";
    return r;
}

}  // namespace

replicate_figures run_etcd(const replicate_options& o, const std::string& dir) {
    replicate_figures f;
    f.system = "etcd";
    f.acknowledgement = "WAL fdatasync'd on a majority, applied (v3 JSON gateway)";
    curl_global_init(CURL_GLOBAL_DEFAULT);
    etcd_cluster cluster;
    if (std::string why = start_cluster(cluster, dir); !why.empty()) {
        f.error = why;
        return f;
    }
    const int leader = find_leader(cluster);
    if (leader < 0) {
        f.error = "no etcd leader in 30 s: " + tail_of(cluster.processes[0].log);
        return f;
    }
    const std::string value64 = base64(std::string(o.payload_bytes, 'e'));
    const std::string url = cluster.url(leader, "/v3/kv/put");
    f.put_one = put_one_client(url, value64, o.seconds);
    f.put_many = put_many_clients(url, value64, o.kv_clients, o.seconds);
    return f;
}

}  // namespace ringmesh::bench
