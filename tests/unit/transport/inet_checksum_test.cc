// The Internet checksum against a plain 16-bit big-endian reference (RFC 1071) and a known
// IPv4 header; summing in pieces equals summing whole.
#include "transport/inet_checksum.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace ringmesh::transport::inet {
namespace {

// RFC 1071 as written: big-endian 16-bit words, an odd byte padded with zero.
std::uint16_t reference_sum(const std::vector<std::uint8_t>& data) {
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i < data.size(); i += 2) {
        const std::uint32_t hi = data[i];
        const std::uint32_t lo = i + 1 < data.size() ? data[i + 1] : 0;
        sum += (hi << 8) | lo;
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return static_cast<std::uint16_t>(sum);
}

std::span<const std::byte> bytes(const std::vector<std::uint8_t>& v) {
    return std::as_bytes(std::span(v));
}

TEST(InetChecksumTest, KnownIpv4Header) {
    // 192.168.0.1 -> 192.168.0.199, TTL 64, UDP, total length 115: checksum 0xb861.
    std::vector<std::uint8_t> header = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                                        0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
    const std::uint16_t field = ipv4_header_field(bytes(header));
    EXPECT_EQ(ntohs(field), 0xb861);
    std::memcpy(header.data() + 10, &field, 2);
    EXPECT_TRUE(verifies(add(bytes(header))));
}

TEST(InetChecksumTest, MatchesTheReferenceForEveryLengthAndInPieces) {
    std::mt19937 rng(7);
    for (std::size_t length = 0; length < 2100; length += 1 + length / 16) {
        std::vector<std::uint8_t> data(length);
        for (auto& b : data)
            b = static_cast<std::uint8_t>(rng());
        const std::uint16_t expected = reference_sum(data);
        EXPECT_EQ(ntohs(fold(add(bytes(data)))), expected) << length << " bytes";
        // Split at an even offset, as headers and payload segments are.
        const std::size_t cut = (length / 3) & ~std::size_t{1};
        const auto all = bytes(data);
        EXPECT_EQ(fold(add(all.subspan(cut), add(all.first(cut)))), fold(add(all)));
    }
}

TEST(InetChecksumTest, UdpFieldVerifiesWithThePseudoHeaderAndNeverSaysNone) {
    std::vector<std::uint8_t> segment = {0x30, 0x39, 0x23, 0x28, 0x00, 0x0c,
                                         0x00, 0x00, 'p',  'i',  'n',  'g'};  // ports 12345 -> 9000
    const std::uint32_t src = htonl(0x0a000001), dst = htonl(0x0a000002);
    const std::uint64_t pseudo = ipv4_pseudo_header(src, dst, 17, 12);
    const std::uint16_t field = udp_field(add(bytes(segment), pseudo));
    EXPECT_NE(field, 0);
    std::memcpy(segment.data() + 6, &field, 2);
    EXPECT_TRUE(verifies(add(bytes(segment), pseudo)));
    segment[9] ^= 1;  // one flipped bit is caught
    EXPECT_FALSE(verifies(add(bytes(segment), pseudo)));
    EXPECT_EQ(udp_field(0xffff), 0xffff);  // a zero checksum is sent as all ones
}

}  // namespace
}  // namespace ringmesh::transport::inet
