#include "engine/smp/cross_core_port.h"

#include <algorithm>
#include <span>

namespace ringmesh {

cross_core_port::cross_core_port(ring_mesh& mesh, shard_id self, std::size_t batch_size,
                                 bool wake_targets)
    : mesh_(mesh), self_(self), batch_size_(batch_size), wake_targets_(wake_targets) {
    RM_ASSERT(batch_size > 0, "cross-core batch size must be positive");
    staging_.resize(mesh.shard_count());
    for (shard_id to = 0; to < mesh.shard_count(); ++to) {
        if (to != self) staging_[to].tasks.resize(batch_size);
    }
}

submit_outcome cross_core_port::submit(shard_id to, const cross_core_task& task) {
    RM_ASSERT(to < mesh_.shard_count() && to != self_, "submit to an invalid shard");
    staging_area& area = staging_[to];
    if (area.count == batch_size_) {
        flush_to(to);
        if (area.count == batch_size_) return submit_outcome::ring_full;
    }
    area.tasks[area.count++] = task;
    ++staged_total_;
    return submit_outcome::accepted;
}

std::size_t cross_core_port::flush() {
    if (staged_total_ == 0) return 0;
    std::size_t pushed = 0;
    for (shard_id to = 0; to < staging_.size(); ++to) {
        if (staging_[to].count > 0) pushed += flush_to(to);
    }
    return pushed;
}

std::size_t cross_core_port::flush_to(shard_id to) {
    staging_area& area = staging_[to];
    const std::size_t pushed = mesh_.ring(self_, to).push_bulk(
        std::span<const cross_core_task>(area.tasks.data(), area.count));
    if (pushed == 0) return 0;
    // Keep the tasks that did not fit at the front, in order, for the next flush.
    std::copy(area.tasks.begin() + static_cast<std::ptrdiff_t>(pushed),
              area.tasks.begin() + static_cast<std::ptrdiff_t>(area.count), area.tasks.begin());
    area.count -= pushed;
    staged_total_ -= pushed;
    if (wake_targets_) mesh_.waker(to).wake_if_parked();
    return pushed;
}

bool cross_core_port::inbound_pending() const noexcept {
    const std::uint32_t n = mesh_.shard_count();
    for (shard_id from = 0; from < n; ++from) {
        if (from != self_ && mesh_.ring(from, self_).read_available() > 0) return true;
    }
    return false;
}

}  // namespace ringmesh
