#include "engine/wire/frame_codec.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "engine/wire/body_builder.h"

namespace ringmesh::wire {
namespace {

std::vector<std::byte> encode(FrameKind kind, std::span<const std::byte> body,
                              std::uint32_t stream = 1, std::uint64_t seq = 1) {
    std::vector<std::byte> out(wire_size(body.size()));
    write_frame(out,
                make_header(kind, static_cast<std::uint32_t>(body.size()), stream,
                            is_sequenced_kind(kind) ? seq : 0, 0, 64),
                body);
    return out;
}

std::span<const std::byte> as_bytes(const std::string& s) {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

TEST(FrameCodecTest, RoundTripsEveryControlBody) {
    body_builder b;
    const std::string payload = "payload bytes";
    const codec_limits limits;
    struct sample {
        FrameKind kind;
        std::vector<std::byte> body;
    };
    auto copy = [](std::span<const std::byte> s) {
        return std::vector<std::byte>(s.begin(), s.end());
    };
    std::vector<sample> samples{
        {FrameKind::Hello, copy(b.hello("cluster-a", "node-1", 99, 2))},
        {FrameKind::Publish, copy(b.publish("md/eq/AAPL", as_bytes(payload)))},
        {FrameKind::Subscribe, copy(b.subscription("md/*/AAPL"))},
        {FrameKind::RpcRequest, copy(b.rpc_request(7, "echo", 1000, as_bytes(payload)))},
        {FrameKind::RpcResponse, copy(b.rpc_response(7, RpcStatus::Ok, "", as_bytes(payload)))},
        {FrameKind::Error, copy(b.error(ErrorCode::WrongCluster, "expected cluster-a"))},
        {FrameKind::Data, copy(as_bytes(payload))},
        {FrameKind::Ack, {}},
    };
    for (const auto& s : samples) {
        const auto wire_bytes = encode(s.kind, s.body);
        const auto parsed = parse_frame(wire_bytes, limits);
        ASSERT_EQ(parsed.status, parse_status::frame) << static_cast<int>(s.kind);
        EXPECT_EQ(parsed.consumed, wire_bytes.size());
        EXPECT_EQ(parsed.value.kind(), s.kind);
        EXPECT_EQ(verify_body(parsed.value, limits), frame_error::none) << static_cast<int>(s.kind);
    }
    const auto hello_wire = encode(FrameKind::Hello, samples[0].body);
    const auto hello = body_as<Hello>(parse_frame(hello_wire, limits).value);
    EXPECT_EQ(view_of(hello->node_id()), "node-1");
    EXPECT_EQ(hello->incarnation(), 99u);
    const auto pub_wire = encode(FrameKind::Publish, samples[1].body);
    const auto pub = body_as<Publish>(parse_frame(pub_wire, limits).value);
    const auto bytes = bytes_of(pub->payload());
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()), payload);
}

TEST(FrameCodecTest, IncompleteInputAsksForMore) {
    const std::string payload(100, 'x');
    const auto wire_bytes = encode(FrameKind::Data, as_bytes(payload));
    for (std::size_t cut : {0ul, 10ul, 31ul, 32ul, 100ul, wire_bytes.size() - 1}) {
        EXPECT_EQ(parse_frame(std::span(wire_bytes).first(cut), {}).status, parse_status::need_more)
            << cut;
    }
}

TEST(FrameCodecTest, ConsecutiveFramesStayAligned) {
    std::vector<std::byte> stream;
    for (int len : {1, 7, 8, 13}) {
        const std::string body(len, 'a');
        const auto f = encode(FrameKind::Data, as_bytes(body));
        stream.insert(stream.end(), f.begin(), f.end());
    }
    std::span<const std::byte> rest(stream);
    int frames = 0;
    while (!rest.empty()) {
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(rest.data()) % 8,
                  reinterpret_cast<std::uintptr_t>(stream.data()) % 8);
        const auto parsed = parse_frame(rest, {});
        ASSERT_EQ(parsed.status, parse_status::frame);
        rest = rest.subspan(parsed.consumed);
        ++frames;
    }
    EXPECT_EQ(frames, 4);
}

