// Shard identity and the thread-local "which shard am I" that lets shared-nothing code
// (buffer pools, asserts) check it runs on its owner.
#pragma once

#include <cstdint>
#include <limits>

namespace ringmesh {

/// Index of a shard within its node: 0 .. shard_count-1.
using shard_id = std::uint32_t;

/// The id a thread that runs no shard (main, control, test threads) reports.
inline constexpr shard_id no_shard = std::numeric_limits<shard_id>::max();

namespace detail {
inline thread_local shard_id current_shard = no_shard;
}

/// The shard whose loop runs on the calling thread, or no_shard.
inline shard_id this_shard_id() noexcept {
    return detail::current_shard;
}

}  // namespace ringmesh
