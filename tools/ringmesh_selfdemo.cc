// ringmesh_selfdemo — the engine's self-demo, run by `tools/ringmesh demo`.
//
// Until the network transport lands this exercises the per-core runtime end to end on this
// machine: two pinned shards exchanging real work over the cross-core rings.
//   1. throughput: shard 0 hands 64-byte buffers to shard 1 (hand_off, back-pressure aware);
//      shard 1 checks their order; the buffers flow back to shard 0's pool on their own.
//   2. latency: submit_to round trips shard 0 -> shard 1 -> shard 0, one at a time.
//   3. idle: a node with the block idle strategy left alone; its CPU use is measured.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "engine/node.h"

namespace rm = ringmesh;

namespace {

constexpr std::size_t payload_bytes = 64;

/// Shared by the two shards of the demo; each field says which shard writes it.
struct demo_state {
    enum class phase : int { throughput, latency, done };
    std::atomic<phase> current{phase::throughput};  // written by main
    // shard 0
    std::atomic<std::uint64_t> sent{0};
    std::uint64_t refused = 0;
    bool ping_outstanding = false;
    rm::time_ns ping_sent_ns = 0;
    std::vector<rm::time_ns> rtt_ns;
    // shard 1
    std::atomic<std::uint64_t> received{0};
    std::uint64_t out_of_order = 0;
};

void on_pong(demo_state* state) {
    state->rtt_ns.push_back(rm::monotonic_clock::read() - state->ping_sent_ns);
    state->ping_outstanding = false;
}

std::size_t send_burst(rm::shard& s, demo_state* state) {
    std::size_t work = 0;
    std::uint64_t seq = state->sent.load(std::memory_order_relaxed);
    for (; work < 256; ++work) {
        rm::buffer_handle buf = s.buffers().try_get();
        if (!buf) break;  // pool exhausted: the receiver holds them all; back-pressure
        std::memcpy(buf.storage().data(), &seq, sizeof seq);
        buf.set_size(payload_bytes);
        if (s.hand_off(1, seq, buf) != rm::submit_outcome::accepted) {
            ++state->refused;  // ring full: keep the buffer, retry next iteration
            break;
        }
        ++seq;
    }
    state->sent.store(seq, std::memory_order_relaxed);
    return work;
}

std::size_t send_ping(rm::shard& s, demo_state* state) {
    if (state->ping_outstanding || state->rtt_ns.size() == state->rtt_ns.capacity()) return 0;
    state->ping_outstanding = true;
    state->ping_sent_ns = rm::monotonic_clock::read();
    const auto outcome = s.submit_to(
        1, [state](rm::shard& peer) { peer.submit_to(0, [state] { on_pong(state); }); });
    if (outcome != rm::submit_outcome::accepted) state->ping_outstanding = false;
    return 1;
}

void install(rm::shard& s, demo_state* state) {
    if (s.id() == 0) {
        s.add_poller(rm::poll_step::protocol, [&s, state](rm::time_ns) -> std::size_t {
            switch (state->current.load(std::memory_order_relaxed)) {
                case demo_state::phase::throughput:
                    return send_burst(s, state);
                case demo_state::phase::latency:
                    return send_ping(s, state);
                case demo_state::phase::done:
                    return 0;
            }
            return 0;
        });
    } else if (s.id() == 1) {
        s.set_message_handler(
            [state](rm::shard_id, std::uint64_t tag, const rm::buffer_handle& buf) {
                std::uint64_t seq = 0;
                std::memcpy(&seq, buf.bytes().data(), sizeof seq);
                const std::uint64_t expected = state->received.load(std::memory_order_relaxed);
                if (seq != expected || tag != seq) ++state->out_of_order;
                state->received.store(expected + 1, std::memory_order_relaxed);
            });
    }
}

double cpu_seconds() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
           static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double micros(rm::time_ns ns) {
    return static_cast<double>(ns) / 1e3;
}

rm::time_ns percentile(std::vector<rm::time_ns>& sorted, double p) {
    if (sorted.empty()) return 0;
    const auto index = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1));
    return sorted[index];
}

int measure_idle(rm::node_config config, double seconds) {
    config.shard.idle.kind = rm::idle_kind::block;
    auto node = rm::node::create(config);
    if (!node) {
        std::fprintf(stderr, "ringmesh_selfdemo: %s\n", node.err().message().c_str());
        return 1;
    }
    if (auto started = (*node)->start(); !started) {
        std::fprintf(stderr, "ringmesh_selfdemo: %s\n", started.err().message().c_str());
        return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let start-up settle
    const double cpu0 = cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    const double cpu_percent = 100.0 * (cpu_seconds() - cpu0) / seconds_since(t0);
    (*node)->stop();
    std::printf("idle     %u shards, block strategy, %.1f s: %.2f %% of one core\n",
                config.shard_count, seconds, cpu_percent);
    return 0;
}

}  // namespace

