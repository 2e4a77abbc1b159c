// Seeded randomness for protocol decisions: incarnations, backoff jitter, probe order. An
// engine object is given its seed (or draws one from the OS once, at creation) and never
// reads the OS again, so the simulator that pins every seed replays a run exactly.
#pragma once

#include <cstdint>
#include <random>

#include "engine/core/clock.h"

namespace ringmesh {

/// Owned by one protocol object; not thread-safe (it lives on one shard, like its owner).
class random_source {
  public:
    /// A seed from the OS (and the clock, in case the OS source is weak); never 0.
    static std::uint64_t os_seed() {
        std::random_device device;
        const std::uint64_t seed = (std::uint64_t{device()} << 32) ^ device() ^
                                   static_cast<std::uint64_t>(monotonic_clock::read());
        return seed == 0 ? 1 : seed;
    }
    /// 0 means "draw one from the OS": the default of every config's random_seed.
    static std::uint64_t seed_or_os(std::uint64_t seed) { return seed != 0 ? seed : os_seed(); }

    explicit random_source(std::uint64_t seed) : engine_(seed) {}

    /// Never 0 (0 means "unset" in incarnations and seeds): also the seed of a child object,
    /// so that each draws its own stream.
    std::uint64_t next_nonzero() {
        const std::uint64_t v = engine_();
        return v == 0 ? 1 : v;
    }
    /// Uniform in [lo, hi]; lo when hi <= lo.
    time_ns between(time_ns lo, time_ns hi) {
        if (hi <= lo) return lo;
        return lo + static_cast<time_ns>(engine_() % static_cast<std::uint64_t>(hi - lo + 1));
    }

  private:
    std::mt19937_64 engine_;
};

}  // namespace ringmesh
