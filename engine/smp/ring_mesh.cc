#include "engine/smp/ring_mesh.h"

namespace ringmesh {

ring_mesh::ring_mesh(std::uint32_t shard_count, std::size_t ring_capacity)
    : shard_count_(shard_count) {
    RM_ASSERT(shard_count > 0, "a ring mesh needs at least one shard");
    rings_.resize(std::size_t{shard_count} * shard_count);
    for (shard_id from = 0; from < shard_count; ++from) {
        for (shard_id to = 0; to < shard_count; ++to) {
            if (from != to) {
                rings_[std::size_t{from} * shard_count + to] =
                    std::make_unique<task_ring>(ring_capacity);
            }
        }
    }
    for (shard_id s = 0; s < shard_count; ++s)
        wakers_.push_back(std::make_unique<shard_waker>());
}

result<void> ring_mesh::open_wakers() {
    for (auto& waker : wakers_) {
        if (auto opened = waker->open(); !opened) return opened;
    }
    return ok();
}

bool ring_mesh::all_rings_empty() const noexcept {
    for (const auto& ring : rings_) {
        if (ring && ring->pushed() != ring->popped()) return false;
    }
    return true;
}

std::uint64_t ring_mesh::total_pushed() const noexcept {
    std::uint64_t total = 0;
    for (const auto& ring : rings_) {
        if (ring) total += ring->pushed();
    }
    return total;
}

}  // namespace ringmesh
