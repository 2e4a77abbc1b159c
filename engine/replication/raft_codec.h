// Raft messages to and from their wire form (schemas/raft.fbs). A batch carries everything one
// node has for another in one flush; heartbeats and their replies of all groups between the
// two nodes are coalesced into one vector of 32-byte structs. Decoding runs the flatbuffers
// Verifier, then semantic checks (kinds, ids, entries contiguous and within their message's
// term, configurations well-formed, chunks within their snapshot), and names the reason for
// every refusal so the caller can count it: nothing a peer sends reaches a replica unchecked.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "engine/replication/raft_types.h"

namespace ringmesh::replication {

enum class raft_codec_error : std::uint8_t {
    none,
    malformed,      ///< the flatbuffers Verifier refused the bytes
    wrong_cluster,  ///< a different cluster id
    bad_kind,       ///< an unknown message or entry kind
    bad_field,      ///< a missing or zero id, a message to someone else, a field out of range
    bad_entries,    ///< entries not contiguous after prev_index, or of a later term
    too_large,      ///< over one of raft_codec_limits
    count,
};
const char* to_string(raft_codec_error e) noexcept;

struct raft_codec_limits {
    std::size_t max_messages = 4096;
    std::size_t max_entries = 65536;  ///< per message
    std::size_t max_entry_bytes = 8 << 20;
    std::size_t max_chunk_bytes = 8 << 20;
    std::size_t max_beats = 65536;
};

/// Refusals counted by reason, for the driver's metrics.
struct raft_refusals {
    std::array<std::uint64_t, static_cast<std::size_t>(raft_codec_error::count)> by_reason{};
    void count(raft_codec_error e) noexcept { ++by_reason[static_cast<std::size_t>(e)]; }
    std::uint64_t total() const noexcept {
        std::uint64_t n = 0;
        for (std::uint64_t v : by_reason)
            n += v;
        return n;
    }
};

/// Appends the wire form of `messages` (all from `from` to `to`) to `out`. The snapshot
/// chunks must carry their bytes.
void encode_batch(node_id from, node_id to, std::span<const raft_message> messages,
                  std::string_view cluster_id, std::vector<std::byte>& out);

/// Upper bounds of the encoded sizes, for splitting batches to fit a transport's frame limit:
/// a batch takes at most batch_bound_overhead + cluster_id.size() + the encoded_bound of each
/// of its messages (checked by the codec's tests against random messages).
inline constexpr std::size_t batch_bound_overhead = 128;
inline constexpr std::size_t message_bound_overhead = 320;  ///< a message's table and fields
inline constexpr std::size_t entry_bound_overhead = 64;     ///< per entry, beyond its data
inline constexpr std::size_t chunk_bound_overhead = 16;     ///< a chunk, beyond its bytes
std::size_t encoded_bound(const raft_message& m) noexcept;

/// Decodes a batch addressed to `self` into `out` (cleared first); every message gets the
/// batch's from/to. Returns raft_codec_error::none on success; on a refusal `out` is empty.
raft_codec_error decode_batch(std::span<const std::byte> bytes, std::string_view cluster_id,
                              node_id self, std::vector<raft_message>& out,
                              const raft_codec_limits& limits = {});

/// The groups a batch's messages and beats belong to, each once and in the order first seen,
/// for routing the batch to the shard that runs them before it is decoded there. Runs the
/// flatbuffers Verifier and the size limits only: decode_batch still checks everything else
/// where the batch arrives. On a refusal `out` is empty.
raft_codec_error batch_groups(std::span<const std::byte> bytes, std::vector<group_id>& out,
                              const raft_codec_limits& limits = {});

}  // namespace ringmesh::replication
