// Fuzz target: replicated topics' decoders. Arbitrary bytes are checked as a publish (at an
// odd address too), applied as a log entry and restored as a snapshot; nothing may crash, a
// refused snapshot changes nothing, and a restored one serializes to a state that restores to
// itself.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "engine/topics/topic_log.h"

using namespace ringmesh;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data), size);
    std::vector<std::byte> shifted(1);
    shifted.insert(shifted.end(), input.begin(), input.end());
    if (topics::check_publish(input, {}).status !=
        topics::check_publish(std::span(shifted).subspan(1), {}).status)
        std::abort();

    topics::topic_log log;
    (void)log.apply({1, 1, replication::entry_kind::command, {input.begin(), input.end()}});
    if (log.applied() != 1 || log.retained() > 1) std::abort();

    topics::topic_log restored;
    const std::vector<std::byte> before = restored.snapshot();
    if (restored.restore(input)) {
        topics::topic_log again;
        if (!again.restore(restored.snapshot()) || again.snapshot() != restored.snapshot())
            std::abort();
    } else if (restored.snapshot() != before) {
        std::abort();
    }
    return 0;
}

std::vector<std::vector<std::uint8_t>> fuzz_seeds() {
    flatbuffers::FlatBufferBuilder b;
    const std::uint8_t payload[] = {'m'};
    b.Finish(wire::CreateTopicPublish(b, b.CreateString("orders/eu"), b.CreateVector(payload, 1), 7,
                                      1, 1000));
    std::vector<std::uint8_t> publish(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
    topics::topic_log log;
    log.apply({1,
               1,
               replication::entry_kind::command,
               {reinterpret_cast<const std::byte*>(publish.data()),
                reinterpret_cast<const std::byte*>(publish.data()) + publish.size()}});
    const std::vector<std::byte> snap = log.snapshot();
    return {publish,
            {reinterpret_cast<const std::uint8_t*>(snap.data()),
             reinterpret_cast<const std::uint8_t*>(snap.data()) + snap.size()}};
}
