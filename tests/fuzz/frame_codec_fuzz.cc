// Fuzz target: the inbound frame path as a stream receiver runs it — split frames off the
// input, verify each body, then read every field of every verified body.
#include <cstdint>
#include <span>
#include <vector>

#include "engine/wire/body_builder.h"
#include "engine/wire/frame_codec.h"

using namespace ringmesh::wire;

namespace {

volatile std::size_t sink;  // keeps the reads from being optimised away

void read_everything(const frame& f) {
    switch (f.kind()) {
        case FrameKind::Hello: {
            const auto* h = body_as<Hello>(f);
            sink =
                view_of(h->cluster_id()).size() + view_of(h->node_id()).size() + h->incarnation();
            break;
        }
        case FrameKind::Publish: {
            const auto* p = body_as<Publish>(f);
            sink = view_of(p->topic()).size() + bytes_of(p->payload()).size();
            break;
        }
        case FrameKind::Subscribe:
        case FrameKind::Unsubscribe:
            sink = view_of(body_as<Subscription>(f)->pattern()).size();
            break;
        case FrameKind::RpcRequest: {
            const auto* r = body_as<RpcRequest>(f);
            sink = view_of(r->method()).size() + bytes_of(r->payload()).size() + r->call_id();
            break;
        }
        case FrameKind::RpcResponse: {
            const auto* r = body_as<RpcResponse>(f);
            sink = view_of(r->message()).size() + bytes_of(r->payload()).size();
            break;
        }
        case FrameKind::Error:
            sink = view_of(body_as<Error>(f)->message()).size();
            break;
        default:
            sink = f.body.size();
            break;
    }
}

std::vector<std::uint8_t> framed(FrameKind kind, std::span<const std::byte> body) {
    std::vector<std::uint8_t> out(wire_size(body.size()));
    write_frame({reinterpret_cast<std::byte*>(out.data()), out.size()},
                make_header(kind, static_cast<std::uint32_t>(body.size()), 16,
                            is_sequenced_kind(kind) ? 1 : 0, 0, 8),
                body);
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // Copy into 8-aligned storage, as a receive buffer is.
    std::vector<std::uint64_t> aligned((size + 7) / 8);
    std::memcpy(aligned.data(), data, size);
    std::span<const std::byte> rest(reinterpret_cast<const std::byte*>(aligned.data()), size);
    const codec_limits limits{.max_body_bytes = 1 << 16, .max_name_bytes = 64};
    while (true) {
        const auto parsed = parse_frame(rest, limits);
        if (parsed.status != parse_status::frame) break;
        if (verify_body(parsed.value, limits) == frame_error::none) read_everything(parsed.value);
        rest = rest.subspan(parsed.consumed);
    }
    return 0;
}

std::vector<std::vector<std::uint8_t>> fuzz_seeds() {
    body_builder b;
    const std::byte payload[8]{};
    std::vector<std::vector<std::uint8_t>> seeds;
    seeds.push_back(framed(FrameKind::Hello, b.hello("cluster", "node", 7, 2)));
    seeds.push_back(framed(FrameKind::Publish, b.publish("a/b/c", payload)));
    seeds.push_back(framed(FrameKind::Subscribe, b.subscription("a/*/c")));
    seeds.push_back(framed(FrameKind::RpcRequest, b.rpc_request(1, "echo", 1000, payload)));
    seeds.push_back(framed(FrameKind::RpcResponse, b.rpc_response(1, RpcStatus::Ok, "", payload)));
    seeds.push_back(framed(FrameKind::Error, b.error(ErrorCode::BadFrame, "why")));
    seeds.push_back(framed(FrameKind::Data, payload));
    seeds.push_back(framed(FrameKind::Ack, {}));
    return seeds;
}
