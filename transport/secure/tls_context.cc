#include "transport/secure/tls_context.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "engine/core/errc.h"

namespace ringmesh::transport::secure {

namespace {

error bad(std::string why) {
    return make_error(core_errc::bad_config, "tls: " + std::move(why));
}

struct bio_free {
    void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct x509_free {
    void operator()(X509* x) const noexcept { X509_free(x); }
};
struct pkey_free {
    void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
struct store_ctx_free {
    void operator()(X509_STORE_CTX* c) const noexcept { X509_STORE_CTX_free(c); }
};
struct ctx_free {
    void operator()(SSL_CTX* c) const noexcept { SSL_CTX_free(c); }
};
using unique_ctx = std::unique_ptr<SSL_CTX, ctx_free>;

std::unique_ptr<BIO, bio_free> memory_bio(const std::string& text) {
    return std::unique_ptr<BIO, bio_free>(
        BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// Bytes per second one AEAD seals on this CPU with this OpenSSL, from a short run (a few
// hundred microseconds, once per process).
double aead_speed(const EVP_CIPHER* cipher) {
    std::vector<unsigned char> buffer(16384), key(32), iv(12), tag(16);
    EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
    EVP_EncryptInit_ex(c, cipher, nullptr, key.data(), iv.data());
    const auto start = std::chrono::steady_clock::now();
    constexpr int rounds = 24;
    for (int i = 0; i < rounds; ++i) {
        int n = 0;
        EVP_EncryptInit_ex(c, nullptr, nullptr, nullptr, iv.data());
        EVP_EncryptUpdate(c, buffer.data(), &n, buffer.data(), static_cast<int>(buffer.size()));
        EVP_EncryptFinal_ex(c, buffer.data() + n, &n);
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, tag.data());
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EVP_CIPHER_CTX_free(c);
    return static_cast<double>(rounds * buffer.size()) / std::max(seconds, 1e-9);
}

// The TLS 1.3 suites in the order this node prefers them: the faster of AES-128-GCM and
// ChaCha20-Poly1305 here first (AES-GCM where the CPU and OpenSSL have fast GHASH,
// ChaCha20-Poly1305 where only wide vectors are fast), AES-256-GCM last.
const std::string& preferred_suites() {
    static const std::string suites = [] {
        const bool chacha_first =
            aead_speed(EVP_chacha20_poly1305()) > 1.1 * aead_speed(EVP_aes_128_gcm());
        return chacha_first ? std::string(
                                  "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:"
                                  "TLS_AES_256_GCM_SHA384")
                            : std::string(
                                  "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:"
                                  "TLS_AES_256_GCM_SHA384");
    }();
    return suites;
}

// TLS 1.3 only, mutual authentication, no session tickets or cache (every connection proves
// both certificates afresh; resumption would skip the client's), the suites in the order
// preferred_suites() measured (the server follows the dialer's order).
unique_ctx new_context() {
    unique_ctx ctx(SSL_CTX_new(TLS_method()));
    if (!ctx) return ctx;
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx.get(), TLS1_3_VERSION);
    SSL_CTX_set_ciphersuites(ctx.get(), preferred_suites().c_str());
    SSL_CTX_set_num_tickets(ctx.get(), 0);
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    SSL_CTX_set_keylog_callback(ctx.get(), tls_keylog_sink);
    return ctx;
}

std::string time_text(const ASN1_TIME* t) {
    std::unique_ptr<BIO, bio_free> b(BIO_new(BIO_s_mem()));
    ASN1_TIME_print(b.get(), t);
    char* data = nullptr;
    const long n = BIO_get_mem_data(b.get(), &data);
    return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

}  // namespace

std::string openssl_error_text() {
    std::string text;
    while (const unsigned long e = ERR_get_error()) {
        char line[256];
        ERR_error_string_n(e, line, sizeof line);
        if (!text.empty()) text += "; ";
        text += line;
    }
    return text.empty() ? std::string("no detail from OpenSSL") : text;
}

std::string certificate_identity(X509* cert) {
    if (cert == nullptr) return {};
    auto* names =
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    std::string found;
    if (names != nullptr) {
        for (int i = 0; i < sk_GENERAL_NAME_num(names) && found.empty(); ++i) {
            const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
            if (name->type != GEN_DNS) continue;
            const ASN1_STRING* dns = name->d.dNSName;
            found.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                         static_cast<std::size_t>(ASN1_STRING_length(dns)));
        }
        GENERAL_NAMES_free(names);
    }
    if (!found.empty()) return found;
    X509_NAME* subject = X509_get_subject_name(cert);
    const int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (at < 0) return {};
    const ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at));
    return {reinterpret_cast<const char*>(ASN1_STRING_get0_data(cn)),
            static_cast<std::size_t>(ASN1_STRING_length(cn))};
}

tls_context::~tls_context() {
    SSL_CTX_free(ctx_);
}

result<std::shared_ptr<const tls_context>> tls_context::build(SSL_CTX* raw,
                                                              std::string_view node_id,
                                                              bool check_own) {
    unique_ctx ctx(raw);
    if (!check_own) {
        X509* own = SSL_CTX_get0_certificate(ctx.get());
        return std::shared_ptr<const tls_context>(new tls_context(
            ctx.release(), own != nullptr ? certificate_identity(own) : std::string(node_id),
            own != nullptr ? time_text(X509_get0_notAfter(own)) : std::string()));
    }
    if (SSL_CTX_check_private_key(ctx.get()) != 1)
        return bad("the key does not match the certificate (" + openssl_error_text() + ")");
    X509* own = SSL_CTX_get0_certificate(ctx.get());
    const std::string identity = certificate_identity(own);
    if (identity != node_id) {
        return bad("the certificate names " +
                   (identity.empty() ? std::string("no node") : "\"" + identity + "\"") +
                   ", but this node is \"" + std::string(node_id) +
                   "\": peers check a node's id against its certificate");
    }
    // The node's own certificate must pass the check its peers will run.
    std::unique_ptr<X509_STORE_CTX, store_ctx_free> check(X509_STORE_CTX_new());
    STACK_OF(X509)* chain = nullptr;
    SSL_CTX_get0_chain_certs(ctx.get(), &chain);
    X509_STORE_CTX_init(check.get(), SSL_CTX_get_cert_store(ctx.get()), own, chain);
    if (X509_verify_cert(check.get()) != 1) {
        return bad(
            "this node's certificate does not pass the CA check: " +
            std::string(X509_verify_cert_error_string(X509_STORE_CTX_get_error(check.get()))));
    }
    const std::string not_after = time_text(X509_get0_notAfter(own));
    return std::shared_ptr<const tls_context>(new tls_context(ctx.release(), identity, not_after));
}

result<std::shared_ptr<const tls_context>> tls_context::load(const tls_files& files,
                                                             std::string_view node_id) {
    if (!files.complete())
        return bad("encrypted mode needs security.ca_file, cert_file and key_file");
    unique_ctx ctx = new_context();
    if (!ctx) return bad("no TLS context: " + openssl_error_text());
    if (SSL_CTX_load_verify_locations(ctx.get(), files.ca_file.c_str(), nullptr) != 1)
        return bad("cannot load the CA file " + files.ca_file + ": " + openssl_error_text());
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), files.cert_file.c_str()) != 1) {
        return bad("cannot load the certificate file " + files.cert_file + ": " +
                   openssl_error_text());
    }
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), files.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
        return bad("cannot load the key file " + files.key_file + ": " + openssl_error_text());
    return build(ctx.release(), node_id, true);
}

