// `encrypted` mode on one stream connection: TLS 1.3 (OpenSSL) with mutual certificates, run
// in user space over the connection's bytes. OpenSSL reads from and writes to a BIO of this
// file's own that points at the span being fed and the buffer being filled, so that nothing
// is copied through an intermediate memory BIO.
//
// One TLS record per flushed batch, not per message. Once the handshake is done, ringmesh
// protects the records itself with the traffic secrets OpenSSL hands over (tls_records.h):
// append() copies what the layer above sends during an iteration into the record open at the
// end of the output buffer (closing it at 16 KiB), close() seals it in place at the flush, and
// a received record is decrypted straight into the receive buffer — one AES-GCM pass and one
// copy each way, as for the tagged records of `authenticated` mode. Where the secrets are not
// handed over (or `openssl_records` asks for it), OpenSSL's own record layer runs instead,
// with sends staged and written at the flush; the bytes on the wire are the same.
//
// The peer's node name is the one its certificate carries (tls_context.h); the endpoint checks
// it against the node id its Hello claims. A certificate that does not chain to the CA, has
// expired, is missing or names no node is refused during the handshake, as is a peer that
// speaks the keyring handshake or plaintext (a mode mismatch, or a stranger).
//
// Owned by its connection in secure_transport; not thread-safe.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "transport/secure/stream_guard.h"
#include "transport/secure/tls_context.h"
#include "transport/secure/tls_records.h"

namespace ringmesh::transport::secure {

/// The TLS record header: content type, legacy version, length (big-endian).
inline constexpr std::size_t tls_header_bytes = 5;
/// The largest TLS 1.3 ciphertext a record may carry (RFC 8446 §5.2).
inline constexpr std::size_t max_tls_ciphertext = 16384 + 256;

class tls_guard final : public stream_guard {
  public:
    /// `self`: this node's id (a peer whose certificate names it is refused as ourselves).
    /// `openssl_records`: leave the records to OpenSSL after the handshake too (tests).
    tls_guard(std::shared_ptr<const tls_context> context, std::string self, bool dialer,
              bool openssl_records = false);
    ~tls_guard() override;
    tls_guard(const tls_guard&) = delete;
    tls_guard& operator=(const tls_guard&) = delete;

    void start(byte_buffer& out) override;
    std::size_t feed(std::span<const std::byte> in, byte_buffer& out) override;
    bool done() const noexcept override { return done_; }
    auth_refusal refusal() const noexcept override { return refusal_; }
    std::string refusal_detail() const override { return detail_; }
    const std::string& peer() const noexcept override { return peer_; }
    const std::string& claimed_peer() const noexcept override { return claimed_; }

    void append(std::span<const std::byte> payload, byte_buffer& out) override;
    void close(byte_buffer& out) override;
    std::uint64_t records_sealed() const noexcept override { return records_; }

    record_status next(std::span<const std::byte> in, std::size_t& size) const override;
    std::size_t header_bytes() const noexcept override { return tls_header_bytes; }
    record_status open(std::span<const std::byte> record, std::span<std::byte> dest,
                       std::size_t& written, byte_buffer& out) override;

    /// Whether this side protects the records itself (tls_records.h) since the handshake.
    bool own_records() const noexcept { return own_records_; }
    /// Key updates done: sent (this side's key replaced) and received.
    std::uint64_t key_updates_sent() const noexcept { return key_updates_sent_; }
    std::uint64_t key_updates_received() const noexcept { return key_updates_received_; }
    /// Asks the peer for a key update with the next flush (and updates this side's key).
    void request_key_update() noexcept { key_update_due_ = key_update_request_ = true; }

    /// What OpenSSL reads from and writes to during one call (the BIO's state).
    struct io {
        std::span<const std::byte> in;
        std::size_t used = 0;
        byte_buffer* out = nullptr;
    };

  private:
    void handshake(std::span<const std::byte> in, byte_buffer& out, std::size_t& used);
    void refuse_after_error(int ret);
    void write_record(std::span<const std::byte> plain, byte_buffer& out);
    /// OpenSSL's verify callback: notes the name the peer's certificate claims, trusted or not.
    static int note_claim(int preverified, X509_STORE_CTX* store);
    friend void tls_keylog_sink(const SSL* ssl, const char* line);
    void take_over_records();
    void send_key_update(byte_buffer& out);
    record_status take_handshake_messages(std::span<const std::byte> messages, byte_buffer& out);

    std::shared_ptr<const tls_context> context_;  // SSL_new holds a reference too
    std::string self_;
    bool dialer_;
    SSL* ssl_ = nullptr;
    io io_;
    bool done_ = false;
    bool first_bytes_seen_ = false;
    auth_refusal refusal_ = auth_refusal::none;
    std::string detail_;
    std::string peer_;     // proven
    std::string claimed_;  // as its certificate says, before or without the CA's word
    byte_buffer staged_;   // OpenSSL's records: plaintext sent this iteration, not yet a record
    std::uint64_t records_ = 0;
    // Own records: the traffic secrets (until taken over), each direction's protection, and
    // where the record open at the end of the output buffer starts.
    bool openssl_records_;
    bool own_records_ = false;
    std::vector<unsigned char> client_secret_, server_secret_;
    tls13_protection sender_, receiver_;
    static constexpr std::size_t no_record = SIZE_MAX;
    std::size_t open_at_ = no_record;
    bool key_update_due_ = false;      // send a KeyUpdate at the next close()
    bool key_update_request_ = false;  // ...asking the peer to update too
    std::uint64_t key_updates_sent_ = 0, key_updates_received_ = 0;
};

}  // namespace ringmesh::transport::secure
