#include "transport/address.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <cstring>

#include "transport/transport.h"

namespace ringmesh::transport {

namespace {
class transport_category_impl final : public std::error_category {
  public:
    const char* name() const noexcept override { return "ringmesh.transport"; }
    std::string message(int value) const override {
        switch (static_cast<transport_errc>(value)) {
            case transport_errc::bad_address:
                return "bad address";
            case transport_errc::socket_failed:
                return "socket setup failed";
            case transport_errc::ring_setup_failed:
                return "io_uring setup failed";
            case transport_errc::too_many_connections:
                return "too many connections";
            case transport_errc::not_supported:
                return "not supported";
        }
        return "unknown transport error";
    }
};
}  // namespace

const std::error_category& transport_category() noexcept {
    static const transport_category_impl instance;
    return instance;
}

const char* to_string(close_reason reason) noexcept {
    switch (reason) {
        case close_reason::peer_closed:
            return "peer_closed";
        case close_reason::local_close:
            return "local_close";
        case close_reason::connect_failed:
            return "connect_failed";
        case close_reason::connect_timeout:
            return "connect_timeout";
        case close_reason::io_error:
            return "io_error";
    }
    return "unknown";
}

result<address> address::parse(std::string_view text) {
    std::string host;
    std::string port;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            return make_error(transport_errc::bad_address,
                              "expected [v6]:port, got '" + std::string(text) + "'");
        }
        host = std::string(text.substr(1, close - 1));
        port = std::string(text.substr(close + 2));
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
            return make_error(transport_errc::bad_address,
                              "expected host:port, got '" + std::string(text) + "'");
        }
        host = std::string(text.substr(0, colon));
        port = std::string(text.substr(colon + 1));
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* found = nullptr;
    if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
        return make_error(transport_errc::bad_address,
                          "'" + std::string(text) + "': " + ::gai_strerror(rc));
    }
    address a;
    std::memcpy(&a.storage, found->ai_addr, found->ai_addrlen);
    a.length = found->ai_addrlen;
    ::freeaddrinfo(found);
    return a;
}

std::uint16_t address::port() const noexcept {
    if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
    if (family() == AF_INET6)
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
    return 0;
}

address address::with_port(std::uint16_t new_port) const noexcept {
    address a = *this;
    if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&a.storage)->sin_port = htons(new_port);
    if (family() == AF_INET6)
        reinterpret_cast<sockaddr_in6*>(&a.storage)->sin6_port = htons(new_port);
    return a;
}

std::string address::to_string() const {
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (family() == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(&storage);
        ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
        return std::string(host) + ":" + std::to_string(port);
    }
    if (family() == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage);
        ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
        return "[" + std::string(host) + "]:" + std::to_string(port);
    }
    return "unknown";
}

bool operator==(const address& a, const address& b) noexcept {
    return a.length == b.length && std::memcmp(&a.storage, &b.storage, a.length) == 0;
}

}  // namespace ringmesh::transport
