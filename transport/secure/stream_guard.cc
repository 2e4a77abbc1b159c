#include "transport/secure/stream_guard.h"

#include <algorithm>

namespace ringmesh::transport::secure {

std::size_t keyring_guard::feed(std::span<const std::byte> in, byte_buffer& out) {
    const std::size_t used = handshake_.feed(in, out);
    if (handshake_.done() && !sealer_) {
        sealer_.emplace(handshake_.keys().send);
        opener_.emplace(handshake_.keys().receive);
    }
    return used;
}

record_status keyring_guard::open(std::span<const std::byte> record, std::span<std::byte> dest,
                                  std::size_t& written, byte_buffer&) {
    std::span<const std::byte> payload;
    const record_status opened = opener_->open(record, payload);
    written = 0;
    if (opened != record_status::ok) return opened;
    std::copy(payload.begin(), payload.end(), dest.begin());
    written = payload.size();
    return record_status::ok;
}

}  // namespace ringmesh::transport::secure
