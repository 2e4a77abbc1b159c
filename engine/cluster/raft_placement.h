// Where a node's Raft groups run when it has several shards, and how a batch a peer sends
// reaches them.
//
// Placement is one stable rule, the same on every node: group g runs on shard
// (g - 1) mod shard_count, so group 1 stays on shard 0 and consecutive groups fill the
// shards in turn. Each shard with groups runs its own raft_host (its own disk ring: the
// groups' fsyncs proceed in parallel) and sends its own batches, which carry only its groups.
//
// A batch arrives on whichever endpoint shard holds the sender's session. raft_batch_router
// names the shards it is for, reading the group ids alone (raft_codec batch_groups):
//   - the whole batch goes to one shard when every group in it runs there: the usual case,
//     and always when sender and receiver have as many shards;
//   - nodes with different shard counts send batches that mix groups of several local shards;
//     those are decoded once here and re-encoded into one batch per shard;
//   - a batch that cannot be read goes whole to the shard of group 1, whose host refuses and
//     counts it by reason, so a refusal is counted once and in one place.
// The router holds no state beyond its settings: one per shard, each called on its own thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine/core/shard_id.h"
#include "engine/replication/raft_codec.h"

namespace ringmesh::cluster {

/// The shard that runs group `group` on a node of `shard_count` shards.
shard_id shard_for_group(replication::group_id group, unsigned shard_count) noexcept;

struct raft_router_stats {
    std::uint64_t whole = 0;  ///< batches passed on as they came
    std::uint64_t split = 0;  ///< batches decoded and re-encoded per shard
    std::uint64_t parts = 0;  ///< the batches the splits made
};

class raft_batch_router {
  public:
    /// `self`: this node's replica id (a split batch is decoded as addressed to it).
    raft_batch_router(std::string cluster_id, replication::node_id self, unsigned shard_count,
                      replication::raft_codec_limits limits = {});

    /// Calls `to(shard, bytes)` for every shard the batch is for, once each; `bytes` lives
    /// until `to` returns.
    template <typename Deliver>
    void route(std::span<const std::byte> batch, Deliver&& to) {
        if (shard_count_ <= 1 || whole_shard(batch, whole_)) {
            ++stats_.whole;
            to(shard_count_ <= 1 ? shard_id{0} : whole_, batch);
            return;
        }
        split(batch);
        for (const part& p : parts_)
            to(p.shard, std::span<const std::byte>(p.bytes));
    }

    const raft_router_stats& stats() const noexcept { return stats_; }

  private:
    struct part {
        shard_id shard = 0;
        std::vector<replication::raft_message> messages;
        std::vector<std::byte> bytes;
    };

    /// True (with the shard in `out`) when the batch goes whole to one shard.
    bool whole_shard(std::span<const std::byte> batch, shard_id& out);
    void split(std::span<const std::byte> batch);

    std::string cluster_id_;
    replication::node_id self_;
    unsigned shard_count_;
    replication::raft_codec_limits limits_;
    std::vector<replication::group_id> groups_;       // scratch: the batch's groups
    std::vector<replication::raft_message> decoded_;  // scratch: a batch being split
    std::vector<part> parts_;                         // the split's parts, reused
    shard_id whole_ = 0;
    raft_router_stats stats_;
};

}  // namespace ringmesh::cluster
