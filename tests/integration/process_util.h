// Helpers of the integration tests: node processes started (and ended, by PID) by the test,
// their output captured to a file, free loopback ports.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace ringmesh::it {

inline std::string node_binary;     // set from argv[1] by run_with_node_binary
inline std::string kvbench_binary;  // argv[2], for the tests that drive the key-value service
inline std::string tool_binary;     // argv[2] too: the second program a test drives
inline std::string temp_dir_made;   // this run's scratch directory, once temp_dir() made it

/// The main() of the node-process test binaries: argv[1] is the ringmesh_node they run,
/// argv[2] (where a test needs it) the ringmesh_kvbench.
inline int run_with_node_binary(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s PATH-TO-ringmesh_node [PATH-TO-ringmesh_kvbench]\n",
                     argv[0]);
        return 2;
    }
    node_binary = argv[1];
    if (argc > 2) kvbench_binary = tool_binary = argv[2];
    const int failed = RUN_ALL_TESTS();
    // The nodes' outputs, logs and data directories (gigabytes, with replication) go with a
    // passing run; a failing one leaves them for the engineer who reads the failure.
    if (!temp_dir_made.empty()) {
        if (failed == 0) {
            std::error_code ignored;
            std::filesystem::remove_all(temp_dir_made, ignored);
        } else {
            std::fprintf(stderr, "the nodes' outputs and data are kept in %s\n",
                         temp_dir_made.c_str());
        }
    }
    return failed;
}

struct process {
    pid_t pid = -1;
    std::string out_path;
};

inline std::string temp_dir() {
    static std::string dir = [] {
        char tmpl[] = "/tmp/ringmesh-it-XXXXXX";
        temp_dir_made = ::mkdtemp(tmpl);
        return temp_dir_made;
    }();
    return dir;
}

// A port free right now (bound and released): good enough on a machine we own.
inline int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

