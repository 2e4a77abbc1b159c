// One SPSC ring per ordered pair of shards, plus each shard's waker. The node builds the mesh
// before any shard runs and destroys it after all have stopped; while they run the mesh's
// shape is immutable and each ring has exactly one producer and one consumer thread.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/core/result.h"
#include "engine/core/shard_id.h"
#include "engine/core/shard_waker.h"
#include "engine/core/spsc_ring.h"
#include "engine/smp/cross_core_task.h"

namespace ringmesh {

using task_ring = spsc_ring<cross_core_task>;

class ring_mesh {
  public:
    ring_mesh(std::uint32_t shard_count, std::size_t ring_capacity);

    /// Opens every shard's eventfd; needed only when some shard blocks when idle.
    result<void> open_wakers();

    std::uint32_t shard_count() const noexcept { return shard_count_; }
    /// The ring carrying tasks from `from` to `to` (from != to).
    task_ring& ring(shard_id from, shard_id to) noexcept {
        return *rings_[std::size_t{from} * shard_count_ + to];
    }
    const task_ring& ring(shard_id from, shard_id to) const noexcept {
        return *rings_[std::size_t{from} * shard_count_ + to];
    }
    shard_waker& waker(shard_id s) noexcept { return *wakers_[s]; }

    /// True when every task pushed anywhere has been popped (any thread, approximate while
    /// shards run: use it to detect quiescence, not for synchronisation).
    bool all_rings_empty() const noexcept;
    /// Sum of all pushes: a change between two looks means traffic is still moving.
    std::uint64_t total_pushed() const noexcept;

  private:
    std::uint32_t shard_count_;
    std::vector<std::unique_ptr<task_ring>> rings_;  // [from * n + to]; null on the diagonal
    std::vector<std::unique_ptr<shard_waker>> wakers_;
};

}  // namespace ringmesh
