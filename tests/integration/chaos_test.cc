// Chaos against real node processes on loopback: graceful leaves mid-stream, a subscriber
// paused past failure detection, TCP connections reset under a stream. Each checks what the
// engine delivered (the subscriber's delivery log: order, gaps, duplicates) and what it
// reported lost, never payload counters alone. Every process is bounded by --seconds and
// ended here by PID.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/process_util.h"

namespace {

using namespace ringmesh::it;

const std::vector<std::string> quiet = {"--idle", "block"};

// Gossip fast enough that a paused process is declared dead within about a second.
std::string fast_gossip_config() {
    const std::string path = temp_dir() + "/chaos-gossip.toml";
    std::ofstream f(path);
    f << "[membership]\nprobe_interval_ms = 100\nprobe_timeout_ms = 40\n";
    return path;
}

// Waits (bounded) until a process has printed `text`.
bool wait_for_output(const process& p, const std::string& text, int max_seconds) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(max_seconds);
    while (std::chrono::steady_clock::now() < until) {
        if (output_of(p).find(text) != std::string::npos) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // paces the polling
    }
    return false;
}

std::vector<std::string> gossip_args(int gossip_port, int seed_port, const std::string& config) {
    return {"-c", config, "--gossip", addr(gossip_port), "--seed", addr(seed_port)};
}

TEST(ChaosTest, PublisherLeavingGracefullyWhileItsStreamDrainsNeverDuplicates) {
    // The publisher announces its leave as its run ends, while the subscriber is still
    // catching up. The leave is membership's news only: the session drains to the end.
    const std::string config = fast_gossip_config();
    for (int round = 0; round < 3; ++round) {
        const std::string log = temp_dir() + "/leave-" + std::to_string(round) + ".log";
        ::unlink(log.c_str());
        const int sub_port = free_port(), sub_gossip = free_port();
        process sub =
            spawn("leave-sub", with(with({"--id", "sub", "--listen", addr(sub_port), "--subscribe",
                                          "it/**", "--delivery-log", log, "--seconds", "30"},
                                         gossip_args(sub_gossip, sub_gossip, config)),
                                    quiet));
        process pub =
            spawn("leave-pub", with({"--id", "pub", "--listen", addr(free_port()), "--peer",
                                     addr(sub_port), "--publish", "it/leave", "--wait-subscribers",
                                     "1", "--seconds", "1.5", "--idle", "busy_spin"},
                                    gossip_args(free_port(), sub_gossip, config)));
        ASSERT_EQ(wait_exit(pub), 0) << output_of(pub);
        const std::string pub_out = output_of(pub);
        const std::uint64_t published = number_after(pub_out, "published");
        ASSERT_GT(published, 0u) << pub_out;
        ASSERT_TRUE(wait_for_output(sub, "member pub left", 10)) << output_of(sub);
        ASSERT_TRUE(wait_for_size(log, static_cast<off_t>(8 * published), 10));
        ::kill(sub.pid, SIGTERM);
        EXPECT_EQ(wait_exit(sub), 0);
        const std::string sub_out = output_of(sub);
        expect_contiguous(read_log(log), 1, published, "round " + std::to_string(round));
        EXPECT_EQ(number_after(sub_out, "duplicates"), 0u) << sub_out;
        EXPECT_EQ(sub_out.find("not delivered"), std::string::npos) << sub_out;
        std::printf("leave round %d: %llu published, %zu delivered once each\n", round,
                    static_cast<unsigned long long>(published), read_log(log).size());
    }
}

