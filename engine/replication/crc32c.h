// CRC32C (Castagnoli), the checksum of every log record and snapshot: the CPU's crc32
// instruction (SSE4.2) where it exists, Boost.CRC's table-driven implementation elsewhere.
#pragma once

#include <cstdint>
#include <span>

namespace ringmesh::replication {

/// Continues `crc` (0 to start) over `bytes`.
std::uint32_t crc32c(std::span<const std::byte> bytes, std::uint32_t crc = 0) noexcept;

/// The portable implementation alone (the tests compare the two).
std::uint32_t crc32c_portable(std::span<const std::byte> bytes, std::uint32_t crc = 0) noexcept;

}  // namespace ringmesh::replication
