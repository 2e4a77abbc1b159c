// Time sources for the shard loop. The loop reads its clock once per iteration and passes
// that `now_ns` down to every step, so a test can drive a whole shard (timers, protocol
// ticks) with a virtual_clock and get the same behaviour on every run.
#pragma once

#include <cstdint>
#include <ctime>

namespace ringmesh {

/// Nanoseconds on a monotonic time line; only differences are meaningful.
using time_ns = std::int64_t;

inline constexpr time_ns ns_per_us = 1'000;
inline constexpr time_ns ns_per_ms = 1'000'000;
inline constexpr time_ns ns_per_s = 1'000'000'000;

/// Fills a timespec-like struct (timespec, __kernel_timespec) from a timeout in ns; returns
/// nullptr for a negative timeout, which system calls read as "wait without a limit".
template <typename Timespec>
Timespec* to_timespec(time_ns timeout_ns, Timespec& out) noexcept {
    if (timeout_ns < 0) return nullptr;
    out.tv_sec = timeout_ns / ns_per_s;
    out.tv_nsec = timeout_ns % ns_per_s;
    return &out;
}

/// A source of `now`. Owned by whoever builds the shard; read only by that shard's thread.
class clock_source {
  public:
    virtual ~clock_source() = default;
    virtual time_ns now_ns() noexcept = 0;
};

/// CLOCK_MONOTONIC through the vDSO (about 20 ns, no system call).
class monotonic_clock final : public clock_source {
  public:
    time_ns now_ns() noexcept override { return read(); }

    static time_ns read() noexcept {
        timespec ts{};
        ::clock_gettime(CLOCK_MONOTONIC, &ts);
        return static_cast<time_ns>(ts.tv_sec) * ns_per_s + ts.tv_nsec;
    }
};

/// A clock that only moves when told to: for tests and the deterministic simulator.
class virtual_clock final : public clock_source {
  public:
    explicit virtual_clock(time_ns start_ns = 0) noexcept : now_(start_ns) {}
    time_ns now_ns() noexcept override { return now_; }
    void advance(time_ns delta_ns) noexcept { now_ += delta_ns; }
    void set(time_ns now_ns) noexcept { now_ = now_ns; }

  private:
    time_ns now_;
};

}  // namespace ringmesh
