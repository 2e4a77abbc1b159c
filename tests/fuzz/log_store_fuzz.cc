// Fuzz target: recovery's segment decoder. Arbitrary bytes are scanned as the last segment and
// as an earlier one; the scan must end in a verdict without crashing, and a clean scan of
// bytes that came from records must replay to the same entries twice.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "engine/replication/crc32c.h"
#include "engine/replication/log_store.h"

using namespace ringmesh::replication;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data), size);
    for (bool last : {true, false}) {
        raft_recovered a;
        const segment_scan scan = scan_segment(input, 1, last, a);
        if (scan.records_end > size || (scan.what == segment_scan::verdict::torn && !last))
            std::abort();
        if (scan.what == segment_scan::verdict::torn &&
            (scan.data_end < scan.records_end || scan.data_end > size))
            std::abort();
        // Deterministic: the same bytes replay to the same log.
        raft_recovered b;
        (void)scan_segment(input, 1, last, b);
        if (a.entries != b.entries || a.state != b.state) std::abort();
        for (std::size_t i = 1; i < a.entries.size(); ++i) {
            if (a.entries[i].index != a.entries[i - 1].index + 1) std::abort();
        }
    }
    return 0;
}

namespace {

// A record as the store lays it out: crc32c | length | type | payload.
void put_record(std::vector<std::uint8_t>& out, std::uint8_t type,
                const std::vector<std::uint8_t>& payload) {
    const auto length = static_cast<std::uint32_t>(payload.size());
    const auto* l = reinterpret_cast<const std::uint8_t*>(&length);
    std::vector<std::uint8_t> body(l, l + 4);
    body.push_back(type);
    body.insert(body.end(), payload.begin(), payload.end());
    const std::uint32_t crc =
        crc32c({reinterpret_cast<const std::byte*>(body.data()), body.size()});
    const auto* c = reinterpret_cast<const std::uint8_t*>(&crc);
    out.insert(out.end(), c, c + 4);
    out.insert(out.end(), body.begin(), body.end());
}

std::vector<std::uint8_t> u64s(std::initializer_list<std::uint64_t> values) {
    std::vector<std::uint8_t> out;
    for (std::uint64_t v : values) {
        const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
        out.insert(out.end(), p, p + 8);
    }
    return out;
}

}  // namespace

std::vector<std::vector<std::uint8_t>> fuzz_seeds() {
    std::vector<std::uint8_t> segment;
    put_record(segment, 1, u64s({1}));        // segment header, seqno 1
    put_record(segment, 2, u64s({3, 2, 1}));  // hard state
    for (std::uint64_t i = 1; i <= 3; ++i) {
        std::vector<std::uint8_t> entry = u64s({2, i});
        entry.push_back(0);  // a command
        entry.push_back(static_cast<std::uint8_t>('a' + i));
        put_record(segment, 3, entry);
    }
    put_record(segment, 4, u64s({2, 2}));  // a snapshot installed through 2
    std::vector<std::uint8_t> torn = segment;
    torn.resize(torn.size() - 3);
    segment.resize(segment.size() + 32, 0);  // the preallocated rest
    return {segment, torn};
}
