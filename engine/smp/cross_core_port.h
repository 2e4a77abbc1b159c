// One shard's end of the ring mesh. Outbound tasks are staged per destination and pushed in
// bulk when the batch fills or at the end of the loop iteration (one release store per ring
// per iteration). A destination whose ring and staging area are both full refuses the task:
// the caller sees ring_full and decides (retry later, shed load) — nothing is dropped here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/smp/ring_mesh.h"

namespace ringmesh {

/// Outcome of handing work to another shard (data path: a value, never an exception).
enum class submit_outcome : std::uint8_t {
    accepted,   ///< staged or pushed; it will run on the target shard
    ring_full,  ///< back-pressure: the target's ring and our staging area are full
};

/// Owned by shard `self`; every call comes from that shard's thread.
class cross_core_port {
  public:
    cross_core_port(ring_mesh& mesh, shard_id self, std::size_t batch_size, bool wake_targets);

    submit_outcome submit(shard_id to, const cross_core_task& task);

    /// Pushes every staged task that fits; returns how many were pushed.
    std::size_t flush();

    /// Runs every task waiting in our inbound rings (round-robin over sources, in order per
    /// source) through run(task); returns how many ran.
    template <typename Run>
    std::size_t drain(Run&& run) {
        std::size_t ran = 0;
        const std::uint32_t n = mesh_.shard_count();
        for (std::uint32_t i = 1; i < n; ++i) {
            const shard_id from = (self_ + i) % n;
            ran += mesh_.ring(from, self_).consume_all(run);
        }
        return ran;
    }

    /// Whether a task is waiting for us (consumer's view).
    bool inbound_pending() const noexcept;
    /// Whether staged tasks are still waiting for room in a destination ring.
    bool outbound_pending() const noexcept { return staged_total_ > 0; }

  private:
    struct staging_area {
        std::vector<cross_core_task> tasks;  // capacity: batch_size
        std::size_t count = 0;
    };
    std::size_t flush_to(shard_id to);

    ring_mesh& mesh_;
    shard_id self_;
    std::size_t batch_size_;
    bool wake_targets_;
    std::size_t staged_total_ = 0;
    std::vector<staging_area> staging_;  // by destination
};

}  // namespace ringmesh
