#include "transport/secure/tls_guard.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <string_view>

namespace ringmesh::transport::secure {

namespace {

// The BIO under every session: reads come from tls_guard::io::in (advancing `used`), writes
// are appended to *io::out. Empty input asks OpenSSL to retry: it keeps a partial record and
// returns WANT_READ, and the next feed() goes on from there.
int span_write(BIO* b, const char* data, int length) {
    BIO_clear_retry_flags(b);
    auto* io = static_cast<tls_guard::io*>(BIO_get_data(b));
    if (io == nullptr || io->out == nullptr) {
        BIO_set_retry_write(b);
        return -1;
    }
    const auto* p = reinterpret_cast<const std::byte*>(data);
    io->out->insert(io->out->end(), p, p + length);
    return length;
}

int span_read(BIO* b, char* data, int length) {
    BIO_clear_retry_flags(b);
    auto* io = static_cast<tls_guard::io*>(BIO_get_data(b));
    const std::size_t n = io == nullptr ? 0
                                        : std::min<std::size_t>(static_cast<std::size_t>(length),
                                                                io->in.size() - io->used);
    if (n == 0) {
        BIO_set_retry_read(b);
        return -1;
    }
    std::memcpy(data, io->in.data() + io->used, n);
    io->used += n;
    return static_cast<int>(n);
}

long span_ctrl(BIO*, int command, long, void*) {
    return command == BIO_CTRL_FLUSH ? 1 : 0;  // writes land in the buffer at once
}

int span_create(BIO* b) {
    BIO_set_init(b, 1);
    return 1;
}

BIO_METHOD* span_bio_method() {
    static BIO_METHOD* const method = [] {
        BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ringmesh span");
        BIO_meth_set_write(m, span_write);
        BIO_meth_set_read(m, span_read);
        BIO_meth_set_ctrl(m, span_ctrl);
        BIO_meth_set_create(m, span_create);
        return m;
    }();
    return method;
}

bool is_alert_reason(unsigned long e) {
    return ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) >= SSL_AD_REASON_OFFSET;
}

}  // namespace

void tls_keylog_sink(const SSL* ssl, const char* line) {
    auto* self = static_cast<tls_guard*>(SSL_get_app_data(ssl));
    if (self == nullptr || self->openssl_records_ || line == nullptr) return;
    const std::string_view text(line);
    std::vector<unsigned char>* into = nullptr;
    if (text.starts_with("CLIENT_TRAFFIC_SECRET_0 ")) {
        into = &self->client_secret_;
    } else if (text.starts_with("SERVER_TRAFFIC_SECRET_0 ")) {
        into = &self->server_secret_;
    } else {
        return;  // the handshake's own secrets and the exporter's: OpenSSL's business
    }
    // "LABEL <client random, hex> <secret, hex>"
    const std::string_view hex = text.substr(text.rfind(' ') + 1);
    auto nibble = [](char c) {
        return c >= 'a' ? c - 'a' + 10 : c >= 'A' ? c - 'A' + 10 : c - '0';
    };
    into->clear();
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        into->push_back(static_cast<unsigned char>(nibble(hex[i]) * 16 + nibble(hex[i + 1])));
}

tls_guard::tls_guard(std::shared_ptr<const tls_context> context, std::string self, bool dialer,
                     bool openssl_records)
    : context_(std::move(context)),
      self_(std::move(self)),
      dialer_(dialer),
      openssl_records_(openssl_records) {
    ssl_ = SSL_new(context_->raw());
    BIO* bio = ssl_ != nullptr ? BIO_new(span_bio_method()) : nullptr;
    if (bio == nullptr) {
        refusal_ = auth_refusal::tls_failed;
        detail_ = "no TLS session: " + openssl_error_text();
        return;
    }
    BIO_set_data(bio, &io_);
    SSL_set_app_data(ssl_, this);
    SSL_set_verify(ssl_, SSL_CTX_get_verify_mode(context_->raw()), note_claim);
    SSL_set_bio(ssl_, bio, bio);
    if (dialer_) {
        SSL_set_connect_state(ssl_);
    } else {
        SSL_set_accept_state(ssl_);
    }
    staged_.reserve(max_record_payload);
}

