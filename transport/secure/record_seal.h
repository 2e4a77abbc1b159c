// The record layer under an authenticated stream: what one side sends in a flush is cut into
// records of at most max_record_payload bytes, each followed by a 16-byte tag (AES-256-GMAC:
// AES-GCM over the header and payload as associated data, nothing encrypted) under that
// direction's key from the handshake. The nonce is the record's number in its direction,
// never sent: a record dropped, repeated, reordered or moved to another connection fails its
// tag, as does any changed byte.
//
//   record = length (u32, little-endian; at most max_record_payload) | payload | tag (16)
//
// Sans-I/O; one sealer and one opener per connection, owned by its driver (secure_transport).
#pragma once

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "transport/secure/auth_handshake.h"

namespace ringmesh::transport::secure {

inline constexpr std::size_t record_header_bytes = 4;
inline constexpr std::size_t record_tag_bytes = 16;
inline constexpr std::size_t max_record_payload = 16384;
inline constexpr std::size_t record_overhead = record_header_bytes + record_tag_bytes;

enum class record_status : std::uint8_t {
    ok,
    incomplete,  ///< more bytes needed
    oversized,   ///< a length over max_record_payload: refused before reading on
    tampered,    ///< the tag does not verify
    closed,      ///< TLS: the peer ended the stream (close_notify)
    alert,       ///< TLS: the peer sent an alert (it refused this side, or broke off)
};
const char* to_string(record_status s) noexcept;

namespace detail {
struct cipher_ctx_free {
    void operator()(EVP_CIPHER_CTX* c) const noexcept { EVP_CIPHER_CTX_free(c); }
};
using cipher_ctx = std::unique_ptr<EVP_CIPHER_CTX, cipher_ctx_free>;
}  // namespace detail

class record_sealer {
  public:
    explicit record_sealer(const record_key& key);
    /// Appends `payload` to `out` as records (one per max_record_payload bytes).
    void seal(std::span<const std::byte> payload, std::vector<std::byte>& out) {
        append(payload, out);
        close(out);
    }
    /// Appends `payload` to the record open at the end of `out` (opening one when none is),
    /// closing each record that reaches max_record_payload: what a connection sends during an
    /// iteration goes into `out` once, as it is sent, and close() at the flush ends the last
    /// record. Until then `out` may only grow.
    void append(std::span<const std::byte> payload, std::vector<std::byte>& out);
    /// Ends the open record (its header and tag), if there is one.
    void close(std::vector<std::byte>& out);
    bool open() const noexcept { return open_at_ != no_record; }
    std::uint64_t records() const noexcept { return next_; }

  private:
    static constexpr std::size_t no_record = SIZE_MAX;
    detail::cipher_ctx ctx_;
    std::uint64_t next_ = 0;
    std::size_t open_at_ = no_record;  // where the open record's header sits in `out`
};

class record_opener {
  public:
    explicit record_opener(const record_key& key);
    /// The size of the record `in` starts with (header, payload and tag) once its header is
    /// there: ok with `size` set, incomplete, or oversized.
    static record_status next(std::span<const std::byte> in, std::size_t& size) noexcept;
    /// Checks one whole record, the next in its direction; its payload on success. A refused
    /// record leaves the opener unusable: the connection is over.
    record_status open(std::span<const std::byte> record, std::span<const std::byte>& payload);
    std::uint64_t records() const noexcept { return next_; }

  private:
    detail::cipher_ctx ctx_;
    std::uint64_t next_ = 0;
    bool broken_ = false;
};

}  // namespace ringmesh::transport::secure
