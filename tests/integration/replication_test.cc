// The replicated key-value service as processes: three ringmesh_node replicas on loopback and
// a ringmesh_kvbench client appending to and reading a small key space. The leader is killed
// with SIGKILL mid-run and restarted from its data directory. Judged from what the client was
// told (its --history) against the final state (its --final-read):
//   - every append acknowledged ok is in its key exactly once; a failed one is not there;
//     an unknown one is there at most once;
//   - appends that did not overlap in time are in the order they happened;
//   - every successful read saw a prefix of the key's final value that holds every append
//     acknowledged before the read began.
// Every process is bounded by --seconds and ended here by PID.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/process_util.h"

namespace {

using namespace ringmesh::it;

struct operation {
    std::string op, key, value, status;
    long long call = 0;
    std::optional<long long> ret;
};

// One field of a JSON line as ringmesh_kvbench writes it: strings without escapes (our keys
// and tokens have none), numbers, null. (std::regex recurses per character: a long value
// would overflow the stack.)
std::optional<std::string> field(const std::string& line, const std::string& name) {
    const std::string tag = "\"" + name + "\":";
    const std::size_t at = line.find(tag);
    if (at == std::string::npos) return std::nullopt;
    std::size_t begin = at + tag.size();
    if (begin < line.size() && line[begin] == '"') {
        const std::size_t end = line.find('"', begin + 1);
        if (end == std::string::npos) return std::nullopt;
        return line.substr(begin + 1, end - begin - 1);
    }
    const std::size_t end = line.find_first_of(",}", begin);
    if (end == std::string::npos) return std::nullopt;
    return line.substr(begin, end - begin);
}

std::optional<operation> parse_line(const std::string& line) {
    const auto op = field(line, "op"), key = field(line, "key"), value = field(line, "value"),
               call = field(line, "call"), ret = field(line, "return"),
               status = field(line, "status");
    if (!op || !key || !value || !call || !ret || !status) return std::nullopt;
    operation o{*op, *key, *value, *status, std::stoll(*call), std::nullopt};
    if (*ret != "null") o.ret = std::stoll(*ret);
    return o;
}

std::vector<operation> read_history(const std::string& path) {
    std::vector<operation> out;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
        auto o = parse_line(line);
        EXPECT_TRUE(o.has_value()) << "unparsable history line: " << line;
        if (o) out.push_back(std::move(*o));
    }
    return out;
}

std::map<std::string, std::string> read_finals(const std::string& path) {
    std::map<std::string, std::string> out;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
        const auto key = field(line, "key"), value = field(line, "value"),
                   status = field(line, "status");
        EXPECT_TRUE(key && value && status) << line;
        if (!key || !value || !status) continue;
        EXPECT_EQ(*status, "ok") << "the final read of " << *key << " failed";
        out[*key] = *value;
    }
    return out;
}

// Which node leads group 1, from the status files; -1 when none says so.
int leader_from_status(const std::vector<std::string>& status_files) {
    for (std::size_t i = 0; i < status_files.size(); ++i) {
        std::ifstream in(status_files[i]);
        for (std::string line; std::getline(in, line);) {
            if (line.rfind("1 ", 0) == 0 && line.find(" leader ") != std::string::npos) {
                return static_cast<int>(i);
            }
        }
    }
    return -1;
}