int tls_guard::note_claim(int preverified, X509_STORE_CTX* store) {
    auto* ssl =
        static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    auto* self = ssl != nullptr ? static_cast<tls_guard*>(SSL_get_app_data(ssl)) : nullptr;
    if (self != nullptr && self->claimed_.empty())
        self->claimed_ = certificate_identity(X509_STORE_CTX_get0_cert(store));
    return preverified;
}

tls_guard::~tls_guard() {
    SSL_free(ssl_);
    OPENSSL_cleanse(client_secret_.data(), client_secret_.size());
    OPENSSL_cleanse(server_secret_.data(), server_secret_.size());
}

void tls_guard::take_over_records() {
    if (!openssl_records_ && !client_secret_.empty() && !server_secret_.empty()) {
        const std::uint16_t suite = SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(ssl_));
        const auto& mine = dialer_ ? client_secret_ : server_secret_;
        const auto& theirs = dialer_ ? server_secret_ : client_secret_;
        own_records_ = sender_.init(suite, std::as_bytes(std::span(mine))) &&
                       receiver_.init(suite, std::as_bytes(std::span(theirs)));
    }
    OPENSSL_cleanse(client_secret_.data(), client_secret_.size());
    OPENSSL_cleanse(server_secret_.data(), server_secret_.size());
    client_secret_.clear();
    server_secret_.clear();
}

void tls_guard::start(byte_buffer& out) {
    std::size_t used = 0;
    if (dialer_ && refusal_ == auth_refusal::none) handshake({}, out, used);  // the ClientHello
}

std::size_t tls_guard::feed(std::span<const std::byte> in, byte_buffer& out) {
    if (done_ || refusal_ != auth_refusal::none || in.empty()) return 0;
    if (!first_bytes_seen_) {
        first_bytes_seen_ = true;
        // A TLS peer starts with a handshake record (or an alert). The keyring handshake starts
        // with "RMSH": the peer runs `authenticated`.
        const std::byte first = in.front();
        if (first != std::byte{0x16} && first != std::byte{0x15}) {
            const bool keyring = first == std::byte{'R'};
            refusal_ = keyring ? auth_refusal::mode_mismatch : auth_refusal::not_secure;
            detail_ = keyring ? "the peer speaks the keyring handshake (mode authenticated)"
                              : "the first bytes are not TLS";
            return 0;
        }
    }
    std::size_t used = 0;
    handshake(in, out, used);
    return used;
}

void tls_guard::handshake(std::span<const std::byte> in, byte_buffer& out, std::size_t& used) {
    io_ = {in, 0, &out};
    ERR_clear_error();
    const int ret = SSL_do_handshake(ssl_);
    used = io_.used;
    if (ret == 1) {
        io_ = {};
        peer_ = certificate_identity(SSL_get0_peer_certificate(ssl_));
        claimed_ = peer_;
        if (peer_.empty()) {
            refusal_ = auth_refusal::no_identity;
            detail_ = "the peer's certificate names no node (no DNS name, no common name)";
        } else if (peer_ == self_) {
            refusal_ = auth_refusal::ourselves;
        } else {
            done_ = true;
            take_over_records();
        }
        return;
    }
    if (SSL_get_error(ssl_, ret) != SSL_ERROR_WANT_READ) refuse_after_error(ret);
    io_ = {};  // (after: an alert for the peer went to `out`)
}

