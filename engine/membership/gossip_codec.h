// Gossip messages to and from their flatbuffers form (schemas/gossip.fbs). Decoding runs the
// flatbuffers Verifier and then semantic checks, and names the reason for every refusal so
// the agent can count it; nothing a peer sends reaches the state machine unchecked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "engine/membership/swim.h"

namespace ringmesh::membership {

enum class gossip_error : std::uint8_t {
    none,
    malformed,      ///< the flatbuffers Verifier refused the bytes
    wrong_cluster,  ///< a different cluster id
    bad_kind,       ///< unknown message kind or member state
    bad_field,      ///< a required name/address missing, or a field over its limit
    count,
};
const char* to_string(gossip_error e) noexcept;

/// Limits on what a decoded message may hold.
inline constexpr std::size_t max_name_bytes = 255;
inline constexpr std::size_t max_meta_entries = 64;
inline constexpr std::size_t max_updates = 100'000;

/// Appends the encoded message to `out`.
void encode(const gossip_message& message, std::string_view cluster_id,
            std::vector<std::byte>& out);

/// Decodes into `out`; returns gossip_error::none on success.
gossip_error decode(std::span<const std::byte> bytes, std::string_view cluster_id,
                    gossip_message& out);

}  // namespace ringmesh::membership
