// The key-value state machine alone: every operation's answer, retries answered once,
// sessions bounded, snapshots that restore the same state, and bad input that changes
// nothing.
#include "engine/kv/kv_state.h"

#include <gtest/gtest.h>

#include <string>

namespace ringmesh::kv {
namespace {

std::vector<std::byte> bytes(std::string_view s) {
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    return {p, p + s.size()};
}
std::string text(const std::vector<std::byte>& b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

struct command {
    wire::KvOp op = wire::KvOp::Put;
    std::string key = "k";
    std::string value;
    std::string expected;
    bool expect_absent = false;
    std::uint64_t client = 1;
    std::uint64_t sequence = 1;
};

std::vector<std::byte> encode(const command& c) {
    flatbuffers::FlatBufferBuilder b;
    const auto value = bytes(c.value);
    const auto expected = bytes(c.expected);
    b.Finish(wire::CreateKvCommand(
        b, c.op, b.CreateString(c.key),
        b.CreateVector(reinterpret_cast<const std::uint8_t*>(value.data()), value.size()),
        b.CreateVector(reinterpret_cast<const std::uint8_t*>(expected.data()), expected.size()),
        c.expect_absent, c.client, c.sequence));
    const auto* p = reinterpret_cast<const std::byte*>(b.GetBufferPointer());
    return {p, p + b.GetSize()};
}

class KvStateTest : public ::testing::Test {
  protected:
    kv_result apply(const command& c) {
        replication::log_entry e;
        e.index = ++index_;
        e.term = 1;
        e.data = encode(c);
        return state_.apply(e);
    }
    replication::log_index index_ = 0;
    kv_state state_;
};

TEST_F(KvStateTest, EveryOperationAnswersAsDocumented) {
    EXPECT_EQ(state_.get("k").status, wire::KvStatus::NotFound);
    EXPECT_EQ(apply({wire::KvOp::Put, "k", "v1", {}, false, 1, 1}).status, wire::KvStatus::Ok);
    EXPECT_EQ(text(state_.get("k").value), "v1");
    const kv_result appended = apply({wire::KvOp::Append, "k", "+x", {}, false, 1, 2});
    EXPECT_EQ(text(appended.value), "v1+x");
    EXPECT_EQ(appended.index, 2u);
    const kv_result failed = apply({wire::KvOp::Cas, "k", "new", "v1", false, 1, 3});
    EXPECT_EQ(failed.status, wire::KvStatus::CasFailed);
    EXPECT_EQ(text(failed.value), "v1+x");
    EXPECT_EQ(apply({wire::KvOp::Cas, "k", "new", "v1+x", false, 1, 4}).status, wire::KvStatus::Ok);
    EXPECT_EQ(text(state_.get("k").value), "new");
    EXPECT_EQ(apply({wire::KvOp::Cas, "k", "x", {}, true, 1, 5}).status, wire::KvStatus::CasFailed);
    EXPECT_EQ(apply({wire::KvOp::Cas, "fresh", "x", {}, true, 1, 6}).status, wire::KvStatus::Ok);
    EXPECT_EQ(apply({wire::KvOp::Delete, "k", {}, {}, false, 1, 7}).status, wire::KvStatus::Ok);
    EXPECT_EQ(apply({wire::KvOp::Delete, "k", {}, {}, false, 1, 8}).status,
              wire::KvStatus::NotFound);
    EXPECT_EQ(state_.size(), 1u);
    EXPECT_EQ(state_.applied(), 8u);
}

TEST_F(KvStateTest, ARetriedWriteGetsItsFirstAnswerAndAppliesOnce) {
    apply({wire::KvOp::Append, "list", "a", {}, false, 7, 1});
    // The same (client, sequence) again, as after a leader change: nothing applies twice.
    const kv_result retry = apply({wire::KvOp::Append, "list", "a", {}, false, 7, 1});
    EXPECT_EQ(text(retry.value), "a");
    EXPECT_EQ(retry.index, 1u) << "the first answer, with its index";
    EXPECT_EQ(text(state_.get("list").value), "a");
    EXPECT_EQ(state_.stats().duplicates, 1u);
    // Another client's sequence 1 is its own.
    EXPECT_EQ(text(apply({wire::KvOp::Append, "list", "b", {}, false, 8, 1}).value), "ab");
    // An older sequence than the client's last is refused.
    apply({wire::KvOp::Append, "list", "c", {}, false, 7, 2});
    EXPECT_EQ(apply({wire::KvOp::Append, "list", "z", {}, false, 7, 1}).status,
              wire::KvStatus::BadRequest);
    EXPECT_EQ(text(state_.get("list").value), "abc");
}

TEST_F(KvStateTest, SessionsAreBoundedOldestFirst) {
    state_ = kv_state({.max_sessions = 3});
    for (std::uint64_t client = 1; client <= 5; ++client)
        apply({wire::KvOp::Append, "k", "x", {}, false, client, 1});
    EXPECT_EQ(state_.sessions_evicted(), 2u);
    // Client 5 is remembered (a duplicate); client 1 was forgotten (applies again).
    apply({wire::KvOp::Append, "k", "x", {}, false, 5, 1});
    EXPECT_EQ(state_.stats().duplicates, 1u);
    apply({wire::KvOp::Append, "k", "x", {}, false, 1, 1});
    EXPECT_EQ(text(state_.get("k").value), "xxxxxx");
}

TEST_F(KvStateTest, ASnapshotRestoresTheSameStateAndSessions) {
    for (int i = 0; i < 50; ++i) {
        apply({wire::KvOp::Put,
               "key" + std::to_string(i),
               "value" + std::to_string(i),
               {},
               false,
               static_cast<std::uint64_t>(i % 5 + 1),
               static_cast<std::uint64_t>(i + 1)});
    }
    const std::vector<std::byte> snap = state_.snapshot();
    kv_state copy;
    ASSERT_TRUE(copy.restore(snap));
    EXPECT_EQ(copy.applied(), state_.applied());
    EXPECT_EQ(copy.size(), 50u);
    EXPECT_EQ(text(copy.get("key17").value), "value17");
    EXPECT_EQ(copy.snapshot(), snap) << "the same state serializes to the same bytes";
    // Sessions survive: client 5's last write (sequence 50) is a duplicate in the copy.
    replication::log_entry e{1, 51, replication::entry_kind::command,
                             encode({wire::KvOp::Put, "key49", "other", {}, false, 5, 50})};
    EXPECT_EQ(copy.apply(e).index, 50u);
    EXPECT_EQ(text(copy.get("key49").value), "value49");
}

TEST_F(KvStateTest, BadInputChangesNothingAndIsCounted) {
    apply({wire::KvOp::Put, "k", "v", {}, false, 1, 1});
    replication::log_entry garbage{1, 2, replication::entry_kind::command,
                                   std::vector<std::byte>(40, std::byte{0x5a})};
    EXPECT_EQ(state_.apply(garbage).status, wire::KvStatus::BadRequest);
    EXPECT_EQ(state_.stats().malformed_entries, 1u);
    EXPECT_EQ(state_.applied(), 2u) << "the index advances everywhere alike";
    // No client, an empty key, an oversized value: refused before any of it is read.
    EXPECT_EQ(check_command(encode({wire::KvOp::Put, "k", "v", {}, false, 0, 1}), {}).status,
              wire::KvStatus::BadRequest);
    EXPECT_EQ(check_command(encode({wire::KvOp::Put, "", "v", {}, false, 1, 1}), {}).status,
              wire::KvStatus::BadRequest);
    EXPECT_EQ(check_command(encode({wire::KvOp::Put, "k", std::string(2000, 'v'), {}, false, 1, 1}),
                            {.max_value_bytes = 1000})
                  .status,
              wire::KvStatus::TooLarge);
    // A command at an odd address (inside an RPC body) is read all the same.
    std::vector<std::byte> shifted(1);
    command get;
    get.op = wire::KvOp::Get;
    const auto encoded = encode(get);
    shifted.insert(shifted.end(), encoded.begin(), encoded.end());
    EXPECT_EQ(check_command(std::span(shifted).subspan(1), {}).status, wire::KvStatus::Ok);
    // A damaged snapshot is refused and the state stays.
    std::vector<std::byte> snap = state_.snapshot();
    snap.resize(snap.size() / 2);
    EXPECT_FALSE(state_.restore(snap));
    EXPECT_EQ(text(state_.get("k").value), "v");
}

}  // namespace
}  // namespace ringmesh::kv
