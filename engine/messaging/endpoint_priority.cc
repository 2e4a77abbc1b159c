// The priority lane: replication batches that leave ahead of every session frame to the same
// peer in a flush (endpoint.cc's transmit step calls transmit_priority first, and holds the
// session's frames back while any priority frame still waits). The frames are unsequenced:
// no session, no ack, no retransmission; a peer that becomes unreachable drops them.
#include "engine/messaging/endpoint.h"

#include "engine/messaging/endpoint_state.h"

#include <algorithm>

namespace ringmesh::messaging {

std::size_t endpoint::replication_limit(std::string_view peer) const {
    const peer_state* p = find_peer(peer);
    if (p == nullptr || !reachable(*p)) return 0;
    if (p->conn.valid()) return config_.limits.max_body_bytes;
    const std::size_t mtu = transport_->caps().max_datagram_bytes;
    return std::min<std::size_t>(config_.limits.max_body_bytes,
                                 (mtu - wire::header_size) & ~std::size_t{7});
}

outcome endpoint::send_replication(std::string_view peer, std::span<const std::byte> batch) {
    peer_state* p = find_peer(peer);
    if (p == nullptr || !reachable(*p)) return outcome::unknown_peer;
    if (batch.empty() || batch.size() > replication_limit(peer)) return outcome::too_large;
    const std::size_t bytes = wire::wire_size(batch.size());
    if (p->priority_out.size() + bytes > config_.priority_queue_bytes) {
        return outcome::back_pressure;
    }
    const std::size_t at = p->priority_out.size();
    p->priority_out.resize(at + bytes);
    wire::write_frame(std::span(p->priority_out).subspan(at),
                      wire::make_header(wire::FrameKind::Replication,
                                        static_cast<std::uint32_t>(batch.size()), 0, 0, 0, 0),
                      batch);
    p->priority_ends.push_back(p->priority_out.size());
    ++stats_.replication_sent;
    return outcome::accepted;
}

bool endpoint::transmit_priority(peer_state& p) {
    if (!reachable(p)) {  // lost meanwhile: stale votes and appends are worth nothing later
        stats_.replication_dropped += p.priority_ends.size();
        p.priority_out.clear();
        p.priority_ends.clear();
        return true;
    }
    if (p.conn.valid()) {
        // One append to the connection's batch, before the session's runs.
        if (transport_->send(p.conn, p.priority_out) != p.priority_out.size()) {
            ++stats_.transport_full;
            return false;
        }
        p.priority_out.clear();
        p.priority_ends.clear();
        return true;
    }
    // A datagram link: as many whole frames per datagram as fit, in order. What the
    // transport has no room for waits, in order, for the next iteration.
    datagram_peer& d = *datagram_peers_[static_cast<std::size_t>(p.datagram)];
    if (!flush_datagram(d)) return false;
    const std::size_t mtu = transport_->caps().max_datagram_bytes;
    std::size_t sent = 0;  // bytes of priority_out gone
    std::size_t frames_sent = 0;
    while (frames_sent < p.priority_ends.size()) {
        std::size_t end = p.priority_ends[frames_sent];
        std::size_t frames = 1;
        while (frames_sent + frames < p.priority_ends.size() &&
               p.priority_ends[frames_sent + frames] - sent <= mtu) {
            end = p.priority_ends[frames_sent + frames];
            ++frames;
        }
        if (!send_datagram_now(d, std::span(p.priority_out).subspan(sent, end - sent))) break;
        sent = end;
        frames_sent += frames;
    }
    p.priority_out.erase(p.priority_out.begin(),
                         p.priority_out.begin() + static_cast<std::ptrdiff_t>(sent));
    p.priority_ends.erase(p.priority_ends.begin(),
                          p.priority_ends.begin() + static_cast<std::ptrdiff_t>(frames_sent));
    for (std::size_t& end : p.priority_ends)
        end -= sent;
    return p.priority_ends.empty();
}

}  // namespace ringmesh::messaging
