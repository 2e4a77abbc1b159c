#include "transport/secure/record_seal.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <array>

namespace ringmesh::transport::secure {

const char* to_string(record_status s) noexcept {
    switch (s) {
        case record_status::ok:
            return "ok";
        case record_status::incomplete:
            return "incomplete";
        case record_status::oversized:
            return "oversized";
        case record_status::tampered:
            return "tampered";
        case record_status::closed:
            return "closed by the peer";
        case record_status::alert:
            return "an alert from the peer";
    }
    return "?";
}

namespace {

constexpr int iv_bytes = 12;

unsigned char* u8(std::byte* p) {
    return reinterpret_cast<unsigned char*>(p);
}
const unsigned char* u8(const std::byte* p) {
    return reinterpret_cast<const unsigned char*>(p);
}

/// The nonce of record `n`: four zero bytes, then n little-endian. Each direction has its own
/// key, so the two directions' records never share a (key, nonce).
std::array<unsigned char, iv_bytes> iv_of(std::uint64_t n) {
    std::array<unsigned char, iv_bytes> iv{};
    for (int i = 0; i < 8; ++i)
        iv[4 + i] = static_cast<unsigned char>((n >> (8 * i)) & 0xff);
    return iv;
}

detail::cipher_ctx keyed(const record_key& key, bool encrypt) {
    detail::cipher_ctx ctx(EVP_CIPHER_CTX_new());
    if (encrypt) {
        EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr);
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, iv_bytes, nullptr);
        EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, u8(key.data()), nullptr);
    } else {
        EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr);
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, iv_bytes, nullptr);
        EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, u8(key.data()), nullptr);
    }
    return ctx;
}

std::size_t length_of(std::span<const std::byte> header) {
    std::size_t length = 0;
    for (std::size_t i = 0; i < record_header_bytes; ++i)
        length |= std::to_integer<std::size_t>(header[i]) << (8 * i);
    return length;
}

}  // namespace

record_sealer::record_sealer(const record_key& key) : ctx_(keyed(key, true)) {}

void record_sealer::append(std::span<const std::byte> payload, std::vector<std::byte>& out) {
    while (!payload.empty()) {
        if (open_at_ == no_record) {
            open_at_ = out.size();
            out.insert(out.end(), record_header_bytes, std::byte{0});  // written at close()
        }
        const std::size_t have = out.size() - open_at_ - record_header_bytes;
        const std::size_t n = std::min(payload.size(), max_record_payload - have);
        out.insert(out.end(), payload.begin(), payload.begin() + static_cast<std::ptrdiff_t>(n));
        payload = payload.subspan(n);
        if (have + n == max_record_payload) close(out);
    }
}

void record_sealer::close(std::vector<std::byte>& out) {
    if (open_at_ == no_record) return;
    const std::size_t n = out.size() - open_at_ - record_header_bytes;
    std::byte* header = out.data() + open_at_;
    for (std::size_t i = 0; i < record_header_bytes; ++i)
        header[i] = static_cast<std::byte>((n >> (8 * i)) & 0xff);
    const auto iv = iv_of(next_++);
    int len = 0;
    EVP_EncryptInit_ex(ctx_.get(), nullptr, nullptr, nullptr, iv.data());
    EVP_EncryptUpdate(ctx_.get(), nullptr, &len, u8(header),
                      static_cast<int>(record_header_bytes + n));
    unsigned char none[16];  // GCM writes nothing here: there is no ciphertext
    EVP_EncryptFinal_ex(ctx_.get(), none, &len);
    std::array<std::byte, record_tag_bytes> tag{};
    EVP_CIPHER_CTX_ctrl(ctx_.get(), EVP_CTRL_GCM_GET_TAG, record_tag_bytes, tag.data());
    out.insert(out.end(), tag.begin(), tag.end());
    open_at_ = no_record;
}

record_opener::record_opener(const record_key& key) : ctx_(keyed(key, false)) {}

record_status record_opener::next(std::span<const std::byte> in, std::size_t& size) noexcept {
    if (in.size() < record_header_bytes) return record_status::incomplete;
    const std::size_t length = length_of(in);
    if (length == 0 || length > max_record_payload) return record_status::oversized;
    size = record_header_bytes + length + record_tag_bytes;
    return in.size() >= size ? record_status::ok : record_status::incomplete;
}

record_status record_opener::open(std::span<const std::byte> record,
                                  std::span<const std::byte>& payload) {
    if (broken_) return record_status::tampered;
    std::size_t size = 0;
    if (const record_status s = next(record, size); s != record_status::ok) return s;
    if (record.size() != size) return record_status::incomplete;
    const std::size_t length = size - record_overhead;
    const auto iv = iv_of(next_);
    int len = 0;
    EVP_DecryptInit_ex(ctx_.get(), nullptr, nullptr, nullptr, iv.data());
    EVP_DecryptUpdate(ctx_.get(), nullptr, &len, u8(record.data()),
                      static_cast<int>(record_header_bytes + length));
    // OpenSSL takes the expected tag through a non-const pointer; it only reads it.
    std::array<std::byte, record_tag_bytes> tag{};
    std::copy_n(record.data() + record_header_bytes + length, record_tag_bytes, tag.data());
    EVP_CIPHER_CTX_ctrl(ctx_.get(), EVP_CTRL_GCM_SET_TAG, record_tag_bytes, tag.data());
    unsigned char none[16];  // no plaintext comes out: the record is only authenticated
    if (EVP_DecryptFinal_ex(ctx_.get(), none, &len) <= 0) {
        broken_ = true;
        return record_status::tampered;
    }
    ++next_;
    payload = record.subspan(record_header_bytes, length);
    return record_status::ok;
}

}  // namespace ringmesh::transport::secure
