// A raft_storage over a sim_disk (sim_raft_disk.h), for raft_hosts on simulated shards: every
// group commit, snapshot save and chunk read completes after a seeded latency on the shard's
// virtual clock, so a run replays exactly. The sim_disk belongs to the harness and outlives
// the storage: a crash destroys the storage (its timers cancelled), and the harness decides
// what of the unsynced writes in disk.pending reaches the platter (crash_disk below).
#pragma once

#include <functional>
#include <memory>
#include <random>
#include <utility>
#include <vector>

#include "engine/core/errc.h"
#include "engine/core/shard.h"
#include "engine/replication/raft_storage.h"
#include "tests/sim/harness/sim_raft_disk.h"

namespace ringmesh::sim {

/// A crash: the unsynced writes are lost, or (torn) a random prefix of them made it.
inline void crash_disk(sim_disk& disk, bool torn, std::mt19937_64& rng) {
    if (torn) {
        std::size_t total = 0;
        for (const auto& b : disk.pending)
            total += b.ops.size();
        std::size_t keep = total == 0 ? 0 : static_cast<std::size_t>(rng() % (total + 1));
        for (const auto& b : disk.pending) {
            for (const disk_op& op : b.ops) {
                if (keep == 0) break;
                disk.apply(op);
                --keep;
            }
        }
    }
    disk.pending.clear();
    disk.last_done_at = 0;
}

/// Owned by a raft_host on shard `owner`; every call from that shard.
class sim_raft_storage final : public replication::raft_storage {
  public:
    sim_raft_storage(shard& owner, sim_disk& disk, std::mt19937_64& rng, time_ns latency_min,
                     time_ns latency_max)
        : shard_(owner),
          disk_(disk),
          rng_(rng),
          latency_min_(latency_min),
          latency_max_(latency_max) {}
    ~sim_raft_storage() override {
        for (timer_id t : timers_)
            shard_.timers().cancel(t);
    }
    sim_raft_storage(const sim_raft_storage&) = delete;
    sim_raft_storage& operator=(const sim_raft_storage&) = delete;

    replication::raft_recovered recovered() const override { return disk_.recover(); }
    const std::optional<snapshot_meta>& snapshot() const noexcept override { return disk_.snap; }
    result<std::vector<std::byte>> read_snapshot_data() const override {
        if (!disk_.snap) return make_error(core_errc::bad_config, "no snapshot");
        return disk_.snap_bytes;
    }
    bool read_snapshot_chunk(const snapshot_meta& meta, std::uint64_t offset, std::uint32_t length,
                             std::function<void(std::vector<std::byte>)> done) override {
        if (!disk_.snap || disk_.snap->index != meta.index) return false;
        later([this, meta, offset, length, done = std::move(done)] {
            std::vector<std::byte> bytes;
            if (disk_.snap && disk_.snap->index == meta.index &&
                offset + length <= disk_.snap_bytes.size()) {
                const auto at = disk_.snap_bytes.begin() + static_cast<std::ptrdiff_t>(offset);
                bytes.assign(at, at + length);
            }
            done(std::move(bytes));
        });
        return true;
    }

    void append(raft_ready& ready) override {
        std::vector<disk_op> ops = sim_disk::ops_of(ready);
        if (ready.persist_seq == 0) {
            // A compaction alone, behind a durable snapshot: after every write before it.
            if (!ops.empty()) queued_.insert(queued_.end(), ops.begin(), ops.end());
            return;
        }
        queued_.insert(queued_.end(), ops.begin(), ops.end());
        queued_seqs_.push_back(ready.persist_seq);
    }

    std::size_t flush(time_ns now) override {
        if (in_flight_ || (queued_.empty() && queued_seqs_.empty())) return 0;
        // One group commit: its writes reach the disk's pending list now (a crash may keep a
        // prefix of them), and become durable together when the fdatasync completes.
        const std::uint64_t last_seq = queued_seqs_.empty() ? 0 : queued_seqs_.back();
        disk_.pending.push_back({last_seq, std::move(queued_)});
        queued_.clear();
        std::vector<std::uint64_t> seqs = std::move(queued_seqs_);
        queued_seqs_.clear();
        in_flight_ = true;
        (void)now;
        later([this, seqs = std::move(seqs)] {
            in_flight_ = false;
            // The oldest pending group is this one: groups complete in order.
            if (!disk_.pending.empty()) {
                for (const disk_op& op : disk_.pending.front().ops)
                    disk_.apply(op);
                disk_.pending.pop_front();
            }
            for (std::uint64_t seq : seqs) {
                if (on_durable) on_durable(seq);
            }
        });
        return 1;
    }

    void save_snapshot(const snapshot_meta& meta, std::vector<std::byte> data,
                       std::function<void(result<void>)> done) override {
        // Written to a temporary file, synced, renamed, directory synced: all or nothing.
        auto bytes = std::make_shared<std::vector<std::byte>>(std::move(data));
        later([this, meta, bytes, done = std::move(done)] {
            snapshot_meta m = meta;
            m.size_bytes = bytes->size();
            disk_.snap = m;
            disk_.snap_bytes = std::move(*bytes);
            done(ok());
        });
    }

  private:
    void later(std::function<void()> fn) {
        const time_ns at = shard_.now_ns() +
                           std::uniform_int_distribution<time_ns>(latency_min_, latency_max_)(rng_);
        std::erase_if(timers_, [this](timer_id t) { return !shard_.timers().pending(t); });
        timers_.push_back(shard_.timers().schedule_at(at, std::move(fn)));
    }

    shard& shard_;
    sim_disk& disk_;
    std::mt19937_64& rng_;
    time_ns latency_min_, latency_max_;
    std::vector<disk_op> queued_;
    std::vector<std::uint64_t> queued_seqs_;
    bool in_flight_ = false;
    std::vector<timer_id> timers_;
};

}  // namespace ringmesh::sim
