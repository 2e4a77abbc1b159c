#include "engine/replication/log_records.h"

#include <algorithm>
#include <initializer_list>

#include "engine/replication/crc32c.h"

namespace ringmesh::replication {

namespace log_records {

namespace {

/// Appends a record's header for `payload` bytes; returns where the record starts.
std::size_t begin_record(std::vector<std::byte>& out, std::uint8_t type, std::size_t payload) {
    const std::size_t at = out.size();
    out.resize(at + record_header + payload);
    put_u32(out.data() + at + 4, static_cast<std::uint32_t>(payload));
    out[at + 8] = std::byte{type};
    return at;
}

void seal(std::vector<std::byte>& out, std::size_t at) {
    const std::uint32_t length = get_u32(out.data() + at + 4);
    put_u32(out.data() + at, crc32c({out.data() + at + 4, 5 + std::size_t{length}}));
}

/// A record whose payload is these 64-bit words, in order.
void append_words(std::vector<std::byte>& out, std::uint8_t type,
                  std::initializer_list<std::uint64_t> words) {
    const std::size_t at = begin_record(out, type, 8 * words.size());
    std::byte* p = out.data() + at + record_header;
    for (std::uint64_t w : words) {
        put_u64(p, w);
        p += 8;
    }
    seal(out, at);
}

}  // namespace

void append_segment_header(std::vector<std::byte>& out, std::uint64_t seqno) {
    append_words(out, rec_segment, {seqno});
}

void append_state(std::vector<std::byte>& out, const hard_state& s) {
    append_words(out, rec_state, {s.term, s.voted_for, s.commit});
}

void append_entry(std::vector<std::byte>& out, const log_entry& e) {
    const std::size_t at = begin_record(out, rec_entry, 17 + e.data.size());
    std::byte* p = out.data() + at + record_header;
    put_u64(p, e.term);
    put_u64(p + 8, e.index);
    p[16] = std::byte{static_cast<std::uint8_t>(e.kind)};
    if (!e.data.empty()) std::memcpy(p + 17, e.data.data(), e.data.size());
    seal(out, at);
}

void append_installed(std::vector<std::byte>& out, const snapshot_meta& meta) {
    append_words(out, rec_installed, {meta.index, meta.term});
}

std::size_t valid_record_at(const std::byte* p, std::size_t left) {
    if (left < record_header) return 0;
    const std::uint32_t length = get_u32(p + 4);
    if (length > max_record_payload || length > left - record_header) return 0;
    const std::uint32_t crc = crc32c({p + 4, 5 + std::size_t{length}});
    return crc == get_u32(p) ? record_header + length : 0;
}

}  // namespace log_records

using namespace log_records;

segment_scan scan_segment(std::span<const std::byte> bytes, std::uint64_t seqno, bool last,
                          raft_recovered& into) {
    segment_scan scan;
    auto corrupted = [&scan](std::size_t at, const std::string& what,
                             const std::string& detail = {}) {
        scan.what = segment_scan::verdict::corrupted;
        scan.problem = what + " at offset " + std::to_string(at) + detail;
        return scan;
    };
    std::size_t at = 0;
    std::vector<log_entry>& entries = into.entries;
    while (at + record_header <= bytes.size()) {
        const std::size_t size = valid_record_at(bytes.data() + at, bytes.size() - at);
        if (size == 0) {
            // Zeros: the preallocated rest of the segment. Anything else is a bad record.
            const bool zeros =
                std::all_of(bytes.begin() + static_cast<std::ptrdiff_t>(at), bytes.end(),
                            [](std::byte b) { return b == std::byte{0}; });
            if (zeros) break;
            bool more = false;
            for (std::size_t p = at + 1; p + record_header <= bytes.size() && !more; ++p)
                more = valid_record_at(bytes.data() + p, bytes.size() - p) != 0;
            if (!last || more) {
                return corrupted(
                    at, "bad record",
                    more ? ", with valid records after it" : ", in a segment that is not the last");
            }
            // A write torn by a crash: everything from here to the last non-zero byte.
            scan.what = segment_scan::verdict::torn;
            scan.records_end = at;
            scan.data_end =
                static_cast<std::size_t>(std::find_if(bytes.rbegin(), bytes.rend(),
                                                      [](std::byte b) { return b != std::byte{0}; })
                                             .base() -
                                         bytes.begin());
            return scan;
        }
        const std::byte* payload = bytes.data() + at + record_header;
        const std::uint32_t length = get_u32(bytes.data() + at + 4);
        const auto type = std::to_integer<std::uint8_t>(bytes[at + 8]);
        const std::size_t record_at = at;
        at += size;
        if ((record_at == 0) != (type == rec_segment))
            return corrupted(record_at, "no segment header");
        switch (type) {
            case rec_segment:
                if (length != 8 || get_u64(payload) != seqno)
                    return corrupted(record_at, "wrong segment header");
                break;
            case rec_state:
                if (length != 24) return corrupted(record_at, "bad state record");
                into.state = {get_u64(payload), get_u64(payload + 8), get_u64(payload + 16)};
                break;
            case rec_entry: {
                if (length < 17) return corrupted(record_at, "bad entry record");
                log_entry e;
                e.term = get_u64(payload);
                e.index = get_u64(payload + 8);
                const auto kind = std::to_integer<std::uint8_t>(payload[16]);
                if (kind > static_cast<std::uint8_t>(entry_kind::config) || e.index == 0)
                    return corrupted(record_at, "bad entry record");
                e.kind = static_cast<entry_kind>(kind);
                e.data.assign(payload + 17, payload + length);
                // An entry at or below the last one replaces the log from there (a conflict
                // the leader resolved); one past a gap starts over (after an install).
                if (!entries.empty() && e.index <= entries.back().index &&
                    e.index >= entries.front().index) {
                    entries.resize(e.index - entries.front().index);
                } else if (!entries.empty() && e.index != entries.back().index + 1) {
                    entries.clear();
                }
                scan.max_index = std::max(scan.max_index, e.index);
                entries.push_back(std::move(e));
                break;
            }
            case rec_installed: {
                if (length != 16) return corrupted(record_at, "bad install record");
                const log_index index = get_u64(payload);
                const term_t term = get_u64(payload + 8);
                auto it = std::find_if(entries.begin(), entries.end(),
                                       [index](const log_entry& e) { return e.index == index; });
                if (it != entries.end() && it->term == term) {
                    entries.erase(entries.begin(), it + 1);
                } else {
                    entries.clear();
                }
                break;
            }
            default:
                return corrupted(record_at, "unknown record type " + std::to_string(type));
        }
    }
    scan.records_end = at;
    return scan;
}

}  // namespace ringmesh::replication
