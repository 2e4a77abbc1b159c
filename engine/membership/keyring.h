// The cluster keyring: every gossip datagram and push-pull message is sealed with AES-GCM
// (OpenSSL) under the primary key and opened with any installed key, so keys rotate without
// a flag day: install the new key everywhere, make it primary everywhere, remove the old one.
// A message that no installed key opens (a wrong key, a forgery, a replayed bit flip) or that
// arrives in plaintext at a keyed node is refused and counted by the caller.
//
// Envelope: version (1 byte) | mode (1 byte: 0 plaintext, 1 AES-GCM)
//           | nonce (12) | ciphertext | tag (16)     — the first two bytes are authenticated.
// Nonces are an 8-byte random salt and a 4-byte counter; the salt is redrawn when the counter
// wraps, so a nonce never repeats under one key.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/result.h"

namespace ringmesh::membership {

enum class keyring_errc {
    bad_key = 1,  ///< not base64, or not 16, 24 or 32 bytes
    unknown_key,  ///< use()/remove() of a key that is not installed
    primary_key,  ///< remove() of the key in use
};
const std::error_category& keyring_category() noexcept;
inline std::error_code make_error_code(keyring_errc e) noexcept {
    return {static_cast<int>(e), keyring_category()};
}

enum class open_status : std::uint8_t {
    ok,
    malformed,    ///< too short, or an unknown envelope version/mode
    unencrypted,  ///< plaintext at a keyed node
    unexpected,   ///< encrypted, but this node has no keys
    auth_failed,  ///< no installed key opens it
};
const char* to_string(open_status s) noexcept;

using key_bytes = std::vector<std::byte>;

class keyring {
  public:
    static constexpr std::size_t overhead = 2 + 12 + 16;

    /// An empty list is an open (plaintext) keyring; otherwise the first key is primary.
    static result<keyring> create(std::vector<key_bytes> keys);
    /// A key as configured: base64 of 16, 24 or 32 random bytes (AES-128/192/256).
    static result<key_bytes> parse_key(std::string_view base64);
    static std::string format_key(std::span<const std::byte> key);

    result<void> install(key_bytes key);
    result<void> use(const key_bytes& key);  ///< make an installed key primary
    result<void> remove(const key_bytes& key);

    bool encrypted() const noexcept { return !keys_.empty(); }
    std::size_t key_count() const noexcept { return keys_.size(); }
    /// Nonce salt; drawn from the OS at creation. The simulator sets it from its seed so a
    /// run replays byte for byte.
    void set_nonce_salt(std::uint64_t salt) noexcept { salt_ = salt; }

    /// Appends the envelope of `plaintext` to `out`.
    void seal(std::span<const std::byte> plaintext, std::vector<std::byte>& out);
    /// Replaces `plaintext` with the opened contents.
    open_status open(std::span<const std::byte> sealed, std::vector<std::byte>& plaintext) const;

  private:
    std::vector<key_bytes> keys_;  ///< [0] is primary
    std::uint64_t salt_ = 0;
    std::uint32_t counter_ = 0;
};

}  // namespace ringmesh::membership

template <>
struct std::is_error_code_enum<ringmesh::membership::keyring_errc> : std::true_type {};
