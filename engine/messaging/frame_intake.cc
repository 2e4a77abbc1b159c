#include "engine/messaging/frame_intake.h"

namespace ringmesh::messaging {

frame_intake::verdict frame_intake::next(std::span<const std::byte> bytes, input kind) {
    const wire::parse_result parsed = wire::parse_frame(bytes, limits_);
    verdict v;
    v.status = parsed.status;
    v.error = parsed.error;
    if (parsed.status == wire::parse_status::need_more) {
        if (kind == input::stream) return v;
        v.status = wire::parse_status::error;  // a datagram is all there is
        v.error = wire::frame_error::truncated;
    }
    // A fragment's body is verified once the message is whole (verify_reassembled).
    if (v.status == wire::parse_status::frame && !parsed.value.fragment()) {
        v.error = wire::verify_body(parsed.value, limits_);
        if (v.error != wire::frame_error::none) v.status = wire::parse_status::error;
    }
    if (v.status == wire::parse_status::error) {
        refused(v.error);
        return v;
    }
    ++counters_.frames_received;
    v.frame = parsed.value;
    v.consumed = parsed.consumed;
    return v;
}

wire::frame_error frame_intake::verify_reassembled(const wire::frame& f) {
    const wire::frame_error error = wire::verify_body(f, limits_);
    if (error != wire::frame_error::none) refused(error);
    return error;
}

}  // namespace ringmesh::messaging
