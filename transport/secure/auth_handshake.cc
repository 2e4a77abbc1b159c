#include "transport/secure/auth_handshake.h"

#include <flatbuffers/flatbuffers.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>

#include "engine/core/errc.h"
#include "engine/wire/aligned.h"
#include "security_generated.h"

namespace ringmesh::transport::secure {

namespace fb = ringmesh::wire;

const char* to_string(security_mode mode) noexcept {
    switch (mode) {
        case security_mode::none:
            return "none";
        case security_mode::authenticated:
            return "authenticated";
        case security_mode::encrypted:
            return "encrypted";
    }
    return "?";
}

std::optional<security_mode> parse_security_mode(std::string_view text) noexcept {
    if (text == "none") return security_mode::none;
    if (text == "authenticated") return security_mode::authenticated;
    if (text == "encrypted") return security_mode::encrypted;
    return std::nullopt;
}

result<security_mode> resolve_security_mode(std::string_view configured, bool have_keys,
                                            bool have_certificates) {
    auto bad = [](std::string why) { return make_error(core_errc::bad_config, std::move(why)); };
    if (configured.empty()) {
        if (have_certificates) return security_mode::encrypted;
        if (!have_keys) {
            return bad(
                "security: no mode, and no key to run the default (authenticated) with: "
                "configure membership.keyring (--key) to authenticate every peer, certificates "
                "(security.ca_file, cert_file, key_file) to encrypt, or set security.mode = "
                "\"none\" (--security none) to leave the data plane open");
        }
        return security_mode::authenticated;
    }
    const auto mode = parse_security_mode(configured);
    if (!mode) return bad("security.mode must be none, authenticated or encrypted");
    if (*mode == security_mode::authenticated && !have_keys)
        return bad("security.mode = \"authenticated\" needs membership.keyring (--key)");
    if (*mode == security_mode::encrypted && !have_certificates) {
        return bad(
            "security.mode = \"encrypted\" needs certificates: security.ca_file, cert_file "
            "and key_file (--tls-ca, --tls-cert, --tls-key)");
    }
    return *mode;
}

const char* to_string(auth_refusal r) noexcept {
    switch (r) {
        case auth_refusal::none:
            return "none";
        case auth_refusal::not_secure:
            return "not-secure";
        case auth_refusal::malformed:
            return "malformed";
        case auth_refusal::wrong_version:
            return "wrong-version";
        case auth_refusal::wrong_cluster:
            return "wrong-cluster";
        case auth_refusal::mode_mismatch:
            return "mode-mismatch";
        case auth_refusal::ourselves:
            return "ourselves";
        case auth_refusal::unknown_key:
            return "unknown-key";
        case auth_refusal::bad_proof:
            return "bad-proof";
        case auth_refusal::timeout:
            return "timeout";
        case auth_refusal::untrusted_certificate:
            return "untrusted-certificate";
        case auth_refusal::expired_certificate:
            return "expired-certificate";
        case auth_refusal::no_certificate:
            return "no-certificate";
        case auth_refusal::no_identity:
            return "no-identity";
        case auth_refusal::refused_by_peer:
            return "refused-by-peer";
        case auth_refusal::tls_failed:
            return "tls-failed";
        case auth_refusal::count:
            break;
    }
    return "?";
}

namespace {

constexpr std::uint16_t layer_version = 1;
constexpr std::array<char, 4> hello_magic = {'R', 'M', 'S', 'H'};
constexpr std::array<char, 4> proof_magic = {'R', 'M', 'S', 'P'};
constexpr std::size_t max_name_bytes = 255;

const unsigned char* u8(const std::byte* p) {
    return reinterpret_cast<const unsigned char*>(p);
}

void put_prefix(std::vector<std::byte>& out, const std::array<char, 4>& magic, std::size_t length) {
    for (char c : magic)
        out.push_back(static_cast<std::byte>(c));
    for (int i = 0; i < 4; ++i)
        out.push_back(static_cast<std::byte>((length >> (8 * i)) & 0xff));
}

void append_builder(std::vector<std::byte>& out, const std::array<char, 4>& magic,
                    const flatbuffers::FlatBufferBuilder& b) {
    put_prefix(out, magic, b.GetSize());
    const auto* p = reinterpret_cast<const std::byte*>(b.GetBufferPointer());
    out.insert(out.end(), p, p + b.GetSize());
}

void lp(std::vector<unsigned char>& t, std::string_view s) {
    t.push_back(static_cast<unsigned char>(s.size() & 0xff));
    t.push_back(static_cast<unsigned char>(s.size() >> 8));
    t.insert(t.end(), s.begin(), s.end());
}

record_key hkdf(std::span<const std::byte> ikm, std::span<const std::byte> salt,
                std::string_view info) {
    record_key out{};
    EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
    EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
    EVP_KDF_free(kdf);
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<std::byte*>(ikm.data()),
                                          ikm.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<std::byte*>(salt.data()),
                                          salt.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()),
                                          info.size()),
        OSSL_PARAM_construct_end()};
    EVP_KDF_derive(ctx, reinterpret_cast<unsigned char*>(out.data()), out.size(), params);
    EVP_KDF_CTX_free(ctx);
    return out;
}

}  // namespace

