// A replicated topic group's state machine alone: offsets from the log, retries appended
// once, retention by size and by age, snapshots, and bad input that changes nothing.
#include "engine/topics/topic_log.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ringmesh::topics {
namespace {

std::vector<std::byte> publish(std::string_view topic, std::string_view payload,
                               std::uint64_t producer, std::uint64_t sequence,
                               std::uint64_t time_ms = 0) {
    flatbuffers::FlatBufferBuilder b;
    b.Finish(wire::CreateTopicPublish(
        b, b.CreateString(topic.data(), topic.size()),
        b.CreateVector(reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()),
        producer, sequence, time_ms));
    const auto* p = reinterpret_cast<const std::byte*>(b.GetBufferPointer());
    return {p, p + b.GetSize()};
}

std::string text(const std::vector<std::byte>& b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

class TopicLogTest : public ::testing::Test {
  protected:
    append_result apply(std::vector<std::byte> data,
                        replication::entry_kind kind = replication::entry_kind::command) {
        return log_.apply({1, ++index_, kind, std::move(data)});
    }
    std::vector<std::string> payloads_from(log_index from) const {
        std::vector<std::string> out;
        log_.read_from(from, [&](const retained_message& m) { out.push_back(text(m.payload)); });
        return out;
    }
    log_index index_ = 0;
    topic_log log_;
};

TEST_F(TopicLogTest, MessagesTakeTheirEntrysIndexAsOffsetInLogOrder) {
    EXPECT_EQ(log_.first_index(), 1u);
    EXPECT_EQ(apply(publish("orders/eu", "a", 1, 1)).index, 1u);
    apply({}, replication::entry_kind::no_op);  // an offset gap: another kind of entry
    const append_result b = apply(publish("orders/us", "b", 2, 1));
    EXPECT_TRUE(b.appended);
    EXPECT_EQ(b.index, 3u);
    EXPECT_EQ(log_.last().topic, "orders/us");
    EXPECT_EQ(payloads_from(1), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(payloads_from(2), (std::vector<std::string>{"b"}));
    EXPECT_EQ(log_.applied(), 3u);
    EXPECT_EQ(log_.first_index(), 1u);
}

TEST_F(TopicLogTest, ARetriedPublishAppendsOnceAndGetsItsFirstOffset) {
    apply(publish("t", "x", 9, 1));
    const append_result retry = apply(publish("t", "x", 9, 1));
    EXPECT_FALSE(retry.appended);
    EXPECT_EQ(retry.status, wire::TopicStatus::Ok);
    EXPECT_EQ(retry.index, 1u);
    EXPECT_EQ(log_.retained(), 1u);
    EXPECT_EQ(log_.stats().duplicates, 1u);
    apply(publish("t", "y", 9, 2));
    EXPECT_EQ(apply(publish("t", "old", 9, 1)).status, wire::TopicStatus::BadRequest);
    EXPECT_EQ(payloads_from(0), (std::vector<std::string>{"x", "y"}));
}

TEST_F(TopicLogTest, RetentionBySizeAndByAgeDropsTheOldestFirst) {
    log_ = topic_log({.retention_bytes = 100});
    for (int i = 0; i < 5; ++i)
        apply(publish("t", std::string(40, static_cast<char>('a' + i)), 1,
                      static_cast<std::uint64_t>(i + 1)));
    EXPECT_EQ(log_.retained(), 2u);  // 80 bytes; a third would be 120
    EXPECT_EQ(log_.first_index(), 4u);
    EXPECT_EQ(log_.stats().dropped_by_retention, 3u);
    topic_log copy({.retention_bytes = 100});
    ASSERT_TRUE(copy.restore(log_.snapshot()));
    EXPECT_EQ(copy.first_index(), 4u) << "where the log starts survives a snapshot";

    log_ = topic_log({.retention_ms = 1000});
    index_ = 0;
    apply(publish("t", "t0", 1, 1, 10'000));
    apply(publish("t", "t1", 1, 2, 10'500));
    apply(publish("t", "t2", 1, 3, 11'200));  // t0 is now 1.2 s older than the newest
    EXPECT_EQ(payloads_from(0), (std::vector<std::string>{"t1", "t2"}));
    EXPECT_EQ(log_.first_index(), 2u);
}

TEST_F(TopicLogTest, ASnapshotRestoresTheSameMessagesAndProducers) {
    for (int i = 0; i < 20; ++i) {
        apply(publish("t/" + std::to_string(i % 3), "m" + std::to_string(i),
                      static_cast<std::uint64_t>(i % 4 + 1), static_cast<std::uint64_t>(i + 1)));
    }
    const std::vector<std::byte> snap = log_.snapshot();
    topic_log copy;
    ASSERT_TRUE(copy.restore(snap));
    EXPECT_EQ(copy.applied(), 20u);
    EXPECT_EQ(copy.retained(), 20u);
    EXPECT_EQ(copy.snapshot(), snap);
    // Producer 4's last publish (sequence 20) is a duplicate in the copy.
    const append_result retry =
        copy.apply({1, 21, replication::entry_kind::command, publish("t/1", "m19", 4, 20)});
    EXPECT_FALSE(retry.appended);
    EXPECT_EQ(retry.index, 20u);
}

TEST_F(TopicLogTest, BadInputChangesNothingAndIsCounted) {
    apply(publish("t", "ok", 1, 1));
    EXPECT_EQ(apply(std::vector<std::byte>(24, std::byte{7})).status,
              wire::TopicStatus::BadRequest);
    EXPECT_EQ(log_.stats().malformed_entries, 1u);
    EXPECT_EQ(log_.applied(), 2u);
    EXPECT_EQ(log_.retained(), 1u);
    // A wildcard is not a topic; a publish needs its producer and sequence; limits hold.
    EXPECT_EQ(check_publish(publish("t/*", "x", 1, 1), {}).status, wire::TopicStatus::BadRequest);
    EXPECT_EQ(check_publish(publish("t", "x", 0, 1), {}).status, wire::TopicStatus::BadRequest);
    EXPECT_EQ(
        check_publish(publish("t", std::string(300, 'p'), 1, 1), {.max_payload_bytes = 100}).status,
        wire::TopicStatus::TooLarge);
    // At an odd address, as inside an RPC body: read all the same.
    std::vector<std::byte> shifted(1);
    const auto encoded = publish("t", "x", 1, 1);
    shifted.insert(shifted.end(), encoded.begin(), encoded.end());
    EXPECT_EQ(check_publish(std::span(shifted).subspan(1), {}).status, wire::TopicStatus::Ok);
    std::vector<std::byte> snap = log_.snapshot();
    snap.resize(snap.size() - 5);
    EXPECT_FALSE(log_.restore(snap));
    EXPECT_EQ(log_.retained(), 1u);
}

}  // namespace
}  // namespace ringmesh::topics
