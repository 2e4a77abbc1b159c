// A socket address (IPv4 or IPv6 with port), parsed from "host:port" or "[v6]:port".
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/core/result.h"

namespace ringmesh::transport {

enum class transport_errc {
    bad_address = 1,    ///< not host:port, or the host does not resolve
    socket_failed,      ///< socket/bind/listen refused (errno in the detail)
    ring_setup_failed,  ///< io_uring could not be set up
    too_many_connections,
    not_supported,
};
const std::error_category& transport_category() noexcept;
inline std::error_code make_error_code(transport_errc e) noexcept {
    return {static_cast<int>(e), transport_category()};
}

struct address {
    sockaddr_storage storage{};
    socklen_t length = 0;

    /// "127.0.0.1:7001", "[::1]:7001", "localhost:7001" (numeric port).
    static result<address> parse(std::string_view text);
    std::string to_string() const;
    int family() const noexcept { return storage.ss_family; }
    std::uint16_t port() const noexcept;
    /// The same host with another port.
    address with_port(std::uint16_t port) const noexcept;
    const sockaddr* sa() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
    friend bool operator==(const address& a, const address& b) noexcept;
};

}  // namespace ringmesh::transport

template <>
struct std::is_error_code_enum<ringmesh::transport::transport_errc> : std::true_type {};

/// Hashes the bytes operator== compares.
template <>
struct std::hash<ringmesh::transport::address> {
    std::size_t operator()(const ringmesh::transport::address& a) const noexcept {
        return std::hash<std::string_view>{}(
            {reinterpret_cast<const char*>(&a.storage), static_cast<std::size_t>(a.length)});
    }
};
