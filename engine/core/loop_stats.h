// What a shard's poll loop tells about itself. The owner shard writes every counter (plain
// relaxed stores, no locked instructions); any thread may read them for the status tool and
// metrics, so a snapshot is consistent per counter, not across counters.
#pragma once

#include <atomic>
#include <cstdint>

#include "engine/core/clock.h"

namespace ringmesh {

struct loop_stats_snapshot {
    std::uint64_t iterations = 0;
    std::uint64_t busy_iterations = 0;  ///< iterations that did any work
    std::uint64_t tasks_run = 0;        ///< cross-core tasks executed on this shard
    std::uint64_t transport_work = 0;   ///< completions / packets handled
    std::uint64_t timers_fired = 0;
    std::uint64_t protocol_work = 0;
    std::uint64_t tasks_flushed = 0;  ///< cross-core tasks pushed to other shards
    std::uint64_t ring_full = 0;      ///< submissions refused: destination ring full
    std::uint64_t parks = 0;          ///< times the idle strategy slept
    std::uint64_t stalls = 0;         ///< iterations longer than the stall threshold
    time_ns max_iteration_ns = 0;
};

/// Owned by one shard; add()/set_max() from that shard only.
class loop_stats {
  public:
    std::atomic<std::uint64_t> iterations{0};
    std::atomic<std::uint64_t> busy_iterations{0};
    std::atomic<std::uint64_t> tasks_run{0};
    std::atomic<std::uint64_t> transport_work{0};
    std::atomic<std::uint64_t> timers_fired{0};
    std::atomic<std::uint64_t> protocol_work{0};
    std::atomic<std::uint64_t> tasks_flushed{0};
    std::atomic<std::uint64_t> ring_full{0};
    std::atomic<std::uint64_t> parks{0};
    std::atomic<std::uint64_t> stalls{0};
    std::atomic<time_ns> max_iteration_ns{0};

    static void add(std::atomic<std::uint64_t>& counter, std::uint64_t n) noexcept {
        counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }

    loop_stats_snapshot snapshot() const noexcept {
        constexpr auto r = std::memory_order_relaxed;
        return {iterations.load(r),     busy_iterations.load(r), tasks_run.load(r),
                transport_work.load(r), timers_fired.load(r),    protocol_work.load(r),
                tasks_flushed.load(r),  ring_full.load(r),       parks.load(r),
                stalls.load(r),         max_iteration_ns.load(r)};
    }
};

}  // namespace ringmesh
