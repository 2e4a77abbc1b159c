// DPDK node processes: two daemons over net_memif (one queue, and two: one per shard); a DPDK
// daemon on net_af_packet over one end of a veth pair talking to an io_uring daemon on the other
// end (ARP resolved both ways, real Ethernet/IPv4/UDP the Linux stack accepts), with 5 % loss from
// an nftables numgen rule; and the fallback when DPDK cannot start. Every process is started and
// ended (by PID) here and stops by itself; namespaces, sockets and EAL runtime files are removed
// afterwards.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/process_util.h"

namespace {

using namespace ringmesh::it;

std::string eal(const std::string& prefix, const std::string& vdev) {
    return "--no-huge -m 512 --no-pci --file-prefix " + prefix + " --log-level *:error --vdev " +
           vdev;
}

// EAL leaves a runtime directory per file prefix; remove ours.
void remove_eal_runtime(const std::string& prefix) {
    sh("rm -rf /var/run/dpdk/" + prefix + " /run/dpdk/" + prefix);
}

std::string tag() {
    return std::to_string(::getpid());
}

TEST(DpdkProcessTest, TwoDaemonsOverMemifDeliverEverythingInOrderWhicheverStartsFirst) {
    const std::string sock = temp_dir() + "/memif-" + tag() + ".sock";
    const std::string log = temp_dir() + "/memif.log";
    ::unlink(log.c_str());
    ::unlink(sock.c_str());
    const std::string pa = "rmma" + tag(), pb = "rmmb" + tag();
    // The memif client first: its port cannot start until the server listens, so it retries.
    process pub =
        spawn("memif-pub", {"--id",
                            "pub",
                            "--transport",
                            "dpdk",
                            "--dpdk-ip",
                            "10.245.0.2",
                            "--dpdk-port",
                            "net_memif0",
                            "--eal",
                            eal(pb, "net_memif0,role=client,socket-abstract=no,socket=" + sock),
                            "--listen",
                            "10.245.0.2:7400",
                            "--udp-peer",
                            "10.245.0.1:7400",
                            "--publish",
                            "it/memif",
                            "--count",
                            "50000",
                            "--wait-subscribers",
                            "1",
                            "--seconds",
                            "30"});
    for (int i = 0; i < 200 && output_of(pub).find("is not up yet") == std::string::npos; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));  // paces the polling
    ASSERT_NE(output_of(pub).find("is not up yet"), std::string::npos) << output_of(pub);
    process sub =
        spawn("memif-sub", {"--id", "sub", "--transport", "dpdk", "--dpdk-ip", "10.245.0.1",
                            "--dpdk-port", "net_memif0", "--eal",
                            eal(pa, "net_memif0,role=server,socket-abstract=no,socket=" + sock),
                            "--listen", "10.245.0.1:7400", "--subscribe", "it/**", "--delivery-log",
                            log, "--seconds", "35"});
    EXPECT_EQ(wait_exit(pub), 0) << output_of(pub);
    EXPECT_EQ(number_after(output_of(pub), "published"), 50000u) << output_of(pub);
    EXPECT_NE(output_of(pub).find("transport dpdk"), std::string::npos) << output_of(pub);
    ::kill(sub.pid, SIGTERM);
    EXPECT_EQ(wait_exit(sub), 0) << output_of(sub);
    expect_contiguous(read_log(log), 1, 50000, "memif subscriber");
    ::unlink(sock.c_str());
    remove_eal_runtime(pa);
    remove_eal_runtime(pb);
}

