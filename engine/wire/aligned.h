// Flatbuffers reads 8-byte fields in place, so a buffer must start 8-byte aligned. A body
// nested in another (a command inside an RPC payload, a batch in a receive buffer at an odd
// offset) may not: it is copied to aligned storage first, and only then verified and read.
#pragma once

#include <flatbuffers/flatbuffers.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace ringmesh::wire {

/// `bytes` itself when aligned; otherwise a copy in `storage` (which must outlive the use).
std::span<const std::byte> aligned_for_flatbuffers(std::span<const std::byte> bytes,
                                                   std::vector<std::uint64_t>& storage);

/// The root `Table` of `bytes` once aligned (into `storage`, when needed) and verified by the
/// flatbuffers Verifier; nullptr when the bytes are empty or fail verification.
template <typename Table>
const Table* verified_root(std::span<const std::byte> bytes, std::vector<std::uint64_t>& storage,
                           const flatbuffers::Verifier::Options& options = {}) {
    bytes = aligned_for_flatbuffers(bytes, storage);
    if (bytes.empty()) return nullptr;
    flatbuffers::Verifier verifier(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                   bytes.size(), options);
    if (!verifier.VerifyBuffer<Table>(nullptr)) return nullptr;
    return flatbuffers::GetRoot<Table>(bytes.data());
}

}  // namespace ringmesh::wire
