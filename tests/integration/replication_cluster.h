// Helpers of the replication integration tests: a cluster of ringmesh_node replicas (key-value
// group 1, and the topic group 2 where asked) started, killed, wiped and restarted by the test;
// who leads, from the nodes' status files; a network of namespaces on one bridge, so that one
// node can be cut off by an nftables drop rule; and the check of a ringmesh_kvbench history
// against the values read after the run.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/process_util.h"

namespace ringmesh::it {

// ---- the replicas ----

struct replica_cluster_options {
    int nodes = 3;
    std::vector<std::string> hosts;                  ///< per node; default 127.0.0.1
    std::vector<std::vector<std::string>> prefixes;  ///< per node exec prefix (ip netns exec)
    std::string config;                              ///< a TOML file every node reads
    std::vector<std::string> extra;                  ///< arguments every node gets
    int shards = 1;  ///< per node, each with an endpoint on its own port (listen + index)
    std::vector<int> node_shards;  ///< per node, overriding `shards` (nodes of unequal sizes)
    double seconds = 120;          ///< each node's bound
};

/// What a node's status file says of one group.
struct group_view {
    std::string role, leader;
    unsigned long long term = 0, commit = 0, applied = 0;
};

class replica_cluster {
  public:
    replica_cluster(const std::string& name, replica_cluster_options o)
        : o_(std::move(o)), dir_(temp_dir() + "/" + name) {
        std::filesystem::create_directories(dir_);
        for (int i = 0; i < o_.nodes; ++i) {
            ports_.push_back(shards_of(i) > 1 ? free_port_run(shards_of(i)) : free_port());
            if (o_.hosts.size() <= static_cast<std::size_t>(i)) o_.hosts.push_back("127.0.0.1");
            if (o_.prefixes.size() <= static_cast<std::size_t>(i)) o_.prefixes.emplace_back();
        }
        nodes_.resize(static_cast<std::size_t>(o_.nodes));
        extra_.resize(static_cast<std::size_t>(o_.nodes));
    }
    ~replica_cluster() {
        for (process& p : nodes_) {
            if (p.pid > 0) {
                ::kill(p.pid, SIGKILL);
                wait_exit(p);
            }
        }
    }
    replica_cluster(const replica_cluster&) = delete;
    replica_cluster& operator=(const replica_cluster&) = delete;

    int size() const { return o_.nodes; }
    int shards_of(int i) const {
        return static_cast<std::size_t>(i) < o_.node_shards.size()
                   ? o_.node_shards[static_cast<std::size_t>(i)]
                   : o_.shards;
    }
    std::string name(int i) const { return "n" + std::to_string(i); }
    std::string address(int i) const {
        return o_.hosts[static_cast<std::size_t>(i)] + ":" +
               std::to_string(ports_[static_cast<std::size_t>(i)]);
    }
    std::string data_dir(int i) const { return dir_ + "/" + name(i); }
    std::string status_file(int i) const { return dir_ + "/" + name(i) + ".status"; }
    const std::string& dir() const { return dir_; }
    process& node(int i) { return nodes_[static_cast<std::size_t>(i)]; }
    bool running(int i) const { return nodes_[static_cast<std::size_t>(i)].pid > 0; }
    /// Arguments only node `i` gets, from its next start on.
    void set_extra(int i, std::vector<std::string> args) {
        extra_[static_cast<std::size_t>(i)] = std::move(args);
    }