std::array<std::byte, 32> labelled_sha256(std::string_view label, std::span<const std::byte> data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
    EVP_DigestUpdate(ctx, label.data(), label.size());
    EVP_DigestUpdate(ctx, data.data(), data.size());
    EVP_DigestFinal_ex(ctx, digest, &n);
    EVP_MD_CTX_free(ctx);
    std::array<std::byte, 32> out{};
    std::memcpy(out.data(), digest, out.size());
    return out;
}

std::array<std::byte, key_id_bytes> key_id_of(std::span<const std::byte> key) {
    const auto digest = labelled_sha256("ringmesh-key-id-v1", key);
    std::array<std::byte, key_id_bytes> id{};
    std::copy(digest.begin(), digest.begin() + key_id_bytes, id.begin());
    return id;
}

nonce auth_handshake::random_nonce() {
    nonce n{};
    RAND_bytes(reinterpret_cast<unsigned char*>(n.data()), static_cast<int>(n.size()));
    return n;
}

auth_handshake::auth_handshake(auth_identity self, std::vector<key_bytes> keys, bool dialer,
                               nonce fresh)
    : self_(std::move(self)), keys_in_ring_(std::move(keys)), dialer_(dialer), mine_(fresh) {}

void auth_handshake::start(std::vector<std::byte>& out) {
    flatbuffers::FlatBufferBuilder b(256);
    const auto cluster = b.CreateString(self_.cluster_id);
    const auto node = b.CreateString(self_.node_id);
    const auto n =
        b.CreateVector(reinterpret_cast<const std::uint8_t*>(mine_.data()), mine_.size());
    b.Finish(fb::CreateAuthHello(b, layer_version, static_cast<fb::SecurityMode>(self_.mode),
                                 cluster, node, n));
    append_builder(out, hello_magic, b);
}

std::size_t auth_handshake::feed(std::span<const std::byte> in, std::vector<std::byte>& out) {
    // The body length the prefix in pending_ announces (little-endian, after the magic).
    auto announced = [this] {
        std::size_t length = 0;
        for (int i = 0; i < 4; ++i)
            length |= std::to_integer<std::size_t>(pending_[4 + i]) << (8 * i);
        return length;
    };
    std::size_t used = 0;
    while (!done() && !failed() && used < in.size()) {
        // The prefix first, into pending_, then the body it announces.
        std::size_t want = handshake_prefix_bytes;
        const auto& magic = state_ == state::want_hello ? hello_magic : proof_magic;
        if (pending_.size() >= handshake_prefix_bytes) want += announced();
        const std::size_t take = std::min(want - pending_.size(), in.size() - used);
        pending_.insert(pending_.end(), in.begin() + static_cast<std::ptrdiff_t>(used),
                        in.begin() + static_cast<std::ptrdiff_t>(used + take));
        used += take;
        // A wrong magic is refused within the prefix's 8 bytes: a plaintext peer's frame
        // header goes no further.
        for (std::size_t i = 0; i < std::min<std::size_t>(pending_.size(), 4); ++i) {
            if (pending_[i] != static_cast<std::byte>(magic[i])) {
                // A TLS record (a ClientHello or ServerHello) where a Hello belongs: the peer
                // runs `encrypted`.
                const bool tls = state_ == state::want_hello && pending_[0] == std::byte{0x16};
                refuse(tls                           ? auth_refusal::mode_mismatch
                       : state_ == state::want_hello ? auth_refusal::not_secure
                                                     : auth_refusal::malformed);
                return used;
            }
        }
        if (pending_.size() == handshake_prefix_bytes) {
            const std::size_t length = announced();
            if (length == 0 || length > max_handshake_message) {
                refuse(auth_refusal::malformed);
                return used;
            }
            continue;
        }
        if (pending_.size() < want) continue;
        const std::span<const std::byte> body(pending_.data() + handshake_prefix_bytes,
                                              pending_.size() - handshake_prefix_bytes);
        const bool ok = state_ == state::want_hello ? take_hello(body, out) : take_proof(body);
        pending_.clear();
        if (!ok) return used;
    }
    return used;
}

