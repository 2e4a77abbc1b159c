#include "bench/replicate/child_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

namespace ringmesh::bench {

child_process spawn_child(const std::string& name, const std::string& program,
                          const std::vector<std::string>& args, const std::string& log) {
    child_process c;
    c.name = name;
    c.log = log;
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(program.c_str()));
    for (const std::string& a : args)
        argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
        const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            ::close(fd);
        }
        const int devnull = ::open("/dev/null", O_RDONLY);
        if (devnull >= 0) ::dup2(devnull, 0);
        ::execv(program.c_str(), argv.data());
        std::fprintf(stderr, "exec %s failed\n", program.c_str());
        ::_exit(127);
    }
    c.pid = pid;
    return c;
}

int wait_child(child_process& c, double seconds) {
    if (c.pid <= 0) return -1;
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    for (;;) {
        int status = 0;
        const pid_t got = ::waitpid(c.pid, &status, WNOHANG);
        if (got == c.pid) {
            c.pid = -1;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        if (got < 0 || std::chrono::steady_clock::now() >= until) return -1;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));  // paces the polling
    }
}

int stop_child(child_process& c, int signal, double seconds) {
    if (c.pid <= 0) return -1;
    ::kill(c.pid, signal);
    const int status = wait_child(c, seconds);
    if (status >= 0) return status;
    ::kill(c.pid, SIGKILL);
    return wait_child(c, 10);
}

bool wait_listening(const child_process& c, int port, double seconds) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < until) {
        if (c.pid > 0 && ::waitpid(c.pid, nullptr, WNOHANG) == c.pid) return false;
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<std::uint16_t>(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        const bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        ::close(fd);
        if (up) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // paces the polling
    }
    return false;
}

std::string tail_of(const std::string& log, std::size_t bytes) {
    std::ifstream in(log);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    return s.size() > bytes ? s.substr(s.size() - bytes) : s;
}

std::string find_program(const std::string& name) {
    if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
    // Where Debian's packages put programs (nats-server in sbin, etcd in bin).
    for (const char* dir : {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin"}) {
        std::string candidate = in_dir(dir, name);
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return "";
}

std::string in_dir(const std::string& dir, const std::string& file) {
    std::string path = dir;
    path += '/';
    path += file;
    return path;
}

int reserve_ports(int count) {
    // Spread by PID so that two harnesses on one machine do not collide; each call moves on.
    // Below the kernel's ephemeral range (32768..), where a client socket could hold one.
    static int next = 12000 + static_cast<int>(::getpid() % 200) * 100;
    const int base = next;
    next += count;
    return base;
}

}  // namespace ringmesh::bench