void tls_guard::refuse_after_error(int ret) {
    const unsigned long e = ERR_peek_error();
    const long verify = SSL_get_verify_result(ssl_);
    if (verify != X509_V_OK) {
        refusal_ = verify == X509_V_ERR_CERT_HAS_EXPIRED || verify == X509_V_ERR_CERT_NOT_YET_VALID
                       ? auth_refusal::expired_certificate
                       : auth_refusal::untrusted_certificate;
        detail_ = X509_verify_cert_error_string(verify);
        ERR_clear_error();
        return;
    }
    if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
        ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
        refusal_ = auth_refusal::no_certificate;
    } else if (is_alert_reason(e)) {
        refusal_ = auth_refusal::refused_by_peer;
    } else if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNSUPPORTED_PROTOCOL) {
        refusal_ = auth_refusal::wrong_version;
    } else {
        refusal_ = auth_refusal::tls_failed;
    }
    detail_ =
        e != 0 ? openssl_error_text() : "TLS error " + std::to_string(SSL_get_error(ssl_, ret));
    ERR_clear_error();
}

void tls_guard::write_record(std::span<const std::byte> plain, byte_buffer& out) {
    io_ = {{}, 0, &out};
    const int written = SSL_write(ssl_, plain.data(), static_cast<int>(plain.size()));
    io_ = {};
    if (written > 0) {
        ++records_;
    } else {
        ERR_clear_error();  // a session already failed: its connection is being closed
    }
}

void tls_guard::append(std::span<const std::byte> payload, byte_buffer& out) {
    if (own_records_) {
        while (!payload.empty()) {
            if (open_at_ == no_record) {
                open_at_ = out.size();
                out.resize(out.size() + tls_header_bytes);  // written when it is sealed
            }
            const std::size_t used = out.size() - open_at_ - tls_header_bytes;
            const std::size_t take = std::min(max_record_payload - used, payload.size());
            out.insert(out.end(), payload.begin(),
                       payload.begin() + static_cast<std::ptrdiff_t>(take));
            payload = payload.subspan(take);
            if (used + take == max_record_payload) {
                sender_.seal(out, open_at_, tls_content::application_data);
                ++records_;
                open_at_ = no_record;
            }
        }
        return;
    }
    while (!payload.empty()) {
        if (staged_.empty() && payload.size() >= max_record_payload) {
            write_record(payload.first(max_record_payload), out);  // a full record in place
            payload = payload.subspan(max_record_payload);
            continue;
        }
        const std::size_t take = std::min(max_record_payload - staged_.size(), payload.size());
        staged_.insert(staged_.end(), payload.begin(),
                       payload.begin() + static_cast<std::ptrdiff_t>(take));
        payload = payload.subspan(take);
        if (staged_.size() == max_record_payload) {
            write_record(staged_, out);
            staged_.clear();
        }
    }
}

void tls_guard::close(byte_buffer& out) {
    if (own_records_) {
        if (open_at_ != no_record) {
            sender_.seal(out, open_at_, tls_content::application_data);
            ++records_;
            open_at_ = no_record;
        }
        if (key_update_due_ || sender_.sequence() >= tls13_protection::max_records_per_key)
            send_key_update(out);
        return;
    }
    if (key_update_due_) {
        SSL_key_update(
            ssl_, key_update_request_ ? SSL_KEY_UPDATE_REQUESTED : SSL_KEY_UPDATE_NOT_REQUESTED);
        key_update_due_ = key_update_request_ = false;
        ++key_updates_sent_;
        if (staged_.empty()) SSL_do_handshake(ssl_);  // sends it now, with nothing to carry
    }
    if (staged_.empty()) return;
    write_record(staged_, out);
    staged_.clear();
}

// A KeyUpdate (RFC 8446 §4.6.3) under the current key, then the next key for what follows.
void tls_guard::send_key_update(byte_buffer& out) {
    const std::size_t at = out.size();
    out.resize(at + tls_header_bytes);
    const std::byte message[] = {std::byte{24}, std::byte{0}, std::byte{0}, std::byte{1},
                                 key_update_request_ ? std::byte{1} : std::byte{0}};
    out.insert(out.end(), std::begin(message), std::end(message));
    sender_.seal(out, at, tls_content::handshake);
    ++records_;
    sender_.update();
    ++key_updates_sent_;
    key_update_due_ = key_update_request_ = false;
}

