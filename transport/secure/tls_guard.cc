#include "transport/secure/tls_guard.h"

#include <openssl/err.h>
#include <openssl/x509.h>

#include <algorithm>
#include <climits>
#include <cstring>

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

tls_guard::tls_guard(std::shared_ptr<const tls_context> context, std::string self, bool dialer)
    : context_(std::move(context)), self_(std::move(self)), dialer_(dialer) {
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
    if (staged_.empty()) return;
    write_record(staged_, out);
    staged_.clear();
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
    if (n <= 0 && error == SSL_ERROR_WANT_READ && used == record.size()) return record_status::ok;
    if (error == SSL_ERROR_ZERO_RETURN) return record_status::closed;
    const unsigned long e = ERR_peek_error();
    detail_ = e != 0 ? openssl_error_text() : "a record OpenSSL did not take whole";
    ERR_clear_error();
    return is_alert_reason(e) ? record_status::alert : record_status::tampered;
}

}  // namespace ringmesh::transport::secure
