#include "engine/membership/keyring.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>
#include <memory>

namespace ringmesh::membership {

namespace {

constexpr std::byte envelope_version{1};
constexpr std::byte mode_plain{0};
constexpr std::byte mode_gcm{1};
constexpr std::size_t nonce_bytes = 12;
constexpr std::size_t tag_bytes = 16;

class keyring_category_impl final : public std::error_category {
  public:
    const char* name() const noexcept override { return "keyring"; }
    std::string message(int e) const override {
        switch (static_cast<keyring_errc>(e)) {
            case keyring_errc::bad_key:
                return "bad key (want base64 of 16, 24 or 32 bytes)";
            case keyring_errc::unknown_key:
                return "key is not installed";
            case keyring_errc::primary_key:
                return "cannot remove the primary key";
        }
        return "keyring error";
    }
};

const EVP_CIPHER* cipher_for(std::size_t key_size) {
    switch (key_size) {
        case 16:
            return EVP_aes_128_gcm();
        case 24:
            return EVP_aes_192_gcm();
        default:
            return EVP_aes_256_gcm();
    }
}

bool valid_size(std::size_t n) {
    return n == 16 || n == 24 || n == 32;
}

using ctx_ptr = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

const unsigned char* u8(const std::byte* p) {
    return reinterpret_cast<const unsigned char*>(p);
}
unsigned char* u8(std::byte* p) {
    return reinterpret_cast<unsigned char*>(p);
}

}  // namespace

const std::error_category& keyring_category() noexcept {
    static const keyring_category_impl category;
    return category;
}

const char* to_string(open_status s) noexcept {
    switch (s) {
        case open_status::ok:
            return "ok";
        case open_status::malformed:
            return "malformed";
        case open_status::unencrypted:
            return "unencrypted";
        case open_status::unexpected:
            return "unexpected-encryption";
        case open_status::auth_failed:
            return "auth-failed";
    }
    return "?";
}

result<keyring> keyring::create(std::vector<key_bytes> keys) {
    keyring ring;
    for (auto& k : keys) {
        if (auto r = ring.install(std::move(k)); !r) return r.err();
    }
    std::uint64_t salt = 0;
    RAND_bytes(reinterpret_cast<unsigned char*>(&salt), sizeof salt);
    ring.salt_ = salt;
    return ring;
}

result<key_bytes> keyring::parse_key(std::string_view base64) {
    if (base64.empty() || base64.size() % 4 != 0 || base64.size() > 64) {
        return make_error(keyring_errc::bad_key);
    }
    unsigned char decoded[64];
    const int n = EVP_DecodeBlock(decoded, reinterpret_cast<const unsigned char*>(base64.data()),
                                  static_cast<int>(base64.size()));
    if (n < 0) return make_error(keyring_errc::bad_key);
    const auto padding = static_cast<std::size_t>(
        std::count(base64.end() - 2, base64.end(), '='));  // DecodeBlock counts it as zeros
    const std::size_t size = static_cast<std::size_t>(n) - padding;
    if (!valid_size(size)) return make_error(keyring_errc::bad_key);
    const auto* p = reinterpret_cast<const std::byte*>(decoded);
    return key_bytes(p, p + size);
}

std::string keyring::format_key(std::span<const std::byte> key) {
    std::string out(4 * ((key.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), u8(key.data()),
                                  static_cast<int>(key.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

result<void> keyring::install(key_bytes key) {
    if (!valid_size(key.size())) return make_error(keyring_errc::bad_key);
    if (std::find(keys_.begin(), keys_.end(), key) == keys_.end()) keys_.push_back(std::move(key));
    return ok();
}

result<void> keyring::use(const key_bytes& key) {
    auto it = std::find(keys_.begin(), keys_.end(), key);
    if (it == keys_.end()) return make_error(keyring_errc::unknown_key);
    std::rotate(keys_.begin(), it, it + 1);
    return ok();
}

result<void> keyring::remove(const key_bytes& key) {
    auto it = std::find(keys_.begin(), keys_.end(), key);
    if (it == keys_.end()) return make_error(keyring_errc::unknown_key);
    if (it == keys_.begin()) return make_error(keyring_errc::primary_key);
    keys_.erase(it);
    return ok();
}

void keyring::seal(std::span<const std::byte> plaintext, std::vector<std::byte>& out) {
    const std::size_t start = out.size();
    if (keys_.empty()) {
        out.push_back(envelope_version);
        out.push_back(mode_plain);
        out.insert(out.end(), plaintext.begin(), plaintext.end());
        return;
    }
    if (++counter_ == 0) {  // wrapped: a fresh salt keeps nonces unique
        RAND_bytes(reinterpret_cast<unsigned char*>(&salt_), sizeof salt_);
    }
    out.resize(start + overhead + plaintext.size());
    std::byte* header = out.data() + start;
    header[0] = envelope_version;
    header[1] = mode_gcm;
    std::byte* nonce = header + 2;
    std::memcpy(nonce, &salt_, 8);
    std::memcpy(nonce + 8, &counter_, 4);
    std::byte* cipher = nonce + nonce_bytes;
    const key_bytes& key = keys_.front();

    ctx_ptr ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
    int len = 0;
    EVP_EncryptInit_ex(ctx.get(), cipher_for(key.size()), nullptr, nullptr, nullptr);
    EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, nonce_bytes, nullptr);
    EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, u8(key.data()), u8(nonce));
    EVP_EncryptUpdate(ctx.get(), nullptr, &len, u8(header), 2);
    EVP_EncryptUpdate(ctx.get(), u8(cipher), &len, u8(plaintext.data()),
                      static_cast<int>(plaintext.size()));
    EVP_EncryptFinal_ex(ctx.get(), u8(cipher) + len, &len);
    EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, tag_bytes, u8(cipher + plaintext.size()));
}

open_status keyring::open(std::span<const std::byte> sealed,
                          std::vector<std::byte>& plaintext) const {
    if (sealed.size() < 2 || sealed[0] != envelope_version) return open_status::malformed;
    if (sealed[1] == mode_plain) {
        if (!keys_.empty()) return open_status::unencrypted;
        plaintext.assign(sealed.begin() + 2, sealed.end());
        return open_status::ok;
    }
    if (sealed[1] != mode_gcm || sealed.size() < overhead) return open_status::malformed;
    if (keys_.empty()) return open_status::unexpected;

    const std::byte* nonce = sealed.data() + 2;
    const std::byte* cipher = nonce + nonce_bytes;
    const std::size_t cipher_size = sealed.size() - overhead;
    std::byte tag[tag_bytes];
    std::memcpy(tag, cipher + cipher_size, tag_bytes);
    plaintext.resize(cipher_size);
    ctx_ptr ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
    for (const key_bytes& key : keys_) {
        int len = 0;
        EVP_DecryptInit_ex(ctx.get(), cipher_for(key.size()), nullptr, nullptr, nullptr);
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, nonce_bytes, nullptr);
        EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, u8(key.data()), u8(nonce));
        EVP_DecryptUpdate(ctx.get(), nullptr, &len, u8(sealed.data()), 2);
        EVP_DecryptUpdate(ctx.get(), u8(plaintext.data()), &len, u8(cipher),
                          static_cast<int>(cipher_size));
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, tag_bytes, tag);
        if (EVP_DecryptFinal_ex(ctx.get(), u8(plaintext.data()) + len, &len) == 1) {
            return open_status::ok;
        }
    }
    plaintext.clear();
    return open_status::auth_failed;
}

}  // namespace ringmesh::membership