// Two 2-shard daemons over a memif pair with two queues, one per shard: each shard's
// endpoint has its own UDP port (7400, 7401); the publisher's Hello from shard 0 is handed to
// its shard 1, which owns "sub", and "sub"'s shard 0 owns "pub". Datagrams that land on the
// other shard's queue are handed over. Both of pub's shards publish, both of sub's subscribe:
// every message reaches each subscriber shard once, in order per lane.
TEST(DpdkProcessTest, TwoShardDaemonsOverTwoMemifQueuesDeliverFromAndToBothShards) {
    const std::string sock = temp_dir() + "/memif2q-" + tag() + ".sock";
    const std::string log = temp_dir() + "/memif2q.log";
    ::unlink(log.c_str());
    ::unlink(sock.c_str());
    const std::string pa = "rmqa" + tag(), pb = "rmqb" + tag();
    const std::vector<std::string> two_shards = {
        "--shards", "2",           "--workload-shards", "0,1",       "--transport",
        "dpdk",     "--dpdk-port", "net_memif0",        "--metrics", "off"};
    process sub = spawn(
        "memif2q-sub",
        with({"--id", "sub", "--dpdk-ip", "10.245.1.1", "--eal",
              eal(pa, "net_memif0,role=server,socket-abstract=no,socket=" + sock), "--listen",
              "10.245.1.1:7400", "--subscribe", "it/**", "--delivery-log", log, "--seconds", "40"},
             two_shards));
    process pub =
        spawn("memif2q-pub",
              with({"--id", "pub", "--dpdk-ip", "10.245.1.2", "--eal",
                    eal(pb, "net_memif0,role=client,socket-abstract=no,socket=" + sock), "--listen",
                    "10.245.1.2:7400", "--udp-peer", "10.245.1.1:7400", "--publish", "it/memif2q",
                    "--count", "20000", "--wait-subscribers", "1", "--seconds", "30"},
                   two_shards));
    EXPECT_EQ(wait_exit(pub), 0) << output_of(pub);
    const std::string out = output_of(pub);
    EXPECT_EQ(number_after(out, "\\[pub\\] published"), 40000u) << out;
    EXPECT_NE(out.find("transport dpdk"), std::string::npos) << out;
    EXPECT_EQ(number_after(out, "\\[pub shard 1\\] connections.*handshakes"), 1u) << out;
    ::kill(sub.pid, SIGTERM);
    EXPECT_EQ(wait_exit(sub), 0) << output_of(sub);
    const std::string got = output_of(sub);
    EXPECT_EQ(number_after(got, "\\[sub\\] connections.*handshakes"), 1u) << got;
    EXPECT_EQ(number_after(got, "\\[sub shard 0\\] received"), 40000u) << got;
    EXPECT_EQ(number_after(got, "\\[sub shard 1\\] received"), 40000u) << got;
    EXPECT_EQ(number_after(got, "\\[sub\\] received.*duplicates"), 0u) << got;
    EXPECT_EQ(number_after(got, "\\[sub\\] received.*gaps"), 0u) << got;
    // Each number of each lane twice in the log (once per subscriber shard).
    expect_each_logged(log, 40000, 2, "memif subscriber");
    ::unlink(sock.c_str());
    remove_eal_runtime(pa);
    remove_eal_runtime(pb);
}

