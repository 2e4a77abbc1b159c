// Sealed datagrams: what one side of a datagram session (secure_transport's, per peer address)
// sends and accepts once the keyring handshake over datagrams (datagram_session.h) has given
// it a key per direction.
//
//   datagram = type (1: sealed) | sequence (u64, little-endian) | payload | tag (16)
//
// The nonce is the direction's IV (derived from its key with HKDF) XOR the sequence number,
// which this side never repeats under a key. `encrypted` mode seals with AES-256-GCM (the
// payload is ciphertext); `authenticated` mode tags it with AES-256-GMAC (the payload travels
// as it is, covered by the tag). The type and sequence are covered too. The opener keeps an
// anti-replay window of replay_window sequence numbers behind the highest it has accepted: a
// datagram seen before, or older than the window, is refused (counted apart from a failed
// tag), so a recorded datagram cannot be played again and reordering within the window is
// fine.
//
// Sans-I/O; one sealer and one opener per session, owned by secure_transport; not
// thread-safe.
#pragma once

#include <array>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "transport/secure/auth_handshake.h"
#include "transport/secure/record_seal.h"

namespace ringmesh::transport::secure {

inline constexpr std::byte sealed_datagram_type{0x53};  // 'S'
inline constexpr std::size_t sealed_datagram_header = 9;
inline constexpr std::size_t sealed_datagram_overhead = sealed_datagram_header + 16;
inline constexpr std::size_t replay_window = 1024;

enum class datagram_status : std::uint8_t {
    ok,
    malformed,  ///< too short, or not a sealed datagram
    tampered,   ///< the tag does not verify (or another key sealed it)
    replayed,   ///< seen before, or older than the window
};
const char* to_string(datagram_status s) noexcept;

/// One direction's key, and the IV derived from it.
class datagram_key {
  public:
    datagram_key(const record_key& key, bool encrypt_payload);
    void nonce(std::uint64_t sequence, unsigned char out[12]) const noexcept;
    const record_key& key() const noexcept { return key_; }
    bool encrypts() const noexcept { return encrypt_; }

  private:
    record_key key_;
    std::array<unsigned char, 12> iv_{};
    bool encrypt_;
};

class datagram_sealer {
  public:
    datagram_sealer(const record_key& key, bool encrypt_payload);
    /// Appends the sealed datagram carrying `payload` to `out` (cleared first).
    void seal(std::span<const std::byte> payload, std::vector<std::byte>& out);
    std::uint64_t sealed() const noexcept { return next_; }

  private:
    datagram_key key_;
    detail::cipher_ctx ctx_;
    std::uint64_t next_ = 0;
};

class datagram_opener {
  public:
    datagram_opener(const record_key& key, bool encrypt_payload);
    /// Checks `datagram` (a whole sealed datagram) and opens it in place: on ok, `payload` is
    /// the plaintext inside `datagram`'s own bytes.
    datagram_status open(std::span<std::byte> datagram, std::span<const std::byte>& payload);

  private:
    bool fresh(std::uint64_t sequence) const noexcept;
    void accept(std::uint64_t sequence) noexcept;

    datagram_key key_;
    detail::cipher_ctx ctx_;
    std::uint64_t highest_ = 0;        // the highest sequence accepted + 1 (0: none yet)
    std::bitset<replay_window> seen_;  // bit i: highest_ - 1 - i was accepted
};

}  // namespace ringmesh::transport::secure
