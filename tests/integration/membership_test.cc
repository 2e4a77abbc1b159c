// Gossip membership across real node processes: five nodes on loopback, one killed with
// SIGKILL and restarted; a node with the wrong cluster key kept out; and two network
// namespaces split by an nftables drop rule, then healed. Every process is started and ended
// (by PID) by the test and stops by itself if the test dies.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/process_util.h"

namespace {

using namespace ringmesh::it;
using clock_type = std::chrono::steady_clock;

// A fixed test key (base64 of 32 bytes); the intruder's differs.
const std::string cluster_key = "cmluZ21lc2gtaW50ZWdyYXRpb24tdGVzdC1rZXktMDE=";
const std::string wrong_key = "d3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3I=";

bool saw(const process& p, const std::string& line_regex) {
    return std::regex_search(output_of(p), std::regex(line_regex));
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

struct gossip_node {
    std::string id;
    int port = 0, gossip_port = 0;
    process proc;
    std::string status() const { return temp_dir() + "/" + id + ".status"; }
};

std::vector<std::string> node_args(const gossip_node& n, const std::string& seed,
                                   const std::string& key) {
    return {"--id",      n.id, "--listen",      addr(n.port), "--gossip", addr(n.gossip_port),
            "--seed",    seed, "--key",         key,          "--idle",   "block",
            "--seconds", "90", "--status-file", n.status()};
}

TEST(MembershipTest, KilledNodeIsDeclaredDeadByAllAndRejoinsWithAHigherIncarnation) {
    std::vector<gossip_node> nodes(5);
    for (int i = 0; i < 5; ++i) {
        nodes[i].id = "m" + std::to_string(i);
        nodes[i].port = free_port();
        nodes[i].gossip_port = free_port();
    }
    const std::string seed = addr(nodes[0].gossip_port);
    for (auto& n : nodes)
        n.proc = spawn(n.id, node_args(n, seed, cluster_key));
    auto everyone_sees_everyone = [&] {
        for (const auto& a : nodes) {
            for (const auto& b : nodes) {
                if (a.id != b.id && !saw(a.proc, "member " + b.id + " joined")) return false;
            }
        }
        return true;
    };
    ASSERT_TRUE(eventually(everyone_sees_everyone, std::chrono::seconds(30)))
        << output_of(nodes[0].proc);

    // An intruder with the wrong key tries to join through two members.
    gossip_node intruder{"intruder", free_port(), free_port(), {}};
    std::vector<std::string> intruder_args = node_args(intruder, seed, wrong_key);
    intruder_args.insert(intruder_args.end(), {"--seed", addr(nodes[1].gossip_port)});
    intruder.proc = spawn("intruder", intruder_args);

    // kill -9 one member: every survivor declares it dead.
    gossip_node& victim = nodes[3];
    ::kill(victim.proc.pid, SIGKILL);
    wait_exit(victim.proc);
    const auto killed_at = clock_type::now();
    auto all_see_dead = [&] {
        for (const auto& n : nodes) {
            if (n.id != victim.id && !saw(n.proc, "member " + victim.id + " dead")) return false;
        }
        return true;
    };
    ASSERT_TRUE(eventually(all_see_dead, std::chrono::seconds(60))) << output_of(nodes[0].proc);
    std::printf("kill -9 to every survivor holding %s dead: %.2f s\n", victim.id.c_str(),
                std::chrono::duration<double>(clock_type::now() - killed_at).count());

    // Restart it (a new process, same addresses): it rejoins with a higher incarnation.
    victim.proc = spawn(victim.id + "-restarted", node_args(victim, seed, cluster_key));
    auto all_see_rejoin = [&] {
        for (const auto& n : nodes) {
            if (n.id != victim.id &&
                !saw(n.proc, "member " + victim.id + " joined at [^ ]+ incarnation [1-9]")) {
                return false;
            }
        }
        return true;
    };
    ASSERT_TRUE(eventually(all_see_rejoin, std::chrono::seconds(60))) << output_of(nodes[0].proc);
    // The status files list every member alive, the restarted one at its new incarnation.
    ASSERT_TRUE(eventually(
        [&] {
            for (const auto& n : nodes) {
                const std::string st = read_file(n.status());
                if (st.find("5 alive of 5 known") == std::string::npos ||
                    !std::regex_search(st, std::regex(victim.id + " +[0-9.:]+ +alive +[1-9]"))) {
                    return false;
                }
            }
            return true;
        },
        std::chrono::seconds(10)))
        << read_file(nodes[0].status());

    ::kill(intruder.proc.pid, SIGTERM);
    EXPECT_EQ(wait_exit(intruder.proc), 0);
    // It knew only itself (and says it left, on the way out).
    EXPECT_TRUE(saw(intruder.proc, "membership: [01] alive of 1 known"))
        << output_of(intruder.proc);
    for (auto& n : nodes) {
        ::kill(n.proc.pid, SIGTERM);
        EXPECT_EQ(wait_exit(n.proc), 0) << output_of(n.proc);
        EXPECT_FALSE(saw(n.proc, "member intruder")) << n.id << " let the intruder in";
    }
    // The intruder's attempts were refused and counted where it knocked.
    std::smatch m;
    std::uint64_t auth = 0;
    for (const auto& n : {nodes[0], nodes[1]}) {
        const std::string out = output_of(n.proc);
        if (std::regex_search(out, m, std::regex("\\(auth ([0-9]+)"))) auth += std::stoull(m[1]);
    }
    EXPECT_GT(auth, 0u) << "wrong-key gossip was not counted";
}

TEST(MembershipTest, KeysRotateOnLiveNodesThroughSighup) {
    const std::string key_a = cluster_key, key_b = wrong_key;  // any two valid keys
    std::vector<gossip_node> nodes(2);
    std::vector<std::string> configs;
    for (int i = 0; i < 2; ++i) {
        nodes[i].id = "r" + std::to_string(i);
        nodes[i].port = free_port();
        nodes[i].gossip_port = free_port();
        configs.push_back(temp_dir() + "/" + nodes[i].id + ".toml");
    }
    auto write_keyring = [&](const std::vector<std::string>& keys) {
        for (const auto& path : configs) {
            std::ofstream f(path);
            f << "[membership]\nkeyring = [";
            for (std::size_t k = 0; k < keys.size(); ++k)
                f << (k ? ", " : "") << '"' << keys[k] << '"';
            f << "]\n";
        }
    };
    const std::string seed = addr(nodes[0].gossip_port);
    auto start = [&](gossip_node& n, const std::string& config) {
        // The config's keyring seals gossip and proves the nodes to each other on the data
        // plane: both rotate together.
        n.proc = spawn(n.id, {"-c", config, "--security", "authenticated", "--id", n.id, "--listen",
                              addr(n.port), "--gossip", addr(n.gossip_port), "--seed", seed,
                              "--idle", "block", "--seconds", "60", "--status-file", n.status()});
    };
    write_keyring({key_a});
    for (int i = 0; i < 2; ++i)
        start(nodes[i], configs[i]);
    ASSERT_TRUE(eventually([&] { return saw(nodes[0].proc, "member r1 joined"); },
                           std::chrono::seconds(20)));
    // install B everywhere; then seal with B everywhere; then drop A everywhere.
    std::size_t reloads = 0;
    for (const auto& keys :
         std::vector<std::vector<std::string>>{{key_a, key_b}, {key_b, key_a}, {key_b}}) {
        write_keyring(keys);
        for (const auto& n : nodes)
            ::kill(n.proc.pid, SIGHUP);
        ++reloads;
        const std::string line = "keyring reloaded: " + std::to_string(keys.size()) + " key";
        ASSERT_TRUE(eventually(
            [&] {
                return std::all_of(nodes.begin(), nodes.end(), [&](const gossip_node& n) {
                    const std::string out = output_of(n.proc);
                    std::size_t seen = 0;
                    for (auto at = out.find("keyring reloaded"); at != std::string::npos;
                         at = out.find("keyring reloaded", at + 1)) {
                        ++seen;
                    }
                    return seen == reloads && out.rfind(line) != std::string::npos;
                });
            },
            std::chrono::seconds(10)));
        // Gossip keeps flowing under the new keyring: every node takes a few more probe
        // rounds' worth of datagrams, and refuses none of them.
        // (A status file is first written a second after start.)
        std::vector<std::uint64_t> in_before(nodes.size(), UINT64_MAX);
        ASSERT_TRUE(eventually(
            [&] {
                for (std::size_t i = 0; i < nodes.size(); ++i)
                    in_before[i] = number_after(read_file(nodes[i].status()), "datagrams in");
                return std::find(in_before.begin(), in_before.end(), UINT64_MAX) == in_before.end();
            },
            std::chrono::seconds(10)));
        ASSERT_TRUE(eventually(
            [&] {
                for (std::size_t i = 0; i < nodes.size(); ++i) {
                    const auto in = number_after(read_file(nodes[i].status()), "datagrams in");
                    if (in == UINT64_MAX || in < in_before[i] + 6) return false;
                }
                return true;
            },
            std::chrono::seconds(20)))
            << read_file(nodes[0].status()) << read_file(nodes[1].status());
        for (const auto& n : nodes)
            EXPECT_EQ(number_after(read_file(n.status()), "refused"), 0u) << read_file(n.status());
    }
    // Only B opens the cluster now: a latecomer with the old key stays out, one with B joins.
    gossip_node old_key{"old", free_port(), free_port(), {}};
    gossip_node new_key{"new", free_port(), free_port(), {}};
    old_key.proc = spawn("old", node_args(old_key, seed, key_a));
    new_key.proc = spawn("new", node_args(new_key, seed, key_b));
    ASSERT_TRUE(eventually([&] { return saw(nodes[1].proc, "member new joined"); },
                           std::chrono::seconds(20)))
        << output_of(nodes[1].proc);
    for (auto* n : {&old_key, &new_key, &nodes[0], &nodes[1]}) {
        ::kill(n->proc.pid, SIGTERM);
        EXPECT_EQ(wait_exit(n->proc), 0) << output_of(n->proc);
    }
    for (const auto& n : nodes) {
        EXPECT_FALSE(saw(n.proc, "member old joined")) << output_of(n.proc);
        EXPECT_FALSE(saw(n.proc, "member r[01] (suspect|dead)"))
            << "rotation disturbed " << output_of(n.proc);
        // The same keyring proves the nodes on the data plane, and nobody was refused there.
        EXPECT_GE(number_after(output_of(n.proc), "security authenticated:"), 1u)
            << output_of(n.proc);
        EXPECT_EQ(number_after(output_of(n.proc), "peers proven,"), 0u) << output_of(n.proc);
    }
    // r0 dials r1 (the larger name) once, under key A; that session lived through all three
    // rotations: r0 never had to dial again (it dials no other member: theirs are smaller).
    EXPECT_EQ(number_after(output_of(nodes[0].proc), "connections in [0-9]+ out"), 1u)
        << output_of(nodes[0].proc);
}

// ---- two network namespaces, split and healed by an nftables drop rule ----

// Drops everything between the namespaces, both directions, inside A.
bool split(const netns_pair& ns) {
    return ns.run_in_a(
        "nft 'add table inet rmsplit; add chain inet rmsplit in { type filter "
        "hook input priority 0; policy accept; }; add chain inet rmsplit out { "
        "type filter hook output priority 0; policy accept; }; add rule inet "
        "rmsplit in ip saddr 10.231.0.2 drop; add rule inet rmsplit out ip daddr "
        "10.231.0.2 drop'");
}
bool heal(const netns_pair& ns) {
    return ns.run_in_a("nft delete table inet rmsplit");
}

TEST(MembershipTest, NamespacesSplitByNftablesAndHealedReconverge) {
    netns_pair ns("rmA", "rmB");
    if (const std::string why = ns.setup("10.231.0.1/24", "10.231.0.2/24"); !why.empty()) {
        GTEST_SKIP() << why;
    }
    // Faster timings than the defaults, so the test spends seconds, not minutes.
    const std::string config = temp_dir() + "/split.toml";
    {
        std::ofstream f(config);
        f << "[membership]\nprobe_interval_ms = 200\nprobe_timeout_ms = 80\n"
             "push_pull_interval_ms = 1000\n";
    }
    struct member {
        std::string id, ip;
        bool in_a;
        process proc;
    };
    std::vector<member> members{{"a1", "10.231.0.1", true, {}},
                                {"a2", "10.231.0.1", true, {}},
                                {"b1", "10.231.0.2", false, {}},
                                {"b2", "10.231.0.2", false, {}}};
    int port = 7700;
    const std::string seed = "10.231.0.1:7801";
    for (auto& m : members) {
        ++port;
        m.proc = spawn(m.id,
                       {"-c", config, "--status-file", temp_dir() + "/" + m.id + ".status", "--id",
                        m.id, "--listen", m.ip + ":" + std::to_string(port), "--gossip",
                        m.ip + ":" + std::to_string(port + 100), "--seed", seed, "--key",
                        cluster_key, "--idle", "block", "--seconds", "90"},
                       m.in_a ? ns.in_a() : ns.in_b());
    }
    auto count = [&](const member& m, const std::string& what) {
        const std::string out = output_of(m.proc);
        std::size_t n = 0;
        for (const auto& other : members) {
            if (other.id != m.id &&
                std::regex_search(out, std::regex("member " + other.id + " " + what))) {
                ++n;
            }
        }
        return n;
    };
    ASSERT_TRUE(eventually(
        [&] {
            for (const auto& m : members) {
                if (count(m, "joined") < 3) return false;
            }
            return true;
        },
        std::chrono::seconds(30)))
        << output_of(members[0].proc);

    ASSERT_TRUE(split(ns));
    // Each side declares the other side's members dead.
    ASSERT_TRUE(eventually(
        [&] {
            for (const auto& m : members) {
                if (count(m, "dead") < 2) return false;
            }
            return true;
        },
        std::chrono::seconds(60)))
        << output_of(members[0].proc) << output_of(members[2].proc);

    ASSERT_TRUE(heal(ns));
    // And finds them again: every member sees the other side rejoin.
    auto rejoined = [&](const member& m) {
        const std::string out = output_of(m.proc);
        std::size_t n = 0;
        for (const auto& other : members) {
            if (other.in_a == m.in_a) continue;
            // A "joined" (or "alive") after the "dead".
            const auto dead = out.rfind("member " + other.id + " dead");
            if (dead == std::string::npos) continue;
            for (const char* back : {" joined", " alive"}) {
                const auto at = out.rfind("member " + other.id + back);
                if (at != std::string::npos && at > dead) {
                    ++n;
                    break;
                }
            }
        }
        return n == 2;
    };
    ASSERT_TRUE(eventually([&] { return std::all_of(members.begin(), members.end(), rejoined); },
                           std::chrono::seconds(90)))
        << output_of(members[0].proc) << output_of(members[2].proc);
    EXPECT_TRUE(eventually(
        [&] {
            for (const auto& m : members) {
                if (read_file(temp_dir() + "/" + m.id + ".status").find("4 alive of 4 known") ==
                    std::string::npos) {
                    return false;
                }
            }
            return true;
        },
        std::chrono::seconds(10)));
    for (auto& m : members) {
        ::kill(m.proc.pid, SIGTERM);
        EXPECT_EQ(wait_exit(m.proc), 0) << output_of(m.proc);
    }
}

}  // namespace

int main(int argc, char** argv) {
    return ringmesh::it::run_with_node_binary(argc, argv);
}
