#include "engine/membership/gossip_codec.h"

#include <gtest/gtest.h>

namespace ringmesh::membership {
namespace {

gossip_message sample() {
    gossip_message m;
    m.kind = gossip_kind::ping_req;
    m.seq = 9;
    m.sender = "a";
    m.sender_address = "10.0.0.1:7946";
    m.target = "c";
    m.target_address = "10.0.0.3:7946";
    member_update u;
    u.state = member_state::suspect;
    u.name = "c";
    u.address = "10.0.0.3:7946";
    u.incarnation = 12;
    u.from = "a";
    u.meta.shard_count = 4;
    u.meta.addresses = {{"tcp", "10.0.0.3:7001"}, {"udp", "10.0.0.3:7002"}};
    u.meta.tags = {{"zone", "eu-1"}};
    m.updates = {u};
    return m;
}

TEST(GossipCodecTest, RoundTripsEveryField) {
    std::vector<std::byte> bytes;
    encode(sample(), "prod", bytes);
    gossip_message back;
    ASSERT_EQ(decode(bytes, "prod", back), gossip_error::none);
    const gossip_message want = sample();
    EXPECT_EQ(back.kind, want.kind);
    EXPECT_EQ(back.seq, want.seq);
    EXPECT_EQ(back.sender_address, want.sender_address);
    EXPECT_EQ(back.target_address, want.target_address);
    ASSERT_EQ(back.updates.size(), 1u);
    EXPECT_EQ(back.updates[0].state, member_state::suspect);
    EXPECT_EQ(back.updates[0].incarnation, 12u);
    EXPECT_EQ(back.updates[0].from, "a");
    EXPECT_EQ(back.updates[0].meta, want.updates[0].meta);
}

TEST(GossipCodecTest, RefusesAnotherClusterGarbageAndBadFields) {
    std::vector<std::byte> bytes;
    encode(sample(), "prod", bytes);
    gossip_message out;
    EXPECT_EQ(decode(bytes, "staging", out), gossip_error::wrong_cluster);
    EXPECT_EQ(decode(std::span(bytes).first(bytes.size() / 2), "prod", out),
              gossip_error::malformed);
    std::vector<std::byte> junk(64, std::byte{0xff});
    EXPECT_EQ(decode(junk, "prod", out), gossip_error::malformed);

    gossip_message no_target = sample();
    no_target.target.clear();
    bytes.clear();
    encode(no_target, "prod", bytes);
    EXPECT_EQ(decode(bytes, "prod", out), gossip_error::bad_field);

    gossip_message long_name = sample();
    long_name.updates[0].name = std::string(300, 'x');
    bytes.clear();
    encode(long_name, "prod", bytes);
    EXPECT_EQ(decode(bytes, "prod", out), gossip_error::bad_field);

    gossip_message bad_kind = sample();
    bad_kind.kind = static_cast<gossip_kind>(40);
    bytes.clear();
    encode(bad_kind, "prod", bytes);
    EXPECT_EQ(decode(bytes, "prod", out), gossip_error::bad_kind);
}

}  // namespace
}  // namespace ringmesh::membership
