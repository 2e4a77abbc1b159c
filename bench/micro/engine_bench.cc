// Micro-benchmarks of the engine core, each next to the baseline it wraps or replaces, in one
// binary so that the ratio is measured under the same conditions:
//   ring single/bulk   engine spsc_ring   vs raw boost::lockfree::spsc_queue (2 threads)
//   submit_to          cross-shard round trip on a running 2-shard node (p50/p99 counters)
//   timers             timer_wheel        vs std::multimap ordered by deadline
//   buffers            buffer_pool        vs operator new/delete
// At the end a summary prints engine/raw throughput ratios (medians of the repetitions).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/lockfree/spsc_queue.hpp>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "bench/micro/micro_support.h"
#include "engine/core/buffer_pool.h"
#include "engine/core/spsc_ring.h"
#include "engine/core/timer_wheel.h"
#include "engine/node.h"

namespace rm = ringmesh;

namespace {

constexpr std::size_t ring_capacity = 4096;
constexpr std::size_t items_per_iteration = 1 << 20;

struct raw_ring {
    boost::lockfree::spsc_queue<std::uint64_t> q{ring_capacity};
    bool push(std::uint64_t v) { return q.push(v); }
    bool pop(std::uint64_t& v) { return q.pop(v); }
    std::size_t push_bulk(const std::uint64_t* p, std::size_t n) { return q.push(p, n); }
    std::size_t pop_bulk(std::uint64_t* p, std::size_t n) { return q.pop(p, n); }
};

struct engine_ring {
    rm::spsc_ring<std::uint64_t> r{ring_capacity};
    bool push(std::uint64_t v) { return r.try_push(v); }
    bool pop(std::uint64_t& v) { return r.try_pop(v); }
    std::size_t push_bulk(const std::uint64_t* p, std::size_t n) {
        return r.push_bulk(std::span<const std::uint64_t>(p, n));
    }
    std::size_t pop_bulk(std::uint64_t* p, std::size_t n) {
        return r.pop_bulk(std::span<std::uint64_t>(p, n));
    }
};

void pin_this_thread(int core) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(core % static_cast<int>(std::max(1u, std::thread::hardware_concurrency())), &set);
    ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set);
}

void unpin_this_thread() {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (unsigned cpu = 0; cpu < std::max(1u, std::thread::hardware_concurrency()); ++cpu) {
        CPU_SET(cpu, &set);
    }
    ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set);
}

// Producer on the benchmark thread (core 0), consumer on a second thread (core 1).
template <typename Ring, bool Bulk>
void BM_Ring(benchmark::State& state) {
    Ring ring;
    const std::size_t batch = Bulk ? static_cast<std::size_t>(state.range(0)) : 1;
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> consumed{0};
    pin_this_thread(0);
    std::thread consumer([&] {
        pin_this_thread(1);
        std::array<std::uint64_t, 256> out{};
        std::uint64_t count = 0, expected = 0;
        while (!stop.load(std::memory_order_relaxed)) {
            std::size_t n;
            if constexpr (Bulk) {
                n = ring.pop_bulk(out.data(), out.size());
            } else {
                n = ring.pop(out[0]) ? 1 : 0;
            }
            for (std::size_t i = 0; i < n; ++i)
                expected += (out[i] == expected);
            count += n;
        }
        consumed.store(count);
        benchmark::DoNotOptimize(expected);
    });
    std::array<std::uint64_t, 256> in{};
    std::uint64_t next = 0;
    for (auto _ : state) {
        const std::uint64_t end = next + items_per_iteration;
        while (next < end) {
            if constexpr (Bulk) {
                for (std::size_t i = 0; i < batch; ++i)
                    in[i] = next + i;
                next += ring.push_bulk(in.data(), std::min<std::uint64_t>(batch, end - next));
            } else {
                next += ring.push(next) ? 1 : 0;
            }
        }
    }
    stop.store(true);
    consumer.join();
    unpin_this_thread();
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * items_per_iteration));
}

BENCHMARK(BM_Ring<raw_ring, false>)->Name("ring/single/raw_spsc_queue")->UseRealTime();
BENCHMARK(BM_Ring<engine_ring, false>)->Name("ring/single/engine")->UseRealTime();
BENCHMARK(BM_Ring<raw_ring, true>)->Name("ring/bulk/raw_spsc_queue")->Arg(64)->UseRealTime();
BENCHMARK(BM_Ring<engine_ring, true>)->Name("ring/bulk/engine")->Arg(64)->UseRealTime();

