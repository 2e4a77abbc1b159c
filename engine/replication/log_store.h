// A Raft replica's durable storage: a segmented, checksummed log and snapshot files, written
// through the shard's disk_ring.
//
// Group commit: everything the replica asked to persist during one loop iteration (any number
// of readies: hard state, entries, received snapshot chunks) becomes one write per segment
// touched, with one fdatasync linked after the writes; the persist_seq of each of those readies
// is reported durable when that fdatasync completes, and not before. One group is in flight at
// a time; the next one gathers meanwhile.
//
// On disk, in the group's directory:
//   seg-<seqno>.log    preallocated segments of records: crc32c (4) | length (4) | type (1) |
//                      payload; a segment starts with its own header record and the hard state
//   snap-<index>.snap  the latest snapshot: a 4 KiB header (meta, checksums), then the data;
//                      written to snapshot.tmp, fsynced, renamed, and the directory fsynced
// Recovery replays the records in order. A bad record at the very end of the last segment,
// with nothing valid after it, is a write torn by a crash: it is cut off (zeroed and synced)
// and counted. A bad record anywhere else is damage to data that was acknowledged: the store
// refuses to open with an error naming the file and offset; the replica is then rebuilt from
// its peers by wiping the directory (it rejoins as a new, empty replica).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/core/clock.h"
#include "engine/core/histogram.h"
#include "engine/core/result.h"
#include "engine/replication/disk_ring.h"
#include "engine/replication/log_records.h"
#include "engine/replication/raft.h"
#include "engine/replication/raft_storage.h"

namespace ringmesh::replication {

struct log_store_config {
    std::string dir;  ///< created if missing; one directory per group
    std::uint64_t segment_bytes = 64 << 20;
};

struct log_store_stats {
    std::uint64_t groups = 0;   ///< group commits: one fdatasync of the log each
    std::uint64_t readies = 0;  ///< readies made durable
    std::uint64_t records = 0;
    std::uint64_t bytes_written = 0;
    std::uint64_t fsyncs = 0;
    std::uint64_t segments_created = 0;
    std::uint64_t segments_deleted = 0;
    std::uint64_t snapshots_written = 0;
    std::uint64_t torn_bytes_cut = 0;   ///< at recovery
    latency_histogram group_commit_ns;  ///< submit to durable
};

/// Owned by the shard its group lives on; every call from that shard's thread.
class log_store final : public raft_storage {
  public:
    /// Opens (creating) the directory and recovers what it holds.
    static result<std::unique_ptr<log_store>> open(disk_ring& ring, log_store_config config);
    ~log_store() override;
    log_store(const log_store&) = delete;
    log_store& operator=(const log_store&) = delete;

    /// What the replica starts from (the raft constructor's argument); valid after open().
    raft_recovered recovered() const override { return recovered_; }
    /// The current snapshot, if any, and its data (read from the file).
    const std::optional<snapshot_meta>& snapshot() const noexcept override { return snapshot_; }
    result<std::vector<std::byte>> read_snapshot_data() const override;
    /// Reads `length` bytes of the current snapshot's data at `offset` through the disk ring;
    /// `done` gets them once read (empty when the read failed or came up short). False, and
    /// no call, when `meta` is not the current snapshot (a leader's chunk for a replaced
    /// snapshot is then dropped). Not called once the store is going away.
    bool read_snapshot_chunk(const snapshot_meta& meta, std::uint64_t offset, std::uint32_t length,
                             std::function<void(std::vector<std::byte> bytes)> done) override;

    /// Queues a ready's writes, in order. Nothing is durable before on_durable says so.
    void append(raft_ready& ready) override;
    /// Submits the queued group if none is in flight; returns 1 when it submitted.
    std::size_t flush(time_ns now) override;
    /// No write queued or in flight.
    bool idle() const noexcept { return !in_flight_ && queued_seqs_.empty() && !has_queued(); }
    /// The application's snapshot: written atomically; `done` runs once it is durable (then
    /// call raft::snapshot_taken) or with the error.
    void save_snapshot(const snapshot_meta& meta, std::vector<std::byte> data,
                       std::function<void(result<void>)> done) override;

    // on_durable and on_failure: see raft_storage.
    bool failed() const noexcept { return failed_; }

    const log_store_stats& stats() const noexcept { return stats_; }
    const log_store_config& config() const noexcept { return config_; }

  private:
    struct segment {
        std::uint64_t seqno = 0;
        int fd = -1;
        std::uint64_t written = 0;  ///< bytes of records
        log_index max_index = 0;    ///< highest entry index recorded in it
    };
    struct group;

    log_store(disk_ring& ring, log_store_config config);
    result<void> recover();
    result<void> recover_snapshot();
    result<void> replay_segment(segment& s, bool last);
    result<void> add_segment();
    bool has_queued() const noexcept;
    void complete(const std::shared_ptr<group>& g, time_ns submitted);
    void fail(const std::string& what, int err);
    void compact(log_index through);
    std::string path_of(const std::string& name) const;
    /// The steps that make a snapshot file durable and current, linked on the ring after
    /// whatever the caller prepared: its header at offset 0, fsync, rename of `temp_name` to
    /// `final_name` (both must live until submission), fsync of the directory. Returns the
    /// last step, still linked, for the caller to end the chain or go on from.
    static constexpr int make_durable_steps = 4;
    io_uring_sqe* link_make_durable(int fd, std::span<const std::byte> header,
                                    const char* temp_name, const std::string& final_name,
                                    const disk_ring::completion& done);
    /// A durable snapshot file replaces the current one.
    void make_current(const snapshot_meta& meta, int fd);

    disk_ring& ring_;
    log_store_config config_;
    int dir_fd_ = -1;
    std::vector<segment> segments_;
    raft_recovered recovered_;
    std::optional<snapshot_meta> snapshot_;
    int snapshot_fd_ = -1;
    hard_state state_;  ///< the latest queued, repeated at the head of each new segment

    // The group being gathered.
    std::vector<std::byte> queued_records_;
    std::vector<std::byte> spare_records_;  // the last commit's buffer, kept for reuse
    std::vector<std::uint64_t> queued_seqs_;
    std::vector<raft_message> queued_chunks_;
    log_index queued_compact_ = 0;
    log_index max_queued_index_ = 0;
    bool in_flight_ = false;
    bool failed_ = false;
    std::size_t reads_in_flight_ = 0;
    bool closing_ = false;

    // A snapshot arriving in chunks: the temporary file and its running data checksum.
    int incoming_fd_ = -1;
    std::uint32_t incoming_crc_ = 0;

    log_store_stats stats_;
};

}  // namespace ringmesh::replication
