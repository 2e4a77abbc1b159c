// Frame codec: splits a byte stream or datagram into frames, checks every header against the
// limits, and verifies every body (flatbuffers Verifier plus semantic checks) before anyone
// reads it. A frame that fails any check yields a frame_error — never a crash, never a read
// past the bytes received.
//
// On the wire: FrameHeader (32 bytes) + body (`length` bytes) + zero padding to 8 bytes, so
// that the next header and every body start 8-byte aligned in the receive buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "frame_generated.h"
#include "messages_generated.h"

namespace ringmesh::wire {

inline constexpr std::uint16_t protocol_version = 1;
inline constexpr std::size_t header_size = sizeof(FrameHeader);
static_assert(header_size == 32);

/// Bytes a frame with a body of `body_bytes` occupies on the wire (header + body + padding).
constexpr std::size_t wire_size(std::size_t body_bytes) noexcept {
    return header_size + ((body_bytes + 7) & ~std::size_t{7});
}

/// Configurable limits; a frame beyond them is refused with a counted reason.
struct codec_limits {
    std::uint32_t max_body_bytes = 1u << 20;  ///< largest frame body accepted
    std::uint32_t max_name_bytes = 256;       ///< node ids, cluster ids, topics, methods
};

/// Why a frame was refused. Each has a counter in the endpoint's stats.
enum class frame_error : std::uint8_t {
    none,
    oversized,      ///< header length beyond max_body_bytes
    bad_version,    ///< header version this build does not speak
    unknown_kind,   ///< kind byte not in FrameKind
    bad_flags,      ///< unknown flag bits, or Sequenced on a kind that is not (or v.v.)
    bad_sequence,   ///< sequenced frame with sequence 0
    bad_body,       ///< flatbuffers verification failed
    missing_field,  ///< a required field is absent or empty
    name_too_long,  ///< an id, topic or method beyond max_name_bytes
    truncated,      ///< a datagram or closed stream ends inside a frame
    count_,
};
std::string_view to_string(frame_error error) noexcept;

/// A frame as it sits in the receive buffer: a copy of the header, a view of the body.
struct frame {
    FrameHeader header;
    std::span<const std::byte> body;

    FrameKind kind() const noexcept { return static_cast<FrameKind>(header.kind()); }
    bool sequenced() const noexcept {
        return (header.flags() & static_cast<std::uint8_t>(FrameFlags::Sequenced)) != 0;
    }
    /// A piece of a message split across datagrams: its body is verified once reassembled.
    bool fragment() const noexcept {
        return (header.flags() & static_cast<std::uint8_t>(FrameFlags::Fragment)) != 0;
    }
    bool fragment_end() const noexcept {
        return (header.flags() & static_cast<std::uint8_t>(FrameFlags::FragmentEnd)) != 0;
    }
};

enum class parse_status : std::uint8_t { frame, need_more, error };

struct parse_result {
    parse_status status;
    frame_error error = frame_error::none;
    std::size_t consumed = 0;  ///< bytes to drop from the input (header + body + padding)
    frame value{};
};

/// Splits the next frame off the front of `bytes` and checks its header. The body is not yet
/// verified: call verify_body(). need_more: a stream has not delivered the whole frame yet.
parse_result parse_frame(std::span<const std::byte> bytes, const codec_limits& limits) noexcept;

/// Verifies the body of a parsed frame for its kind. none: safe to read with the accessors.
frame_error verify_body(const frame& f, const codec_limits& limits) noexcept;

/// Whether frames of this kind travel on a reliable stream (carry a sequence number).
constexpr bool is_sequenced_kind(FrameKind kind) noexcept {
    switch (kind) {
        case FrameKind::Data:
        case FrameKind::Publish:
        case FrameKind::Subscribe:
        case FrameKind::Unsubscribe:
        case FrameKind::RpcRequest:
        case FrameKind::RpcResponse:
            return true;
        default:
            return false;
    }
}

/// Accessors for verified bodies (verify_body() returned none).
template <typename Table>
const Table* body_as(const frame& f) noexcept {
    return flatbuffers::GetRoot<Table>(f.body.data());
}

/// A string field as a view (empty when absent).
inline std::string_view view_of(const flatbuffers::String* s) noexcept {
    return s ? std::string_view(s->c_str(), s->size()) : std::string_view{};
}
/// A byte-vector field as a span into the receive buffer (empty when absent).
inline std::span<const std::byte> bytes_of(const flatbuffers::Vector<std::uint8_t>* v) noexcept {
    if (!v) return {};
    return {reinterpret_cast<const std::byte*>(v->data()), v->size()};
}

/// Builds the header of an outgoing frame.
inline FrameHeader make_header(FrameKind kind, std::uint32_t body_bytes, std::uint32_t stream_id,
                               std::uint64_t sequence, std::uint64_t ack,
                               std::uint32_t credit) noexcept {
    const std::uint8_t flags =
        is_sequenced_kind(kind) ? static_cast<std::uint8_t>(FrameFlags::Sequenced) : 0;
    return FrameHeader(body_bytes, static_cast<std::uint8_t>(kind), flags, protocol_version,
                       stream_id, credit, sequence, ack);
}

/// Writes header + body + padding into `out` (exactly wire_size(body.size()) bytes).
void write_frame(std::span<std::byte> out, const FrameHeader& header,
                 std::span<const std::byte> body) noexcept;

}  // namespace ringmesh::wire