// ---- cross-shard submit_to round trip on a live node ----

struct round_trip_probe {
    std::atomic<std::uint32_t> requested{0};  // main -> shard 0: run this many round trips
    std::atomic<std::uint32_t> completed{0};  // shard 0 -> main (futex-waited)
    std::uint32_t remaining = 0;              // shard 0
    bool in_flight = false;                   // shard 0
    rm::time_ns sent_ns = 0;                  // shard 0
    rm::time_ns batch_ns = 0;                 // shard 0, read by main after `completed`
    std::vector<rm::time_ns> samples;         // shard 0, read by main after `completed`
};

void on_round_trip_back(round_trip_probe* p) {
    const rm::time_ns now = rm::monotonic_clock::read();
    p->samples.push_back(now - p->sent_ns);
    p->batch_ns += now - p->sent_ns;
    p->in_flight = false;
    if (--p->remaining == 0) {
        p->completed.fetch_add(1, std::memory_order_release);
        p->completed.notify_one();
    }
}

std::size_t drive_round_trips(rm::shard& s, round_trip_probe* p) {
    if (p->remaining == 0) {
        const std::uint32_t want = p->requested.exchange(0, std::memory_order_acquire);
        if (want == 0) return 0;
        p->remaining = want;
        p->batch_ns = 0;
    }
    if (p->in_flight) return 0;
    p->in_flight = true;
    p->sent_ns = rm::monotonic_clock::read();
    s.submit_to(1, [p](rm::shard& peer) { peer.submit_to(0, [p] { on_round_trip_back(p); }); });
    return 1;
}

void BM_SubmitToRoundTrip(benchmark::State& state) {
    auto n = rm::bench::busy_node(state, 2);
    if (!n) return;
    round_trip_probe probe;
    probe.samples.reserve(10'000'000);
    auto* p = &probe;
    if (auto started = n->start([p](rm::shard& s) {
            if (s.id() == 0) {
                s.add_poller(rm::poll_step::protocol,
                             [&s, p](rm::time_ns) { return drive_round_trips(s, p); });
            }
        });
        !started) {
        state.SkipWithError(started.err().message().c_str());
        return;
    }
    constexpr std::uint32_t per_iteration = 1000;
    std::uint32_t done = 0;
    for (auto _ : state) {
        probe.requested.store(per_iteration, std::memory_order_release);
        probe.completed.wait(done, std::memory_order_acquire);  // blocks: leaves the cores
        done = probe.completed.load(std::memory_order_acquire);
        // One iteration is a batch of round trips; the waking of this thread is not in it.
        state.SetIterationTime(static_cast<double>(probe.batch_ns) / 1e9);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * per_iteration));
    n->stop();
    std::sort(probe.samples.begin(), probe.samples.end());
    state.counters["p50_ns"] = rm::bench::percentile(probe.samples, 0.5);
    state.counters["p99_ns"] = rm::bench::percentile(probe.samples, 0.99);
    state.counters["p99.9_ns"] = rm::bench::percentile(probe.samples, 0.999);
}
BENCHMARK(BM_SubmitToRoundTrip)->Name("submit_to/round_trip")->UseManualTime();

// ---- timers ----

constexpr int timer_batch = 10000;

void BM_TimerWheelScheduleCancel(benchmark::State& state) {
    rm::timer_wheel wheel(0);
    std::vector<rm::timer_id> ids(timer_batch);
    rm::time_ns t = 0;
    for (auto _ : state) {
        for (int i = 0; i < timer_batch; ++i)
            ids[i] = wheel.schedule_at(t + rm::time_ns{i % 997} * 1000, [] {});
        for (auto id : ids)
            wheel.cancel(id);
        t += 1000;
    }
    state.SetItemsProcessed(state.iterations() * timer_batch);
}
BENCHMARK(BM_TimerWheelScheduleCancel)->Name("timers/schedule_cancel/engine");

