// The Raft groups of one node that live on one shard, run on that shard: each group's replica
// with its log_store, all sharing the shard's disk ring and the node's transport.
//
// Every poll (once per loop iteration):
//   1. completions from the disk ring: readies made durable reach their replicas;
//   2. replicas whose deadline passed are ticked;
//   3. every replica's ready is taken: writes go to its store (one group commit per store per
//      iteration), committed entries and snapshots to the application, messages to the
//      outbound batch of their destination node;
//   4. the stores flush, and one batch per destination node leaves through `send`: every
//      group's messages for that node together, heartbeats coalesced (raft_codec.h), split
//      into several batches only where one would exceed max_batch_bytes.
// Messages that cannot leave (the transport pushes back) are dropped and counted: Raft
// retransmits what matters on its own. Inbound batches are verified by the codec; a refused
// one is counted by reason and reaches no replica; so is one whose sender is not who the
// transport says it is.
//
// A group's storage is a raft_storage: the io_uring log_store on a node, a simulated disk
// with faults under the simulator.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/core/clock.h"
#include "engine/core/result.h"
#include "engine/core/shard.h"
#include "engine/replication/log_store.h"
#include "engine/replication/raft.h"
#include "engine/replication/raft_codec.h"

namespace ringmesh::replication {

struct raft_host_config {
    node_id self = no_node;
    std::string cluster_id = "ringmesh";
    /// Ships one encoded batch to node `to`; false when the transport refused it.
    std::function<bool(node_id to, std::span<const std::byte> batch)> send;
    raft_codec_limits limits;
    /// The largest batch `send` takes (the transport's frame limit). add_group refuses a
    /// group whose largest message (raft_config's entry, append and chunk sizes) would not
    /// fit one batch.
    std::size_t max_batch_bytes = 1 << 20;
};

/// What the application does with a group's results; every callback on the host's shard.
struct raft_application {
    /// A committed entry, in log order (commands, no-ops and configurations alike).
    std::function<void(const log_entry& entry)> apply;
    /// Replace the state machine with this snapshot's data (received from the leader, or the
    /// one on disk at start-up); entries after it follow through `apply`.
    std::function<void(const snapshot_meta& meta, std::span<const std::byte> data)> restore;
    /// A read_index request may be served once `apply` reached its index.
    std::function<void(const read_result& read)> read_ready;
};

struct raft_host_stats {
    std::uint64_t batches_sent = 0;
    std::uint64_t batches_received = 0;
    std::uint64_t messages_sent = 0;
    std::uint64_t messages_received = 0;
    std::uint64_t batches_dropped = 0;   ///< the transport refused them
    std::uint64_t unknown_group = 0;     ///< messages for a group this host does not run
    std::uint64_t storage_failures = 0;  ///< groups stopped because their store failed
    std::uint64_t impostors = 0;  ///< batches claiming a sender other than the transport's peer
    std::uint64_t oversized = 0;  ///< messages dropped: alone, over max_batch_bytes
    raft_refusals refused;
};

/// Owned by one shard; every call from its thread.
class raft_host {
  public:
    /// A host whose groups keep their logs in log_stores on `ring`.
    raft_host(disk_ring& ring, raft_host_config config);
    /// A host whose groups bring their own storage (add_group with a raft_storage).
    explicit raft_host(raft_host_config config);
    ~raft_host();
    raft_host(const raft_host&) = delete;
    raft_host& operator=(const raft_host&) = delete;

    /// Opens the group's store, recovers it (restoring the snapshot through `app`) and starts
    /// its replica. config.id must be this host's node id.
    result<raft*> add_group(raft_config config, log_store_config storage, raft_application app,
                            time_ns now);
    /// The same over storage the caller opened (recovered already).
    result<raft*> add_group(raft_config config, std::unique_ptr<raft_storage> storage,
                            raft_application app, time_ns now);
    raft* group(group_id id);
    raft_storage* store(group_id id);
    /// The groups this host runs (a failed one included), in id order.
    std::vector<group_id> groups() const;
    /// Takes a snapshot of group `id` at its applied index with the application's `data`;
    /// the log is compacted once it is durable.
    void save_snapshot(group_id id, std::vector<std::byte> data, time_ns now);

    /// An inbound batch from the transport. `sender`: the node the transport authenticated
    /// as its source (no_node: not known); a batch claiming another is refused.
    void on_batch(std::span<const std::byte> bytes, time_ns now, node_id sender = no_node);
    /// Runs steps 1–4 above; returns the work done.
    std::size_t poll(time_ns now);
    /// The earliest time a replica needs a tick.
    time_ns next_deadline() const;

    /// Runs on `s`'s loop: polls every iteration (protocol step), lets the disk ring wake a
    /// sleeping shard when a group commit completes, and keeps a timer at the next replica
    /// deadline so that a shard asleep wakes for it. Until detach() (the destructor does it).
    void attach(shard& s);
    void detach();

    const raft_host_stats& stats() const noexcept { return stats_; }

  private:
    struct hosted {
        // The replica outlives its store: the store's last completions may still reach it.
        std::unique_ptr<raft> replica;
        std::unique_ptr<raft_storage> store;
        raft_application app;
        bool failed = false;
    };

    std::size_t drain(hosted& h, time_ns now);
    void stage(hosted& h, raft_message m);
    void send_batches(node_id to, std::vector<raft_message>& messages);

    disk_ring* ring_ = nullptr;
    raft_host_config config_;
    std::map<group_id, hosted> groups_;
    std::map<node_id, std::vector<raft_message>> outbound_;
    std::vector<std::byte> encode_buffer_;
    std::vector<raft_message> decode_buffer_;
    void arm_timer();

    time_ns now_ = 0;  ///< the time of the current poll, for store callbacks
    raft_host_stats stats_;
    shard* attached_ = nullptr;
    std::uint64_t poller_ = 0;
    timer_id timer_{};
    time_ns timer_at_ = 0;
};

}  // namespace ringmesh::replication
