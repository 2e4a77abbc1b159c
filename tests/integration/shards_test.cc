// A node with two shards among one-shard nodes, as real processes on loopback: its peers'
// sessions spread over its shards (shard_for_peer: "suba" and "pub" land on shard 0, "subb"
// and "right" on shard 1), and publishes, stream sends and calls issued on either shard reach
// peers held by either. Each workload shard numbers its messages in its own lane (the top 16
// bits), so delivery logs are checked per lane: every message once, in order.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "tests/integration/process_util.h"

namespace {

using namespace ringmesh::it;

const std::vector<std::string> quiet = {"--idle", "block", "--metrics", "off"};
constexpr std::uint64_t lane1 = std::uint64_t{1} << 48;

// The log's sequence numbers, split by lane (the publishing shard).
std::map<std::uint64_t, std::vector<std::uint64_t>> by_lane(const std::vector<std::uint64_t>& log) {
    std::map<std::uint64_t, std::vector<std::uint64_t>> lanes;
    for (std::uint64_t seq : log)
        lanes[seq >> 48].push_back(seq);
    return lanes;
}

void expect_both_lanes_complete(const std::string& log, std::uint64_t count,
                                const std::string& who) {
    auto lanes = by_lane(read_log(log));
    ASSERT_EQ(lanes.size(), 2u) << who;
    expect_contiguous(lanes[0], 1, count, who + ", from shard 0");
    expect_contiguous(lanes[1], lane1 + 1, lane1 + count, who + ", from shard 1");
}

TEST(ShardsTest, PublishesFromBothShardsReachSubscribersHeldByEitherShard) {
    const int a = free_port(), b = free_port(), mid = free_port_run(2);
    const std::string log_a = temp_dir() + "/shards-a.log", log_b = temp_dir() + "/shards-b.log";
    ::unlink(log_a.c_str());
    ::unlink(log_b.c_str());
    process suba = spawn("suba", with({"--id", "suba", "--listen", addr(a), "--subscribe", "it/**",
                                       "--delivery-log", log_a, "--seconds", "30"},
                                      quiet));
    process subb = spawn("subb", with({"--id", "subb", "--listen", addr(b), "--subscribe", "it/**",
                                       "--delivery-log", log_b, "--seconds", "30"},
                                      quiet));
    process pub = spawn("mid", with({"--id",
                                     "mid",
                                     "--listen",
                                     addr(mid),
                                     "--shards",
                                     "2",
                                     "--workload-shards",
                                     "0,1",
                                     "--peer",
                                     addr(a),
                                     "--peer",
                                     addr(b),
                                     "--publish",
                                     "it/x",
                                     "--count",
                                     "20000",
                                     "--wait-subscribers",
                                     "2",
                                     "--seconds",
                                     "20"},
                                    quiet));
    EXPECT_EQ(wait_exit(pub), 0) << output_of(pub);
    const std::string out = output_of(pub);
    EXPECT_EQ(number_after(out, "\\[mid\\] published"), 40000u) << out;
    // Each shard holds one subscriber's session (the one shard_for_peer names); the other
    // shard's publishes crossed to it.
    EXPECT_EQ(number_after(out, "\\[mid\\] connections.*handshakes"), 1u) << out;
    EXPECT_EQ(number_after(out, "\\[mid shard 1\\] connections.*handshakes"), 1u) << out;
    for (auto* p : {&suba, &subb}) {
        ::kill(p->pid, SIGTERM);
        EXPECT_EQ(wait_exit(*p), 0);
    }
    expect_both_lanes_complete(log_a, 20000, "suba (held by shard 0)");
    expect_both_lanes_complete(log_b, 20000, "subb (held by shard 1)");
}

TEST(ShardsTest, StreamSendsAndCallsFromBothShardsArriveOnceInOrder) {
    const int server_port = free_port(), mid = free_port_run(2);
    const std::string log = temp_dir() + "/shards-stream.log";
    ::unlink(log.c_str());
    process server = spawn("subb", with({"--id", "subb", "--listen", addr(server_port),
                                         "--delivery-log", log, "--seconds", "30"},
                                        quiet));
    process client =
        spawn("mid", with({"--id", "mid", "--listen", addr(mid), "--shards", "2",
                           "--workload-shards", "0,1", "--peer", addr(server_port), "--send",
                           "subb", "--count", "20000", "--rpc", "subb", "--seconds", "3"},
                          quiet));
    EXPECT_EQ(wait_exit(client), 0) << output_of(client);
    const std::string out = output_of(client);
    EXPECT_EQ(number_after(out, "\\[mid\\] published"), 40000u) << out;
    // Calls from the shard that holds the session and from the one that does not.
    EXPECT_GT(number_after(out, "\\[mid shard 0\\] rpc echo to subb:"), 10u) << out;
    EXPECT_GT(number_after(out, "\\[mid shard 1\\] rpc echo to subb:"), 10u) << out;
    EXPECT_NE(out.find("[mid] rpc echo to subb: "), std::string::npos) << out;
    EXPECT_EQ(number_after(out, "ok,"), 0u) << "failed calls: " << out;
    ::kill(server.pid, SIGTERM);
    EXPECT_EQ(wait_exit(server), 0);
    expect_both_lanes_complete(log, 20000, "stream receiver");
}

// Over UDP: the publisher says Hello to the node's first port and is sent on to the shard
// that owns it (1); subscribers on both shards get every message, each once and in order.
TEST(ShardsTest, SubscribersOnBothShardsGetADatagramPeersPublishesOnce) {
    const int mid = free_port_run(2);
    const std::string log = temp_dir() + "/shards-local.log";
    ::unlink(log.c_str());
    process node = spawn(
        "mid", with({"--id", "mid", "--listen", addr(mid), "--shards", "2", "--workload-shards",
                     "0,1", "--subscribe", "it/**", "--delivery-log", log, "--seconds", "30"},
                    quiet));
    process pub = spawn("right", with({"--id", "right", "--listen", addr(free_port()), "--udp-peer",
                                       addr(mid), "--publish", "it/udp", "--count", "20000",
                                       "--wait-subscribers", "1", "--seconds", "20"},
                                      quiet));
    EXPECT_EQ(wait_exit(pub), 0) << output_of(pub);
    EXPECT_EQ(number_after(output_of(pub), "published"), 20000u) << output_of(pub);
    ::kill(node.pid, SIGTERM);
    EXPECT_EQ(wait_exit(node), 0);
    const std::string out = output_of(node);
    EXPECT_EQ(number_after(out, "\\[mid shard 0\\] received"), 20000u) << out;
    EXPECT_EQ(number_after(out, "\\[mid shard 1\\] received"), 20000u) << out;
    EXPECT_EQ(number_after(out, "\\[mid\\] received.*duplicates"), 0u) << out;
    EXPECT_EQ(number_after(out, "\\[mid\\] received.*gaps"), 0u) << out;
    // Its Hello reached shard 0 and was sent on to shard 1.
    EXPECT_GE(number_after(out, "\\[mid\\] connections.*redirected"), 1u) << out;
    EXPECT_EQ(number_after(out, "\\[mid shard 1\\] connections.*handshakes"), 1u) << out;
    // Both shards logged every message: each number twice.
    expect_each_logged(log, 20000, 2, "mid");
}

}  // namespace

int main(int argc, char** argv) {
    return ringmesh::it::run_with_node_binary(argc, argv);
}