void BM_MultimapScheduleCancel(benchmark::State& state) {
    std::multimap<rm::time_ns, std::function<void()>> timers;
    std::vector<decltype(timers)::iterator> ids(timer_batch);
    rm::time_ns t = 0;
    for (auto _ : state) {
        for (int i = 0; i < timer_batch; ++i)
            ids[i] = timers.emplace(t + rm::time_ns{i % 997} * 1000, [] {});
        for (auto id : ids)
            timers.erase(id);
        t += 1000;
    }
    state.SetItemsProcessed(state.iterations() * timer_batch);
}
BENCHMARK(BM_MultimapScheduleCancel)->Name("timers/schedule_cancel/raw_multimap");

void BM_TimerWheelScheduleExpire(benchmark::State& state) {
    rm::timer_wheel wheel(0);
    rm::time_ns t = 0;
    std::size_t fired = 0;
    for (auto _ : state) {
        for (int i = 0; i < timer_batch; ++i)
            wheel.schedule_at(t + rm::time_ns{i % 997} * 1000, [&fired] { ++fired; });
        t += 1'000'000;
        wheel.advance(t);
    }
    benchmark::DoNotOptimize(fired);
    state.SetItemsProcessed(state.iterations() * timer_batch);
}
BENCHMARK(BM_TimerWheelScheduleExpire)->Name("timers/schedule_expire/engine");

void BM_MultimapScheduleExpire(benchmark::State& state) {
    std::multimap<rm::time_ns, std::function<void()>> timers;
    rm::time_ns t = 0;
    std::size_t fired = 0;
    for (auto _ : state) {
        for (int i = 0; i < timer_batch; ++i)
            timers.emplace(t + rm::time_ns{i % 997} * 1000, [&fired] { ++fired; });
        t += 1'000'000;
        while (!timers.empty() && timers.begin()->first <= t) {
            auto fn = std::move(timers.begin()->second);
            timers.erase(timers.begin());
            fn();
        }
    }
    benchmark::DoNotOptimize(fired);
    state.SetItemsProcessed(state.iterations() * timer_batch);
}
BENCHMARK(BM_MultimapScheduleExpire)->Name("timers/schedule_expire/raw_multimap");

// ---- buffers ----

void BM_BufferPoolGetPut(benchmark::State& state) {
    auto pool = std::move(rm::buffer_pool::create(1024, 2048, rm::no_shard)).value();
    std::vector<rm::buffer_handle> held(64);
    for (auto _ : state) {
        for (auto& h : held)
            h = pool->try_get();
        for (auto& h : held)
            h.reset();
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(held.size()));
}
BENCHMARK(BM_BufferPoolGetPut)->Name("buffers/get_put/engine");

void BM_NewDeleteGetPut(benchmark::State& state) {
    std::vector<std::byte*> held(64);
    for (auto _ : state) {
        for (auto& h : held) {
            h = new std::byte[2048];
            benchmark::DoNotOptimize(h);
        }
        for (auto& h : held)
            delete[] h;
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(held.size()));
}
BENCHMARK(BM_NewDeleteGetPut)->Name("buffers/get_put/raw_new_delete");

// Remembers each benchmark's median throughput to print engine/raw ratios at the end.
class ratio_reporter : public benchmark::ConsoleReporter {
  public:
    void ReportRuns(const std::vector<Run>& runs) override {
        ConsoleReporter::ReportRuns(runs);
        for (const Run& run : runs) {
            const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
            const bool single = run.run_type == Run::RT_Iteration && run.repetitions <= 1;
            if (!median && !single) continue;
            const auto it = run.counters.find("items_per_second");
            if (it != run.counters.end()) rates_[run.run_name.str()] = it->second.value;
        }
    }
    void Finalize() override {
        ConsoleReporter::Finalize();
        std::printf("\nengine / baseline throughput (median items/s):\n");
        for (const auto& [name, rate] : rates_) {
            const auto slash = name.rfind("/engine");
            if (slash == std::string::npos) continue;
            const std::string prefix = name.substr(0, slash);
            for (const auto& [other, base] : rates_) {
                if (other.rfind(prefix + "/raw", 0) == 0 && base > 0) {
                    std::printf("  %-32s %6.2fx  (%s)\n", prefix.c_str(), rate / base,
                                other.substr(prefix.size() + 1).c_str());
                }
            }
        }
    }

  private:
    std::map<std::string, double> rates_;
};

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    ratio_reporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}
