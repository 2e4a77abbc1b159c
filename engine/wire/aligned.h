// Flatbuffers reads 8-byte fields in place, so a buffer must start 8-byte aligned. A body
// nested in another (a command inside an RPC payload, a batch in a receive buffer at an odd
// offset) may not: it is copied to aligned storage first, and only then verified and read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace ringmesh::wire {

/// `bytes` itself when aligned; otherwise a copy in `storage` (which must outlive the use).
std::span<const std::byte> aligned_for_flatbuffers(std::span<const std::byte> bytes,
                                                   std::vector<std::uint64_t>& storage);

}  // namespace ringmesh::wire
