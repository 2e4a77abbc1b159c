// The simulated disk under a Raft replica: what the core asked to write, applied in order,
// durable only once its fdatasync "completes". A crash keeps the synced state and, when the
// test wants a torn tail, a prefix of the unsynced writes. Used by the simulator
// (raft_sim.cc) and by the scenario tests, which sync at once.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "engine/replication/raft.h"

namespace ringmesh::sim {

using replication::hard_state;
using replication::log_entry;
using replication::log_index;
using replication::raft_message;
using replication::raft_ready;
using replication::raft_recovered;
using replication::snapshot_meta;

// One write the core asked for, in the order it asked.
struct disk_op {
    enum class kind : std::uint8_t { state, entry, chunk, compact } what = kind::state;
    hard_state state;
    log_entry entry;
    raft_message chunk;
    log_index compact = 0;
};

// A disk that keeps what was synced. Unsynced writes wait in `pending` (one batch per ready)
// until their fdatasync completes; a crash keeps none of them, or a prefix (a torn tail).
struct sim_disk {
    /// The writes of one ready, in the order the storage must apply them.
    static std::vector<disk_op> ops_of(raft_ready& r) {
        std::vector<disk_op> ops;
        for (log_entry& e : r.entries)
            ops.push_back({disk_op::kind::entry, {}, std::move(e), {}, 0});
        for (raft_message& m : r.snapshot_chunks)
            ops.push_back({disk_op::kind::chunk, {}, {}, std::move(m), 0});
        // After what its commit index may point at, like the real store (see raft_ready).
        if (r.state) ops.push_back({disk_op::kind::state, *r.state, {}, {}, 0});
        if (r.compact_through != 0)
            ops.push_back({disk_op::kind::compact, {}, {}, {}, r.compact_through});
        return ops;
    }

    hard_state state;
    std::optional<snapshot_meta> snap;
    std::vector<std::byte> snap_bytes;
    std::optional<snapshot_meta> temp_meta;
    std::vector<std::byte> temp_bytes;
    std::vector<log_entry> entries;  // contiguous from `first`
    log_index first = 1;

    struct batch {
        std::uint64_t seq = 0;
        std::vector<disk_op> ops;
    };
    std::deque<batch> pending;
    time_ns last_done_at = 0;

    log_index last() const { return first + entries.size() - 1; }

    void apply(const disk_op& op) {
        switch (op.what) {
            case disk_op::kind::state:
                state = op.state;
                return;
            case disk_op::kind::entry: {
                const log_index i = op.entry.index;
                if (i < first) return;  // covered by a snapshot
                if (i <= last()) entries.resize(i - first);
                if (i != last() + 1) {  // a gap: start over after it (only after an install)
                    entries.clear();
                    first = i;
                }
                entries.push_back(op.entry);
                return;
            }
            case disk_op::kind::chunk: {
                const raft_message& m = op.chunk;
                if (m.offset == 0) {
                    temp_meta = m.snapshot;
                    temp_bytes.clear();
                }
                temp_bytes.insert(temp_bytes.end(), m.chunk.begin(), m.chunk.end());
                if (!m.last_chunk) return;
                snap = temp_meta;
                snap_bytes = std::move(temp_bytes);
                temp_bytes.clear();
                const log_index at = snap->index;
                const bool keeps =
                    at >= first && at <= last() && entries[at - first].term == snap->term;
                if (keeps) {
                    entries.erase(entries.begin(),
                                  entries.begin() + static_cast<std::ptrdiff_t>(at - first + 1));
                } else {
                    entries.clear();
                }
                first = at + 1;
                return;
            }
            case disk_op::kind::compact: {
                if (op.compact < first) return;
                const log_index drop = std::min<log_index>(op.compact - first + 1, entries.size());
                entries.erase(entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(drop));
                first = op.compact + 1;
                return;
            }
        }
    }

    raft_recovered recover() const {
        raft_recovered r;
        r.state = state;
        r.snapshot = snap;
        r.entries = entries;
        return r;
    }
};

}  // namespace ringmesh::sim
