#include "transport/select.h"

namespace ringmesh::transport {

std::optional<backend> parse_backend(std::string_view text) {
    if (text == "auto") return backend::automatic;
    if (text == "dpdk") return backend::dpdk;
    if (text == "uring") return backend::uring;
    return std::nullopt;
}

const char* to_string(backend b) noexcept {
    switch (b) {
        case backend::automatic:
            return "auto";
        case backend::dpdk:
            return "dpdk";
        case backend::uring:
            return "uring";
    }
    return "?";
}

result<opened_transport> open_transport(backend wanted, bool dpdk_configured,
                                        const dpdk_config& dpdk, const uring_config& uring,
                                        shard_id owner, shard* owner_shard) {
    opened_transport out;
    std::string fallback_reason;
    if (wanted == backend::dpdk || (wanted == backend::automatic && dpdk_configured)) {
        auto d = dpdk_transport::create(dpdk, owner, owner_shard);
        if (d) {
            out.note = "DPDK on port " + (*d)->port_name();
            out.backend_transport = std::move(d).value();
            out.chosen = backend::dpdk;
            return out;
        }
        if (wanted == backend::dpdk) return d.err();
        fallback_reason = d.err().message();
    } else if (wanted == backend::automatic) {
        fallback_reason = "no DPDK settings ([dpdk] ip and eal_args)";
    }
    std::string uring_note;
    auto u = uring_transport::create(uring, owner, &uring_note);
    if (!u) return u.err();
    out.backend_transport = std::move(u).value();
    out.chosen = backend::uring;
    if (!fallback_reason.empty()) {
        out.note = "transport auto: using io_uring, DPDK unavailable: " + fallback_reason;
    }
    if (!uring_note.empty()) out.note += (out.note.empty() ? "" : "; ") + uring_note;
    return out;
}

}  // namespace ringmesh::transport
