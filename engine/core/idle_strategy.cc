#include "engine/core/idle_strategy.h"

#include <sched.h>

#include <algorithm>
#include <ctime>

namespace ringmesh {

std::optional<idle_kind> parse_idle_kind(std::string_view name) noexcept {
    if (name == "busy_spin" || name == "spin") return idle_kind::busy_spin;
    if (name == "backoff") return idle_kind::backoff;
    if (name == "block") return idle_kind::block;
    return std::nullopt;
}

std::string_view to_string(idle_kind kind) noexcept {
    switch (kind) {
        case idle_kind::busy_spin:
            return "busy_spin";
        case idle_kind::backoff:
            return "backoff";
        case idle_kind::block:
            return "block";
    }
    return "unknown";
}

idle_step idler::idle(std::size_t work_count) noexcept {
    if (work_count > 0) {
        reset();
        return idle_step::worked;
    }
    ++idle_iterations_;
    if (config_.kind == idle_kind::busy_spin || idle_iterations_ <= config_.spin_iterations) {
        cpu_relax();
        return idle_step::spun;
    }
    if (config_.kind == idle_kind::block) return idle_step::park_in_kernel;
    if (idle_iterations_ <= std::uint64_t{config_.spin_iterations} + config_.yield_iterations) {
        ::sched_yield();
        return idle_step::yielded;
    }
    const timespec ts{park_ns_ / ns_per_s, park_ns_ % ns_per_s};
    ::nanosleep(&ts, nullptr);
    park_ns_ = std::min(park_ns_ * 2, config_.max_park_ns);
    return idle_step::slept;
}

}  // namespace ringmesh
