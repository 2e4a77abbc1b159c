// NATS JetStream in the replicate scenario: a 3-server nats-server cluster on loopback with
// JetStream on every server and one stream of 3 replicas in file storage, driven through
// NATS's C client (libnats): js_Publish awaiting each acknowledgement (latency), then
// js_PublishAsync with a window of outstanding acknowledgements (throughput).
#include <nats/nats.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>

#include "bench/replicate/child_process.h"
#include "bench/replicate/replicate.h"
#include "engine/core/clock.h"

namespace ringmesh::bench {
namespace {

constexpr int servers = 3;

struct jetstream_cluster {
    std::vector<child_process> processes;
    int client_base = 0, route_base = 0;
    ~jetstream_cluster() {
        for (child_process& p : processes)
            stop_child(p, SIGTERM);
    }
    std::string urls() const {
        std::string u;
        for (int i = 0; i < servers; ++i)
            u +=
                (i ? "," : "") + std::string("nats://127.0.0.1:") + std::to_string(client_base + i);
        return u;
    }
};

std::string start_cluster(jetstream_cluster& c, const std::string& dir) {
    const std::string server = find_program("nats-server");
    if (server.empty()) return "nats-server is not installed";
    c.client_base = reserve_ports(servers);
    c.route_base = reserve_ports(servers);
    for (int i = 0; i < servers; ++i) {
        const std::string name = "js" + std::to_string(i + 1);
        const std::string conf = in_dir(dir, name + ".conf");
        std::ofstream f(conf);
        f << "server_name: " << name << "\nlisten: 127.0.0.1:" << c.client_base + i
          << "\njetstream { store_dir: \"" << dir << "/" << name << "\" }\n"
          << "cluster {\n  name: ringmesh-bench\n  listen: 127.0.0.1:" << c.route_base + i
          << "\n  routes: [";
        for (int j = 0; j < servers; ++j) {
            if (j != i)
                f << " nats-route://127.0.0.1:" << c.route_base + j << (j + 1 < servers ? "," : "");
        }
        f << " ]\n}\n";
        f.close();
        c.processes.push_back(spawn_child(name, server, {"-c", conf}, in_dir(dir, name + ".log")));
    }
    for (int i = 0; i < servers; ++i) {
        if (!wait_listening(c.processes[static_cast<std::size_t>(i)], c.client_base + i, 20))
            return "nats-server js" + std::to_string(i + 1) +
                   " did not start: " + tail_of(c.processes[static_cast<std::size_t>(i)].log);
    }
    return {};
}

std::string nats_error(const char* what, natsStatus s, jsErrCode code = static_cast<jsErrCode>(0)) {
    std::string e = std::string(what) + ": " + natsStatus_GetText(s);
    if (code != 0) e += " (JetStream error " + std::to_string(static_cast<int>(code)) + ")";
    return e;
}

/// Creates the stream once the cluster has a meta leader (retrying for up to 30 s).
std::string add_stream(jsCtx* js) {
    const char* subjects[] = {"bench.>"};
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = "BENCH";
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Replicas = servers;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    natsStatus s = NATS_OK;
    jsErrCode code = static_cast<jsErrCode>(0);
    while (std::chrono::steady_clock::now() < until) {
        jsStreamInfo* info = nullptr;
        s = js_AddStream(&info, js, &cfg, nullptr, &code);
        if (s == NATS_OK) {
            jsStreamInfo_Destroy(info);
            return {};
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));  // paces the retries
    }
    return nats_error("js_AddStream", s, code);
}

measured publish_each(jsCtx* js, const std::vector<char>& payload, double seconds) {
    latency_histogram h;
    const time_ns start = monotonic_clock::read();
    const time_ns end = start + static_cast<time_ns>(seconds * 1e9);
    time_ns now = start;
    while (now < end) {
        jsPubAck* ack = nullptr;
        jsErrCode code = static_cast<jsErrCode>(0);
        const time_ns t0 = monotonic_clock::read();
        const natsStatus s = js_Publish(&ack, js, "bench.one", payload.data(),
                                        static_cast<int>(payload.size()), nullptr, &code);
        now = monotonic_clock::read();
        if (s != NATS_OK) return measured::failed(nats_error("js_Publish", s, code));
        jsPubAck_Destroy(ack);
        h.record(now - t0);
    }
    return measured::from(h, static_cast<double>(now - start) / 1e9);
}

void count_error(jsCtx*, jsPubAckErr*, void* closure) {
    static_cast<std::atomic<std::uint64_t>*>(closure)->fetch_add(1);
}

measured publish_windowed(natsConnection* nc, int window, const std::vector<char>& payload,
                          double seconds) {
    std::atomic<std::uint64_t> errors{0};
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = window;
    jo.PublishAsync.ErrHandler = count_error;
    jo.PublishAsync.ErrHandlerClosure = &errors;
    jsCtx* js = nullptr;
    if (natsStatus s = natsConnection_JetStream(&js, nc, &jo); s != NATS_OK)
        return measured::failed(nats_error("natsConnection_JetStream", s));
    std::uint64_t sent = 0;
    const time_ns start = monotonic_clock::read();
    const time_ns end = start + static_cast<time_ns>(seconds * 1e9);
    while (monotonic_clock::read() < end) {
        // Blocks (StallWait) while `window` acknowledgements are outstanding.
        const natsStatus s = js_PublishAsync(js, "bench.window", payload.data(),
                                             static_cast<int>(payload.size()), nullptr);
        if (s == NATS_TIMEOUT) continue;
        if (s != NATS_OK) {
            jsCtx_Destroy(js);
            return measured::failed(nats_error("js_PublishAsync", s));
        }
        ++sent;
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 30'000;
    const natsStatus s = js_PublishAsyncComplete(js, &po);
    const time_ns done = monotonic_clock::read();
    jsCtx_Destroy(js);
    if (s != NATS_OK) return measured::failed(nats_error("js_PublishAsyncComplete", s));
    measured m;
    m.count = sent - std::min(sent, errors.load());
    m.ok = m.count > 0;
    m.seconds = static_cast<double>(done - start) / 1e9;
    if (errors.load() != 0) m.error = std::to_string(errors.load()) + " publishes refused";
    return m;
}

}  // namespace

replicate_figures run_jetstream(const replicate_options& o, const std::string& dir) {
    replicate_figures f;
    f.system = "jetstream";
    f.acknowledgement = "in memory on 2 of 3 servers (nats-server syncs to disk every 2 min)";
    jetstream_cluster cluster;
    if (std::string why = start_cluster(cluster, dir); !why.empty()) {
        f.error = why;
        return f;
    }
    natsConnection* nc = nullptr;
    natsStatus s = NATS_ERR;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < until &&
           (s = natsConnection_ConnectTo(&nc, cluster.urls().c_str())) != NATS_OK) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));  // paces the retries
    }
    if (s != NATS_OK) {
        f.error = nats_error("connect", s);
        return f;
    }
    jsCtx* js = nullptr;
    if ((s = natsConnection_JetStream(&js, nc, nullptr)) != NATS_OK) {
        f.error = nats_error("natsConnection_JetStream", s);
    } else if (std::string why = add_stream(js); !why.empty()) {
        f.error = why;
    } else {
        const std::vector<char> payload(o.payload_bytes, 'j');
        f.publish_one = publish_each(js, payload, o.seconds);
        f.publish_window = publish_windowed(nc, o.window, payload, o.seconds);
    }
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return f;
}

}  // namespace ringmesh::bench
