// Picks the backend a node runs on: `transport = auto | dpdk | uring`. `auto` tries DPDK
// (EAL up and a usable port) and otherwise falls back to io_uring, with one line saying why;
// `dpdk` fails with the reason instead.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "transport/dpdk/dpdk_transport.h"
#include "transport/uring/uring_transport.h"

namespace ringmesh::transport {

enum class backend : std::uint8_t { automatic, dpdk, uring };
std::optional<backend> parse_backend(std::string_view text);  ///< "auto", "dpdk", "uring"
const char* to_string(backend b) noexcept;

struct opened_transport {
    std::unique_ptr<transport> backend_transport;
    backend chosen = backend::uring;
    std::string note;  ///< why auto fell back, or a feature the kernel refused; may be empty
};

/// `dpdk_configured`: whether the node has DPDK settings at all (auto does not try without).
/// `owner_shard`: the shard the transport runs on (DPDK hands datagrams to its siblings
/// through it); null when it runs on none.
result<opened_transport> open_transport(backend wanted, bool dpdk_configured,
                                        const dpdk_config& dpdk, const uring_config& uring,
                                        shard_id owner, shard* owner_shard = nullptr);

}  // namespace ringmesh::transport
