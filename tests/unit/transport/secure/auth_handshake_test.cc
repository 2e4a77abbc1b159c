// The keyring handshake as a state machine: two sides that hold a common key prove it to each
// other and derive mirrored record keys; everything else is refused with its reason — a
// wrong key, a replayed or reflected proof, a plaintext peer, a mode or cluster mismatch, a
// bad length — and nothing is consumed after a refusal.
#include "transport/secure/auth_handshake.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ringmesh::transport::secure {
namespace {

key_bytes key(unsigned char fill) {
    return key_bytes(32, static_cast<std::byte>(fill));
}

nonce nonce_of(unsigned char fill) {
    nonce n{};
    n.fill(static_cast<std::byte>(fill));
    return n;
}

auth_identity who(std::string name, security_mode mode = security_mode::authenticated,
                  std::string cluster = "c") {
    return {std::move(cluster), std::move(name), mode};
}

/// Runs two handshakes against each other until neither has anything to say.
void converse(auth_handshake& a, auth_handshake& b, std::size_t piece = SIZE_MAX) {
    std::vector<std::byte> to_b, to_a;
    a.start(to_b);
    b.start(to_a);
    for (int round = 0; round < 10 && (!to_a.empty() || !to_b.empty()); ++round) {
        std::vector<std::byte> next_to_a, next_to_b;
        for (std::size_t at = 0; at < to_b.size(); at += piece) {
            const std::size_t n = std::min(piece, to_b.size() - at);
            b.feed(std::span<const std::byte>(to_b).subspan(at, n), next_to_a);
        }
        for (std::size_t at = 0; at < to_a.size(); at += piece) {
            const std::size_t n = std::min(piece, to_a.size() - at);
            a.feed(std::span<const std::byte>(to_a).subspan(at, n), next_to_b);
        }
        to_a = std::move(next_to_a);
        to_b = std::move(next_to_b);
    }
}

TEST(AuthHandshakeTest, TwoHoldersOfTheKeyProveThemselvesAndDeriveMirroredRecordKeys) {
    auth_handshake a(who("a"), {key(1)}, true, nonce_of(0xa1));
    auth_handshake b(who("b"), {key(1)}, false, nonce_of(0xb1));
    converse(a, b);
    ASSERT_TRUE(a.done()) << to_string(a.refusal());
    ASSERT_TRUE(b.done()) << to_string(b.refusal());
    EXPECT_EQ(a.peer(), "b");
    EXPECT_EQ(b.peer(), "a");
    EXPECT_EQ(a.keys().send, b.keys().receive);
    EXPECT_EQ(a.keys().receive, b.keys().send);
    EXPECT_NE(a.keys().send, a.keys().receive) << "each direction has its own key";

    // Fresh nonces, fresh keys: no two connections share record keys.
    auth_handshake a2(who("a"), {key(1)}, true, nonce_of(0xa2));
    auth_handshake b2(who("b"), {key(1)}, false, nonce_of(0xb2));
    converse(a2, b2);
    ASSERT_TRUE(a2.done());
    EXPECT_NE(a2.keys().send, a.keys().send);
}

TEST(AuthHandshakeTest, BytesMayArriveOneAtATime) {
    auth_handshake a(who("a"), {key(1)}, true, nonce_of(1));
    auth_handshake b(who("b"), {key(1)}, false, nonce_of(2));
    converse(a, b, 1);
    EXPECT_TRUE(a.done());
    EXPECT_TRUE(b.done());
}

TEST(AuthHandshakeTest, RotationWorksWhileTheTwoSidesPreferDifferentKeys) {
    // a has made the new key primary; b still proves with the old one. Both hold both.
    auth_handshake a(who("a"), {key(2), key(1)}, true, nonce_of(1));
    auth_handshake b(who("b"), {key(1), key(2)}, false, nonce_of(2));
    converse(a, b);
    ASSERT_TRUE(a.done());
    ASSERT_TRUE(b.done());
    EXPECT_EQ(a.keys().send, b.keys().receive);
}

TEST(AuthHandshakeTest, AWrongKeyIsRefusedOnBothSides) {
    auth_handshake a(who("a"), {key(1)}, true, nonce_of(1));
    auth_handshake b(who("b"), {key(9)}, false, nonce_of(2));
    converse(a, b);
    EXPECT_EQ(a.refusal(), auth_refusal::unknown_key);
    EXPECT_EQ(b.refusal(), auth_refusal::unknown_key);
    EXPECT_TRUE(a.peer().empty());
    EXPECT_TRUE(b.peer().empty());
}

TEST(AuthHandshakeTest, ARecordedHandshakeReplayedToAFreshListenerIsRefused) {
    auth_handshake a(who("a"), {key(1)}, true, nonce_of(1));
    auth_handshake b(who("b"), {key(1)}, false, nonce_of(2));
    std::vector<std::byte> from_a, to_a;
    a.start(from_a);
    b.start(to_a);
    std::vector<std::byte> ignored;
    b.feed(from_a, to_a);  // b's Hello and proof
    const std::size_t hello_size = from_a.size();
    a.feed(to_a, from_a);  // a's proof, after its Hello
    std::vector<std::byte> unused;
    ASSERT_EQ(b.feed(std::span<const std::byte>(from_a).subspan(hello_size), unused),
              from_a.size() - hello_size);
    ASSERT_TRUE(b.done());

    // The same bytes, recorded, played to a listener whose challenge is new.
    auth_handshake fresh(who("b"), {key(1)}, false, nonce_of(3));
    fresh.start(ignored);
    fresh.feed(from_a, ignored);
    EXPECT_EQ(fresh.refusal(), auth_refusal::bad_proof);
}

TEST(AuthHandshakeTest, AProofReflectedToItsMakerIsRefused) {
    auth_handshake b(who("b"), {key(1)}, false, nonce_of(2));
    // The intruder's Hello, made by a handshake object with any key (it cannot prove).
    auth_handshake intruder(who("a"), {key(7)}, true, nonce_of(5));
    std::vector<std::byte> hello, from_b;
    intruder.start(hello);
    b.start(from_b);
    const std::size_t b_hello = from_b.size();
    b.feed(hello, from_b);  // b answers with its proof
    ASSERT_GT(from_b.size(), b_hello);
    std::vector<std::byte> unused;
    b.feed(std::span<const std::byte>(from_b).subspan(b_hello), unused);  // b's own proof back
    EXPECT_EQ(b.refusal(), auth_refusal::bad_proof);
}

TEST(AuthHandshakeTest, APlaintextPeerIsRefusedAtItsFirstByte) {
    auth_handshake b(who("b"), {key(1)}, false, nonce_of(2));
    const std::vector<std::byte> frame_header(32, std::byte{0x20});
    std::vector<std::byte> out;
    EXPECT_LE(b.feed(frame_header, out), handshake_prefix_bytes);
    EXPECT_EQ(b.refusal(), auth_refusal::not_secure);
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(b.feed(frame_header, out), 0u) << "nothing more after a refusal";
}

TEST(AuthHandshakeTest, ModeAndClusterMismatchesAreRefusedNeverNegotiated) {
    {
        auth_handshake a(who("a"), {key(1)}, true, nonce_of(1));
        auth_handshake b(who("b", security_mode::encrypted), {key(1)}, false, nonce_of(2));
        converse(a, b);
        EXPECT_EQ(a.refusal(), auth_refusal::mode_mismatch);
        EXPECT_EQ(b.refusal(), auth_refusal::mode_mismatch);
    }
    {
        auth_handshake a(who("a"), {key(1)}, true, nonce_of(1));
        auth_handshake b(who("b", security_mode::authenticated, "other"), {key(1)}, false,
                         nonce_of(2));
        converse(a, b);
        EXPECT_EQ(a.refusal(), auth_refusal::wrong_cluster);
    }
    {
        auth_handshake a(who("b"), {key(1)}, true, nonce_of(1));
        auth_handshake b(who("b"), {key(1)}, false, nonce_of(2));
        converse(a, b);
        EXPECT_EQ(b.refusal(), auth_refusal::ourselves);
    }
}

TEST(AuthHandshakeTest, BadLengthsAndGarbageBodiesAreMalformed) {
    {
        auth_handshake b(who("b"), {key(1)}, false, nonce_of(2));
        std::vector<std::byte> in = {std::byte{'R'}, std::byte{'M'},  std::byte{'S'},
                                     std::byte{'H'}, std::byte{0xff}, std::byte{0xff},
                                     std::byte{0},   std::byte{0}};
        std::vector<std::byte> out;
        b.feed(in, out);
        EXPECT_EQ(b.refusal(), auth_refusal::malformed) << "a 64 KiB handshake message";
    }
    {
        auth_handshake b(who("b"), {key(1)}, false, nonce_of(2));
        std::vector<std::byte> in = {std::byte{'R'}, std::byte{'M'}, std::byte{'S'}, std::byte{'H'},
                                     std::byte{16},  std::byte{0},   std::byte{0},   std::byte{0}};
        in.resize(in.size() + 16, std::byte{0x33});
        std::vector<std::byte> out;
        b.feed(in, out);
        EXPECT_EQ(b.refusal(), auth_refusal::malformed) << "not a flatbuffer";
    }
}

TEST(AuthHandshakeTest, ModesParseAndPrint) {
    EXPECT_EQ(parse_security_mode("authenticated"), security_mode::authenticated);
    EXPECT_EQ(parse_security_mode("none"), security_mode::none);
    EXPECT_EQ(parse_security_mode("encrypted"), security_mode::encrypted);
    EXPECT_FALSE(parse_security_mode("plain"));
    EXPECT_STREQ(to_string(security_mode::authenticated), "authenticated");
    EXPECT_STREQ(to_string(auth_refusal::bad_proof), "bad-proof");
}

}  // namespace
}  // namespace ringmesh::transport::secure
