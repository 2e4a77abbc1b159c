// The durable Raft log on a real directory through io_uring: group commit, recovery, torn
// tails, damaged data, segment rollover and compaction, snapshots saved and received.
#include "engine/replication/log_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "engine/replication/crc32c.h"
#include "engine/replication/log_records.h"

namespace ringmesh::replication {
namespace {

namespace fs = std::filesystem;

log_entry entry(log_index index, term_t term, std::string_view text) {
    log_entry e;
    e.index = index;
    e.term = term;
    const auto* p = reinterpret_cast<const std::byte*>(text.data());
    e.data.assign(p, p + text.size());
    return e;
}

class LogStoreTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char pattern[] = "/tmp/ringmesh-log-XXXXXX";
        ASSERT_NE(::mkdtemp(pattern), nullptr);
        dir_ = pattern;
        auto ring = disk_ring::create();
        if (!ring && ring.err().code == storage_errc::not_supported)
            GTEST_SKIP() << "io_uring is not supported here: " << ring.err().message();
        ASSERT_TRUE(ring) << ring.err().message();
        ring_ = std::move(ring).value();
    }
    void TearDown() override {
        store_.reset();
        ring_.reset();
        if (!dir_.empty()) fs::remove_all(dir_);
    }

    std::unique_ptr<log_store> open(std::uint64_t segment_bytes = 1 << 20) {
        store_.reset();
        auto s = log_store::open(*ring_, {dir_ + "/group", segment_bytes});
        if (!s) {
            last_error_ = s.err().message();
            last_code_ = s.err().code;
            return nullptr;
        }
        auto store = std::move(s).value();
        store->on_durable = [this](std::uint64_t seq) { durable_.push_back(seq); };
        store->on_failure = [this](const error& e) { last_error_ = e.message(); };
        return store;
    }
    void reopen(std::uint64_t segment_bytes = 1 << 20) {
        store_ = open(segment_bytes);
        ASSERT_NE(store_, nullptr) << last_error_;
    }
    // Persists one ready and waits until it is durable.
    void persist(raft_ready ready) {
        const std::uint64_t seq = ready.persist_seq;
        store_->append(ready);
        store_->flush(0);
        while (!store_->idle())
            ring_->reap(true);
        if (seq != 0) {
            ASSERT_EQ(durable_.back(), seq);
        }
    }
    raft_ready ready_with(std::uint64_t seq, std::vector<log_entry> entries,
                          std::optional<hard_state> state = std::nullopt) {
        raft_ready r;
        r.persist_seq = seq;
        r.entries = std::move(entries);
        r.state = state;
        return r;
    }
    std::string segment_path(int n) const {
        char name[32];
        std::snprintf(name, sizeof(name), "seg-%016x.log", n);
        return dir_ + "/group/" + name;
    }

    std::string dir_;
    std::unique_ptr<disk_ring> ring_;
    std::unique_ptr<log_store> store_;
    std::vector<std::uint64_t> durable_;
    std::string last_error_;
    std::error_code last_code_;
};

TEST(Crc32cTest, MatchesTheCheckValueAndContinues) {
    const std::string_view text = "123456789";
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(text.data()),
                                           text.size());
    EXPECT_EQ(crc32c(bytes), 0xe3069283u);
    EXPECT_EQ(crc32c_portable(bytes), 0xe3069283u);
    EXPECT_EQ(crc32c(bytes.subspan(4), crc32c(bytes.subspan(0, 4))), 0xe3069283u);
    EXPECT_EQ(crc32c_portable(bytes.subspan(4), crc32c_portable(bytes.subspan(0, 4))), 0xe3069283u);
}

TEST_F(LogStoreTest, ReadiesOfOneIterationShareOneGroupCommit) {
    reopen();
    store_->append(*std::make_unique<raft_ready>(ready_with(1, {entry(1, 1, "a")}, {{1, 1, 0}})));
    raft_ready second = ready_with(2, {entry(2, 1, "b"), entry(3, 1, "c")});
    store_->append(second);
    EXPECT_EQ(store_->flush(0), 1u);
    EXPECT_TRUE(durable_.empty()) << "durable before the fdatasync completed";
    while (!store_->idle())
        ring_->reap(true);
    EXPECT_EQ(durable_, (std::vector<std::uint64_t>{1, 2}));
    EXPECT_EQ(store_->stats().groups, 1u);
    EXPECT_EQ(store_->stats().fsyncs, 1u);
    EXPECT_EQ(store_->stats().readies, 2u);
}

