#include "engine/replication/crc32c.h"

#include <boost/crc.hpp>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace ringmesh::replication {

std::uint32_t crc32c_portable(std::span<const std::byte> bytes, std::uint32_t crc) noexcept {
    // Reflected Castagnoli polynomial, initial and final XOR ~0: a running CRC continues by
    // feeding the finished value back as the initial remainder (after undoing the XOR).
    // Boost takes the initial remainder unreflected, so a finished (reflected) value is
    // reflected back before it continues.
    std::uint32_t initial = ~crc;
    std::uint32_t unreflected = 0;
    for (int i = 0; i < 32; ++i)
        unreflected |= ((initial >> i) & 1U) << (31 - i);
    boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> engine(unreflected);
    engine.process_bytes(bytes.data(), bytes.size());
    return engine.checksum();
}

#if defined(__x86_64__)
namespace {

__attribute__((target("sse4.2"))) std::uint32_t crc32c_sse42(std::span<const std::byte> bytes,
                                                             std::uint32_t crc) noexcept {
    std::uint64_t c = ~crc;
    const std::byte* p = bytes.data();
    std::size_t n = bytes.size();
    for (; n >= 8; n -= 8, p += 8) {
        std::uint64_t word = 0;
        std::memcpy(&word, p, 8);
        c = _mm_crc32_u64(c, word);
    }
    auto c32 = static_cast<std::uint32_t>(c);
    for (; n > 0; --n, ++p)
        c32 = _mm_crc32_u8(c32, std::to_integer<std::uint8_t>(*p));
    return ~c32;
}

const bool has_sse42 = __builtin_cpu_supports("sse4.2");

}  // namespace
#endif

std::uint32_t crc32c(std::span<const std::byte> bytes, std::uint32_t crc) noexcept {
#if defined(__x86_64__)
    if (has_sse42) return crc32c_sse42(bytes, crc);
#endif
    return crc32c_portable(bytes, crc);
}

}  // namespace ringmesh::replication
