#include "engine/membership/keyring.h"

#include <gtest/gtest.h>

#include <string>

namespace ringmesh::membership {
namespace {

key_bytes key_of(char fill, std::size_t n = 32) {
    return key_bytes(n, std::byte(fill));
}

std::vector<std::byte> bytes_of(const std::string& s) {
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    return {p, p + s.size()};
}

TEST(KeyringTest, SealsAndOpensWithEveryKeySize) {
    for (std::size_t size : {16u, 24u, 32u}) {
        auto ring = keyring::create({key_of('k', size)});
        ASSERT_TRUE(ring);
        std::vector<std::byte> sealed, plain;
        ring->seal(bytes_of("hello gossip"), sealed);
        EXPECT_EQ(sealed.size(), keyring::overhead + 12);
        ASSERT_EQ(ring->open(sealed, plain), open_status::ok);
        EXPECT_EQ(plain, bytes_of("hello gossip"));
    }
}

TEST(KeyringTest, TheSamePlaintextSealsDifferentlyEachTime) {
    auto ring = keyring::create({key_of('k')});
    std::vector<std::byte> a, b;
    ring->seal(bytes_of("x"), a);
    ring->seal(bytes_of("x"), b);
    EXPECT_NE(a, b);  // fresh nonce
}

TEST(KeyringTest, RefusesAWrongKeyAFlippedBitAndTruncation) {
    auto ring = keyring::create({key_of('k')});
    auto other = keyring::create({key_of('x')});
    std::vector<std::byte> sealed, plain;
    ring->seal(bytes_of("membership"), sealed);
    EXPECT_EQ(other->open(sealed, plain), open_status::auth_failed);
    for (std::size_t i = 1; i < sealed.size(); ++i) {
        auto forged = sealed;
        forged[i] ^= std::byte{1};
        const open_status s = ring->open(forged, plain);
        EXPECT_NE(s, open_status::ok) << "byte " << i;
    }
    EXPECT_EQ(ring->open(std::span(sealed).first(10), plain), open_status::malformed);
    EXPECT_EQ(ring->open({}, plain), open_status::malformed);
}

TEST(KeyringTest, PlaintextAndEncryptionDoNotMix) {
    auto keyed = keyring::create({key_of('k')});
    auto open_ring = keyring::create({});
    std::vector<std::byte> sealed, plain;
    open_ring->seal(bytes_of("plain"), sealed);
    EXPECT_EQ(keyed->open(sealed, plain), open_status::unencrypted);
    ASSERT_EQ(open_ring->open(sealed, plain), open_status::ok);
    sealed.clear();
    keyed->seal(bytes_of("secret"), sealed);
    EXPECT_EQ(open_ring->open(sealed, plain), open_status::unexpected);
}

TEST(KeyringTest, RotatesInstallUseRemove) {
    auto a = keyring::create({key_of('a')});
    auto b = keyring::create({key_of('a')});
    ASSERT_TRUE(a->install(key_of('b')));
    ASSERT_TRUE(b->install(key_of('b')));
    std::vector<std::byte> sealed, plain;
    ASSERT_TRUE(a->use(key_of('b')));  // a now seals with b; b still seals with a
    a->seal(bytes_of("1"), sealed);
    EXPECT_EQ(b->open(sealed, plain), open_status::ok);
    sealed.clear();
    b->seal(bytes_of("2"), sealed);
    EXPECT_EQ(a->open(sealed, plain), open_status::ok);
    EXPECT_EQ(a->remove(key_of('b')).err().code, make_error_code(keyring_errc::primary_key));
    ASSERT_TRUE(a->remove(key_of('a')));
    EXPECT_EQ(a->open(sealed, plain), open_status::auth_failed);  // sealed under the old key
    EXPECT_EQ(a->use(key_of('z')).err().code, make_error_code(keyring_errc::unknown_key));
    EXPECT_EQ(a->install(key_of('s', 20)).err().code, make_error_code(keyring_errc::bad_key));
}

TEST(KeyringTest, KeysAreConfiguredAsBase64) {
    const key_bytes key = key_of('q');
    const std::string text = keyring::format_key(key);
    auto parsed = keyring::parse_key(text);
    ASSERT_TRUE(parsed);
    EXPECT_EQ(*parsed, key);
    auto k16 = keyring::parse_key(keyring::format_key(key_of('r', 16)));
    ASSERT_TRUE(k16);
    EXPECT_EQ(k16->size(), 16u);
    EXPECT_FALSE(keyring::parse_key(""));
    EXPECT_FALSE(keyring::parse_key("not base64!"));
    EXPECT_FALSE(keyring::parse_key(keyring::format_key(key_of('s', 20))));
}

}  // namespace
}  // namespace ringmesh::membership