result<std::shared_ptr<const tls_context>> tls_context::from_pem(const tls_pem& pem,
                                                                 std::string_view node_id,
                                                                 bool check_own) {
    unique_ctx ctx = new_context();
    if (!ctx) return bad("no TLS context: " + openssl_error_text());
    {
        auto b = memory_bio(pem.ca);
        X509_STORE* store = SSL_CTX_get_cert_store(ctx.get());
        int loaded = 0;
        while (X509* ca = PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr)) {
            X509_STORE_add_cert(store, ca);
            X509_free(ca);
            ++loaded;
        }
        ERR_clear_error();  // the end of the text reads as an error
        if (loaded == 0) return bad("no CA certificate in the PEM text");
    }
    if (!check_own && pem.cert.empty()) return build(ctx.release(), node_id, false);
    {
        auto b = memory_bio(pem.cert);
        std::unique_ptr<X509, x509_free> cert(
            PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr));
        if (!cert || SSL_CTX_use_certificate(ctx.get(), cert.get()) != 1)
            return bad("no certificate in the PEM text: " + openssl_error_text());
    }
    {
        auto b = memory_bio(pem.key);
        std::unique_ptr<EVP_PKEY, pkey_free> key(
            PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr));
        if (!key || SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1)
            return bad("no key in the PEM text: " + openssl_error_text());
    }
    return build(ctx.release(), node_id, check_own);
}

}  // namespace ringmesh::transport::secure
