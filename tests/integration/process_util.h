// Helpers of the integration tests: node processes started (and ended, by PID) by the test,
// their output captured to a file, free loopback ports.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace ringmesh::it {

inline std::string node_binary;  // set from argv[1] by each test's main

struct process {
    pid_t pid = -1;
    std::string out_path;
};

inline std::string temp_dir() {
    static std::string dir = [] {
        char tmpl[] = "/tmp/ringmesh-it-XXXXXX";
        return std::string(::mkdtemp(tmpl));
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

inline std::string addr(int port) {
    return "127.0.0.1:" + std::to_string(port);
}

inline process spawn(const std::string& name, std::vector<std::string> args,
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
        // `prefix` runs the node through another program (e.g. ip netns exec NS), which
        // execs it in turn: the PID stays the node's.
        std::vector<std::string> words = prefix;
        words.push_back(node_binary);
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

}  // namespace ringmesh::it
