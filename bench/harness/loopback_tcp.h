// Plain loopback TCP set-up for the floors (raw, raw-uring): one accepted or one connected
// socket with Nagle off. Control path only; the floors differ in how they move bytes.
#pragma once

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

namespace ringmesh::bench {

inline sockaddr_in loopback(int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

inline void no_delay(int fd) {
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/// Listens on `port`, accepts one connection (non-blocking), closes the listener.
inline int accept_one(int port) {
    const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a = loopback(port);
    if (::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listener, 1) != 0) {
        ::close(listener);
        return -1;
    }
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK);
    ::close(listener);
    if (fd >= 0) no_delay(fd);
    return fd;
}

/// Connects to `port`, retrying for up to 5 s while the listener is not up yet.
inline int connect_retrying(int port) {
    for (int attempt = 0; attempt < 500; ++attempt) {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a = loopback(port);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
            no_delay(fd);
            return fd;
        }
        ::close(fd);
        ::usleep(10'000);
    }
    return -1;
}

}  // namespace ringmesh::bench
