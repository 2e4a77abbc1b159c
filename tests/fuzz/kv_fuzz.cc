// Fuzz target: the key-value service's decoders. Arbitrary bytes are checked as a command
// (as an RPC body, at an odd address too), applied as a log entry, and restored as a
// snapshot; nothing may crash, a refused snapshot changes nothing, and a restored one
// serializes back to a state that restores to itself.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "engine/kv/kv_state.h"

using namespace ringmesh;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data), size);
    std::vector<std::byte> shifted(1);
    shifted.insert(shifted.end(), input.begin(), input.end());
    const kv::checked_command a = kv::check_command(input, {});
    const kv::checked_command b = kv::check_command(std::span(shifted).subspan(1), {});
    if (a.status != b.status) std::abort();

    kv::kv_state state;
    replication::log_entry e{1, 1, replication::entry_kind::command, {input.begin(), input.end()}};
    (void)state.apply(e);
    if (state.applied() != 1) std::abort();

    kv::kv_state restored;
    const std::vector<std::byte> before = restored.snapshot();
    if (restored.restore(input)) {
        kv::kv_state again;
        if (!again.restore(restored.snapshot()) || again.snapshot() != restored.snapshot())
            std::abort();
    } else if (restored.snapshot() != before) {
        std::abort();
    }
    return 0;
}

std::vector<std::vector<std::uint8_t>> fuzz_seeds() {
    std::vector<std::vector<std::uint8_t>> seeds;
    flatbuffers::FlatBufferBuilder b;
    const std::uint8_t value[] = {'v'};
    b.Finish(wire::CreateKvCommand(b, wire::KvOp::Append, b.CreateString("key"),
                                   b.CreateVector(value, 1), 0, false, 7, 1));
    seeds.emplace_back(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
    kv::kv_state state;
    replication::log_entry e{
        1,
        1,
        replication::entry_kind::command,
        {reinterpret_cast<const std::byte*>(seeds[0].data()),
         reinterpret_cast<const std::byte*>(seeds[0].data()) + seeds[0].size()}};
    state.apply(e);
    const std::vector<std::byte> snap = state.snapshot();
    seeds.emplace_back(reinterpret_cast<const std::uint8_t*>(snap.data()),
                       reinterpret_cast<const std::uint8_t*>(snap.data()) + snap.size());
    return seeds;
}
