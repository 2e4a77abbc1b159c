// What a raft_host needs from a replica's durable storage, so that the same host runs over
// the io_uring log_store in a node and over a simulated disk with faults in the simulator
// (tests/sim/harness/sim_raft_storage.h).
//
// The contract is the persistence contract of raft.h: append() queues a ready's writes in
// order (entries, then snapshot chunks, then the hard state); nothing is durable before
// on_durable reports its persist_seq, and persist_seqs are reported in order.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "engine/core/clock.h"
#include "engine/core/result.h"
#include "engine/replication/raft.h"

namespace ringmesh::replication {

/// Owned by the raft_host that runs its group; every call from that host's shard.
class raft_storage {
  public:
    virtual ~raft_storage() = default;

    /// What the replica starts from (the raft constructor's argument).
    virtual raft_recovered recovered() const = 0;
    /// The current snapshot, if any.
    virtual const std::optional<snapshot_meta>& snapshot() const noexcept = 0;
    /// The current snapshot's data, whole (start-up, and installs the leader sent).
    virtual result<std::vector<std::byte>> read_snapshot_data() const = 0;
    /// Reads `length` bytes of the current snapshot's data at `offset`; `done` gets them
    /// later (empty when the read failed or came up short). False, and no call, when `meta`
    /// is not the current snapshot.
    virtual bool read_snapshot_chunk(const snapshot_meta& meta, std::uint64_t offset,
                                     std::uint32_t length,
                                     std::function<void(std::vector<std::byte> bytes)> done) = 0;

    /// Queues a ready's writes, in order.
    virtual void append(raft_ready& ready) = 0;
    /// Makes what was queued durable (one group commit); returns the work started.
    virtual std::size_t flush(time_ns now) = 0;
    /// The application's snapshot at `meta`: written atomically; `done` runs once it is
    /// durable (the host then calls raft::snapshot_taken) or with the error.
    virtual void save_snapshot(const snapshot_meta& meta, std::vector<std::byte> data,
                               std::function<void(result<void>)> done) = 0;

    /// Each persist_seq, in order, once durable.
    std::function<void(std::uint64_t persist_seq)> on_durable;
    /// A write or sync failed: the storage stops (nothing more is made durable).
    std::function<void(const error&)> on_failure;
};

}  // namespace ringmesh::replication