TEST(DpdkProcessTest, AfPacketNodeAndIoUringNodeInteroperateOverVethWithLoss) {
    netns_pair ns("rmdA", "rmdB");
    // A's end has no kernel address: DPDK owns 10.246.0.1 there. B's end is a kernel node.
    if (const std::string why = ns.setup("", "10.246.0.2/24"); !why.empty()) GTEST_SKIP() << why;
    // Replies from B must carry complete checksums (no offload on a veth).
    ASSERT_TRUE(ns.run_in_b("ethtool -K " + ns.veth_b() + " tx off"));
    // 5 % of the datagrams into B are dropped; the sessions must make up for it.
    ASSERT_TRUE(ns.run_in_b(
        "nft 'add table inet rmloss; add chain inet rmloss in { type filter hook input priority "
        "0; policy accept; }; add rule inet rmloss in udp dport 7400 numgen random mod 100 < 5 "
        "drop'"));
    const std::string log_b = temp_dir() + "/afp-b.log", log_a = temp_dir() + "/afp-a.log";
    ::unlink(log_b.c_str());
    ::unlink(log_a.c_str());
    const std::string prefix = "rmafp" + tag();
    process uring_node = spawn("afp-uring", {"--id",
                                             "kernel",
                                             "--transport",
                                             "uring",
                                             "--listen",
                                             "10.246.0.2:7400",
                                             "--udp-peer",
                                             "10.246.0.1:7400",
                                             "--subscribe",
                                             "dpdk/**",
                                             "--delivery-log",
                                             log_b,
                                             "--publish",
                                             "kernel/x",
                                             "--count",
                                             "10000",
                                             "--wait-subscribers",
                                             "1",
                                             "--linger",
                                             "--seconds",
                                             "60"},
                               ns.in_b());
    process dpdk_node = spawn("afp-dpdk",
                              {"--id",
                               "dpdk",
                               "--transport",
                               "dpdk",
                               "--dpdk-ip",
                               "10.246.0.1",
                               "--dpdk-port",
                               "net_af_packet0",
                               "--eal",
                               eal(prefix, "net_af_packet0,iface=" + ns.veth_a()),
                               "--listen",
                               "10.246.0.1:7400",
                               "--udp-peer",
                               "10.246.0.2:7400",
                               "--subscribe",
                               "kernel/**",
                               "--delivery-log",
                               log_a,
                               "--publish",
                               "dpdk/x",
                               "--count",
                               "10000",
                               "--wait-subscribers",
                               "1",
                               "--linger",
                               "--seconds",
                               "60"},
                              ns.in_a());
    // Both directions complete (a liveness bound, not a timing check), then both stop.
    const bool complete =
        wait_for_size(log_b, 10000 * 8, 50) && wait_for_size(log_a, 10000 * 8, 10);
    ::kill(dpdk_node.pid, SIGTERM);
    ::kill(uring_node.pid, SIGTERM);
    EXPECT_EQ(wait_exit(dpdk_node), 0) << output_of(dpdk_node);
    EXPECT_EQ(wait_exit(uring_node), 0) << output_of(uring_node);
    EXPECT_TRUE(complete) << output_of(dpdk_node) << output_of(uring_node);
    expect_contiguous(read_log(log_b), 1, 10000, "io_uring node, from DPDK");
    expect_contiguous(read_log(log_a), 1, 10000, "DPDK node, from io_uring");
    // Losses happened and were repaired by retransmission.
    EXPECT_GT(number_after(output_of(dpdk_node), "retransmitted"), 0u) << output_of(dpdk_node);
    // The kernel resolved the DPDK node's address through its ARP answers.
    EXPECT_TRUE(ns.run_in_b("sh -c 'ip neigh show 10.246.0.1 | grep -q lladdr'"));
    remove_eal_runtime(prefix);
}

TEST(DpdkProcessTest, AutoFallsBackToIoUringAndSaysWhyWhileDpdkRefusesToStart) {
    const std::string prefix = "rmfb" + tag();
    const std::vector<std::string> dpdk_args = {"--dpdk-ip",   "10.247.0.1",
                                                "--dpdk-port", "net_nothere",
                                                "--eal",       eal(prefix, "net_null0"),
                                                "--listen",    addr(free_port()),
                                                "--seconds",   "1"};
    process fallback = spawn("fallback", with({"--id", "fb", "--transport", "auto"}, dpdk_args));
    EXPECT_EQ(wait_exit(fallback), 0) << output_of(fallback);
    const std::string out = output_of(fallback);
    EXPECT_NE(out.find("transport auto: using io_uring, DPDK unavailable:"), std::string::npos)
        << out;
    EXPECT_NE(out.find("no port named 'net_nothere'"), std::string::npos) << out;
    EXPECT_NE(out.find("transport uring"), std::string::npos) << out;
    remove_eal_runtime(prefix);
    process strict = spawn("strict", with({"--id", "st", "--transport", "dpdk"}, dpdk_args));
    EXPECT_NE(wait_exit(strict), 0) << output_of(strict);
    EXPECT_NE(output_of(strict).find("net_nothere"), std::string::npos) << output_of(strict);
    remove_eal_runtime(prefix);
}

}  // namespace

int main(int argc, char** argv) {
    return ringmesh::it::run_with_node_binary(argc, argv);
}
