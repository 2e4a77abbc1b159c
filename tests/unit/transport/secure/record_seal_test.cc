// The record layer: payloads round-trip in records of at most 16 KiB, and any change — a
// flipped bit anywhere, a replayed, reordered or foreign record, an oversized length — is
// refused before a byte of the payload is handed out.
#include "transport/secure/record_seal.h"

#include <gtest/gtest.h>

#include <vector>

namespace ringmesh::transport::secure {
namespace {

record_key key_of(unsigned char fill) {
    record_key k{};
    k.fill(static_cast<std::byte>(fill));
    return k;
}

std::vector<std::byte> payload_of(std::size_t n) {
    std::vector<std::byte> p(n);
    for (std::size_t i = 0; i < n; ++i)
        p[i] = static_cast<std::byte>(i * 7 + 3);
    return p;
}

/// Splits `stream` into its records.
std::vector<std::span<const std::byte>> records_of(std::span<const std::byte> stream) {
    std::vector<std::span<const std::byte>> out;
    while (!stream.empty()) {
        std::size_t size = 0;
        EXPECT_EQ(record_opener::next(stream, size), record_status::ok);
        out.push_back(stream.first(size));
        stream = stream.subspan(size);
    }
    return out;
}

TEST(RecordSealTest, PayloadsRoundTripInRecordsOfAtMostSixteenKiB) {
    record_sealer sealer(key_of(1));
    record_opener opener(key_of(1));
    const auto big = payload_of(40000);
    const auto small = payload_of(5);
    std::vector<std::byte> stream;
    sealer.seal(big, stream);
    sealer.seal(small, stream);
    EXPECT_EQ(sealer.records(), 4u);  // 16384 + 16384 + 7232, then 5
    std::vector<std::byte> got;
    for (auto record : records_of(stream)) {
        std::span<const std::byte> payload;
        ASSERT_EQ(opener.open(record, payload), record_status::ok);
        EXPECT_LE(payload.size(), max_record_payload);
        got.insert(got.end(), payload.begin(), payload.end());
    }
    std::vector<std::byte> want;
    for (const std::vector<std::byte>* part : {&big, &small})
        want.insert(want.end(), part->begin(), part->end());
    EXPECT_EQ(got, want);
    EXPECT_EQ(stream.size(), want.size() + 4 * record_overhead);
}

TEST(RecordSealTest, PiecesAppendedOverAnIterationFillRecordsUpToTheLimit) {
    record_sealer sealer(key_of(3));
    const auto data = payload_of(40000);
    std::vector<std::byte> stream;
    for (std::size_t at = 0; at < data.size(); at += 999) {
        const std::size_t n = std::min<std::size_t>(999, data.size() - at);
        sealer.append(std::span<const std::byte>(data).subspan(at, n), stream);
    }
    EXPECT_TRUE(sealer.open());
    sealer.close(stream);
    EXPECT_FALSE(sealer.open());
    sealer.close(stream);  // nothing open: nothing added
    EXPECT_EQ(sealer.records(), 3u);
    record_opener opener(key_of(3));
    std::vector<std::byte> got;
    for (auto record : records_of(stream)) {
        std::span<const std::byte> payload;
        ASSERT_EQ(opener.open(record, payload), record_status::ok);
        got.insert(got.end(), payload.begin(), payload.end());
    }
    EXPECT_EQ(got, data);
}

TEST(RecordSealTest, EveryFlippedBitIsRefused) {
    std::vector<std::byte> stream;
    record_sealer(key_of(1)).seal(payload_of(24), stream);
    for (std::size_t at = 0; at < stream.size(); ++at) {
        for (int bit = 0; bit < 8; ++bit) {
            std::vector<std::byte> bad = stream;
            bad[at] ^= static_cast<std::byte>(1 << bit);
            record_opener opener(key_of(1));
            std::span<const std::byte> payload;
            std::size_t size = 0;
            const record_status next = record_opener::next(bad, size);
            const record_status s =
                next != record_status::ok
                    ? next
                    : opener.open(std::span<const std::byte>(bad).first(size), payload);
            EXPECT_NE(s, record_status::ok) << "byte " << at << " bit " << bit;
            EXPECT_TRUE(payload.empty());
        }
    }
}

TEST(RecordSealTest, ReplayedReorderedAndForeignRecordsAreRefused) {
    record_sealer sealer(key_of(1));
    std::vector<std::byte> stream;
    sealer.seal(payload_of(10), stream);
    sealer.seal(payload_of(11), stream);
    const auto records = records_of(stream);
    ASSERT_EQ(records.size(), 2u);
    std::span<const std::byte> payload;
    {
        record_opener opener(key_of(1));
        EXPECT_EQ(opener.open(records[1], payload), record_status::tampered) << "reordered";
        EXPECT_EQ(opener.open(records[0], payload), record_status::tampered)
            << "an opener that refused stays closed";
    }
    {
        record_opener opener(key_of(1));
        ASSERT_EQ(opener.open(records[0], payload), record_status::ok);
        EXPECT_EQ(opener.open(records[0], payload), record_status::tampered) << "replayed";
    }
    {
        record_opener opener(key_of(2));
        EXPECT_EQ(opener.open(records[0], payload), record_status::tampered) << "another key";
    }
}

TEST(RecordSealTest, LengthsAreCheckedBeforeAnythingIsRead) {
    std::size_t size = 0;
    const std::vector<std::byte> short_header(3);
    EXPECT_EQ(record_opener::next(short_header, size), record_status::incomplete);
    std::vector<std::byte> huge = {std::byte{0x01}, std::byte{0x40}, std::byte{0}, std::byte{0}};
    EXPECT_EQ(record_opener::next(huge, size), record_status::oversized);  // 16385 bytes
    std::vector<std::byte> empty(4);
    EXPECT_EQ(record_opener::next(empty, size), record_status::oversized);
    std::vector<std::byte> partial = {std::byte{10}, std::byte{0}, std::byte{0}, std::byte{0},
                                      std::byte{1}};
    EXPECT_EQ(record_opener::next(partial, size), record_status::incomplete);
}

}  // namespace
}  // namespace ringmesh::transport::secure
