// The cross-shard hop of the messaging API (shard_messaging.h), in isolation: a publish on
// shard 1 delivered to a subscriber on shard 0 of the same node, against the same publish
// issued on shard 0 itself. No network: what is left is the record, the batch, the ring and
// the hand-back. Two ways: as fast as the bound admits (messages/s, with the latency each
// message saw, queueing included), and one message outstanding (the hop's own latency).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <vector>

#include "bench/micro/micro_support.h"
#include "engine/core/clock.h"
#include "engine/messaging/shard_messaging.h"
#include "engine/node.h"

namespace rm = ringmesh;
namespace msg = ringmesh::messaging;

namespace {

struct hop_probe {
    // main -> publisher: publish this many
    std::atomic<std::uint64_t> requested{0};
    // subscriber -> main (futex-waited) and publisher (one outstanding)
    std::atomic<std::uint64_t> delivered{0};
    // main -> subscriber: wake main once this many are delivered (a wake per message would
    // be a futex call per message, measured instead of the hop)
    std::atomic<std::uint64_t> wake_at{0};
    bool one_outstanding = false;
    // publisher's
    std::uint64_t published = 0, target = 0;
    // subscriber's, read by main once `delivered` reaches the target
    std::vector<rm::time_ns> latencies;
    rm::time_ns first_sent_ns = 0, last_delivered_ns = 0;
};

std::size_t publish_step(msg::shard_messaging& m, hop_probe* p) {
    if (!m.subscribed_on_node("bench/hop")) return 0;  // shard 0's pattern has not come yet
    if (p->published == p->target) {
        const std::uint64_t want = p->requested.exchange(0, std::memory_order_acquire);
        if (want == 0) return 0;
        p->target += want;
    }
    std::size_t work = 0;
    std::byte payload[64] = {};
    // A bounded burst per iteration: the loop's other steps (the flush) run between bursts.
    for (int i = 0; i < 256 && p->published < p->target; ++i) {
        if (p->one_outstanding && p->delivered.load(std::memory_order_acquire) < p->published) {
            break;
        }
        const rm::time_ns now = rm::monotonic_clock::read();
        std::memcpy(payload, &now, sizeof now);
        if (m.publish("bench/hop", payload) != msg::outcome::accepted) break;
        ++p->published;
        ++work;
    }
    return work;
}

void on_delivery(const msg::message& m, hop_probe* p) {
    rm::time_ns sent = 0;
    std::memcpy(&sent, m.bytes.data(), sizeof sent);
    const rm::time_ns now = rm::monotonic_clock::read();
    p->latencies.push_back(now - sent);
    p->last_delivered_ns = now;
    const std::uint64_t now_delivered = p->delivered.fetch_add(1, std::memory_order_release) + 1;
    if (now_delivered >= p->wake_at.load(std::memory_order_relaxed)) p->delivered.notify_one();
}

void BM_PublishHop(benchmark::State& state) {
    const auto publisher = static_cast<rm::shard_id>(state.range(0));
    auto n = rm::bench::busy_node(state, 2);
    if (!n) return;
    hop_probe probe;
    probe.one_outstanding = state.range(1) == 1;
    probe.latencies.reserve(50'000'000);
    msg::messaging_directory directory("bench", {0, 1});
    std::unique_ptr<msg::shard_messaging> per_shard[2];
    auto* p = &probe;
    if (auto started = n->start([&, p](rm::shard& s) {
            auto& mine = per_shard[s.id()];
            mine = std::make_unique<msg::shard_messaging>(s, directory, nullptr);
            s.on_stop([&mine] { mine.reset(); });
            if (s.id() == 0) {
                mine->subscribe("bench/hop", [p](const msg::message& m) { on_delivery(m, p); });
            }
            if (s.id() == publisher) {
                msg::shard_messaging* m = mine.get();
                s.add_poller(rm::poll_step::protocol,
                             [m, p](rm::time_ns) { return publish_step(*m, p); });
            }
        });
        !started) {
        state.SkipWithError(started.err().message().c_str());
        return;
    }
    const std::uint64_t per_iteration = probe.one_outstanding ? 2'000 : 200'000;
    std::uint64_t expected = 0;
    for (auto _ : state) {
        const rm::time_ns start = rm::monotonic_clock::read();
        expected += per_iteration;
        probe.wake_at.store(expected, std::memory_order_relaxed);
        probe.requested.store(per_iteration, std::memory_order_release);
        for (std::uint64_t seen = probe.delivered.load(std::memory_order_acquire); seen < expected;
             seen = probe.delivered.load(std::memory_order_acquire)) {
            probe.delivered.wait(seen, std::memory_order_acquire);  // leaves the cores
        }
        // From the request to the last delivery; the waking of this thread is not in it.
        const rm::time_ns took = probe.last_delivered_ns - start;
        state.SetIterationTime(static_cast<double>(took) / 1e9);
    }
    n->stop();
    state.SetItemsProcessed(static_cast<std::int64_t>(expected));
    std::sort(probe.latencies.begin(), probe.latencies.end());
    state.counters["p50_ns"] = rm::bench::percentile(probe.latencies, 0.5);
    state.counters["p99_ns"] = rm::bench::percentile(probe.latencies, 0.99);
}

// Args: publishing shard (0: the subscriber's own, 1: across the hop), outstanding (0: as
// many as the bound admits, 1: one at a time).
BENCHMARK(BM_PublishHop)->Name("shard_hop/publish/same_shard")->Args({0, 0})->UseManualTime();
BENCHMARK(BM_PublishHop)->Name("shard_hop/publish/cross_shard")->Args({1, 0})->UseManualTime();
BENCHMARK(BM_PublishHop)
    ->Name("shard_hop/publish_one_outstanding/same_shard")
    ->Args({0, 1})
    ->UseManualTime();
BENCHMARK(BM_PublishHop)
    ->Name("shard_hop/publish_one_outstanding/cross_shard")
    ->Args({1, 1})
    ->UseManualTime();

}  // namespace
