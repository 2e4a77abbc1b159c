#include "engine/wire/frame_codec.h"

#include <cstring>

namespace ringmesh::wire {

std::string_view to_string(frame_error error) noexcept {
    switch (error) {
        case frame_error::none:
            return "none";
        case frame_error::oversized:
            return "oversized";
        case frame_error::bad_version:
            return "bad_version";
        case frame_error::unknown_kind:
            return "unknown_kind";
        case frame_error::bad_flags:
            return "bad_flags";
        case frame_error::bad_sequence:
            return "bad_sequence";
        case frame_error::bad_body:
            return "bad_body";
        case frame_error::missing_field:
            return "missing_field";
        case frame_error::name_too_long:
            return "name_too_long";
        case frame_error::truncated:
            return "truncated";
        case frame_error::count_:
            break;
    }
    return "unknown";
}

parse_result parse_frame(std::span<const std::byte> bytes, const codec_limits& limits) noexcept {
    if (bytes.size() < header_size) return {parse_status::need_more};
    parse_result result{parse_status::frame};
    std::memcpy(&result.value.header, bytes.data(), header_size);
    const FrameHeader& h = result.value.header;
    auto fail = [](frame_error e) { return parse_result{parse_status::error, e}; };
    // Check what bounds the read first: a forged length must never make us wait for, or
    // read, bytes beyond the limit.
    if (h.length() > limits.max_body_bytes) return fail(frame_error::oversized);
    if (h.version() != protocol_version) return fail(frame_error::bad_version);
    const auto kind = static_cast<FrameKind>(h.kind());
    if (h.kind() == 0 || h.kind() > static_cast<std::uint8_t>(FrameKind::MAX)) {
        return fail(frame_error::unknown_kind);
    }
    const std::uint8_t known_flags = static_cast<std::uint8_t>(FrameFlags::Sequenced) |
                                     static_cast<std::uint8_t>(FrameFlags::Fragment) |
                                     static_cast<std::uint8_t>(FrameFlags::FragmentEnd);
    if ((h.flags() & ~known_flags) != 0 || result.value.sequenced() != is_sequenced_kind(kind)) {
        return fail(frame_error::bad_flags);
    }
    // Only sequenced frames are split, and an end belongs to a fragment.
    const bool fragment = result.value.fragment();
    if ((fragment && !result.value.sequenced()) ||
        (!fragment && (h.flags() & static_cast<std::uint8_t>(FrameFlags::FragmentEnd)) != 0)) {
        return fail(frame_error::bad_flags);
    }
    if (result.value.sequenced() && h.sequence() == 0) return fail(frame_error::bad_sequence);
    const std::size_t total = wire_size(h.length());
    if (bytes.size() < total) return {parse_status::need_more};
    result.value.body = bytes.subspan(header_size, h.length());
    result.consumed = total;
    return result;
}

namespace {

bool name_ok(const flatbuffers::String* s, const codec_limits& limits, frame_error& error) {
    if (s == nullptr || s->size() == 0) {
        error = frame_error::missing_field;
        return false;
    }
    if (s->size() > limits.max_name_bytes) {
        error = frame_error::name_too_long;
        return false;
    }
    return true;
}

template <typename Table>
bool verify_table(const frame& f) {
    // Bounds every offset and vector inside the body; depth and table limits stop forged
    // recursion from costing more than the body's size.
    flatbuffers::Verifier verifier(reinterpret_cast<const std::uint8_t*>(f.body.data()),
                                   f.body.size(), /*max_depth=*/16, /*max_tables=*/64);
    return verifier.VerifyBuffer<Table>(nullptr);
}

}  // namespace

frame_error verify_body(const frame& f, const codec_limits& limits) noexcept {
    frame_error error = frame_error::none;
    switch (f.kind()) {
        case FrameKind::Data:
            return frame_error::none;
        case FrameKind::Ack:
            return f.body.empty() ? frame_error::none : frame_error::bad_body;
        case FrameKind::Skip:
            if (!f.body.empty()) return frame_error::bad_body;
            return f.header.sequence() == 0 ? frame_error::bad_sequence : frame_error::none;
        case FrameKind::Hello: {
            if (!verify_table<Hello>(f)) return frame_error::bad_body;
            const auto* hello = body_as<Hello>(f);
            if (!name_ok(hello->cluster_id(), limits, error) ||
                !name_ok(hello->node_id(), limits, error)) {
                return error;
            }
            if (hello->version_min() > hello->version_max()) return frame_error::bad_body;
            return frame_error::none;
        }
        case FrameKind::Publish: {
            if (!verify_table<Publish>(f)) return frame_error::bad_body;
            name_ok(body_as<Publish>(f)->topic(), limits, error);
            return error;
        }
        case FrameKind::Subscribe:
        case FrameKind::Unsubscribe: {
            if (!verify_table<Subscription>(f)) return frame_error::bad_body;
            name_ok(body_as<Subscription>(f)->pattern(), limits, error);
            return error;
        }
        case FrameKind::RpcRequest: {
            if (!verify_table<RpcRequest>(f)) return frame_error::bad_body;
            const auto* request = body_as<RpcRequest>(f);
            if (!name_ok(request->method(), limits, error)) return error;
            return request->timeout_ns() < 0 ? frame_error::bad_body : frame_error::none;
        }
        case FrameKind::RpcResponse: {
            if (!verify_table<RpcResponse>(f)) return frame_error::bad_body;
            const auto status = body_as<RpcResponse>(f)->status();
            return status > RpcStatus::MAX ? frame_error::bad_body : frame_error::none;
        }
        case FrameKind::Error:
            return verify_table<Error>(f) ? frame_error::none : frame_error::bad_body;
        case FrameKind::Replication:
            // The whole batch is verified by engine/replication/raft_codec (flatbuffers
            // Verifier, then its semantic checks) before any of it reaches a replica; doing
            // the Verifier here as well would walk every entry twice.
            return f.body.empty() ? frame_error::missing_field : frame_error::none;
        case FrameKind::None:
            break;
    }
    return frame_error::unknown_kind;
}

void write_frame(std::span<std::byte> out, const FrameHeader& header,
                 std::span<const std::byte> body) noexcept {
    std::memcpy(out.data(), &header, header_size);
    if (!body.empty()) std::memcpy(out.data() + header_size, body.data(), body.size());
    const std::size_t padding = wire_size(body.size()) - header_size - body.size();
    if (padding) std::memset(out.data() + header_size + body.size(), 0, padding);
}

}  // namespace ringmesh::wire
