// The endpoint's per-peer, per-connection and per-address records, and what its source files
// share. Private to the endpoint's source files (see endpoint.cc for which holds what);
// nothing outside engine/messaging includes this.
#pragma once

#include <string>
#include <vector>

#include "engine/messaging/endpoint.h"
#include "engine/messaging/frame_intake.h"

namespace ringmesh::messaging {

inline constexpr std::uint32_t pubsub_stream = 1;  // Publish, Subscribe, Unsubscribe
inline constexpr std::uint32_t rpc_stream = 2;     // RpcRequest, RpcResponse

/// A frame outside any session (Hello, Error): no sequence, no ack, stream 0.
inline std::vector<std::byte> control_frame(wire::FrameKind kind, std::span<const std::byte> body) {
    std::vector<std::byte> frame(wire::wire_size(body.size()));
    wire::write_frame(
        frame, wire::make_header(kind, static_cast<std::uint32_t>(body.size()), 0, 0, 0, 0), body);
    return frame;
}

struct endpoint::peer_state {
    peer_state(std::string peer_id, const session_config& sc, const wire::codec_limits& limits)
        : id(std::move(peer_id)), s(sc, limits) {}
    std::string id;
    session s;
    transport::connection_id conn;  // the active connection (invalid: none)
    int datagram = -1;              // index in datagram_peers_ when reached over datagrams
    std::vector<std::string> remote_patterns;
    // Lifecycle (endpoint_peers.cc): membership's opinion and the retention clock.
    bool member_gone = false;  // declared dead, or left
    bool member_left = false;
    bool given_up = false;        // its messages were dropped and reported; until it returns
    timer_id retention;           // pending while the peer is away
    std::uint64_t frames_in = 0;  // frames received from it: signs of life
    std::uint64_t frames_in_at_gone = 0;
    // The priority lane (endpoint_priority.cc): whole frames waiting for the next flush, and
    // where each ends (a datagram link packs them per datagram).
    std::vector<std::byte> priority_out;
    std::vector<std::size_t> priority_ends;
};

struct endpoint::conn_state {
    transport::connection_id id;
    bool inbound = false;
    bool handshaken = false;
    bool closing = false;
    int dial_index = -1;
    std::string peer;
    peer_state* bound = nullptr;  // set by the handshake: no lookup per frame
    stream_reassembler reader;    // frames cut across reads are gathered here
    timer_id handshake_timer;
};

struct endpoint::datagram_peer {
    transport::address address;
    int index = -1;              // in datagram_peers_ (stable: entries are never removed)
    std::string peer;            // bound node id; empty until its Hello arrived
    std::vector<std::byte> out;  // frames packed for the next datagram
    bool dialed = false;         // configured: we keep saying Hello until it answers
    time_ns hello_backoff_ns = 0;
    time_ns last_hello_ns = INT64_MIN / 2;
    time_ns last_redirect_ns = INT64_MIN / 2;  // told the owner endpoint's port (WrongShard)
    timer_id hello_retry;
};

struct endpoint::dial_target {
    transport::address address;
    bool in_progress = false;
    transport::connection_id conn;  // the connect in progress
    time_ns backoff_ns = 0;
    timer_id redial;
    std::string known_peer;   // learned from its Hello
    bool handed_off = false;  // its peer belongs to another endpoint of this node: never dialed
};

}  // namespace ringmesh::messaging
