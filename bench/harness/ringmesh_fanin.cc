// fanin's receiving side: one ringmesh node with c.receiver_shards shards, an endpoint on
// each (endpoint k listens on the base port + k), taking two publishers' streams. The
// publishers dial the base port and are sent on to the shard that owns them
// (shard_for_peer: "bench-pub-0" on shard 0, "bench-pub-1" on shard 1), so with two shards
// each receives one stream on a core of its own, with one both. Messages are counted where
// they arrive; the run ends when both publishers' end markers have.
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/harness/harness.h"
#include "engine/messaging/endpoint.h"
#include "engine/node.h"
#include "transport/uring/uring_transport.h"

namespace ringmesh::bench {
namespace {

constexpr std::uint32_t bench_stream = 16;

/// One shard's share: its endpoint and what it counted (plain fields: its shard's; read by
/// main after the node stopped).
struct receiving_shard {
    std::unique_ptr<messaging::endpoint> ep;
    std::uint64_t messages = 0;
    time_ns first_ns = 0;
    std::string failure;
};

}  // namespace

run_result ringmesh_fanin_receiver(const run_config& c) {
    const int shards = std::max(1, c.receiver_shards);
    node_config nc;
    nc.shard_count = static_cast<std::uint32_t>(shards);
    nc.cores = {c.receiver_core};
    if (shards > 1) nc.cores.push_back(c.sender_core);
    nc.shard.idle.kind = c.block ? idle_kind::block : idle_kind::busy_spin;
    // The harness pinned this process to the receiver core; its second shard needs the other.
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    for (int core : nc.cores)
        CPU_SET(core, &allowed);
    ::sched_setaffinity(0, sizeof allowed, &allowed);
    auto n = node::create(nc);
    if (!n) return run_result::failed("ringmesh: " + n.err().message());
    std::vector<receiving_shard> parts(static_cast<std::size_t>(shards));
    std::atomic<int> ends{0};
    auto started = (*n)->start([&](shard& sh) {
        receiving_shard& me = parts[sh.id()];
        auto t = transport::uring_transport::create({}, sh.id());
        if (!t) {
            me.failure = t.err().message();
            return;
        }
        messaging::endpoint_config ec;
        ec.node_id = "bench-recv";
        ec.cluster_id = "bench";
        ec.incarnation = 42;  // one process to the peers, whichever endpoint they reach
        ec.node_shards = static_cast<std::uint32_t>(shards);
        ec.node_shard = sh.id();
        ec.listen = *transport::address::parse("127.0.0.1:" + std::to_string(c.port + sh.id()));
        auto e = messaging::endpoint::create(sh, std::move(t).value(), ec);
        if (!e) {
            me.failure = e.err().message();
            return;
        }
        me.ep = std::move(e).value();
        receiving_shard* mp = &me;
        me.ep->on_stream(bench_stream, [mp, &ends](const messaging::message& m) {
            if (kind_of(m.bytes.data()) == msg_end) {
                ends.fetch_add(1);
                return;
            }
            // The clock only at the edges (a read costs as much as a small message): the
            // first message here, and the run ends when main sees both end markers.
            if (mp->messages++ == 0) mp->first_ns = monotonic_clock::read();
        });
        sh.on_stop([mp] { mp->ep.reset(); });
    });
    for (const auto& p : parts) {
        if (!p.failure.empty()) {
            (*n)->stop();
            return run_result::failed("ringmesh: " + p.failure);
        }
    }
    if (!started) return run_result::failed("ringmesh: " + started.err().message());
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(c.seconds + 30);
    while (ends.load() < sender_count(c) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));  // paces the wait
    const time_ns ended = monotonic_clock::read();
    (*n)->stop();
    run_result r;
    r.ok = ends.load() == sender_count(c);
    if (!r.ok) std::strcpy(r.error, "a publisher's end marker never arrived");
    time_ns first = 0;
    for (const auto& p : parts) {
        r.messages += p.messages;
        if (p.messages > 0 && (first == 0 || p.first_ns < first)) first = p.first_ns;
    }
    r.seconds = first > 0 ? static_cast<double>(ended - first) / 1e9 : 0;
    return r;
}

}  // namespace ringmesh::bench
