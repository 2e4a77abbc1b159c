#include "transport/secure/datagram_seal.h"

#include <openssl/evp.h>

#include <cstring>

namespace ringmesh::transport::secure {

namespace {

constexpr std::size_t tag_bytes = 16;

unsigned char* u8(std::byte* p) {
    return reinterpret_cast<unsigned char*>(p);
}

void put_u64(std::byte* at, std::uint64_t v) {
    for (int i = 0; i < 8; ++i)
        at[i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
}

std::uint64_t get_u64(const std::byte* at) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
        v |= std::to_integer<std::uint64_t>(at[i]) << (8 * i);
    return v;
}

detail::cipher_ctx keyed_context(const record_key& key) {
    detail::cipher_ctx ctx(EVP_CIPHER_CTX_new());
    EVP_CipherInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr, 1);
    EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_IVLEN, 12, nullptr);
    EVP_CipherInit_ex(ctx.get(), nullptr, nullptr,
                      reinterpret_cast<const unsigned char*>(key.data()), nullptr, 1);
    return ctx;
}

}  // namespace

const char* to_string(datagram_status s) noexcept {
    switch (s) {
        case datagram_status::ok:
            return "ok";
        case datagram_status::malformed:
            return "malformed";
        case datagram_status::tampered:
            return "tampered";
        case datagram_status::replayed:
            return "replayed";
    }
    return "?";
}

datagram_key::datagram_key(const record_key& key, bool encrypt_payload)
    : key_(key), encrypt_(encrypt_payload) {
    // The IV need not be secret, only fixed per key: a hash of the key under a label.
    const auto digest = labelled_sha256("ringmesh-datagram-iv-v1", key);
    std::memcpy(iv_.data(), digest.data(), iv_.size());
}

void datagram_key::nonce(std::uint64_t sequence, unsigned char out[12]) const noexcept {
    std::memcpy(out, iv_.data(), iv_.size());
    for (int i = 0; i < 8; ++i)
        out[11 - i] ^= static_cast<unsigned char>((sequence >> (8 * i)) & 0xff);
}

datagram_sealer::datagram_sealer(const record_key& key, bool encrypt_payload)
    : key_(key, encrypt_payload), ctx_(keyed_context(key)) {}

void datagram_sealer::seal(std::span<const std::byte> payload, std::vector<std::byte>& out) {
    const std::uint64_t sequence = next_++;
    out.resize(sealed_datagram_header + payload.size() + tag_bytes);
    out[0] = sealed_datagram_type;
    put_u64(out.data() + 1, sequence);
    unsigned char n[12];
    key_.nonce(sequence, n);
    EVP_CIPHER_CTX* c = ctx_.get();
    int len = 0;
    EVP_CipherInit_ex(c, nullptr, nullptr, nullptr, n, 1);
    EVP_CipherUpdate(c, nullptr, &len, u8(out.data()), sealed_datagram_header);
    unsigned char* body = u8(out.data() + sealed_datagram_header);
    const auto* plain = reinterpret_cast<const unsigned char*>(payload.data());
    if (key_.encrypts()) {
        EVP_CipherUpdate(c, body, &len, plain, static_cast<int>(payload.size()));
    } else {
        std::memcpy(body, plain, payload.size());  // in the clear, covered by the tag
        EVP_CipherUpdate(c, nullptr, &len, body, static_cast<int>(payload.size()));
    }
    EVP_CipherFinal_ex(c, body + payload.size(), &len);
    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, tag_bytes, body + payload.size());
}

datagram_opener::datagram_opener(const record_key& key, bool encrypt_payload)
    : key_(key, encrypt_payload), ctx_(keyed_context(key)) {}

bool datagram_opener::fresh(std::uint64_t sequence) const noexcept {
    if (sequence >= highest_) return true;
    const std::uint64_t behind = highest_ - 1 - sequence;
    return behind < replay_window && !seen_[behind];
}

void datagram_opener::accept(std::uint64_t sequence) noexcept {
    if (sequence >= highest_) {
        const std::uint64_t shift = sequence + 1 - highest_;
        seen_ = shift >= replay_window ? std::bitset<replay_window>() : seen_ << shift;
        seen_[0] = true;
        highest_ = sequence + 1;
    } else {
        seen_[highest_ - 1 - sequence] = true;
    }
}

datagram_status datagram_opener::open(std::span<std::byte> datagram,
                                      std::span<const std::byte>& payload) {
    if (datagram.size() < sealed_datagram_overhead || datagram[0] != sealed_datagram_type)
        return datagram_status::malformed;
    const std::uint64_t sequence = get_u64(datagram.data() + 1);
    // Before the tag: a replay costs no AES; after it: only a datagram with a good tag moves
    // the window (a forged sequence number cannot push real ones out of it).
    if (!fresh(sequence)) return datagram_status::replayed;
    const std::size_t size = datagram.size() - sealed_datagram_overhead;
    unsigned char* body = u8(datagram.data() + sealed_datagram_header);
    unsigned char n[12];
    key_.nonce(sequence, n);
    EVP_CIPHER_CTX* c = ctx_.get();
    int len = 0;
    EVP_CipherInit_ex(c, nullptr, nullptr, nullptr, n, 0);
    EVP_CipherUpdate(c, nullptr, &len, u8(datagram.data()), sealed_datagram_header);
    if (key_.encrypts()) {
        EVP_CipherUpdate(c, body, &len, body, static_cast<int>(size));  // in place
    } else {
        EVP_CipherUpdate(c, nullptr, &len, body, static_cast<int>(size));
    }
    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, tag_bytes, body + size);
    if (EVP_CipherFinal_ex(c, body + size, &len) <= 0) return datagram_status::tampered;
    accept(sequence);
    payload = std::span<const std::byte>(datagram.data() + sealed_datagram_header, size);
    return datagram_status::ok;
}

}  // namespace ringmesh::transport::secure
