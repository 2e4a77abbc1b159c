// Fuzz target: the endpoint's frame intake (engine/messaging/frame_intake.h), the one place
// where inbound bytes become trusted frames. The same bytes are fed three ways:
//   - as one stream read;
//   - as a stream cut into pieces at points the input chooses, each piece in its own 8-aligned
//     buffer, as receive buffers are;
//   - as one datagram.
// Whatever the cuts, the stream must yield the same frames (kind, header, body bytes) and
// stop at the same refusal; the datagram must yield the same frames up to its first refusal;
// every frame handed over must verify again; the counters must match what was handed over.
// Any difference aborts.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "engine/messaging/frame_intake.h"
#include "engine/wire/body_builder.h"

using namespace ringmesh;
using namespace ringmesh::messaging;

namespace {

const wire::codec_limits limits{.max_body_bytes = 1 << 16, .max_name_bytes = 64};

struct seen_frame {
    wire::FrameKind kind;
    std::vector<std::byte> header_and_body;
    bool operator==(const seen_frame&) const = default;
};

struct run {
    std::vector<seen_frame> frames;
    bool refused = false;
    wire::frame_error error = wire::frame_error::none;
    std::size_t pending = 0;  // bytes of a frame not yet whole, at the end (streams)
    intake_counters counters;
};

#define check(ok) check_at(ok, __LINE__)
void check_at(bool ok, int line) {
    if (!ok) {
        std::fprintf(stderr, "frame_intake_fuzz: check failed at line %d\n", line);
        std::abort();
    }
}

seen_frame record(const wire::frame& f) {
    check(f.fragment() || wire::verify_body(f, limits) == wire::frame_error::none);
    seen_frame s{f.kind(), {}};
    const auto* h = reinterpret_cast<const std::byte*>(&f.header);
    s.header_and_body.assign(h, h + sizeof f.header);
    s.header_and_body.insert(s.header_and_body.end(), f.body.begin(), f.body.end());
    return s;
}

// An 8-aligned copy, as a receive buffer is.
std::span<const std::byte> aligned_copy(std::vector<std::uint64_t>& storage,
                                        std::span<const std::uint8_t> bytes) {
    storage.assign((bytes.size() + 7) / 8 + 1, 0);
    if (!bytes.empty()) std::memcpy(storage.data(), bytes.data(), bytes.size());
    return {reinterpret_cast<const std::byte*>(storage.data()), bytes.size()};
}

run as_stream(std::span<const std::uint8_t> bytes, std::span<const std::size_t> cuts) {
    run r;
    frame_intake intake(limits, r.counters);
    stream_reassembler reader;
    std::size_t at = 0;
    std::vector<std::uint64_t> storage;
    for (std::size_t i = 0; i <= cuts.size() && !r.refused; ++i) {
        const std::size_t end =
            i < cuts.size() ? std::min(bytes.size(), at + cuts[i]) : bytes.size();
        const auto piece = aligned_copy(storage, bytes.subspan(at, end - at));
        at = end;
        reader.feed(
            intake, piece, nullptr,
            [&](const wire::frame& f, const buffer_handle*) {
                r.frames.push_back(record(f));
                return true;
            },
            [&](wire::frame_error e) {
                r.refused = true;
                r.error = e;
            });
    }
    r.pending = reader.pending_bytes();
    return r;
}

run as_datagram(std::span<const std::uint8_t> bytes) {
    run r;
    frame_intake intake(limits, r.counters);
    std::vector<std::uint64_t> storage;
    std::span<const std::byte> rest = aligned_copy(storage, bytes);
    while (!rest.empty()) {
        const auto v = intake.next(rest, frame_intake::input::datagram);
        if (v.status != wire::parse_status::frame) {
            r.refused = true;
            r.error = v.error;
            break;
        }
        r.frames.push_back(record(v.frame));
        rest = rest.subspan(v.consumed);
    }
    return r;
}

std::vector<std::uint8_t> framed(wire::FrameKind kind, std::span<const std::byte> body) {
    std::vector<std::uint8_t> out(wire::wire_size(body.size()));
    wire::write_frame({reinterpret_cast<std::byte*>(out.data()), out.size()},
                      wire::make_header(kind, static_cast<std::uint32_t>(body.size()), 16,
                                        wire::is_sequenced_kind(kind) ? 1 : 0, 0, 8),
                      body);
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 4) return 0;
    // The first four bytes choose the cuts: piece sizes of 1..64 bytes, repeating.
    std::vector<std::size_t> cuts;
    const std::span<const std::uint8_t> bytes(data + 4, size - 4);
    for (std::size_t covered = 0, i = 0; covered < bytes.size(); ++i) {
        cuts.push_back(1 + data[i % 4] % 64);
        covered += cuts.back();
    }
    const run whole = as_stream(bytes, {});
    const run pieces = as_stream(bytes, cuts);
    check(whole.frames == pieces.frames);
    check(whole.refused == pieces.refused && whole.error == pieces.error);
    for (const run* r : {&whole, &pieces}) {
        check(r->counters.frames_received == r->frames.size());
        check(r->counters.frames_refused == (r->refused ? 1u : 0u));
    }
    check(whole.refused || whole.pending == pieces.pending);
    // A datagram is all there is: where the stream would wait for more, it is truncated.
    const run datagram = as_datagram(bytes);
    check(datagram.frames == whole.frames);
    check(datagram.refused == (whole.refused || whole.pending > 0));
    if (datagram.refused) {
        check(datagram.error == (whole.refused ? whole.error : wire::frame_error::truncated));
    }
    return 0;
}

std::vector<std::vector<std::uint8_t>> fuzz_seeds() {
    wire::body_builder b;
    const std::byte payload[8]{};
    std::vector<std::uint8_t> stream = {3, 17, 1, 60};  // the cuts
    const auto append = [&](const std::vector<std::uint8_t>& frame) {
        stream.insert(stream.end(), frame.begin(), frame.end());
    };
    append(framed(wire::FrameKind::Hello, b.hello("cluster", "node", 7, 2)));
    append(framed(wire::FrameKind::Subscribe, b.subscription("a/*/c")));
    append(framed(wire::FrameKind::Publish, b.publish("a/b/c", payload)));
    append(framed(wire::FrameKind::RpcRequest, b.rpc_request(1, "echo", 1000, payload)));
    append(framed(wire::FrameKind::Data, payload));
    append(framed(wire::FrameKind::Ack, {}));
    std::vector<std::vector<std::uint8_t>> seeds{stream};
    std::vector<std::uint8_t> one = {8, 8, 8, 8};
    const auto hello = framed(wire::FrameKind::Hello, b.hello("c", "n", 1, 1));
    one.insert(one.end(), hello.begin(), hello.end());
    seeds.push_back(one);
    return seeds;
}
