#include <gtest/gtest.h>

#include <cstring>

#include "frame_generated.h"

namespace ringmesh {
namespace {

TEST(FrameHeaderTest, IsAFixed32ByteLittleEndianLayout) {
    static_assert(sizeof(wire::FrameHeader) == 32);
    wire::FrameHeader header(100, 3, 1, 1, 7, 64, 0x0102030405060708ull, 42);
    unsigned char bytes[32];
    std::memcpy(bytes, &header, sizeof bytes);
    EXPECT_EQ(bytes[0], 100);    // length, little-endian
    EXPECT_EQ(bytes[4], 3);      // kind
    EXPECT_EQ(bytes[16], 0x08);  // sequence's lowest byte first
    wire::FrameHeader decoded;
    std::memcpy(&decoded, bytes, sizeof decoded);
    EXPECT_EQ(decoded.sequence(), 0x0102030405060708ull);
    EXPECT_EQ(decoded.ack(), 42u);
    EXPECT_EQ(decoded.stream_id(), 7u);
}

}  // namespace
}  // namespace ringmesh