    void start(int i) {
        std::vector<std::string> args = {
            "--id",       name(i),     "--listen",      address(i),
            "--data-dir", data_dir(i), "--status-file", status_file(i),
            "--idle",     "block",     "--seconds",     std::to_string(o_.seconds)};
        if (!o_.config.empty()) args.insert(args.begin(), {"-c", o_.config});
        for (int j = 0; j < o_.nodes; ++j) {
            args.push_back("--replica");
            args.push_back(name(j) + "=" + std::to_string(j + 1));
            if (j < i) {
                args.push_back("--peer");
                args.push_back(address(j));
            }
        }
        if (shards_of(i) > 1) args.insert(args.end(), {"--shards", std::to_string(shards_of(i))});
        args.insert(args.end(), o_.extra.begin(), o_.extra.end());
        const auto& mine = extra_[static_cast<std::size_t>(i)];
        args.insert(args.end(), mine.begin(), mine.end());
        node(i) = spawn("replica-" + name(i), args, o_.prefixes[static_cast<std::size_t>(i)]);
    }
    /// Starts every node; false when one is not listening within 20 s.
    bool start_all() {
        for (int i = 0; i < o_.nodes; ++i)
            start(i);
        for (int i = 0; i < o_.nodes; ++i) {
            if (!listening(i)) return false;
        }
        return true;
    }
    /// Waits (bounded) until node `i` accepts connections (its own namespace's view).
    bool listening(int i) const {
        const auto& prefix = o_.prefixes[static_cast<std::size_t>(i)];
        if (prefix.empty()) return wait_listening(ports_[static_cast<std::size_t>(i)]);
        std::string command;
        for (const std::string& w : prefix)
            command += w + " ";
        command += "sh -c 'for i in $(seq 200); do ss -Hltn \"sport = :" +
                   std::to_string(ports_[static_cast<std::size_t>(i)]) +
                   "\" | grep -q . && exit 0; sleep 0.1; done; exit 1'";  // paces the polling
        return sh(command) == 0;
    }
    /// kill -9, reaped; its status file goes (its last words may say "leader").
    void kill(int i) {
        if (!running(i)) return;
        ::kill(node(i).pid, SIGKILL);
        wait_exit(node(i));
        std::remove(status_file(i).c_str());
    }
    void wipe(int i) { std::filesystem::remove_all(data_dir(i)); }
    /// SIGTERM to every running node; each must exit 0.
    void stop_all() {
        for (int i = 0; i < o_.nodes; ++i) {
            if (!running(i)) continue;
            ::kill(node(i).pid, SIGTERM);
            EXPECT_EQ(wait_exit(node(i)), 0) << output_of(node(i));
        }
    }

    std::optional<group_view> view(int i, int group) const {
        std::ifstream in(status_file(i));
        for (std::string line; std::getline(in, line);) {
            std::istringstream words(line);
            std::string first;
            group_view v;
            words >> first >> v.role >> v.term >> v.leader >> v.commit >> v.applied;
            if (first == std::to_string(group) && words) return v;
        }
        return std::nullopt;
    }
    /// The batches node `i`'s shards split between them (cluster::raft_batch_router), as its
    /// status file says ("shard K routed batches: whole W split S into P", per shard).
    unsigned long long routed_splits(int i) const {
        std::ifstream in(status_file(i));
        unsigned long long total = 0;
        for (std::string line; std::getline(in, line);) {
            const auto at = line.find(" split ");
            if (line.find("routed batches:") == std::string::npos || at == std::string::npos)
                continue;
            total += std::stoull(line.substr(at + 7));
        }
        return total;
    }
    /// The running node that leads `group` in the highest term any running node reports as
    /// led; -1 when none does.
    int leader(int group) const {
        int best = -1;
        unsigned long long best_term = 0;
        for (int i = 0; i < o_.nodes; ++i) {
            if (!running(i)) continue;
            const auto v = view(i, group);
            if (v && v->role == "leader" && (best < 0 || v->term > best_term)) {
                best = i;
                best_term = v->term;
            }
        }
        return best;
    }
    /// Polls the status files (rewritten every second) until `ready` holds; false after
    /// `seconds`.
    template <typename Ready>
    bool wait_for(Ready&& ready, double seconds = 20) const {
        const auto until =
            std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
        while (std::chrono::steady_clock::now() < until) {
            if (ready()) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));  // paces the polling
        }
        return false;
    }
    int wait_for_leader(int group, int other_than = -1, double seconds = 20) const {
        int found = -1;
        wait_for(
            [&] {
                found = leader(group);
                return found >= 0 && found != other_than;
            },
            seconds);
        return found != other_than ? found : -1;
    }

    /// kill -9 of node `i` `after_ms` into a run, its data directory wiped if asked, and its
    /// restart a second later (the fault's timing, not a synchronisation); false when it did
    /// not come back.
    bool kill_and_restart(int i, int after_ms, bool wipe_it = false) {
        std::this_thread::sleep_for(std::chrono::milliseconds(after_ms));  // paces the fault
        kill(i);
        if (wipe_it) wipe(i);
        std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // paces the fault
        start(i);
        return listening(i);
    }
    /// Waits until node `i` has applied everything `group`'s leader has committed; that
    /// commit index, or 0 when there is no leader or it did not catch up.
    unsigned long long wait_caught_up(int i, int group) const {
        const int l = wait_for_leader(group);
        if (l < 0) return 0;
        const auto lv = view(l, group);
        if (!lv) return 0;
        const unsigned long long commit = lv->commit;
        const bool caught_up = wait_for([&] {
            const auto v = view(i, group);
            return v && v->applied >= commit;
        });
        return caught_up ? commit : 0;
    }

    /// --server arguments for ringmesh_kvbench.
    std::vector<std::string> servers() const {
        std::vector<std::string> out;
        for (int i = 0; i < o_.nodes; ++i) {
            out.push_back("--server");
            out.push_back(address(i));
        }
        return out;
    }

  private:
    replica_cluster_options o_;
    std::string dir_;
    std::vector<int> ports_;
    std::vector<process> nodes_;
    std::vector<std::vector<std::string>> extra_;
};