int run_selfdemo(int argc, char** argv) {
    CLI::App app{"ringmesh self-demo: shards exchanging messages over the cross-core rings"};
    double seconds = 2.0;
    double idle_seconds = 2.0;
    std::string idle_name = "busy_spin";
    std::vector<int> cores;
    app.add_option("--seconds", seconds, "length of the throughput and latency phases, each")
        ->check(CLI::Range(0.1, 60.0));
    app.add_option("--idle", idle_name, "idle strategy: busy_spin, backoff or block");
    app.add_option("--idle-seconds", idle_seconds, "length of the idle-CPU phase (0: skip)")
        ->check(CLI::Range(0.0, 60.0));
    app.add_option("--cores", cores, "two cores to pin shard 0 and shard 1 to")->delimiter(',');
    CLI11_PARSE(app, argc, argv);

    const auto kind = rm::parse_idle_kind(idle_name);
    if (!kind) {
        std::fprintf(stderr, "ringmesh_selfdemo: unknown idle strategy '%s'\n", idle_name.c_str());
        return 2;
    }
    rm::node_config config;
    config.shard_count = 2;
    config.cores = cores;
    config.shard.idle.kind = *kind;
    auto node = rm::node::create(config);
    if (!node) {
        std::fprintf(stderr, "ringmesh_selfdemo: %s\n", node.err().message().c_str());
        return 1;
    }
    demo_state state;
    state.rtt_ns.reserve(2'000'000);
    std::printf("ringmesh self-demo: 2 shards on cores %d,%d, idle strategy %s\n",
                (*node)->config().cores[0], (*node)->config().cores[1], idle_name.c_str());
    if (auto started = (*node)->start([&state](rm::shard& s) { install(s, &state); }); !started) {
        std::fprintf(stderr, "ringmesh_selfdemo: %s\n", started.err().message().c_str());
        return 1;
    }

    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // warm-up
    const std::uint64_t received0 = state.received.load(std::memory_order_relaxed);
    const auto t0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    const double rate =
        static_cast<double>(state.received.load(std::memory_order_relaxed) - received0) /
        seconds_since(t0);
    state.current.store(demo_state::phase::latency);
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    state.current.store(demo_state::phase::done);
    (*node)->stop();  // joins the shards: their plain fields are safe to read from here on

    std::printf(
        "stream   hand_off of %zu-byte buffers shard 0 -> 1: %.2f M msg/s "
        "(%llu delivered, %llu out of order, %llu ring-full retries)\n",
        payload_bytes, rate / 1e6, static_cast<unsigned long long>(state.received.load()),
        static_cast<unsigned long long>(state.out_of_order),
        static_cast<unsigned long long>(state.refused));
    std::sort(state.rtt_ns.begin(), state.rtt_ns.end());
    std::printf(
        "latency  submit_to round trip 0 -> 1 -> 0 (%zu samples): p50 %.2f us, "
        "p99 %.2f us, p99.9 %.2f us, max %.2f us\n",
        state.rtt_ns.size(), micros(percentile(state.rtt_ns, 0.5)),
        micros(percentile(state.rtt_ns, 0.99)), micros(percentile(state.rtt_ns, 0.999)),
        state.rtt_ns.empty() ? 0.0 : micros(state.rtt_ns.back()));
    for (rm::shard_id id = 0; id < 2; ++id) {
        const auto st = (*node)->stats(id);
        std::printf(
            "shard %u  iterations %llu, busy %llu, tasks run %llu, max iteration "
            "%.1f us, stalls %llu\n",
            id, static_cast<unsigned long long>(st.iterations),
            static_cast<unsigned long long>(st.busy_iterations),
            static_cast<unsigned long long>(st.tasks_run),
            static_cast<double>(st.max_iteration_ns) / 1e3,
            static_cast<unsigned long long>(st.stalls));
    }
    if (state.out_of_order != 0) return 1;
    return idle_seconds > 0 ? measure_idle(config, idle_seconds) : 0;
}

int main(int argc, char** argv) {
    try {
        return run_selfdemo(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ringmesh_selfdemo: fatal: %s\n", e.what());
        return 1;
    }
}
