// What a shard does after an iteration that found no work. Like Aeron's idle strategies:
// the loop reports its work count, the strategy decides whether to spin, yield, sleep a
// little, or block in the kernel until woken.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "engine/core/clock.h"

namespace ringmesh {

enum class idle_kind : std::uint8_t {
    busy_spin,  ///< never leave the CPU: lowest latency, one core at 100 %
    backoff,    ///< spin, then sched_yield, then sleep with exponential backoff up to a cap
    block,      ///< sleep in the kernel until another shard, a timer or I/O wakes the shard
};

std::optional<idle_kind> parse_idle_kind(std::string_view name) noexcept;
std::string_view to_string(idle_kind kind) noexcept;

struct idle_config {
    idle_kind kind = idle_kind::backoff;
    std::uint32_t spin_iterations = 100;  ///< backoff: idle iterations spent spinning
    std::uint32_t yield_iterations = 10;  ///< backoff: then this many sched_yield()s
    time_ns min_park_ns = 1 * ns_per_us;  ///< backoff: first sleep
    time_ns max_park_ns = 1 * ns_per_ms;  ///< backoff: longest sleep (bounds added latency)
};

/// What one idle step did.
enum class idle_step : std::uint8_t {
    worked,          ///< the iteration did work: nothing to do, backoff reset
    spun,            ///< a pause instruction
    yielded,         ///< sched_yield()
    slept,           ///< a bounded nanosleep (backoff)
    park_in_kernel,  ///< block kind, spin phase over: the shard must now block until woken
};

/// The policy part of idling, owned by one shard. It carries out spinning, yielding and
/// backoff sleeps itself; blocking needs the shard's waker and timers, so for the block kind
/// it spins `spin_iterations` times and then answers park_in_kernel for the shard to do.
class idler {
  public:
    explicit idler(const idle_config& config) noexcept : config_(config) { reset(); }

    idle_step idle(std::size_t work_count) noexcept;
    const idle_config& config() const noexcept { return config_; }
    void reset() noexcept {
        idle_iterations_ = 0;
        park_ns_ = config_.min_park_ns;
    }

  private:
    idle_config config_;
    std::uint64_t idle_iterations_ = 0;
    time_ns park_ns_ = 0;
};

/// A pause instruction for spin loops (keeps the sibling hyperthread fed, saves power).
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield" ::: "memory");
#endif
}

}  // namespace ringmesh
