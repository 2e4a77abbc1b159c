// The unit that crosses cores: a function pointer plus up to 48 bytes of inline, trivially
// copyable capture — one cache line, no allocation, no destructor to run on the other side.
// Work that needs more state captures a pointer to it (and its ownership rules).
#pragma once

#include <cstddef>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

#include "engine/core/shard_id.h"

namespace ringmesh {

class shard;

struct alignas(64) cross_core_task {
    static constexpr std::size_t inline_capacity_bytes = 48;
    using invoke_fn = void (*)(std::byte* storage, shard& target);

    invoke_fn invoke = nullptr;
    shard_id from = no_shard;
    alignas(8) std::byte storage[inline_capacity_bytes];

    /// Wraps `fn` (callable as fn(shard&) or fn()) for execution on another shard.
    template <typename Fn>
    static cross_core_task wrap(shard_id from, Fn&& fn) noexcept {
        using F = std::decay_t<Fn>;
        static_assert(sizeof(F) <= inline_capacity_bytes,
                      "cross-core task captures more than 48 bytes: capture a pointer instead");
        static_assert(alignof(F) <= 8, "cross-core task capture is over-aligned");
        static_assert(std::is_trivially_copyable_v<F> && std::is_trivially_destructible_v<F>,
                      "cross-core tasks are copied bytewise between cores: capture only "
                      "trivially copyable values (ids, pointers, integers)");
        cross_core_task task;
        task.from = from;
        ::new (static_cast<void*>(task.storage)) F(std::forward<Fn>(fn));
        task.invoke = [](std::byte* storage, shard& target) {
            F& f = *std::launder(reinterpret_cast<F*>(storage));
            if constexpr (std::is_invocable_v<F&, shard&>) {
                f(target);
            } else {
                f();
            }
        };
        return task;
    }

    void run(shard& target) const { invoke(const_cast<std::byte*>(storage), target); }
};

static_assert(sizeof(cross_core_task) == 64, "a cross-core task is one cache line");
static_assert(std::is_trivially_copyable_v<cross_core_task>);

}  // namespace ringmesh