/// Runs ringmesh_kvbench with `args` (prefixed, e.g. into a namespace), to its end.
inline process start_kvbench(const std::string& name, std::vector<std::string> args,
                             const std::vector<std::string>& prefix = {}) {
    return spawn_program(name, kvbench_binary, with_security(std::move(args)), prefix);
}

// ---- namespaces on one bridge ----

/// `members` network namespaces, each with one veth to a bridge in a namespace of its own
/// (10.231.N.k+1/24 in member k), removed on destruction. cut(k) drops everything member k
/// sends or receives except on its loopback; heal(k) lifts it.
class netns_lan {
  public:
    explicit netns_lan(int members)
        : members_(members), tag_(std::to_string(::getpid() % 100000)) {}
    ~netns_lan() {
        for (int k = 0; k < members_; ++k)
            sh("ip netns del " + ns(k));
        sh("ip netns del " + bridge_ns());
    }
    netns_lan(const netns_lan&) = delete;
    netns_lan& operator=(const netns_lan&) = delete;

    /// Empty when ready; otherwise why it cannot be built here (the caller skips).
    std::string setup() {
        if (::geteuid() != 0) return "needs root for ip netns";
        if (sh("ip netns add " + bridge_ns()) != 0) return "ip netns add failed";
        if (sh("ip -n " + bridge_ns() + " link add br0 type bridge") != 0 ||
            sh("ip -n " + bridge_ns() + " link set br0 up") != 0)
            return "cannot create a bridge";
        for (int k = 0; k < members_; ++k) {
            const std::string inside = "rmv" + std::to_string(k) + "i" + tag_;
            const std::string outside = "rmv" + std::to_string(k) + "o" + tag_;
            if (sh("ip netns add " + ns(k)) != 0 ||
                sh("ip link add " + inside + " netns " + ns(k) + " type veth peer name " + outside +
                   " netns " + bridge_ns()) != 0 ||
                sh("ip -n " + bridge_ns() + " link set " + outside + " master br0") != 0 ||
                sh("ip -n " + bridge_ns() + " link set " + outside + " up") != 0 ||
                sh("ip -n " + ns(k) + " addr add " + ip(k) + "/24 dev " + inside) != 0 ||
                sh("ip -n " + ns(k) + " link set " + inside + " up") != 0 ||
                sh("ip -n " + ns(k) + " link set lo up") != 0)
                return "cannot wire member " + std::to_string(k) + " to the bridge";
        }
        if (sh("ip netns exec " + ns(0) + " nft list ruleset") != 0) return "nft is not usable";
        return {};
    }
    std::string ip(int k) const {
        return "10.231." + std::to_string(subnet()) + "." + std::to_string(k + 1);
    }
    std::vector<std::string> in(int k) const { return {"ip", "netns", "exec", ns(k)}; }
    bool cut(int k) const {
        return sh("ip netns exec " + ns(k) +
                  " nft 'add table inet rmcut; "
                  "add chain inet rmcut in { type filter hook input priority 0; policy drop; }; "
                  "add rule inet rmcut in iif lo accept; "
                  "add chain inet rmcut out { type filter hook output priority 0; policy drop; }; "
                  "add rule inet rmcut out oif lo accept'") == 0;
    }
    bool heal(int k) const {
        return sh("ip netns exec " + ns(k) + " nft delete table inet rmcut") == 0;
    }

  private:
    std::string ns(int k) const { return "rmn" + std::to_string(k) + "-" + tag_; }
    std::string bridge_ns() const { return "rmbr-" + tag_; }
    int subnet() const { return static_cast<int>(::getpid() % 250); }

    int members_;
    std::string tag_;
};

// ---- the history check ----

struct history_op {
    std::string op, key, value, status;
    long long call = 0;
    std::optional<long long> ret;
};

// One field of a JSON line as ringmesh_kvbench writes it: strings without escapes (our keys
// and tokens have none), numbers, null. (std::regex recurses per character: a long value
// would overflow the stack.)
inline std::optional<std::string> json_field(const std::string& line, const std::string& name) {
    const std::string tag = "\"" + name + "\":";
    const std::size_t at = line.find(tag);
    if (at == std::string::npos) return std::nullopt;
    const std::size_t begin = at + tag.size();
    if (begin < line.size() && line[begin] == '"') {
        const std::size_t end = line.find('"', begin + 1);
        if (end == std::string::npos) return std::nullopt;
        return line.substr(begin + 1, end - begin - 1);
    }
    const std::size_t end = line.find_first_of(",}", begin);
    if (end == std::string::npos) return std::nullopt;
    return line.substr(begin, end - begin);
}

