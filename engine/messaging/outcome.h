// The one answer the messaging API gives when it is handed something to deliver or to listen
// for: send, publish, call and subscribe all say what became of it with these values, so a
// caller can tell a refusal that a retry may cure (back-pressure) from one it never will.
#pragma once

#include <cstdint>

namespace ringmesh::messaging {

enum class outcome : std::uint8_t {
    accepted,       ///< taken: transmitted and retransmitted until acknowledged
    back_pressure,  ///< a window is full: the peer has not caught up; retry later
    too_large,      ///< over the message limit (max_message_bytes, or one frame): never fits
    unknown_peer,   ///< no session with that peer: it never connected
    invalid_topic,  ///< not a valid topic (publish) or pattern (subscribe)
};

const char* to_string(outcome o) noexcept;

/// Whether trying the same thing again later can succeed.
constexpr bool retryable(outcome o) noexcept {
    return o == outcome::back_pressure;
}

}  // namespace ringmesh::messaging
