// Micro-benchmarks of the wire codec and the session layer (issue: the data path's per-frame
// costs, in isolation). Registered into the same ringmesh_micro binary.
#include <benchmark/benchmark.h>

#include <cstring>
#include <string>
#include <vector>

#include "engine/messaging/session.h"
#include "engine/messaging/topic_counts.h"
#include "engine/wire/body_builder.h"
#include "engine/wire/frame_codec.h"

namespace rm = ringmesh;
namespace wire = ringmesh::wire;

namespace {

// A stream of n Data frames of `payload` bytes, as a receiver would find it in a buffer.
std::vector<std::byte> data_frames(std::size_t n, std::size_t payload) {
    std::vector<std::byte> body(payload, std::byte{7});
    std::vector<std::byte> out;
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t at = out.size();
        out.resize(at + wire::wire_size(payload));
        wire::write_frame({out.data() + at, wire::wire_size(payload)},
                          wire::make_header(wire::FrameKind::Data,
                                            static_cast<std::uint32_t>(payload), 16, i + 1, 0, 64),
                          body);
    }
    return out;
}

void BM_EncodeDataFrame(benchmark::State& state) {
    const std::size_t payload = static_cast<std::size_t>(state.range(0));
    std::vector<std::byte> body(payload), out(wire::wire_size(payload));
    std::uint64_t seq = 0;
    for (auto _ : state) {
        wire::write_frame(out,
                          wire::make_header(wire::FrameKind::Data,
                                            static_cast<std::uint32_t>(payload), 16, ++seq, 0, 64),
                          body);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(out.size()));
}
BENCHMARK(BM_EncodeDataFrame)->Name("codec/encode_data")->Arg(64)->Arg(1024);

void BM_BuildPublishBody(benchmark::State& state) {
    wire::body_builder b;
    std::vector<std::byte> payload(64);
    for (auto _ : state)
        benchmark::DoNotOptimize(b.publish("md/eq/AAPL", payload).data());
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BuildPublishBody)->Name("codec/build_publish_64");

void BM_ParseAndVerifyData(benchmark::State& state) {
    const auto stream = data_frames(1024, static_cast<std::size_t>(state.range(0)));
    const wire::codec_limits limits;
    for (auto _ : state) {
        std::span<const std::byte> rest(stream);
        std::size_t frames = 0;
        while (!rest.empty()) {
            const auto parsed = wire::parse_frame(rest, limits);
            frames += wire::verify_body(parsed.value, limits) == wire::frame_error::none;
            rest = rest.subspan(parsed.consumed);
        }
        benchmark::DoNotOptimize(frames);
    }
    state.SetItemsProcessed(state.iterations() * 1024);
}
BENCHMARK(BM_ParseAndVerifyData)->Name("codec/parse_verify_data")->Arg(64)->Arg(1024);

void BM_ParseVerifyDecodePublish(benchmark::State& state) {
    wire::body_builder b;
    std::vector<std::byte> payload(64);
    const auto body = b.publish("md/eq/AAPL", payload);
    std::vector<std::byte> frame(wire::wire_size(body.size()));
    wire::write_frame(frame,
                      wire::make_header(wire::FrameKind::Publish,
                                        static_cast<std::uint32_t>(body.size()), 1, 1, 0, 64),
                      body);
    const wire::codec_limits limits;
    for (auto _ : state) {
        const auto parsed = wire::parse_frame(frame, limits);
        if (wire::verify_body(parsed.value, limits) != wire::frame_error::none)
            state.SkipWithError("verify");
        const auto* pub = wire::body_as<wire::Publish>(parsed.value);
        benchmark::DoNotOptimize(wire::view_of(pub->topic()).size() +
                                 wire::bytes_of(pub->payload()).size());
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseVerifyDecodePublish)->Name("codec/parse_verify_decode_publish_64");

// Frames through a sender session, the wire bytes it emits, and a receiver session that
// delivers them in order and acknowledges: the session layer's cost per frame, no I/O.
void BM_SessionPair(benchmark::State& state) {
    const std::size_t payload = static_cast<std::size_t>(state.range(0));
    rm::messaging::session sender({}, {}), receiver({}, {});
    sender.on_connected(0, 2);
    receiver.on_connected(0, 1);
    std::vector<std::byte> body(payload);
    std::vector<std::byte> to_receiver, to_sender;
    std::uint64_t delivered = 0;
    rm::time_ns now = 0;
    auto pump = [&](rm::messaging::session& from, std::vector<std::byte>& link) {
        link.clear();
        from.poll_transmit(now, [&](std::span<const std::byte> b) {
            link.insert(link.end(), b.begin(), b.end());
            return true;
        });
    };
    auto feed = [&](rm::messaging::session& to, const std::vector<std::byte>& link) {
        std::span<const std::byte> rest(link);
        while (!rest.empty()) {
            const auto parsed = wire::parse_frame(rest, {});
            to.on_frame(now, parsed.value, [&](std::uint32_t, const wire::frame&) { ++delivered; });
            rest = rest.subspan(parsed.consumed);
        }
    };
    for (auto _ : state) {
        for (int i = 0; i < 256; ++i)
            sender.send(16, wire::FrameKind::Data, body);
        pump(sender, to_receiver);
        feed(receiver, to_receiver);
        now += 300 * rm::ns_per_us;  // let the receiver's delayed ack fall due
        pump(receiver, to_sender);
        feed(sender, to_sender);
    }
    if (delivered != static_cast<std::uint64_t>(state.iterations()) * 256)
        state.SkipWithError("lost frames");
    state.SetItemsProcessed(state.iterations() * 256);
}
BENCHMARK(BM_SessionPair)->Name("session/pair_frames")->Arg(64)->Arg(1024);

// What the per-topic metrics add to a publish: the same topic again (a string compare), and
// topics taking turns (a hash lookup each).
void BM_TopicCounts(benchmark::State& state) {
    rm::messaging::topic_counts counts(64);
    const std::vector<std::string> topics = {"md/eq/AAPL", "md/eq/MSFT", "md/eq/GOOG",
                                             "md/eq/AMZN"};
    const std::size_t turns = static_cast<std::size_t>(state.range(0));
    std::size_t i = 0;
    for (auto _ : state) {
        if (auto* c = counts.at(topics[i])) ++c->published;
        i = (i + 1) % turns;
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TopicCounts)->Name("metrics/topic_count/same_topic")->Arg(1);
BENCHMARK(BM_TopicCounts)->Name("metrics/topic_count/four_topics_in_turn")->Arg(4);

}  // namespace
