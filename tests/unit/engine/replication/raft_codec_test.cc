// Raft batches on the wire: every kind round-trips, heartbeats of many groups coalesce into
// one batch, and every kind of bad input is refused with its reason.
#include "engine/replication/raft_codec.h"

#include <gtest/gtest.h>

#include <iterator>
#include <random>

#include "raft_generated.h"

namespace ringmesh::replication {
namespace {

raft_message base(message_kind kind, group_id group = 3) {
    raft_message m;
    m.kind = kind;
    m.group = group;
    m.from = 1;
    m.to = 2;
    m.term = 5;
    return m;
}

log_entry entry(log_index index, term_t term, std::string_view text,
                entry_kind kind = entry_kind::command) {
    log_entry e;
    e.index = index;
    e.term = term;
    e.kind = kind;
    const auto* p = reinterpret_cast<const std::byte*>(text.data());
    e.data.assign(p, p + text.size());
    return e;
}

std::vector<raft_message> round_trip(const std::vector<raft_message>& in,
                                     raft_codec_error expect = raft_codec_error::none) {
    std::vector<std::byte> bytes;
    encode_batch(1, 2, in, "c", bytes);
    std::vector<raft_message> out;
    EXPECT_EQ(decode_batch(bytes, "c", 2, out), expect);
    return out;
}

TEST(RaftCodecTest, EveryKindRoundTrips) {
    raft_message vote = base(message_kind::vote_request);
    vote.pre_vote = true;
    vote.transfer = true;
    vote.last_log_index = 9;
    vote.last_log_term = 4;
    raft_message append = base(message_kind::append);
    append.prev_index = 10;
    append.prev_term = 4;
    append.commit = 9;
    append.entries = {entry(11, 4, "a"), entry(12, 5, "bc"), entry(13, 5, "", entry_kind::no_op)};
    append.entries.push_back({5, 14, entry_kind::config, encode_members({{1, 2, 3}, {4}})});
    raft_message reply = base(message_kind::append_reply);
    reply.reject = true;
    reply.index = 10;
    reply.hint_index = 7;
    reply.hint_term = 3;
    raft_message chunk = base(message_kind::snapshot);
    chunk.snapshot = {20, 4, {{1, 2, 3}, {}}, 10};
    chunk.offset = 6;
    chunk.chunk = {std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
    chunk.chunk_bytes = 4;
    chunk.last_chunk = true;
    raft_message snap_reply = base(message_kind::snapshot_reply);
    snap_reply.snapshot = {20, 4, {}, 10};
    snap_reply.offset = 10;
    snap_reply.index = 20;
    const std::vector<raft_message> in = {vote,
                                          append,
                                          reply,
                                          chunk,
                                          snap_reply,
                                          base(message_kind::timeout_now),
                                          base(message_kind::vote_reply)};
    const std::vector<raft_message> out = round_trip(in);
    ASSERT_EQ(out.size(), in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        EXPECT_EQ(out[i].kind, in[i].kind);
        EXPECT_EQ(out[i].term, in[i].term);
        EXPECT_EQ(out[i].entries, in[i].entries);
        EXPECT_EQ(out[i].snapshot, in[i].snapshot);
        EXPECT_EQ(out[i].chunk, in[i].chunk);
        EXPECT_EQ(out[i].from, 1u);
        EXPECT_EQ(out[i].to, 2u);
    }
    EXPECT_TRUE(out[0].pre_vote && out[0].transfer);
    EXPECT_EQ(out[2].hint_index, 7u);
    EXPECT_EQ(out[3].chunk_bytes, 4u);
    EXPECT_TRUE(out[3].last_chunk);
}

TEST(RaftCodecTest, EncodedSizeStaysWithinItsBound) {
    // The host splits batches on these bounds to fit the transport's frame limit; a bound
    // below the real size would send a frame the peer refuses. Random mixes of every kind,
    // with large field values (varints do not exist here, but padding does).
    std::mt19937_64 rng(7);
    const message_kind kinds[] = {
        message_kind::vote_request, message_kind::vote_reply,     message_kind::append,
        message_kind::append_reply, message_kind::heartbeat,      message_kind::heartbeat_reply,
        message_kind::snapshot,     message_kind::snapshot_reply, message_kind::timeout_now};
    for (int round = 0; round < 500; ++round) {
        std::vector<raft_message> batch;
        std::size_t bound = batch_bound_overhead + 7;  // "cluster"
        const int count = 1 + static_cast<int>(rng() % 20);
        for (int i = 0; i < count; ++i) {
            raft_message m = base(kinds[rng() % std::size(kinds)], 1 + rng() % 1000);
            m.term = rng();
            m.commit = rng();
            m.context = rng();
            if (m.kind == message_kind::append) {
                m.prev_index = 1000;
                m.prev_term = 1;
                for (int e = 0; e < static_cast<int>(rng() % 30); ++e) {
                    log_entry entry;
                    entry.index = 1001 + static_cast<log_index>(e);
                    entry.term = 1;
                    entry.data.resize(rng() % 300);
                    m.entries.push_back(std::move(entry));
                }
                m.term = 1;
            }
            if (m.kind == message_kind::snapshot || m.kind == message_kind::snapshot_reply) {
                m.snapshot = {rng() % 1000 + 1, 1, {{1, 2, 3, 4, 5}, {6, 7}}, 4096};
                if (m.kind == message_kind::snapshot) {
                    m.chunk.resize(rng() % 4096);
                    m.chunk_bytes = static_cast<std::uint32_t>(m.chunk.size());
                }
            }
            bound += encoded_bound(m);
            batch.push_back(std::move(m));
        }
        std::vector<std::byte> bytes;
        encode_batch(1, 2, batch, "cluster", bytes);
        ASSERT_LE(bytes.size(), bound) << "round " << round;
    }
}

TEST(RaftCodecTest, HeartbeatsOfManyGroupsCoalesceIntoSmallStructs) {
    std::vector<raft_message> beats;
    for (group_id g = 0; g < 1000; ++g) {
        raft_message m =
            base(g % 2 == 0 ? message_kind::heartbeat : message_kind::heartbeat_reply, g);
        m.commit = g;
        m.context = 77;
        beats.push_back(m);
    }
    std::vector<std::byte> bytes;
    encode_batch(1, 2, beats, "c", bytes);
    EXPECT_LT(bytes.size(), 1000u * 40) << "a heartbeat should cost about 32 bytes";
    std::vector<raft_message> out;
    ASSERT_EQ(decode_batch(bytes, "c", 2, out), raft_codec_error::none);
    ASSERT_EQ(out.size(), 1000u);
    EXPECT_EQ(out[7].kind, message_kind::heartbeat_reply);
    EXPECT_EQ(out[7].group, 7u);
    EXPECT_EQ(out[8].commit, 8u);
    EXPECT_EQ(out[8].context, 77u);
}

TEST(RaftCodecTest, RefusesEveryKindOfBadBatchWithItsReason) {
    std::vector<std::byte> bytes;
    std::vector<raft_message> out;
    encode_batch(1, 2, std::vector<raft_message>{base(message_kind::timeout_now)}, "c", bytes);
    EXPECT_EQ(decode_batch(bytes, "other", 2, out), raft_codec_error::wrong_cluster);
    EXPECT_EQ(decode_batch(bytes, "c", 3, out), raft_codec_error::bad_field) << "not for us";
    std::vector<std::byte> cut(bytes.begin(), bytes.begin() + static_cast<long>(bytes.size() / 2));
    EXPECT_EQ(decode_batch(cut, "c", 2, out), raft_codec_error::malformed);

    raft_message gap = base(message_kind::append);
    gap.prev_index = 4;
    gap.prev_term = 5;
    gap.entries = {entry(5, 5, "a"), entry(7, 5, "b")};
    round_trip({gap}, raft_codec_error::bad_entries);
    raft_message future = base(message_kind::append);
    future.entries = {entry(1, 9, "a")};  // a term past the leader's
    round_trip({future}, raft_codec_error::bad_entries);
    raft_message falling = base(message_kind::append);
    falling.entries = {entry(1, 4, "a"), entry(2, 3, "b")};
    round_trip({falling}, raft_codec_error::bad_entries);
    raft_message config = base(message_kind::append);
    config.entries = {entry(1, 5, "not members", entry_kind::config)};
    round_trip({config}, raft_codec_error::bad_entries);
    raft_message overrun = base(message_kind::snapshot);
    overrun.snapshot = {20, 4, {}, 3};
    overrun.chunk = std::vector<std::byte>(4);
    round_trip({overrun}, raft_codec_error::bad_field);
    raft_message liar = base(message_kind::snapshot);
    liar.snapshot = {20, 4, {}, 8};
    liar.chunk = std::vector<std::byte>(8);
    liar.last_chunk = false;  // it is the last chunk
    round_trip({liar}, raft_codec_error::bad_field);
    raft_message zero = base(message_kind::vote_request);
    zero.term = 0;
    round_trip({zero}, raft_codec_error::bad_field);
    raft_message entries_in_vote = base(message_kind::vote_request);
    entries_in_vote.entries = {entry(1, 5, "a")};
    round_trip({entries_in_vote}, raft_codec_error::bad_field);

    raft_codec_limits small;
    small.max_entry_bytes = 2;
    raft_message big = base(message_kind::append);
    big.entries = {entry(1, 5, "abc")};
    bytes.clear();
    encode_batch(1, 2, std::vector<raft_message>{big}, "c", bytes);
    EXPECT_EQ(decode_batch(bytes, "c", 2, out, small), raft_codec_error::too_large);
    EXPECT_TRUE(out.empty()) << "a refused batch delivers nothing";

    // A kind the schema does not know.
    flatbuffers::FlatBufferBuilder b;
    wire::RaftMessageBuilder mb(b);
    mb.add_kind(static_cast<wire::RaftKind>(42));
    mb.add_term(1);
    auto message = mb.Finish();
    auto cluster = b.CreateString("c");
    b.Finish(wire::CreateRaftBatch(b, cluster, 1, 2, b.CreateVector(&message, 1)));
    const auto* p = reinterpret_cast<const std::byte*>(b.GetBufferPointer());
    EXPECT_EQ(decode_batch({p, b.GetSize()}, "c", 2, out), raft_codec_error::bad_kind);

    raft_refusals refusals;
    refusals.count(raft_codec_error::bad_kind);
    refusals.count(raft_codec_error::malformed);
    EXPECT_EQ(refusals.total(), 2u);
}

}  // namespace
}  // namespace ringmesh::replication