inline std::vector<history_op> read_history(const std::string& path) {
    std::vector<history_op> out;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
        const auto op = json_field(line, "op"), key = json_field(line, "key"),
                   value = json_field(line, "value"), call = json_field(line, "call"),
                   ret = json_field(line, "return"), status = json_field(line, "status");
        EXPECT_TRUE(op && key && value && call && ret && status) << "unparsable: " << line;
        if (!op || !key || !value || !call || !ret || !status) continue;
        history_op o{*op, *key, *value, *status, std::stoll(*call), std::nullopt};
        if (*ret != "null") o.ret = std::stoll(*ret);
        out.push_back(std::move(o));
    }
    return out;
}

inline std::map<std::string, std::string> read_finals(const std::string& path) {
    std::map<std::string, std::string> out;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
        const auto key = json_field(line, "key"), value = json_field(line, "value"),
                   status = json_field(line, "status");
        EXPECT_TRUE(key && value && status) << line;
        if (!key || !value || !status) continue;
        EXPECT_EQ(*status, "ok") << "the final read of " << *key << " failed";
        out[*key] = *value;
    }
    return out;
}

struct history_counts {
    std::size_t operations = 0, appends_acknowledged = 0, reads_checked = 0;
};

/// Holds an append/get history (values are ';'-terminated tokens) against every key's value
/// read after the run:
///   - every append acknowledged ok is in its key exactly once; a failed one is not there;
///     an unknown one is there at most once;
///   - appends that did not overlap in time are in the order they happened;
///   - every successful read saw a prefix of the key's final value that holds every append
///     acknowledged before the read began.
inline history_counts check_history(const std::vector<history_op>& ops,
                                    const std::map<std::string, std::string>& state) {
    history_counts counts;
    counts.operations = ops.size();
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
            EXPECT_NE(end, std::string::npos) << key << " ends in a partial token: " << value;
            if (end == std::string::npos) break;
            placed& p = tokens[key][value.substr(at, end + 1 - at)];
            p.end = end + 1;
            ++p.times;
            at = end + 1;
        }
    }
    auto place = [&tokens](const history_op& o) {
        auto it = tokens[o.key].find(o.value);
        return it == tokens[o.key].end() ? placed{} : it->second;
    };
    std::map<std::string, std::vector<const history_op*>> acked_by_key;
    for (const history_op& o : ops) {
        if (o.op != "append") continue;
        const placed p = place(o);
        if (o.status == "ok") {
            ++counts.appends_acknowledged;
            acked_by_key[o.key].push_back(&o);
            EXPECT_EQ(p.times, 1) << "acknowledged append " << o.value << " to " << o.key;
        } else if (o.status == "fail") {
            EXPECT_EQ(p.times, 0) << "failed append " << o.value << " applied to " << o.key;
        } else {
            EXPECT_LE(p.times, 1) << "unknown append " << o.value << " applied twice";
        }
    }
    // Real time: whatever was acknowledged before an operation began is visible to it. Walk
    // each key's operations by start time, taking in the acknowledged appends by return
    // time: the furthest end among them must fit.
    for (auto& [key, acked_appends] : acked_by_key) {
        std::sort(acked_appends.begin(), acked_appends.end(),
                  [](const history_op* a, const history_op* b) { return *a->ret < *b->ret; });
        std::vector<const history_op*> starts;
        for (const history_op& o : ops) {
            if (o.key == key && o.status == "ok") starts.push_back(&o);
        }
        std::sort(starts.begin(), starts.end(),
                  [](const history_op* a, const history_op* b) { return a->call < b->call; });
        const auto final_it = state.find(key);
        EXPECT_NE(final_it, state.end()) << key << " was not read after the run";
        if (final_it == state.end()) continue;
        const std::string& final_value = final_it->second;
        std::size_t taken = 0, furthest = 0;
        for (const history_op* o : starts) {
            while (taken < acked_appends.size() && *acked_appends[taken]->ret < o->call)
                furthest = std::max(furthest, place(*acked_appends[taken++]).end);
            if (o->op == "append") {
                EXPECT_LT(furthest, place(*o).end)
                    << o->value << " lies before an append acknowledged before it began";
                continue;
            }
            ++counts.reads_checked;
            EXPECT_EQ(final_value.compare(0, o->value.size(), o->value), 0)
                << "a read of " << key << " saw '" << o->value
                << "', not a prefix of the final value";
            EXPECT_LE(furthest, o->value.size())
                << "a read of " << key << " missed an append acknowledged before it began";
        }
    }
    return counts;
}

}  // namespace ringmesh::it
