// Fuzz target: the Raft batch decoder and the configuration-entry decoder. Whatever decodes
// must re-encode and decode to the same messages; nothing may crash or read out of bounds.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "engine/replication/raft_codec.h"

using namespace ringmesh::replication;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data), size);
    if (std::optional<group_members> m = decode_members(input)) {
        if (decode_members(encode_members(*m)) != m) std::abort();
    }
    std::vector<raft_message> messages;
    if (decode_batch(input, "fuzz", 2, messages) != raft_codec_error::none) return 0;
    std::vector<std::byte> again;
    encode_batch(1, 2, messages, "fuzz", again);
    std::vector<raft_message> back;
    if (decode_batch(again, "fuzz", 2, back) != raft_codec_error::none) std::abort();
    if (back.size() != messages.size()) std::abort();
    for (std::size_t i = 0; i < back.size(); ++i) {
        if (back[i].kind != messages[i].kind || back[i].entries != messages[i].entries ||
            back[i].chunk != messages[i].chunk || back[i].snapshot != messages[i].snapshot)
            std::abort();
    }
    return 0;
}

std::vector<std::vector<std::uint8_t>> fuzz_seeds() {
    raft_message append;
    append.kind = message_kind::append;
    append.term = 3;
    append.prev_index = 1;
    append.prev_term = 2;
    append.entries = {{3, 2, entry_kind::command, {std::byte{7}}},
                      {3, 3, entry_kind::config, encode_members({{1, 2, 3}, {}})}};
    raft_message chunk;
    chunk.kind = message_kind::snapshot;
    chunk.term = 3;
    chunk.snapshot = {9, 2, {{1, 2}, {}}, 2};
    chunk.chunk = {std::byte{1}, std::byte{2}};
    chunk.last_chunk = true;
    raft_message beat;
    beat.kind = message_kind::heartbeat;
    beat.term = 3;
    std::vector<std::byte> bytes;
    encode_batch(1, 2, std::vector<raft_message>{append, chunk, beat}, "fuzz", bytes);
    const auto* p = reinterpret_cast<const std::uint8_t*>(bytes.data());
    const std::vector<std::byte> members = encode_members({{1, 2}, {3}});
    const auto* q = reinterpret_cast<const std::uint8_t*>(members.data());
    return {std::vector<std::uint8_t>(p, p + bytes.size()),
            std::vector<std::uint8_t>(q, q + members.size())};
}
