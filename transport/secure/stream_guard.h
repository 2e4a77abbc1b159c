// What secure_transport runs on one stream connection: a handshake that proves the peer, then
// a record layer that protects every byte after it. One implementation per security mode:
//   keyring_guard  `authenticated`: auth_handshake.h, then records tagged with AES-GMAC
//                  (record_seal.h); integrity, no confidentiality;
//   tls_guard      `encrypted`: TLS 1.3 with mutual certificates (tls_guard.h); integrity and
//                  confidentiality.
// Sans-I/O, like the pieces it wraps: bytes in, bytes out, so the same transport code drives
// either mode and the simulator and fuzzers run it unchanged. Owned by its connection, in
// secure_transport; not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "transport/secure/auth_handshake.h"
#include "transport/secure/record_seal.h"

namespace ringmesh::transport::secure {

class stream_guard {
  public:
    using byte_buffer = std::vector<std::byte>;
    virtual ~stream_guard() = default;

    /// Appends what this side sends first (nothing where the peer speaks first).
    virtual void start(byte_buffer& out) = 0;
    /// Handshake bytes from the peer, split anywhere; appends replies to `out`. Returns how
    /// many it consumed: once done(), the rest of `in` is records.
    virtual std::size_t feed(std::span<const std::byte> in, byte_buffer& out) = 0;
    virtual bool done() const noexcept = 0;
    /// Why the handshake was refused; none while it goes on or once it is done.
    virtual auth_refusal refusal() const noexcept = 0;
    /// What the mode can add to a refusal's log line (OpenSSL's reason); may be empty.
    virtual std::string refusal_detail() const { return {}; }
    /// The name the peer proved, once done().
    virtual const std::string& peer() const noexcept = 0;
    /// The name the peer claims, as soon as it is known (for log lines about a refusal).
    virtual const std::string& claimed_peer() const noexcept = 0;

    /// Sends `payload` (once done()): appended to `out` as records, the last one left open
    /// (or held) so that what follows in the same iteration joins it.
    virtual void append(std::span<const std::byte> payload, byte_buffer& out) = 0;
    /// Ends what append() left open, into `out` (at a flush).
    virtual void close(byte_buffer& out) = 0;
    /// Records sealed so far, in all.
    virtual std::uint64_t records_sealed() const noexcept = 0;

    /// The size of the record `in` starts with once its header is there (ok), incomplete, or
    /// oversized.
    virtual record_status next(std::span<const std::byte> in, std::size_t& size) const = 0;
    /// The bytes a record header takes (the least next() needs to answer).
    virtual std::size_t header_bytes() const noexcept = 0;
    /// Checks one whole record and writes its payload to `dest` (room for max_record_payload
    /// bytes), `written` bytes; a record with no payload for the layer above is ok with 0.
    /// May append a reply to `out`. Anything but ok ends the connection.
    virtual record_status open(std::span<const std::byte> record, std::span<std::byte> dest,
                               std::size_t& written, byte_buffer& out) = 0;
};

/// `authenticated` mode: the keyring handshake and GMAC-tagged records.
class keyring_guard final : public stream_guard {
  public:
    keyring_guard(auth_identity self, std::vector<key_bytes> keys, bool dialer, nonce fresh)
        : handshake_(std::move(self), std::move(keys), dialer, fresh) {}

    void start(byte_buffer& out) override { handshake_.start(out); }
    std::size_t feed(std::span<const std::byte> in, byte_buffer& out) override;
    bool done() const noexcept override { return handshake_.done(); }
    auth_refusal refusal() const noexcept override { return handshake_.refusal(); }
    const std::string& peer() const noexcept override { return handshake_.peer(); }
    const std::string& claimed_peer() const noexcept override { return handshake_.claimed_peer(); }
    void append(std::span<const std::byte> payload, byte_buffer& out) override {
        sealer_->append(payload, out);
    }
    void close(byte_buffer& out) override { sealer_->close(out); }
    std::uint64_t records_sealed() const noexcept override {
        return sealer_ ? sealer_->records() : 0;
    }
    record_status next(std::span<const std::byte> in, std::size_t& size) const override {
        return record_opener::next(in, size);
    }
    std::size_t header_bytes() const noexcept override { return record_header_bytes; }
    record_status open(std::span<const std::byte> record, std::span<std::byte> dest,
                       std::size_t& written, byte_buffer& out) override;

  private:
    auth_handshake handshake_;
    std::optional<record_sealer> sealer_;
    std::optional<record_opener> opener_;
};

}  // namespace ringmesh::transport::secure
