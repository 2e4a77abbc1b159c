// Fuzz target: a session fed frames that a hostile peer chose (sequence numbers, acks,
// credits, streams, reconnects), interleaved with its own sends and transmissions. The session
// must never crash, assert, or deliver a sequence number twice.
#include <cstdint>
#include <cstring>
#include <map>
#include <vector>

#include "engine/messaging/session.h"

using namespace ringmesh;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    messaging::session_config config;
    config.datagram = size > 0 && (data[0] & 1);
    config.max_in_flight_frames = 64;
    config.receive_window_frames = 64;
    messaging::session s(config, wire::codec_limits{});
    s.on_connected(0, 1);
    std::map<std::uint32_t, std::uint64_t> last_delivered;
    time_ns now = 0;
    std::size_t i = 1;
    auto take = [&](std::size_t n) -> const std::uint8_t* {
        if (i + n > size) return nullptr;
        const std::uint8_t* p = data + i;
        i += n;
        return p;
    };
    while (const std::uint8_t* op = take(1)) {
        now += 1000 * (*op & 0x0f);
        switch (*op >> 4) {
            case 0:
            case 1:
            case 2:
            case 3:
            case 4:
            case 5: {  // an inbound frame
                const std::uint8_t* f = take(11);
                if (!f) return 0;
                std::uint32_t stream = f[0] % 4 + 16;
                std::uint64_t seq = f[1] | (std::uint64_t{f[2]} << 8);
                std::uint64_t ack =
                    f[3] | (std::uint64_t{f[4]} << 8) | (std::uint64_t{f[10]} << 40);
                std::uint32_t credit = f[5] | (std::uint32_t{f[6]} << 8);
                const bool sequenced = f[7] & 1;
                const auto kind = sequenced ? wire::FrameKind::Data : wire::FrameKind::Ack;
                if (sequenced && seq == 0) seq = 1;
                std::vector<std::byte> bytes(wire::wire_size(0));
                wire::write_frame(
                    bytes, wire::make_header(kind, 0, stream, sequenced ? seq : 0, ack, credit),
                    {});
                const auto parsed = wire::parse_frame(bytes, {});
                if (parsed.status != wire::parse_status::frame) break;
                s.on_frame(now, parsed.value, [&](std::uint32_t st, const wire::frame& fr) {
                    auto& last = last_delivered[st];
                    if (fr.header.sequence() != last + 1) std::abort();  // out of order or twice
                    last = fr.header.sequence();
                });
                break;
            }
            case 6:
            case 7:
            case 8:
            case 9: {  // the application sends
                const std::uint64_t v = *op;
                s.send(16 + (*op % 4), wire::FrameKind::Data,
                       {reinterpret_cast<const std::byte*>(&v), sizeof v});
                break;
            }
            case 10:
            case 11:
            case 12: {  // the transport takes some frames
                std::size_t room = *op & 7;
                s.poll_transmit(now, [&](std::span<const std::byte>) { return room-- > 0; });
                break;
            }
            case 13:
                s.on_disconnected();
                break;
            case 14: {  // reconnect: the same peer process, or a restarted one
                const std::uint64_t incarnation = (*op & 1) ? 1 : 2;
                if (incarnation != s.peer_incarnation())
                    last_delivered.clear();  // new sequence space
                s.on_connected(now, incarnation);
                break;
            }
            default:
                (void)s.next_deadline_ns();
                break;
        }
    }
    return 0;
}

std::vector<std::vector<std::uint8_t>> fuzz_seeds() {
    return {
        {0,    0x00, 0, 1, 0, 0, 0, 8, 0, 1, 0, 0, 0, 0x61,
         0xa3, 0x00, 0, 2, 0, 1, 0, 8, 0, 1, 0, 0, 0},
        {1, 0x61, 0x62, 0xa7, 0x03, 1, 0, 0, 1, 0, 0, 8, 0, 1, 0, 0, 0, 0xd0, 0xe1, 0xa7},
        {1, 0x10, 1, 5, 0, 0, 0, 8, 0, 1, 0, 0, 0, 0x10, 1, 3, 0, 0, 0, 8, 0, 1, 0, 0, 0, 0xf0},
    };
}
