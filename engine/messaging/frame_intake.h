// Where inbound bytes become frames the endpoint may trust. Every frame a peer sends, over a
// stream or in a datagram, passes here first: its header is parsed, its body verified for its
// kind (a fragment's once it is whole again), and every frame is counted, received or refused
// by reason. Nothing else in the endpoint parses or verifies, so this is what the fuzz suite
// drives (tests/fuzz/frame_intake_fuzz.cc).
//
// Owned by the endpoint and used on its shard only; a stream_reassembler belongs to one
// stream connection.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "engine/core/buffer_pool.h"
#include "engine/wire/frame_codec.h"

namespace ringmesh::messaging {

/// Kept inside endpoint_stats (which derives from it), so the counts read as they always did.
struct intake_counters {
    std::uint64_t frames_received = 0, frames_refused = 0;
    std::array<std::uint64_t, static_cast<std::size_t>(wire::frame_error::count_)> refused_by{};
};

class frame_intake {
  public:
    frame_intake(const wire::codec_limits& limits, intake_counters& counters)
        : limits_(limits), counters_(counters) {}

    struct verdict {
        wire::parse_status status = wire::parse_status::need_more;
        wire::frame frame{};       ///< status frame: verified (a fragment: header only)
        std::size_t consumed = 0;  ///< bytes the frame took, padding included
        wire::frame_error error = wire::frame_error::none;  ///< status error: why
    };
    enum class input : std::uint8_t {
        stream,    ///< more may follow: a frame cut short is need_more
        datagram,  ///< nothing follows: a frame cut short is refused as truncated
    };

    /// The frame at the front of `bytes`, parsed and verified, and counted.
    verdict next(std::span<const std::byte> bytes, input kind);
    /// A message reassembled from fragments, verified now that it is whole; counted if refused.
    wire::frame_error verify_reassembled(const wire::frame& f);

    const wire::codec_limits& limits() const noexcept { return limits_; }

  private:
    void refused(wire::frame_error error) {
        ++counters_.frames_refused;
        ++counters_.refused_by[static_cast<std::size_t>(error)];
    }

    wire::codec_limits limits_;
    intake_counters& counters_;
};

/// Frames from a byte stream that arrives in pieces of any size. Whole frames in a piece are
/// handed over in place (uncopied, with the piece's buffer as their owner); a frame cut across
/// pieces is gathered here, taking from the next piece only the bytes it still needs.
class stream_reassembler {
  public:
    /// Calls on_frame(frame, owner) for each whole, verified frame in order (owner is null
    /// for a gathered frame); on_frame returns false to stop (the connection closes). Calls
    /// on_refused(error) and stops at the first refused frame. False when it stopped.
    template <typename OnFrame, typename OnRefused>
    bool feed(frame_intake& intake, std::span<const std::byte> bytes, const buffer_handle* owner,
              OnFrame&& on_frame, OnRefused&& on_refused);

    /// Bytes held of a frame not yet whole.
    std::size_t pending_bytes() const noexcept { return partial_.size(); }

  private:
    /// Handles the whole frames at the front of `bytes`; `consumed` says how far it got.
    template <typename OnFrame, typename OnRefused>
    bool frames_in(frame_intake& intake, std::span<const std::byte> bytes,
                   const buffer_handle* owner, std::size_t& consumed, OnFrame& on_frame,
                   OnRefused& on_refused);

    std::vector<std::byte> partial_;
};

template <typename OnFrame, typename OnRefused>
bool stream_reassembler::feed(frame_intake& intake, std::span<const std::byte> bytes,
                              const buffer_handle* owner, OnFrame&& on_frame,
                              OnRefused&& on_refused) {
    if (!partial_.empty()) {
        // A frame begun in an earlier piece: complete it with just the bytes it still needs
        // (its header says how many), so the rest of this piece is parsed in place, uncopied.
        const auto take_into_partial = [&](std::size_t want) {
            const std::size_t take = std::min(want - std::min(want, partial_.size()), bytes.size());
            partial_.insert(partial_.end(), bytes.begin(),
                            bytes.begin() + static_cast<std::ptrdiff_t>(take));
            bytes = bytes.subspan(take);
            return partial_.size() >= want;
        };
        if (!take_into_partial(wire::header_size)) return true;  // all taken, still incomplete
        // A bad header (oversized, unknown version, kind or flags) is refused below at once:
        // never wait for the body it announces.
        if (wire::parse_frame(partial_, intake.limits()).status == wire::parse_status::need_more) {
            wire::FrameHeader header;
            std::memcpy(&header, partial_.data(), sizeof header);
            if (!take_into_partial(wire::wire_size(header.length()))) return true;
        }
        std::vector<std::byte> whole;
        whole.swap(partial_);
        std::size_t consumed = 0;
        const bool alive = frames_in(intake, whole, nullptr, consumed, on_frame, on_refused);
        whole.clear();
        if (partial_.empty()) partial_.swap(whole);  // keep the capacity
        if (!alive) return false;
    }
    std::size_t consumed = 0;
    if (!frames_in(intake, bytes, owner, consumed, on_frame, on_refused)) return false;
    if (consumed < bytes.size()) {
        partial_.assign(bytes.begin() + static_cast<std::ptrdiff_t>(consumed), bytes.end());
    }
    return true;
}

template <typename OnFrame, typename OnRefused>
bool stream_reassembler::frames_in(frame_intake& intake, std::span<const std::byte> bytes,
                                   const buffer_handle* owner, std::size_t& consumed,
                                   OnFrame& on_frame, OnRefused& on_refused) {
    for (;;) {
        const frame_intake::verdict v =
            intake.next(bytes.subspan(consumed), frame_intake::input::stream);
        if (v.status == wire::parse_status::need_more) return true;
        if (v.status == wire::parse_status::error) {
            on_refused(v.error);
            return false;
        }
        if (!on_frame(v.frame, owner)) return false;
        consumed += v.consumed;
    }
}

}  // namespace ringmesh::messaging
