// TLS 1.3 record protection for the application traffic of one direction (RFC 8446 §5.2-5.5,
// §7.1-7.3), done by ringmesh once OpenSSL has finished a handshake — what the kernel's TLS
// offload does where the kernel has it. OpenSSL runs the handshake and hands over the traffic
// secrets (its key log callback); from then on a record is sealed in place in the
// connection's output buffer (the plaintext was appended there as it was sent) and opened
// straight into the receive buffer: one AES-GCM pass each way and no copy of OpenSSL's own.
// Records are byte-for-byte what OpenSSL would write (tls_guard_test checks both ways).
//
//   record = 0x17 | 0x0303 | length (u16, big-endian) | AEAD(inner) | tag (16)
//   inner  = payload | content type (1 byte; application data, alert or handshake)
//   nonce  = the traffic IV XOR the record's sequence number in this direction
//
// Keys are updated (KeyUpdate, §4.6.3) by tls_guard before a key has sealed
// max_records_per_key records, far inside AES-GCM's safety margin (§5.5; ChaCha20-Poly1305's
// is wider).
//
// Sans-I/O; one per direction of one connection, owned by its tls_guard; not thread-safe.
#pragma once

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "transport/secure/record_seal.h"

namespace ringmesh::transport::secure {

enum class tls_content : std::uint8_t { alert = 21, handshake = 22, application_data = 23 };

class tls13_protection {
  public:
    /// Records one key seals before it is updated (§5.5 allows 2^24.5 full records for GCM).
    static constexpr std::uint64_t max_records_per_key = std::uint64_t{1} << 22;

    /// For `suite` (the negotiated TLS 1.3 cipher suite's id, as SSL_CIPHER_get_protocol_id
    /// gives it) and this direction's traffic secret. False for a suite it does not run (all
    /// three of TLS 1.3's AEAD suites: AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305).
    bool init(std::uint16_t suite, std::span<const std::byte> secret);
    /// The next generation of keys (after a KeyUpdate in this direction).
    void update();

    /// Seals the inner plaintext that starts at `at` in `buffer` (its 5-byte header reserved
    /// there, the payload after it) as a record of `type`, in place: the type byte and the tag
    /// are appended.
    void seal(std::vector<std::byte>& buffer, std::size_t at, tls_content type);
    /// Opens one whole record into `dest` (room for the record's length): its payload's size
    /// and content type on success; tampered when its tag or framing fails.
    record_status open(std::span<const std::byte> record, std::span<std::byte> dest,
                       std::size_t& written, tls_content& type);

    std::uint64_t sequence() const noexcept { return sequence_; }

  private:
    void derive_keys();
    void nonce(unsigned char out[12]) const noexcept;

    detail::cipher_ctx ctx_;
    const EVP_CIPHER* cipher_ = nullptr;
    const EVP_MD* digest_ = nullptr;
    std::vector<unsigned char> secret_;
    std::vector<unsigned char> key_;
    unsigned char iv_[12] = {};
    std::uint64_t sequence_ = 0;
};

/// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
std::vector<unsigned char> hkdf_expand_label(const EVP_MD* digest,
                                             std::span<const unsigned char> secret,
                                             std::string_view label, std::size_t length);

}  // namespace ringmesh::transport::secure