TEST(ChaosTest, SubscriberPausedPastFailureDetectionLosesAndRepeatsNothing) {
    // SIGSTOP a subscriber until the cluster declares it dead, then SIGCONT it: it refutes,
    // and its session, which belongs to the process, resumes where it stopped.
    const std::string config = fast_gossip_config();
    const std::string log = temp_dir() + "/paused.log";
    ::unlink(log.c_str());
    const int seed = free_port(), sub_port = free_port();
    process witness = spawn(
        "pause-witness", with({"--id", "witness", "--listen", addr(free_port()), "--seconds", "40"},
                              with(gossip_args(seed, seed, config), quiet)));
    process sub =
        spawn("pause-sub", with(with({"--id", "sub", "--listen", addr(sub_port), "--subscribe",
                                      "it/**", "--delivery-log", log, "--seconds", "40"},
                                     gossip_args(free_port(), seed, config)),
                                quiet));
    process pub = spawn(
        "pause-pub", with(with({"--id", "pub", "--listen", addr(free_port()), "--peer",
                                addr(sub_port), "--publish", "it/paused", "--rate", "20000",
                                "--count", "80000", "--wait-subscribers", "1", "--seconds", "30"},
                               gossip_args(free_port(), seed, config)),
                          quiet));
    ASSERT_TRUE(wait_for_size(log, 8 * 5000, 20));
    // Gossip must know the subscriber first (the stream runs over its own connection).
    ASSERT_TRUE(wait_for_output(pub, "member sub joined", 15)) << output_of(pub);
    ::kill(sub.pid, SIGSTOP);
    const bool declared_dead = wait_for_output(pub, "member sub dead", 15);
    ::kill(sub.pid, SIGCONT);
    ASSERT_TRUE(declared_dead) << output_of(pub);
    EXPECT_EQ(wait_exit(pub), 0) << output_of(pub);
    const std::string pub_out = output_of(pub);
    EXPECT_EQ(number_after(pub_out, "published"), 80000u) << pub_out;
    ::kill(sub.pid, SIGTERM);
    EXPECT_EQ(wait_exit(sub), 0);
    ::kill(witness.pid, SIGTERM);
    wait_exit(witness);
    const std::string sub_out = output_of(sub);
    expect_contiguous(read_log(log), 1, 80000, "paused subscriber");
    EXPECT_EQ(number_after(sub_out, "duplicates"), 0u) << sub_out;
    EXPECT_EQ(pub_out.find("not delivered"), std::string::npos) << pub_out;
    EXPECT_GE(number_after(sub_out, "refutations"), 1u)
        << "the subscriber never refuted its death:\n"
        << sub_out;
    std::printf("pause: declared dead, refuted; 80000 of 80000 delivered once, in order\n");
}

TEST(ChaosTest, ConnectionsResetDuringAStreamLoseAndRepeatNothing) {
    const int probe_port = free_port();
    if (sh("ss -K dst 127.0.0.1 dport = " + std::to_string(probe_port)) != 0) {
        GTEST_SKIP() << "ss -K is unsupported here (no sock_destroy in this kernel)";
    }
    const std::string log = temp_dir() + "/resets.log";
    ::unlink(log.c_str());
    const int sub_port = free_port();
    process sub = spawn("reset-sub", with({"--id", "sub", "--listen", addr(sub_port), "--subscribe",
                                           "it/**", "--delivery-log", log, "--seconds", "30"},
                                          quiet));
    process pub =
        spawn("reset-pub", with({"--id", "pub", "--listen", addr(free_port()), "--peer",
                                 addr(sub_port), "--publish", "it/resets", "--rate", "20000",
                                 "--count", "60000", "--wait-subscribers", "1", "--seconds", "25"},
                                quiet));
    off_t seen = 8 * 2000;
    for (int reset = 0; reset < 8; ++reset) {
        ASSERT_TRUE(wait_for_size(log, seen, 15)) << "reset " << reset;
        // Abort the publisher's connection to the subscriber (an RST to both ends).
        sh("ss -K dst 127.0.0.1 dport = " + std::to_string(sub_port));
        seen += 8 * 4000;
    }
    EXPECT_EQ(wait_exit(pub), 0) << output_of(pub);
    ::kill(sub.pid, SIGTERM);
    EXPECT_EQ(wait_exit(sub), 0);
    const std::string sub_out = output_of(sub);
    expect_contiguous(read_log(log), 1, 60000, "subscriber under resets");
    EXPECT_EQ(number_after(sub_out, "duplicates"), 0u) << sub_out;
    EXPECT_GE(number_after(sub_out, "connections in"), 5u) << sub_out;  // the resets happened
    EXPECT_EQ(output_of(pub).find("not delivered"), std::string::npos) << output_of(pub);
}

}  // namespace

int main(int argc, char** argv) {
    return ringmesh::it::run_with_node_binary(argc, argv);
}
