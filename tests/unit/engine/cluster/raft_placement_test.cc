// Raft groups over a node's shards: the placement rule, a batch's groups read without
// decoding it, and the router sending each batch whole where it can and split where it must.
#include "engine/cluster/raft_placement.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

namespace ringmesh::cluster {
namespace {

using replication::group_id;
using replication::message_kind;
using replication::raft_message;

raft_message message(message_kind kind, group_id group) {
    raft_message m;
    m.kind = kind;
    m.group = group;
    m.from = 1;
    m.to = 2;
    m.term = 3;
    if (kind == message_kind::append) {
        replication::log_entry e;
        e.index = 1;
        e.term = 3;
        e.data = {std::byte{7}, std::byte{8}};
        m.entries.push_back(e);
    }
    return m;
}

std::vector<std::byte> batch_of(const std::vector<raft_message>& messages) {
    std::vector<std::byte> bytes;
    replication::encode_batch(1, 2, messages, "c", bytes);
    return bytes;
}

TEST(RaftPlacementTest, GroupsFillTheShardsInTurnStartingWithGroupOneOnShardZero) {
    EXPECT_EQ(shard_for_group(1, 1), 0u);
    EXPECT_EQ(shard_for_group(7, 1), 0u);
    EXPECT_EQ(shard_for_group(1, 2), 0u);
    EXPECT_EQ(shard_for_group(2, 2), 1u);
    EXPECT_EQ(shard_for_group(3, 2), 0u);
    EXPECT_EQ(shard_for_group(6, 4), 1u);
    EXPECT_EQ(shard_for_group(0, 4), 0u);  // not a group: home
}

TEST(RaftPlacementTest, BatchGroupsNamesEachGroupOnceFromMessagesAndBeats) {
    const auto bytes = batch_of(
        {message(message_kind::append, 4), message(message_kind::heartbeat, 2),
         message(message_kind::vote_request, 4), message(message_kind::heartbeat_reply, 9)});
    std::vector<group_id> groups;
    ASSERT_EQ(replication::batch_groups(bytes, groups), replication::raft_codec_error::none);
    EXPECT_EQ(std::set<group_id>(groups.begin(), groups.end()), (std::set<group_id>{2, 4, 9}));
    EXPECT_EQ(groups.size(), 3u);

    std::vector<std::byte> cut(bytes.begin(), bytes.begin() + static_cast<long>(bytes.size() / 2));
    EXPECT_EQ(replication::batch_groups(cut, groups), replication::raft_codec_error::malformed);
    EXPECT_TRUE(groups.empty());
}

struct routed {
    std::map<shard_id, std::vector<std::vector<std::byte>>> parts;
    void operator()(shard_id s, std::span<const std::byte> bytes) {
        parts[s].emplace_back(bytes.begin(), bytes.end());
    }
};

TEST(RaftPlacementTest, ABatchWhoseGroupsShareAShardGoesThereWhole) {
    raft_batch_router router("c", 2, 2);
    const auto bytes = batch_of({message(message_kind::append, 2),
                                 message(message_kind::heartbeat, 4)});  // both on shard 1
    routed r;
    router.route(bytes, std::ref(r));
    ASSERT_EQ(r.parts.size(), 1u);
    ASSERT_EQ(r.parts[1].size(), 1u);
    EXPECT_EQ(r.parts[1][0], bytes);  // the same bytes, not re-encoded
    EXPECT_EQ(router.stats().whole, 1u);
    EXPECT_EQ(router.stats().split, 0u);
}

TEST(RaftPlacementTest, ABatchMixingShardsIsSplitIntoOneDecodableBatchPerShard) {
    // A node of one shard sends groups 1..4 in one batch to a node of two.
    raft_batch_router router("c", 2, 2);
    const auto bytes =
        batch_of({message(message_kind::append, 1), message(message_kind::append, 2),
                  message(message_kind::heartbeat, 3), message(message_kind::heartbeat, 4),
                  message(message_kind::vote_reply, 3)});
    routed r;
    router.route(bytes, std::ref(r));
    ASSERT_EQ(r.parts.size(), 2u);
    std::map<shard_id, std::multiset<group_id>> seen;
    std::size_t messages = 0;
    for (const auto& [s, parts] : r.parts) {
        ASSERT_EQ(parts.size(), 1u) << "one part per shard";
        std::vector<raft_message> out;
        ASSERT_EQ(replication::decode_batch(parts[0], "c", 2, out),
                  replication::raft_codec_error::none);
        for (const raft_message& m : out) {
            EXPECT_EQ(shard_for_group(m.group, 2), s) << "group " << m.group;
            EXPECT_EQ(m.from, 1u);
            if (m.kind == message_kind::append) {
                ASSERT_EQ(m.entries.size(), 1u);
                EXPECT_EQ(m.entries[0].data, (std::vector<std::byte>{std::byte{7}, std::byte{8}}));
            }
            seen[s].insert(m.group);
            ++messages;
        }
    }
    EXPECT_EQ(messages, 5u) << "nothing lost or repeated by the split";
    EXPECT_EQ(seen[0], (std::multiset<group_id>{1, 3, 3}));
    EXPECT_EQ(seen[1], (std::multiset<group_id>{2, 4}));
    EXPECT_EQ(router.stats().split, 1u);
    EXPECT_EQ(router.stats().parts, 2u);

    // The router's scratch is reused: a second, different batch is split as cleanly.
    routed again;
    router.route(batch_of({message(message_kind::append, 2), message(message_kind::append, 1)}),
                 std::ref(again));
    ASSERT_EQ(again.parts.size(), 2u);
    EXPECT_EQ(again.parts[0].size(), 1u);
    EXPECT_EQ(again.parts[1].size(), 1u);
}

TEST(RaftPlacementTest, UnreadableBatchesGoWholeToGroupOnesShardToBeRefusedThere) {
    raft_batch_router router("c", 2, 2);
    routed r;
    const std::vector<std::byte> junk(40, std::byte{0x5a});
    router.route(junk, std::ref(r));
    ASSERT_EQ(r.parts.size(), 1u);
    EXPECT_EQ(r.parts[0][0], junk);

    // Readable enough to name groups on both shards, but for another cluster: whole, once.
    std::vector<std::byte> foreign;
    replication::encode_batch(1, 2,
                              std::vector<raft_message>{message(message_kind::append, 1),
                                                        message(message_kind::append, 2)},
                              "other", foreign);
    routed f;
    router.route(foreign, std::ref(f));
    ASSERT_EQ(f.parts.size(), 1u);
    ASSERT_EQ(f.parts[0].size(), 1u);
    EXPECT_EQ(f.parts[0][0], foreign);
}

TEST(RaftPlacementTest, OneShardTakesEverythingWhole) {
    raft_batch_router router("c", 2, 1);
    routed r;
    router.route(batch_of({message(message_kind::append, 1), message(message_kind::append, 2)}),
                 std::ref(r));
    ASSERT_EQ(r.parts.size(), 1u);
    EXPECT_EQ(r.parts.begin()->first, 0u);
}

}  // namespace
}  // namespace ringmesh::cluster
