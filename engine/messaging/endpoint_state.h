// The endpoint's per-peer, per-connection and per-address records. Private to the endpoint's
// source files (endpoint.cc: routing and frames; endpoint_peers.cc: peer lifecycle); nothing
// outside engine/messaging includes this.
#pragma once

#include <string>
#include <vector>

#include "engine/messaging/endpoint.h"

namespace ringmesh::messaging {

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
};

struct endpoint::conn_state {
    transport::connection_id id;
    bool inbound = false;
    bool handshaken = false;
    bool closing = false;
    int dial_index = -1;
    std::string peer;
    peer_state* bound = nullptr;     // set by the handshake: no lookup per frame
    std::vector<std::byte> partial;  // a frame split across reads, reassembled here
    timer_id handshake_timer;
};

struct endpoint::datagram_peer {
    transport::address address;
    std::string peer;            // bound node id; empty until its Hello arrived
    std::vector<std::byte> out;  // frames packed for the next datagram
    bool dialed = false;         // configured: we keep saying Hello until it answers
    time_ns hello_backoff_ns = 0;
    time_ns last_hello_ns = INT64_MIN / 2;
    timer_id hello_retry;
};

struct endpoint::dial_target {
    transport::address address;
    bool in_progress = false;
    transport::connection_id conn;  // the connect in progress
    time_ns backoff_ns = 0;
    timer_id redial;
    std::string known_peer;  // learned from its Hello
};

}  // namespace ringmesh::messaging