TEST_F(LogStoreTest, RecoversTheHardStateAndTheLogWithConflictsResolved) {
    reopen();
    persist(ready_with(1, {entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 1, "c")}, {{1, 2, 1}}));
    // A new leader replaced entries 2 and 3.
    persist(ready_with(2, {entry(2, 2, "B"), entry(3, 2, "C"), entry(4, 2, "D")}, {{2, 0, 3}}));
    reopen();
    const raft_recovered r = store_->recovered();
    EXPECT_EQ(r.state, (hard_state{2, 0, 3}));
    ASSERT_EQ(r.entries.size(), 4u);
    EXPECT_EQ(r.entries[1], entry(2, 2, "B"));
    EXPECT_EQ(r.entries[3], entry(4, 2, "D"));
    // And it goes on appending where it left off.
    persist(ready_with(3, {entry(5, 2, "E")}));
    reopen();
    EXPECT_EQ(store_->recovered().entries.back(), entry(5, 2, "E"));
}

TEST_F(LogStoreTest, ATornTailIsCutOffAndCounted) {
    reopen();
    persist(ready_with(1, {entry(1, 1, "a")}, {{1, 1, 0}}));
    persist(ready_with(2, {entry(2, 1, "b")}));  // the segment's data now ends in a 'b'
    const fs::path seg = segment_path(1);
    store_.reset();
    // A crash in the middle of the next group commit: half a record on the platter.
    std::vector<std::byte> bytes(64);
    {
        std::FILE* f = std::fopen(seg.c_str(), "r+b");
        ASSERT_NE(f, nullptr);
        std::fseek(f, 0, SEEK_SET);
        std::vector<std::byte> head(4096);
        ASSERT_EQ(std::fread(head.data(), 1, head.size(), f), head.size());
        std::size_t end = head.size();
        while (end > 0 && head[end - 1] == std::byte{0})
            --end;
        std::vector<std::byte> torn = {std::byte{0x12}, std::byte{0x34}, std::byte{0x56},
                                       std::byte{0x78}, std::byte{40},   std::byte{0},
                                       std::byte{0},    std::byte{0},    std::byte{3},
                                       std::byte{1},    std::byte{2}};
        std::fseek(f, static_cast<long>(end), SEEK_SET);
        std::fwrite(torn.data(), 1, torn.size(), f);
        std::fclose(f);
    }
    reopen();
    EXPECT_EQ(store_->stats().torn_bytes_cut, 11u);
    EXPECT_EQ(store_->recovered().entries.size(), 2u);
    persist(ready_with(3, {entry(3, 1, "c")}));
    reopen();
    EXPECT_EQ(store_->recovered().entries.size(), 3u);
    EXPECT_EQ(store_->stats().torn_bytes_cut, 0u);
}

TEST_F(LogStoreTest, ATornGroupNeverKeepsACommitIndexWithoutItsEntries) {
    reopen();
    persist(ready_with(1, {entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 1, "c")}, {{1, 1, 1}}));
    // A new leader's entries replace 2 and 3 and the same ready commits them; the crash tears
    // the group in the middle of the second entry.
    raft_ready replace = ready_with(2, {entry(2, 2, "B"), entry(3, 2, "C")}, {{2, 0, 3}});
    store_->append(replace);
    store_->flush(0);
    while (!store_->idle())
        ring_->reap(true);
    store_.reset();
    const int fd = ::open(segment_path(1).c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    std::vector<std::byte> head(512);
    ASSERT_EQ(::pread(fd, head.data(), head.size(), 0), 512);
    const std::byte big_c{'C'};
    auto at = std::find(head.begin(), head.end(), big_c);
    ASSERT_NE(at, head.end());
    // Everything from the 'C' entry's payload on never reached the platter.
    std::vector<std::byte> zeros(static_cast<std::size_t>(head.end() - at));
    ASSERT_EQ(::pwrite(fd, zeros.data(), zeros.size(), at - head.begin()),
              static_cast<ssize_t>(zeros.size()));
    ::close(fd);
    reopen();
    const raft_recovered r = store_->recovered();
    // The state record came after the entries: it was lost with them, so the old commit
    // stands and no stale entry at 3 is taken for committed.
    EXPECT_EQ(r.state, (hard_state{1, 1, 1}));
    ASSERT_EQ(r.entries.size(), 2u);
    EXPECT_EQ(r.entries[1], entry(2, 2, "B"));
    EXPECT_GT(store_->stats().torn_bytes_cut, 0u);
}