TEST(FrameCodecTest, ForgedHeadersAreRefusedWithAReason) {
    auto header_only = [](FrameHeader h) {
        std::vector<std::byte> out(header_size);
        std::memcpy(out.data(), &h, header_size);
        return parse_frame(out, codec_limits{.max_body_bytes = 4096});
    };
    const auto seq = static_cast<std::uint8_t>(FrameFlags::Sequenced);
    EXPECT_EQ(header_only(FrameHeader(1u << 30, 2, seq, 1, 1, 0, 1, 0)).error,
              frame_error::oversized);
    EXPECT_EQ(header_only(FrameHeader(0, 2, seq, 9, 1, 0, 1, 0)).error, frame_error::bad_version);
    EXPECT_EQ(header_only(FrameHeader(0, 0, 0, 1, 1, 0, 0, 0)).error, frame_error::unknown_kind);
    EXPECT_EQ(header_only(FrameHeader(0, 200, 0, 1, 1, 0, 0, 0)).error, frame_error::unknown_kind);
    EXPECT_EQ(header_only(FrameHeader(0, 2, 0, 1, 1, 0, 1, 0)).error, frame_error::bad_flags);
    EXPECT_EQ(header_only(FrameHeader(0, 3, seq, 1, 1, 0, 1, 0)).error, frame_error::bad_flags);
    EXPECT_EQ(header_only(FrameHeader(0, 2, 0x80 | seq, 1, 1, 0, 1, 0)).error,
              frame_error::bad_flags);
    EXPECT_EQ(header_only(FrameHeader(0, 2, seq, 1, 1, 0, 0, 0)).error, frame_error::bad_sequence);
    // Fragments: only of sequenced frames, and an end only on a fragment.
    const auto frag = static_cast<std::uint8_t>(FrameFlags::Fragment);
    const auto end = static_cast<std::uint8_t>(FrameFlags::FragmentEnd);
    EXPECT_EQ(header_only(FrameHeader(0, 3, frag, 1, 1, 0, 0, 0)).error, frame_error::bad_flags);
    EXPECT_EQ(header_only(FrameHeader(0, 2, seq | end, 1, 1, 0, 1, 0)).error,
              frame_error::bad_flags);
    const auto piece = header_only(FrameHeader(0, 2, seq | frag | end, 1, 1, 0, 1, 0));
    EXPECT_EQ(piece.error, frame_error::none);
    EXPECT_TRUE(piece.value.fragment());
    EXPECT_TRUE(piece.value.fragment_end());
}

TEST(FrameCodecTest, BodiesThatLieAreRefused) {
    body_builder b;
    const codec_limits limits{.max_body_bytes = 1 << 16, .max_name_bytes = 16};
    auto verify = [&](FrameKind kind, std::span<const std::byte> body) {
        const auto f = encode(kind, body);
        const auto parsed = parse_frame(f, limits);
        EXPECT_EQ(parsed.status, parse_status::frame);
        return verify_body(parsed.value, limits);
    };
    EXPECT_EQ(verify(FrameKind::Hello, b.hello("", "n", 1, 1)), frame_error::missing_field);
    EXPECT_EQ(verify(FrameKind::Hello, b.hello("c", std::string(17, 'n'), 1, 1)),
              frame_error::name_too_long);
    EXPECT_EQ(verify(FrameKind::Publish, b.publish("", {})), frame_error::missing_field);
    EXPECT_EQ(verify(FrameKind::RpcRequest, b.rpc_request(1, "m", -5, {})), frame_error::bad_body);
    const std::string junk = "\xff\xff\xff\x7f garbage that is no flatbuffer";
    EXPECT_EQ(verify(FrameKind::Publish, as_bytes(junk)), frame_error::bad_body);
    EXPECT_EQ(verify(FrameKind::Hello, {}), frame_error::bad_body);
    EXPECT_EQ(verify(FrameKind::Ack, as_bytes(junk)), frame_error::bad_body);
}

TEST(FrameCodecTest, RandomBytesNeverCrashTheDecoder) {
    std::mt19937_64 rng(1234);
    const codec_limits limits{.max_body_bytes = 512};
    std::size_t frames = 0;
    for (int round = 0; round < 20000; ++round) {
        std::vector<std::byte> bytes(rng() % 600);
        for (auto& b : bytes)
            b = static_cast<std::byte>(rng());
        if (bytes.size() >= header_size && round % 2 == 0) {
            // Plausible headers reach the body verifier more often.
            FrameHeader h(static_cast<std::uint32_t>(bytes.size() - header_size),
                          static_cast<std::uint8_t>(1 + rng() % 9), 0, protocol_version, 1, 0, 0,
                          0);
            if (is_sequenced_kind(static_cast<FrameKind>(h.kind()))) {
                h.mutate_flags(static_cast<std::uint8_t>(FrameFlags::Sequenced));
                h.mutate_sequence(1);
            }
            std::memcpy(bytes.data(), &h, header_size);
            bytes.resize(wire_size(h.length()));
        }
        const auto parsed = parse_frame(bytes, limits);
        if (parsed.status == parse_status::frame) {
            ++frames;
            (void)verify_body(parsed.value, limits);
        }
    }
    EXPECT_GT(frames, 1000u);
}

}  // namespace
}  // namespace ringmesh::wire
