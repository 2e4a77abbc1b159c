#include "engine/cluster/raft_placement.h"

#include <utility>

namespace ringmesh::cluster {

shard_id shard_for_group(replication::group_id group, unsigned shard_count) noexcept {
    if (shard_count <= 1 || group == 0) return 0;
    return static_cast<shard_id>((group - 1) % shard_count);
}

raft_batch_router::raft_batch_router(std::string cluster_id, replication::node_id self,
                                     unsigned shard_count, replication::raft_codec_limits limits)
    : cluster_id_(std::move(cluster_id)), self_(self), shard_count_(shard_count), limits_(limits) {}

bool raft_batch_router::whole_shard(std::span<const std::byte> batch, shard_id& out) {
    out = shard_for_group(1, shard_count_);
    if (replication::batch_groups(batch, groups_, limits_) != replication::raft_codec_error::none ||
        groups_.empty())
        return true;  // refused (and counted) by the host there
    out = shard_for_group(groups_.front(), shard_count_);
    for (replication::group_id g : groups_) {
        if (shard_for_group(g, shard_count_) != out) return false;
    }
    return true;
}

void raft_batch_router::split(std::span<const std::byte> batch) {
    ++stats_.split;
    for (part& p : parts_) {
        p.messages.clear();
        p.bytes.clear();
    }
    if (replication::decode_batch(batch, cluster_id_, self_, decoded_, limits_) !=
        replication::raft_codec_error::none) {
        // Readable enough to name its groups, refused in full: the home shard counts why.
        parts_.resize(1);
        parts_[0].shard = shard_for_group(1, shard_count_);
        parts_[0].bytes.assign(batch.begin(), batch.end());
        ++stats_.parts;
        return;
    }
    // One part per shard, in the order the batch first names it; parts_ keeps its capacity.
    std::size_t used = 0;
    for (replication::raft_message& m : decoded_) {
        const shard_id s = shard_for_group(m.group, shard_count_);
        std::size_t i = 0;
        while (i < used && parts_[i].shard != s)
            ++i;
        if (i == used) {
            if (parts_.size() == used) parts_.emplace_back();
            parts_[used++].shard = s;
        }
        parts_[i].messages.push_back(std::move(m));
    }
    parts_.resize(used);
    const replication::node_id from = decoded_.empty() ? replication::no_node : decoded_[0].from;
    for (part& p : parts_) {
        replication::encode_batch(from, self_, p.messages, cluster_id_, p.bytes);
        ++stats_.parts;
    }
}

}  // namespace ringmesh::cluster