record_status tls_guard::take_handshake_messages(std::span<const std::byte> messages,
                                                 byte_buffer& out) {
    while (!messages.empty()) {
        if (messages.size() < 4) return record_status::tampered;
        const std::size_t length = (std::to_integer<std::size_t>(messages[1]) << 16) |
                                   (std::to_integer<std::size_t>(messages[2]) << 8) |
                                   std::to_integer<std::size_t>(messages[3]);
        if (messages.size() < 4 + length) return record_status::tampered;
        if (messages[0] == std::byte{24}) {  // KeyUpdate
            if (length != 1 || std::to_integer<int>(messages[4]) > 1)
                return record_status::tampered;
            receiver_.update();
            ++key_updates_received_;
            if (messages[4] == std::byte{1} && !key_update_due_) {
                key_update_due_ = true;  // answered with ours, now or after the open record
                if (open_at_ == no_record) send_key_update(out);
            }
        }
        // Anything else after the handshake (a foreign server's session ticket) is of no use
        // here: no session is ever resumed.
        messages = messages.subspan(4 + length);
    }
    return record_status::ok;
}

record_status tls_guard::next(std::span<const std::byte> in, std::size_t& size) const {
    if (in.size() < tls_header_bytes) return record_status::incomplete;
    const std::size_t length =
        (std::to_integer<std::size_t>(in[3]) << 8) | std::to_integer<std::size_t>(in[4]);
    if (length > max_tls_ciphertext) return record_status::oversized;
    size = tls_header_bytes + length;
    return in.size() >= size ? record_status::ok : record_status::incomplete;
}

record_status tls_guard::open(std::span<const std::byte> record, std::span<std::byte> dest,
                              std::size_t& written, byte_buffer& out) {
    written = 0;
    if (own_records_) {
        tls_content type{};
        const record_status opened = receiver_.open(record, dest, written, type);
        if (opened != record_status::ok) {
            detail_ = "its tag or framing did not verify";
            written = 0;
            return opened;
        }
        switch (type) {
            case tls_content::application_data:
                return record_status::ok;
            case tls_content::alert: {
                const int description = written >= 2 ? std::to_integer<int>(dest[1]) : -1;
                written = 0;
                detail_ = "TLS alert " + std::to_string(description);
                return description == 0 ? record_status::closed : record_status::alert;
            }
            case tls_content::handshake: {
                const record_status taken = take_handshake_messages(dest.first(written), out);
                written = 0;
                return taken;
            }
        }
        written = 0;
        detail_ = "an unexpected content type";
        return record_status::tampered;
    }
    io_ = {record, 0, &out};
    ERR_clear_error();
    const int n =
        SSL_read(ssl_, dest.data(), static_cast<int>(std::min<std::size_t>(dest.size(), INT_MAX)));
    const std::size_t used = io_.used;
    io_ = {};
    if (n > 0 && used == record.size()) {
        written = static_cast<std::size_t>(n);
        return record_status::ok;
    }
    const int error = SSL_get_error(ssl_, n);
    // A record with nothing for the layer above (a key update): OpenSSL took it whole.
    if (n <= 0 && error == SSL_ERROR_WANT_READ && used == record.size()) {
        if (SSL_get_key_update_type(ssl_) != SSL_KEY_UPDATE_NONE) SSL_do_handshake(ssl_);
        ++key_updates_received_;
        return record_status::ok;
    }
    if (error == SSL_ERROR_ZERO_RETURN) return record_status::closed;
    const unsigned long e = ERR_peek_error();
    detail_ = e != 0 ? openssl_error_text() : "a record OpenSSL did not take whole";
    ERR_clear_error();
    return is_alert_reason(e) ? record_status::alert : record_status::tampered;
}

}  // namespace ringmesh::transport::secure
