// Fuzz target: recovery's segment decoder. Arbitrary bytes are scanned as the last segment and
// as an earlier one; the scan must end in a verdict without crashing, and a clean scan of
// bytes that came from records must replay to the same entries twice.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "engine/replication/log_records.h"

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

std::vector<std::vector<std::uint8_t>> fuzz_seeds() {
    // A segment as the store writes it (log_records.h).
    std::vector<std::byte> segment;
    log_records::append_segment_header(segment, 1);
    log_records::append_state(segment, {3, 2, 1});
    for (log_index i = 1; i <= 3; ++i) {
        const std::byte data[] = {std::byte{static_cast<unsigned char>('a' + i)}};
        log_records::append_entry(segment, {2, i, entry_kind::command, {data, data + 1}});
    }
    log_records::append_installed(segment, {2, 2, {}, 0});  // a snapshot installed through 2
    std::vector<std::byte> torn = segment;
    torn.resize(torn.size() - 3);
    segment.resize(segment.size() + 32, std::byte{0});  // the preallocated rest
    auto as_seed = [](const std::vector<std::byte>& b) {
        const auto* p = reinterpret_cast<const std::uint8_t*>(b.data());
        return std::vector<std::uint8_t>(p, p + b.size());
    };
    return {as_seed(segment), as_seed(torn)};
}
