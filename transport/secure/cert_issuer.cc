#include "transport/secure/cert_issuer.h"

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "engine/core/errc.h"

namespace ringmesh::transport::secure {

namespace {

error failed(std::string what) {
    return make_error(core_errc::bad_config,
                      "certificates: " + std::move(what) + ": " + openssl_error_text());
}

std::shared_ptr<EVP_PKEY> new_key() {
    return {EVP_EC_gen("P-256"), EVP_PKEY_free};
}

std::string to_pem(X509* cert) {
    std::unique_ptr<BIO, decltype(&BIO_free)> b(BIO_new(BIO_s_mem()), BIO_free);
    PEM_write_bio_X509(b.get(), cert);
    char* data = nullptr;
    const long n = BIO_get_mem_data(b.get(), &data);
    return {data, static_cast<std::size_t>(n)};
}

std::string to_pem(EVP_PKEY* key) {
    std::unique_ptr<BIO, decltype(&BIO_free)> b(BIO_new(BIO_s_mem()), BIO_free);
    PEM_write_bio_PrivateKey(b.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    const long n = BIO_get_mem_data(b.get(), &data);
    return {data, static_cast<std::size_t>(n)};
}

bool add_extension(X509* cert, X509V3_CTX& ctx, int nid, const char* value) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (ext == nullptr) return false;
    const bool ok = X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

// A certificate for `name` holding `key`, signed by `issuer_key` as `issuer` (itself when
// issuer is null: a CA's own certificate).
std::shared_ptr<X509> make_certificate(std::string_view name, EVP_PKEY* key, X509* issuer,
                                       EVP_PKEY* issuer_key, cert_validity validity) {
    std::shared_ptr<X509> cert(X509_new(), X509_free);
    if (!cert) return nullptr;
    X509_set_version(cert.get(), 2);
    unsigned char serial[16];
    RAND_bytes(serial, sizeof serial);
    serial[0] &= 0x7f;  // a positive serial number
    BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), static_cast<long>(validity.not_before_s));
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(validity.not_after_s));
    X509_NAME* subject = X509_get_subject_name(cert.get());
    const std::string cn(name);
    X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_set_issuer_name(cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : subject);
    X509_set_pubkey(cert.get(), key);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
    bool ok = add_extension(cert.get(), ctx, NID_subject_key_identifier, "hash");
    if (issuer == nullptr) {
        ok = ok && add_extension(cert.get(), ctx, NID_basic_constraints, "critical,CA:TRUE") &&
             add_extension(cert.get(), ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        const std::string san = "DNS:" + cn;
        ok = ok && add_extension(cert.get(), ctx, NID_basic_constraints, "critical,CA:FALSE") &&
             add_extension(cert.get(), ctx, NID_key_usage, "critical,digitalSignature") &&
             add_extension(cert.get(), ctx, NID_ext_key_usage, "serverAuth,clientAuth") &&
             add_extension(cert.get(), ctx, NID_authority_key_identifier, "keyid:always") &&
             add_extension(cert.get(), ctx, NID_subject_alt_name, san.c_str());
    }
    if (!ok || X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0) return nullptr;
    return cert;
}

}  // namespace

cert_issuer::cert_issuer(std::shared_ptr<X509> cert, std::shared_ptr<EVP_PKEY> key)
    : cert_(std::move(cert)), key_(std::move(key)), cert_pem_(to_pem(cert_.get())) {}

result<cert_issuer> cert_issuer::create(std::string_view name, cert_validity validity) {
    auto key = new_key();
    if (!key) return failed("no key for the CA");
    auto cert = make_certificate(name, key.get(), nullptr, key.get(), validity);
    if (!cert) return failed("no CA certificate");
    return cert_issuer(std::move(cert), std::move(key));
}

result<cert_issuer> cert_issuer::from_pem(const std::string& cert_pem, const std::string& key_pem) {
    std::unique_ptr<BIO, decltype(&BIO_free)> c(
        BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())), BIO_free);
    std::shared_ptr<X509> cert(PEM_read_bio_X509(c.get(), nullptr, nullptr, nullptr), X509_free);
    if (!cert) return failed("no CA certificate in the PEM text");
    std::unique_ptr<BIO, decltype(&BIO_free)> k(
        BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())), BIO_free);
    std::shared_ptr<EVP_PKEY> key(PEM_read_bio_PrivateKey(k.get(), nullptr, nullptr, nullptr),
                                  EVP_PKEY_free);
    if (!key) return failed("no CA key in the PEM text");
    if (X509_check_private_key(cert.get(), key.get()) != 1)
        return failed("the CA key does not match its certificate");
    return cert_issuer(std::move(cert), std::move(key));
}

result<tls_pem> cert_issuer::issue(std::string_view node_id, cert_validity validity) const {
    auto key = new_key();
    if (!key) return failed("no key for " + std::string(node_id));
    auto cert = make_certificate(node_id, key.get(), cert_.get(), key_.get(), validity);
    if (!cert) return failed("no certificate for " + std::string(node_id));
    return tls_pem{cert_pem_, to_pem(cert.get()), to_pem(key.get())};
}

std::string cert_issuer::key_pem() const {
    return to_pem(key_.get());
}

}  // namespace ringmesh::transport::secure