bool auth_handshake::take_hello(std::span<const std::byte> body, std::vector<std::byte>& out) {
    std::vector<std::uint64_t> aligned;
    const auto* hello = wire::verified_root<fb::AuthHello>(body, aligned);
    if (hello == nullptr || hello->cluster_id() == nullptr || hello->node_id() == nullptr ||
        hello->nonce() == nullptr)
        return refuse(auth_refusal::malformed);
    if (hello->version() != layer_version) return refuse(auth_refusal::wrong_version);
    if (hello->mode() != static_cast<fb::SecurityMode>(self_.mode))
        return refuse(auth_refusal::mode_mismatch);
    if (hello->cluster_id()->string_view() != self_.cluster_id)
        return refuse(auth_refusal::wrong_cluster);
    const std::string_view name = hello->node_id()->string_view();
    if (name.empty() || name.size() > max_name_bytes || hello->nonce()->size() != nonce_bytes)
        return refuse(auth_refusal::malformed);
    if (name == self_.node_id) return refuse(auth_refusal::ourselves);
    claimed_ = std::string(name);
    std::memcpy(theirs_.data(), hello->nonce()->data(), nonce_bytes);

    const key_bytes& primary = keys_in_ring_.front();
    const auto id = key_id_of(primary);
    const auto p = proof(primary, dialer_, self_.node_id, claimed_, mine_, theirs_);
    flatbuffers::FlatBufferBuilder b(128);
    const auto key_id = b.CreateVector(reinterpret_cast<const std::uint8_t*>(id.data()), id.size());
    const auto pv = b.CreateVector(reinterpret_cast<const std::uint8_t*>(p.data()), p.size());
    b.Finish(fb::CreateAuthProof(b, key_id, pv));
    append_builder(out, proof_magic, b);
    state_ = state::want_proof;
    return true;
}

bool auth_handshake::take_proof(std::span<const std::byte> body) {
    std::vector<std::uint64_t> aligned;
    const auto* msg = wire::verified_root<fb::AuthProof>(body, aligned);
    if (msg == nullptr || msg->key_id() == nullptr || msg->proof() == nullptr ||
        msg->key_id()->size() != key_id_bytes || msg->proof()->size() != proof_bytes)
        return refuse(auth_refusal::malformed);
    const key_bytes* key = nullptr;
    for (const key_bytes& k : keys_in_ring_) {
        const auto id = key_id_of(k);
        if (std::memcmp(id.data(), msg->key_id()->data(), key_id_bytes) == 0) {
            key = &k;
            break;
        }
    }
    if (key == nullptr) return refuse(auth_refusal::unknown_key);
    const auto expected = proof(*key, !dialer_, claimed_, self_.node_id, theirs_, mine_);
    if (CRYPTO_memcmp(expected.data(), msg->proof()->data(), proof_bytes) != 0)
        return refuse(auth_refusal::bad_proof);
    peer_ = claimed_;

    // The record keys: both proving keys, both nonces (the dialer's first), one per direction.
    const key_bytes& primary = keys_in_ring_.front();
    const key_bytes& dialer_key = dialer_ ? primary : *key;
    const key_bytes& listener_key = dialer_ ? *key : primary;
    std::vector<std::byte> ikm(dialer_key);
    ikm.insert(ikm.end(), listener_key.begin(), listener_key.end());
    std::array<std::byte, 2 * nonce_bytes> salt{};
    const nonce& dialer_nonce = dialer_ ? mine_ : theirs_;
    const nonce& listener_nonce = dialer_ ? theirs_ : mine_;
    std::memcpy(salt.data(), dialer_nonce.data(), nonce_bytes);
    std::memcpy(salt.data() + nonce_bytes, listener_nonce.data(), nonce_bytes);
    const record_key d2l = hkdf(ikm, salt, "ringmesh-records-v1 dialer-to-listener");
    const record_key l2d = hkdf(ikm, salt, "ringmesh-records-v1 listener-to-dialer");
    keys_.send = dialer_ ? d2l : l2d;
    keys_.receive = dialer_ ? l2d : d2l;
    OPENSSL_cleanse(ikm.data(), ikm.size());
    state_ = state::done;
    return true;
}

std::array<std::byte, proof_bytes> auth_handshake::proof(
    std::span<const std::byte> key, bool prover_dialer, std::string_view prover,
    std::string_view verifier, const nonce& prover_nonce, const nonce& verifier_nonce) const {
    static constexpr std::string_view label = "ringmesh-auth-v1";
    std::vector<unsigned char> t(label.begin(), label.end());
    t.push_back(prover_dialer ? 1 : 2);
    t.push_back(static_cast<unsigned char>(self_.mode));
    lp(t, self_.cluster_id);
    lp(t, prover);
    lp(t, verifier);
    t.insert(t.end(), u8(prover_nonce.data()), u8(prover_nonce.data()) + nonce_bytes);
    t.insert(t.end(), u8(verifier_nonce.data()), u8(verifier_nonce.data()) + nonce_bytes);
    std::array<std::byte, proof_bytes> out{};
    unsigned int n = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), t.data(), t.size(),
         reinterpret_cast<unsigned char*>(out.data()), &n);
    return out;
}

}  // namespace ringmesh::transport::secure
