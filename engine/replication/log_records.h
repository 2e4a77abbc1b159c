// The log's records as they lie in a segment file, apart from the files themselves: what
// log_store writes, what recovery reads back (scan_segment), and what the simulator and the
// fuzz targets build segment images from, so that a flipped bit is judged by the same
// decoder a node runs at start-up.
//
// A record: crc32c (4) | length (4) | type (1) | payload (length). The checksum covers the
// length, the type and the payload. A segment starts with its own header record (its
// seqno) and the hard state; the preallocated rest of the file is zeros.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "engine/replication/raft.h"

namespace ringmesh::replication {

namespace log_records {

enum record_type : std::uint8_t {
    rec_segment = 1,    ///< seqno: the first record of every segment
    rec_state = 2,      ///< term, voted_for, commit
    rec_entry = 3,      ///< term, index, kind, data
    rec_installed = 4,  ///< index, term: a received snapshot became current
};
inline constexpr std::size_t record_header = 9;  // crc32c, length, type
inline constexpr std::size_t max_record_payload = 64 << 20;

inline void put_u32(std::byte* p, std::uint32_t v) {
    std::memcpy(p, &v, 4);
}
inline void put_u64(std::byte* p, std::uint64_t v) {
    std::memcpy(p, &v, 8);
}
inline std::uint32_t get_u32(const std::byte* p) {
    std::uint32_t v = 0;
    std::memcpy(&v, p, 4);
    return v;
}
inline std::uint64_t get_u64(const std::byte* p) {
    std::uint64_t v = 0;
    std::memcpy(&v, p, 8);
    return v;
}

/// Each appends one sealed record to `out`.
void append_segment_header(std::vector<std::byte>& out, std::uint64_t seqno);
void append_state(std::vector<std::byte>& out, const hard_state& s);
void append_entry(std::vector<std::byte>& out, const log_entry& e);
void append_installed(std::vector<std::byte>& out, const snapshot_meta& meta);

/// A record at `p` (with `left` bytes to the end) that parses and checks: its total size;
/// 0 when there is none.
std::size_t valid_record_at(const std::byte* p, std::size_t left);

}  // namespace log_records

/// What recovery found in one segment's bytes.
struct segment_scan {
    enum class verdict : std::uint8_t {
        clean,      ///< records, then zeros (the preallocated rest)
        torn,       ///< the last segment ends in a bad record with nothing valid after it
        corrupted,  ///< a bad record elsewhere: `problem` says what and where
    };
    verdict what = verdict::clean;
    std::size_t records_end = 0;  ///< where the valid records end (appends continue there)
    std::size_t data_end = 0;     ///< torn: the end of the bytes to cut
    log_index max_index = 0;
    std::string problem;
};

/// Recovery's decoder (also the fuzz target's): replays one segment's records, in order,
/// into `into` (hard state, entries with conflicts resolved, snapshot installs).
///
/// A bad record at the very end of the last segment, with nothing valid after it, reads as a
/// write torn by a crash. A flipped bit in that one record reads the same way: no decoder
/// can tell the two apart from the bytes alone (etcd's WAL makes the same call). A flipped
/// bit anywhere before it is found: the segment is corrupted.
segment_scan scan_segment(std::span<const std::byte> bytes, std::uint64_t seqno, bool last,
                          raft_recovered& into);

}  // namespace ringmesh::replication
