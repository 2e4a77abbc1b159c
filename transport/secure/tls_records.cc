#include "transport/secure/tls_records.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>

#include <cstring>
#include <string>

namespace ringmesh::transport::secure {

namespace {

constexpr std::size_t tag_bytes = 16;
constexpr std::size_t header_bytes = 5;
constexpr std::size_t max_ciphertext = 16384 + 256;

unsigned char* u8(std::byte* p) {
    return reinterpret_cast<unsigned char*>(p);
}
const unsigned char* u8(const std::byte* p) {
    return reinterpret_cast<const unsigned char*>(p);
}

}  // namespace

std::vector<unsigned char> hkdf_expand_label(const EVP_MD* digest,
                                             std::span<const unsigned char> secret,
                                             std::string_view label, std::size_t length) {
    // HkdfLabel = length (u16) | "tls13 " + label (u8-prefixed) | context (u8-prefixed, empty)
    const std::string full = "tls13 " + std::string(label);
    const std::string info =
        std::string{static_cast<char>(length >> 8), static_cast<char>(length & 0xff),
                    static_cast<char>(full.size())} +
        full + std::string(1, '\0');  // (the context: empty)
    std::vector<unsigned char> out(length);
    EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
    EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
    EVP_KDF_free(kdf);
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                         const_cast<char*>(EVP_MD_get0_name(digest)), 0),
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                          const_cast<unsigned char*>(secret.data()), secret.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()),
                                          info.size()),
        OSSL_PARAM_construct_end()};
    EVP_KDF_derive(ctx, out.data(), out.size(), params);
    EVP_KDF_CTX_free(ctx);
    return out;
}

bool tls13_protection::init(std::uint16_t suite, std::span<const std::byte> secret) {
    switch (suite) {
        case 0x1301:  // TLS_AES_128_GCM_SHA256
            cipher_ = EVP_aes_128_gcm();
            digest_ = EVP_sha256();
            break;
        case 0x1302:  // TLS_AES_256_GCM_SHA384
            cipher_ = EVP_aes_256_gcm();
            digest_ = EVP_sha384();
            break;
        case 0x1303:  // TLS_CHACHA20_POLY1305_SHA256
            cipher_ = EVP_chacha20_poly1305();
            digest_ = EVP_sha256();
            break;
        default:
            return false;
    }
    if (secret.size() != static_cast<std::size_t>(EVP_MD_get_size(digest_))) return false;
    secret_.assign(u8(secret.data()), u8(secret.data()) + secret.size());
    ctx_.reset(EVP_CIPHER_CTX_new());
    derive_keys();
    return true;
}

void tls13_protection::derive_keys() {
    OPENSSL_cleanse(key_.data(), key_.size());
    key_ = hkdf_expand_label(digest_, secret_, "key",
                             static_cast<std::size_t>(EVP_CIPHER_get_key_length(cipher_)));
    const auto iv = hkdf_expand_label(digest_, secret_, "iv", sizeof iv_);
    std::copy(iv.begin(), iv.end(), iv_);
    // The key is set once per generation; each record sets only its nonce. One context does
    // either direction's work (EVP_CipherInit_ex picks encrypt or decrypt per record).
    EVP_CipherInit_ex(ctx_.get(), cipher_, nullptr, nullptr, nullptr, 1);
    EVP_CIPHER_CTX_ctrl(ctx_.get(), EVP_CTRL_AEAD_SET_IVLEN, sizeof iv_, nullptr);
    EVP_CipherInit_ex(ctx_.get(), nullptr, nullptr, key_.data(), nullptr, 1);
    sequence_ = 0;
}

void tls13_protection::update() {
    std::vector<unsigned char> next =
        hkdf_expand_label(digest_, secret_, "traffic upd", secret_.size());
    OPENSSL_cleanse(secret_.data(), secret_.size());
    secret_ = std::move(next);
    derive_keys();
}

void tls13_protection::nonce(unsigned char out[12]) const noexcept {
    std::copy(iv_, iv_ + 12, out);
    for (int i = 0; i < 8; ++i)
        out[11 - i] ^= static_cast<unsigned char>((sequence_ >> (8 * i)) & 0xff);
}

void tls13_protection::seal(std::vector<std::byte>& buffer, std::size_t at, tls_content type) {
    buffer.push_back(static_cast<std::byte>(type));
    const std::size_t inner = buffer.size() - at - header_bytes;
    const std::size_t length = inner + tag_bytes;
    std::byte* header = buffer.data() + at;
    header[0] = static_cast<std::byte>(tls_content::application_data);  // the outer type, always
    header[1] = std::byte{0x03};
    header[2] = std::byte{0x03};
    header[3] = static_cast<std::byte>(length >> 8);
    header[4] = static_cast<std::byte>(length & 0xff);
    unsigned char n[12];
    nonce(n);
    EVP_CIPHER_CTX* c = ctx_.get();
    int out_len = 0;
    EVP_CipherInit_ex(c, nullptr, nullptr, nullptr, n, 1);
    EVP_CipherUpdate(c, nullptr, &out_len, u8(header), header_bytes);
    unsigned char* body = u8(buffer.data() + at + header_bytes);
    EVP_CipherUpdate(c, body, &out_len, body, static_cast<int>(inner));
    EVP_CipherFinal_ex(c, body + out_len, &out_len);
    unsigned char tag[tag_bytes];
    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, tag_bytes, tag);
    const auto* t = reinterpret_cast<const std::byte*>(tag);
    buffer.insert(buffer.end(), t, t + tag_bytes);
    ++sequence_;
}

record_status tls13_protection::open(std::span<const std::byte> record, std::span<std::byte> dest,
                                     std::size_t& written, tls_content& type) {
    written = 0;
    if (record.size() < header_bytes + tag_bytes + 1) return record_status::tampered;
    const std::size_t length =
        (std::to_integer<std::size_t>(record[3]) << 8) | std::to_integer<std::size_t>(record[4]);
    if (record[0] != static_cast<std::byte>(tls_content::application_data) ||
        record[1] != std::byte{0x03} || record[2] != std::byte{0x03} ||
        length + header_bytes != record.size() || length > max_ciphertext)
        return record_status::tampered;
    const std::size_t inner = length - tag_bytes;
    if (dest.size() < inner) return record_status::oversized;
    unsigned char n[12];
    nonce(n);
    EVP_CIPHER_CTX* c = ctx_.get();
    int out_len = 0;
    EVP_CipherInit_ex(c, nullptr, nullptr, nullptr, n, 0);
    EVP_CipherUpdate(c, nullptr, &out_len, u8(record.data()), header_bytes);
    EVP_CipherUpdate(c, u8(dest.data()), &out_len, u8(record.data() + header_bytes),
                     static_cast<int>(inner));
    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, tag_bytes,
                        const_cast<std::byte*>(record.data() + header_bytes + inner));
    int final_len = 0;
    if (EVP_CipherFinal_ex(c, u8(dest.data()) + out_len, &final_len) <= 0)
        return record_status::tampered;  // (what was written to dest is not handed out)
    ++sequence_;
    // The content type is the last non-zero byte; zeros after it are padding (§5.4).
    std::size_t end = inner;
    while (end > 0 && dest[end - 1] == std::byte{0})
        --end;
    if (end == 0) return record_status::tampered;
    type = static_cast<tls_content>(std::to_integer<std::uint8_t>(dest[end - 1]));
    written = end - 1;
    return record_status::ok;
}

}  // namespace ringmesh::transport::secure