/// The first of `count` consecutive free TCP and UDP ports on loopback (a node with several
/// shards listens on its port plus each shard's index).
inline int free_port_run(int count) {
    auto bindable = [](int port, int type) {
        const int fd = ::socket(AF_INET, type, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(static_cast<std::uint16_t>(port));
        const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        ::close(fd);
        return ok;
    };
    for (int attempt = 0; attempt < 100; ++attempt) {
        const int first = free_port();
        bool all = first + count <= 65536;
        for (int i = 0; all && i < count; ++i)
            all = bindable(first + i, SOCK_STREAM) && bindable(first + i, SOCK_DGRAM);
        if (all) return first;
    }
    return free_port();
}

inline std::string addr(int port) {
    return "127.0.0.1:" + std::to_string(port);
}

/// Starts `binary` with `args`, its output captured; `prefix` runs it through another
/// program (e.g. ip netns exec NS), which execs it in turn: the PID stays the binary's.
inline process spawn_program(const std::string& name, const std::string& binary,
                             std::vector<std::string> args,
                             const std::vector<std::string>& prefix = {}) {
    process p;
    p.out_path = temp_dir() + "/" + name + "-" + std::to_string(::getpid()) + "-" +
                 std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) +
                 ".out";
    p.pid = ::fork();
    if (p.pid == 0) {
        const int fd = ::open(p.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        std::vector<std::string> words = prefix;
        words.push_back(binary);
        words.insert(words.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& w : words)
            argv.push_back(w.data());
        argv.push_back(nullptr);
        ::execvp(argv[0], argv.data());
        ::_exit(127);
    }
    return p;
}

/// `args` as given when they name a keyring or a security mode; otherwise with
/// `--security none` added. A node needs one of the two to start (open only when asked for):
/// the tests about something else run the data plane open and say so here, once; the tests
/// about security give their keys.
inline std::vector<std::string> with_security(std::vector<std::string> args) {
    for (const std::string& a : args) {
        if (a == "--key" || a == "--security" || a == "--tls-cert") return args;
    }
    args.insert(args.end(), {"--security", "none"});
    return args;
}

/// A node process (the ringmesh_node the test binary was given).
inline process spawn(const std::string& name, std::vector<std::string> args,
                     const std::vector<std::string>& prefix = {}) {
    return spawn_program(name, node_binary, with_security(std::move(args)), prefix);
}

inline int wait_exit(process& p) {
    int status = 0;
    ::waitpid(p.pid, &status, 0);
    p.pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

inline std::string output_of(const process& p) {
    std::ifstream in(p.out_path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

/// Polls `done` every 50 ms for at most `limit`; a liveness bound, not a timing check.
inline bool eventually(const std::function<bool()>& done, std::chrono::seconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
        if (done()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));  // paces the polling
    }
    return done();
}

/// Waits (with a deadline) until something accepts TCP connections on 127.0.0.1:`port`.
inline bool wait_listening(int port, std::chrono::seconds limit = std::chrono::seconds(10)) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<std::uint16_t>(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        const bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        ::close(fd);
        if (up) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // paces the polling
    }
    return false;
}

inline std::uint64_t number_after(const std::string& text, const std::string& pattern) {
    std::smatch m;
    if (!std::regex_search(text, m, std::regex(pattern + " ([0-9]+)"))) return UINT64_MAX;
    return std::stoull(m[1]);
}

inline std::vector<std::string> with(std::vector<std::string> a,
                                     const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

inline std::vector<std::uint64_t> read_log(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::vector<std::uint64_t> seqs;
    std::uint64_t v;
    while (in.read(reinterpret_cast<char*>(&v), sizeof v))
        seqs.push_back(v);
    return seqs;
}

inline void expect_contiguous(const std::vector<std::uint64_t>& seqs, std::uint64_t first,
                              std::uint64_t last, const std::string& who) {
    ASSERT_FALSE(seqs.empty()) << who;
    EXPECT_EQ(seqs.front(), first) << who;
    EXPECT_EQ(seqs.back(), last) << who;
    for (std::size_t i = 1; i < seqs.size(); ++i) {
        ASSERT_EQ(seqs[i], seqs[i - 1] + 1) << who << ": out of order or duplicated at " << i;
    }
}

// Every number in the delivery log at `path` appears exactly `times` times, and there are
// `distinct` of them: a node whose `times` subscriber shards each logged every delivery.
inline void expect_each_logged(const std::string& path, std::size_t distinct, int times,
                               const std::string& who) {
    std::map<std::uint64_t, int> seen;
    for (std::uint64_t seq : read_log(path))
        ++seen[seq];
    ASSERT_EQ(seen.size(), distinct) << who;
    for (const auto& [seq, n] : seen)
        ASSERT_EQ(n, times) << who << ": message " << seq;
}

// Waits (bounded) until a file holds at least `bytes` bytes.
inline bool wait_for_size(const std::string& path, off_t bytes, int max_seconds) {
    for (int i = 0; i < max_seconds * 100; ++i) {
        struct stat st {};
        if (::stat(path.c_str(), &st) == 0 && st.st_size >= bytes) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // paces the polling
    }
    return false;
}

/// Runs a shell command quietly; its exit status.
inline int sh(const std::string& command) {
    return std::system((command + " >/dev/null 2>&1").c_str());
}

/// Two network namespaces joined by a veth pair (va in A, vb in B), removed on destruction.
/// An empty address leaves that end without a kernel IP (a DPDK af_packet port uses it).
class netns_pair {
  public:
    netns_pair(const std::string& a, const std::string& b)
        : a_(a + std::to_string(::getpid())),
          b_(b + std::to_string(::getpid())),
          va_("va" + std::to_string(::getpid())),
          vb_("vb" + std::to_string(::getpid())) {}
    ~netns_pair() {
        sh("ip netns del " + a_);
        sh("ip netns del " + b_);  // the veth pair goes with them
    }
    netns_pair(const netns_pair&) = delete;
    netns_pair& operator=(const netns_pair&) = delete;

    /// Empty when ready; otherwise why it cannot be built here (the caller skips).
    std::string setup(const std::string& ip_a, const std::string& ip_b) {
        if (::geteuid() != 0) return "needs root for ip netns";
        if (sh("ip netns add " + a_) != 0 || sh("ip netns add " + b_) != 0) {
            return "ip netns add failed (no network namespaces here?)";
        }
        if (sh("ip link add " + va_ + " netns " + a_ + " type veth peer name " + vb_ + " netns " +
               b_) != 0) {
            return "cannot create a veth pair";
        }
        for (const auto& [ns, dev, ip] : {std::tuple{a_, va_, ip_a}, std::tuple{b_, vb_, ip_b}}) {
            if ((!ip.empty() && sh("ip -n " + ns + " addr add " + ip + " dev " + dev) != 0) ||
                sh("ip -n " + ns + " link set " + dev + " up") != 0 ||
                sh("ip -n " + ns + " link set lo up") != 0) {
                return "cannot configure the veth pair";
            }
        }
        if (sh("ip netns exec " + a_ + " nft list ruleset") != 0) return "nft is not usable";
        return {};
    }
    bool run_in_a(const std::string& command) const {
        return sh("ip netns exec " + a_ + " " + command) == 0;
    }
    bool run_in_b(const std::string& command) const {
        return sh("ip netns exec " + b_ + " " + command) == 0;
    }
    std::vector<std::string> in_a() const { return {"ip", "netns", "exec", a_}; }
    std::vector<std::string> in_b() const { return {"ip", "netns", "exec", b_}; }
    const std::string& a() const noexcept { return a_; }
    const std::string& b() const noexcept { return b_; }
    const std::string& veth_a() const noexcept { return va_; }
    const std::string& veth_b() const noexcept { return vb_; }

  private:
    std::string a_, b_, va_, vb_;
};

}  // namespace ringmesh::it
