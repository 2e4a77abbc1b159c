// The Raft log's durable append path next to the machine's floor, in the same binary:
//   storage/append_4k/engine        log_store: one 4 KiB entry, group commit, wait durable
//   storage/append_4k/raw_pwrite    one 4 KiB pwrite + fdatasync per iteration
//   storage/group_16x4k/engine      16 entries of 4 KiB in one group commit
//   storage/group_16x4k/raw_pwrite  16 × 4 KiB pwrite, one fdatasync
// Items are entries; the summary prints engine/raw ratios. Files go to $RINGMESH_BENCH_DIR
// (default: the current directory, so run it from a disk, not a tmpfs).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/replication/log_store.h"

namespace rm = ringmesh;
namespace rr = ringmesh::replication;

namespace {

std::string bench_dir(const char* what) {
    // NOLINTNEXTLINE(concurrency-mt-unsafe): nothing sets the environment while it runs
    const char* base = std::getenv("RINGMESH_BENCH_DIR");
    std::string pattern =
        std::string(base != nullptr ? base : ".") + "/ringmesh-" + what + "-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) return {};
    return pattern;
}

void raw_appends(benchmark::State& state) {
    const auto per_sync = static_cast<std::size_t>(state.range(0));
    const std::string dir = bench_dir("floor");
    const std::string path = dir + "/floor.log";
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        state.SkipWithError("cannot create the file");
        return;
    }
    // Preallocated like the log's segments, so both pay the same for extents.
    (void)::posix_fallocate(fd, 0, 256 << 20);
    (void)::fsync(fd);
    std::vector<std::byte> block(4096, std::byte{0x5a});
    off_t at = 0;
    for (auto _ : state) {
        for (std::size_t i = 0; i < per_sync; ++i) {
            if (::pwrite(fd, block.data(), block.size(), at) != 4096) state.SkipWithError("pwrite");
            at = (at + 4096) % (255 << 20);
        }
        if (::fdatasync(fd) != 0) state.SkipWithError("fdatasync");
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(per_sync));
    ::close(fd);
    std::filesystem::remove_all(dir);
}

void log_appends(benchmark::State& state) {
    const auto per_group = static_cast<std::size_t>(state.range(0));
    const std::string dir = bench_dir("log");
    auto ring = rr::disk_ring::create();
    if (!ring) {
        state.SkipWithError(ring.err().message().c_str());
        return;
    }
    {
        auto opened = rr::log_store::open(**ring, {dir + "/group", 64 << 20});
        if (!opened) {
            state.SkipWithError(opened.err().message().c_str());
            return;
        }
        rr::log_store& store = **opened;
        std::uint64_t durable = 0;
        store.on_durable = [&](std::uint64_t seq) { durable = seq; };
        rr::log_index index = 0;
        std::uint64_t seq = 0;
        for (auto _ : state) {
            for (std::size_t i = 0; i < per_group; ++i) {
                rr::raft_ready ready;
                ready.persist_seq = ++seq;
                ready.entries.push_back({1, ++index, rr::entry_kind::command,
                                         std::vector<std::byte>(4096 - 17, std::byte{0x5a})});
                store.append(ready);
            }
            store.flush(0);
            while (durable != seq)
                (*ring)->reap(true);
        }
        state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(per_group));
        state.counters["fsyncs_per_entry"] =
            static_cast<double>(store.stats().fsyncs) / static_cast<double>(index);
    }
    std::filesystem::remove_all(dir);
}

}  // namespace

BENCHMARK(raw_appends)->Name("storage/append_4k/raw_pwrite")->Arg(1)->UseRealTime();
BENCHMARK(log_appends)->Name("storage/append_4k/engine")->Arg(1)->UseRealTime();
BENCHMARK(raw_appends)->Name("storage/group_16x4k/raw_pwrite")->Arg(16)->UseRealTime();
BENCHMARK(log_appends)->Name("storage/group_16x4k/engine")->Arg(16)->UseRealTime();