TEST(ReplicationTest, AcknowledgedWritesSurviveTheLeadersKillAndReadsStayLinearizable) {
    if (kvbench_binary.empty()) GTEST_SKIP() << "ringmesh_kvbench was not given (argv[2])";
    const std::string dir = temp_dir() + "/replication";
    std::vector<int> ports;
    for (int i = 0; i < 3; ++i)
        ports.push_back(free_port());
    std::vector<std::string> replicas;
    for (int i = 0; i < 3; ++i) {
        replicas.push_back("--replica");
        replicas.push_back("n" + std::to_string(i) + "=" + std::to_string(i + 1));
    }
    std::vector<std::string> status_files;
    auto node_args = [&](int i) {
        std::vector<std::string> args = {"--id",          "n" + std::to_string(i),
                                         "--listen",      addr(ports[i]),
                                         "--data-dir",    dir + "/n" + std::to_string(i),
                                         "--status-file", status_files[i],
                                         "--idle",        "block",
                                         "--seconds",     "40"};
        for (int j = 0; j < i; ++j) {
            args.push_back("--peer");
            args.push_back(addr(ports[j]));
        }
        return with(args, replicas);
    };
    for (int i = 0; i < 3; ++i)
        status_files.push_back(dir + "-n" + std::to_string(i) + ".status");
    std::vector<process> nodes;
    for (int i = 0; i < 3; ++i)
        nodes.push_back(spawn("replica-n" + std::to_string(i), node_args(i)));
    for (int i = 0; i < 3; ++i)
        ASSERT_TRUE(wait_listening(ports[i])) << output_of(nodes[i]);

    const std::string history = dir + "-history.jsonl", finals = dir + "-finals.jsonl";
    std::vector<std::string> bench_args = {"--clients",        "8",    "--seconds",      "5",
                                           "--keys",           "10",   "--read-percent", "30",
                                           "--append-percent", "70",   "--history",      history,
                                           "--final-read",     finals, "--deadline-ms",  "4000"};
    for (int i = 0; i < 3; ++i) {
        bench_args.push_back("--server");
        bench_args.push_back(addr(ports[i]));
    }
    process bench = spawn_program("kvbench", kvbench_binary, bench_args);

    // Once a leader shows in the status files (rewritten every second), kill it mid-run and
    // bring it back from its data directory a second later.
    int victim = -1;
    for (int tries = 0; tries < 100 && victim < 0; ++tries) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));  // paces the polling
        victim = leader_from_status(status_files);
    }
    ASSERT_GE(victim, 0) << "no leader in the status files";
    // The fault's timing, not a synchronisation: the kill lands mid-run, the restart a
    // second after it.
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // paces the fault
    ::kill(nodes[victim].pid, SIGKILL);
    wait_exit(nodes[victim]);
    std::this_thread::sleep_for(std::chrono::seconds(1));  // paces the restart
    nodes[victim] = spawn("replica-restarted", node_args(victim));

    ASSERT_EQ(wait_exit(bench), 0) << output_of(bench);
    const std::string bench_out = output_of(bench);
    std::printf("%s", bench_out.c_str());
    for (process& p : nodes) {
        ::kill(p.pid, SIGTERM);
        EXPECT_EQ(wait_exit(p), 0) << output_of(p);
    }

    const std::vector<operation> ops = read_history(history);
    const std::map<std::string, std::string> state = read_finals(finals);
    ASSERT_GT(ops.size(), 100u);
    // Each key's final value as tokens: where each one ends, and how often it is there.
    struct placed {
        std::size_t end = 0;  // offset just past it in the final value
        int times = 0;
    };
    std::map<std::string, std::map<std::string, placed>> tokens;  // key -> token -> place
    for (const auto& [key, value] : state) {
        std::size_t at = 0;
        while (at < value.size()) {
            const std::size_t end = value.find(';', at);
            ASSERT_NE(end, std::string::npos) << key << " ends in a partial token: " << value;
            placed& p = tokens[key][value.substr(at, end + 1 - at)];
            p.end = end + 1;
            ++p.times;
            at = end + 1;
        }
    }
    auto place = [&tokens](const operation& o) {
        auto it = tokens[o.key].find(o.value);
        return it == tokens[o.key].end() ? placed{} : it->second;
    };
    std::size_t acked = 0;
    std::map<std::string, std::vector<const operation*>> acked_by_key;
    for (const operation& o : ops) {
        if (o.op != "append") continue;
        const placed p = place(o);
        if (o.status == "ok") {
            ++acked;
            acked_by_key[o.key].push_back(&o);
            EXPECT_EQ(p.times, 1) << "acknowledged append " << o.value << " to " << o.key;
        } else if (o.status == "fail") {
            EXPECT_EQ(p.times, 0) << "failed append " << o.value << " applied to " << o.key;
        } else {
            EXPECT_LE(p.times, 1) << "unknown append " << o.value << " applied twice";
        }
    }
    EXPECT_GT(acked, 50u);
    // Real time: whatever was acknowledged before an operation began is visible to it. For
    // an append, every append acknowledged before it began lies before it; for a read, its
    // value is a prefix of the final value that holds every append acknowledged before it
    // began. Walk each key's operations by start time, taking in the acknowledged appends
    // by return time: the furthest end among them must fit.
    std::size_t reads = 0;
    for (auto& [key, acked_appends] : acked_by_key) {
        std::sort(acked_appends.begin(), acked_appends.end(),
                  [](const operation* a, const operation* b) { return *a->ret < *b->ret; });
        std::vector<const operation*> starts;
        for (const operation& o : ops) {
            if (o.key == key && o.status == "ok") starts.push_back(&o);
        }
        std::sort(starts.begin(), starts.end(),
                  [](const operation* a, const operation* b) { return a->call < b->call; });
        const std::string& final_value = state.at(key);
        std::size_t taken = 0, furthest = 0;
        for (const operation* o : starts) {
            while (taken < acked_appends.size() && *acked_appends[taken]->ret < o->call)
                furthest = std::max(furthest, place(*acked_appends[taken++]).end);
            if (o->op == "append") {
                EXPECT_LT(furthest, place(*o).end)
                    << o->value << " lies before an append acknowledged before it began";
                continue;
            }
            ++reads;
            EXPECT_EQ(final_value.compare(0, o->value.size(), o->value), 0)
                << "a read of " << key << " saw '" << o->value
                << "', not a prefix of the final value";
            EXPECT_LE(furthest, o->value.size())
                << "a read of " << key << " missed an append acknowledged before it began";
        }
    }
    EXPECT_GT(reads, 20u);
    std::printf(
        "replication: %zu operations, %zu appends acknowledged, %zu reads checked; "
        "leader n%d killed and restarted\n",
        ops.size(), acked, reads, victim);
}

}  // namespace

int main(int argc, char** argv) {
    return run_with_node_binary(argc, argv);
}