TEST_F(LogStoreTest, DamageToAcknowledgedRecordsIsRefusedWithWhereItIs) {
    reopen();
    persist(ready_with(1, {entry(1, 1, "first entry")}, {{1, 1, 0}}));
    persist(ready_with(2, {entry(2, 1, "second entry")}));
    store_.reset();
    // Flip one bit inside the first entry's payload: valid records follow it.
    const int fd = ::open(segment_path(1).c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    std::vector<std::byte> head(256);
    ASSERT_EQ(::pread(fd, head.data(), head.size(), 0), 256);
    const std::string_view text = "first entry";
    auto at = std::search(head.begin(), head.end(), reinterpret_cast<const std::byte*>(text.data()),
                          reinterpret_cast<const std::byte*>(text.data()) + text.size());
    ASSERT_NE(at, head.end());
    const auto offset = at - head.begin();
    *at ^= std::byte{0x04};
    ASSERT_EQ(::pwrite(fd, &*at, 1, offset), 1);
    ::close(fd);
    EXPECT_EQ(open(), nullptr);
    EXPECT_EQ(last_code_, make_error_code(storage_errc::corrupted));
    EXPECT_NE(last_error_.find("bad record at offset"), std::string::npos) << last_error_;
    EXPECT_NE(last_error_.find("valid records after it"), std::string::npos) << last_error_;
}

TEST(LogRecordsTest, EveryFlippedBitBeforeTheLastRecordIsFound) {
    // Every bit of a small segment, one at a time. Before the last record a flip is always
    // found (corrupted); in the last record it reads as a torn write, which recovery cuts:
    // the documented limit of any decoder that must also accept torn writes.
    std::vector<std::byte> image;
    std::vector<std::size_t> starts{0};
    log_records::append_segment_header(image, 1);
    starts.push_back(image.size());
    log_records::append_state(image, {3, 2, 2});
    for (log_index i = 1; i <= 3; ++i) {
        starts.push_back(image.size());
        log_records::append_entry(image, entry(i, 3, "entry " + std::to_string(i)));
    }
    const std::size_t last_record = starts.back();
    const std::size_t records_end = image.size();
    image.resize(image.size() + 512);  // the preallocated zeros
    raft_recovered clean;
    ASSERT_EQ(scan_segment(image, 1, true, clean).what, segment_scan::verdict::clean);
    ASSERT_EQ(clean.entries.size(), 3u);
    for (std::size_t at = 0; at < records_end; ++at) {
        for (int bit = 0; bit < 8; ++bit) {
            std::vector<std::byte> damaged = image;
            damaged[at] ^= std::byte{static_cast<std::uint8_t>(1u << bit)};
            raft_recovered into;
            const segment_scan scan = scan_segment(damaged, 1, true, into);
            if (at < last_record) {
                ASSERT_EQ(scan.what, segment_scan::verdict::corrupted) << "byte " << at;
            } else {
                ASSERT_NE(scan.what, segment_scan::verdict::clean) << "byte " << at;
            }
        }
    }
}

TEST_F(LogStoreTest, SegmentsRollOverAndSnapshotsLetOldOnesGo) {
    reopen(8192);
    std::uint64_t seq = 0;
    for (log_index i = 1; i <= 200; ++i)
        persist(ready_with(++seq, {entry(i, 1, std::string(100, 'x'))}, {{1, 1, i - 1}}));
    EXPECT_GT(store_->stats().segments_created, 3u);
    const std::size_t segments_before = static_cast<std::size_t>(
        std::distance(fs::directory_iterator(dir_ + "/group"), fs::directory_iterator{}));
    // The application's snapshot through 150, then the core's compaction behind it.
    bool saved = false;
    snapshot_meta meta{150, 1, {{1, 2, 3}, {}}, 0};
    store_->save_snapshot(meta, std::vector<std::byte>(1000, std::byte{7}),
                          [&](result<void> r) { saved = r.has_value(); });
    while (!saved)
        ring_->reap(true);
    raft_ready compaction;
    compaction.compact_through = 140;
    persist(std::move(compaction));
    EXPECT_GT(store_->stats().segments_deleted, 0u);
    const std::size_t segments_after = static_cast<std::size_t>(
        std::distance(fs::directory_iterator(dir_ + "/group"), fs::directory_iterator{}));
    EXPECT_LT(segments_after, segments_before);
    reopen(8192);
    const raft_recovered r = store_->recovered();
    ASSERT_TRUE(r.snapshot.has_value());
    EXPECT_EQ(r.snapshot->index, 150u);
    EXPECT_EQ(r.snapshot->members.voters.size(), 3u);
    EXPECT_EQ(r.state.commit, 199u);
    ASSERT_FALSE(r.entries.empty());
    EXPECT_EQ(r.entries.front().index, 150u);
    EXPECT_EQ(r.entries.back().index, 200u);
    result<std::vector<std::byte>> data = store_->read_snapshot_data();
    ASSERT_TRUE(data);
    EXPECT_EQ(data->size(), 1000u);
}

TEST_F(LogStoreTest, AReceivedSnapshotBecomesCurrentAtomicallyWithItsLastChunk) {
    reopen();
    persist(ready_with(1, {entry(1, 1, "old")}, {{1, 1, 0}}));
    snapshot_meta meta{40, 3, {{1, 2, 3}, {}}, 10};
    auto chunk = [&](std::uint64_t offset, std::size_t size, bool last) {
        raft_message m;
        m.kind = message_kind::snapshot;
        m.snapshot = meta;
        m.offset = offset;
        m.chunk.assign(size, std::byte{static_cast<unsigned char>(offset + 1)});
        m.last_chunk = last;
        return m;
    };
    raft_ready first;
    first.persist_seq = 2;
    first.snapshot_chunks = {chunk(0, 6, false)};
    persist(std::move(first));
    EXPECT_FALSE(store_->snapshot().has_value()) << "current before its last chunk";
    // A crash here leaves a half-written temporary file that recovery discards.
    reopen();
    EXPECT_FALSE(store_->recovered().snapshot.has_value());
    EXPECT_FALSE(fs::exists(dir_ + "/group/snapshot.tmp"));
    raft_ready again;
    again.persist_seq = 3;
    again.snapshot_chunks = {chunk(0, 6, false), chunk(6, 4, true)};
    persist(std::move(again));
    ASSERT_TRUE(store_->snapshot().has_value());
    EXPECT_EQ(store_->snapshot()->index, 40u);
    std::vector<std::byte> out;
    bool read = false;
    ASSERT_TRUE(store_->read_snapshot_chunk(meta, 6, 4, [&](std::vector<std::byte> bytes) {
        out = std::move(bytes);
        read = true;
    }));
    while (!read)
        ring_->reap(true);
    EXPECT_EQ(out, std::vector<std::byte>(4, std::byte{7}));
    EXPECT_FALSE(store_->read_snapshot_chunk({39, 3, {}, 10}, 0, 4, [](std::vector<std::byte>) {}))
        << "a chunk of a snapshot that is not the current one";
    reopen();
    const raft_recovered r = store_->recovered();
    ASSERT_TRUE(r.snapshot.has_value());
    EXPECT_EQ(r.snapshot->index, 40u);
    EXPECT_TRUE(r.entries.empty()) << "the old log does not continue the snapshot";
}

TEST_F(LogStoreTest, ADamagedSnapshotIsRefused) {
    reopen();
    bool saved = false;
    store_->save_snapshot({5, 1, {{1}, {}}, 0}, std::vector<std::byte>(100, std::byte{1}),
                          [&](result<void> r) { saved = r.has_value(); });
    while (!saved)
        ring_->reap(true);
    store_.reset();
    const std::string path = dir_ + "/group/snap-00000000000000000005.snap";
    const int fd = ::open(path.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    const std::byte flipped{0x42};
    ASSERT_EQ(::pwrite(fd, &flipped, 1, 4096 + 50), 1);
    ::close(fd);
    EXPECT_EQ(open(), nullptr);
    EXPECT_EQ(last_code_, make_error_code(storage_errc::corrupted));
    EXPECT_NE(last_error_.find("snapshot data is damaged"), std::string::npos) << last_error_;
}

}  // namespace
}  // namespace ringmesh::replication
