// The `authenticated` handshake: a mutual challenge-response proven with the cluster keyring,
// run on every new stream connection before the first messaging frame. Sans-I/O: it takes
// the bytes the peer sent and produces the bytes to send, so it runs under unit tests, the
// fuzzer and the simulator unchanged; secure_transport.h drives it over a real connection.
//
//   both sides  → AuthHello { mode, cluster, node name, a fresh 32-byte nonce }
//   on the peer's AuthHello → AuthProof { key id, HMAC-SHA256(key, transcript) }
//   on the peer's AuthProof → done: the record keys are derived (HKDF-SHA256).
//
// The transcript a side proves is: a label, its role (dialer or listener), the mode, the
// cluster, its own name, the peer's name, its own nonce and the peer's nonce. So:
//   - a recorded handshake cannot be replayed: the receiver's nonce is fresh each time;
//   - a proof cannot be reflected back to its maker: the role and the order of the names
//     and nonces differ;
//   - a mode mismatch is refused, never negotiated down: `none` is not reachable from
//     `authenticated` by a peer that asks for it.
// What it does not do: tell nodes of one cluster apart. Every holder of a keyring key can
// claim any node name; certificates (`encrypted` mode) bind names to keys. It does not hide
// the traffic either: records carry a tag, not a cipher.
//
// Each side proves with its primary key and accepts a proof made with any key it holds, so
// keys rotate without a flag day (install everywhere, then make primary, then remove). Both
// keys of a handshake feed the record keys, one per direction.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/result.h"

namespace ringmesh::transport::secure {

enum class security_mode : std::uint8_t { none = 0, authenticated = 1, encrypted = 2 };
const char* to_string(security_mode mode) noexcept;
std::optional<security_mode> parse_security_mode(std::string_view text) noexcept;
/// The mode a process runs, from its configured text (empty: none given) and what it holds:
/// with certificates `encrypted` by default, else with a keyring `authenticated`; `none` only
/// when asked for, and otherwise an error that names the choices (also for a mode without
/// what it needs). The daemon and ringmesh_kvbench share the rule.
result<security_mode> resolve_security_mode(std::string_view configured, bool have_keys,
                                            bool have_certificates);

/// Why a handshake was refused; each is counted by the transport that ran it.
enum class auth_refusal : std::uint8_t {
    none,
    not_secure,     ///< the first bytes are not a handshake: a plaintext or foreign peer
    malformed,      ///< the Verifier or the checks refused a handshake message
    wrong_version,  ///< another version of the secure layer
    wrong_cluster,
    mode_mismatch,  ///< the peer runs another mode: a downgrade attempt or a misconfiguration
    ourselves,      ///< the peer claims this node's own name
    unknown_key,    ///< its proof names a key this node does not hold
    bad_proof,      ///< the proof does not verify: a forgery, a replay or a reflection
    timeout,        ///< no handshake within the deadline (counted by the transport)
    // `encrypted` mode (TLS 1.3, tls_guard.h):
    untrusted_certificate,  ///< the peer's certificate does not chain to the CA (or is forged)
    expired_certificate,    ///< expired, or not valid yet
    no_certificate,         ///< the peer sent none
    no_identity,            ///< its certificate names no node
    refused_by_peer,        ///< the peer sent an alert: it refused this side
    tls_failed,             ///< any other TLS failure (OpenSSL's reason in the log line)
    count,
};
const char* to_string(auth_refusal r) noexcept;

using key_bytes = std::vector<std::byte>;
inline constexpr std::size_t nonce_bytes = 32;
inline constexpr std::size_t key_id_bytes = 8;
inline constexpr std::size_t proof_bytes = 32;
inline constexpr std::size_t record_key_bytes = 32;
/// The largest handshake message accepted (its prefix excluded).
inline constexpr std::size_t max_handshake_message = 1024;
inline constexpr std::size_t handshake_prefix_bytes = 8;

using nonce = std::array<std::byte, nonce_bytes>;
using record_key = std::array<std::byte, record_key_bytes>;

/// One per direction, once the handshake is done.
struct record_keys {
    record_key send{}, receive{};
};

struct auth_identity {
    std::string cluster_id;
    std::string node_id;
    security_mode mode = security_mode::authenticated;
};

/// SHA-256 of `label` then `data`: the layer's fixed derivations from a key (a key's id, a
/// datagram direction's IV) are hashes of it under their own label.
std::array<std::byte, 32> labelled_sha256(std::string_view label, std::span<const std::byte> data);

/// The 8 bytes that name a key in a proof (a hash of it: the key itself never travels).
std::array<std::byte, key_id_bytes> key_id_of(std::span<const std::byte> key);

/// Owned by whoever drives one connection's handshake; not thread-safe.
class auth_handshake {
  public:
    /// `keys`: the keyring, its primary first (the one this side proves with); not empty.
    /// `fresh`: this side's nonce (random_nonce(); tests pass their own).
    auth_handshake(auth_identity self, std::vector<key_bytes> keys, bool dialer, nonce fresh);
    static nonce random_nonce();

    /// Appends the AuthHello to send first.
    void start(std::vector<std::byte>& out);
    /// Takes bytes the peer sent, split anywhere; appends what to send to `out`. Returns how
    /// many bytes it consumed: once done(), the rest of `in` belongs to the record layer. After
    /// a refusal it consumes nothing more.
    std::size_t feed(std::span<const std::byte> in, std::vector<std::byte>& out);

    bool done() const noexcept { return state_ == state::done; }
    bool failed() const noexcept { return refusal_ != auth_refusal::none; }
    auth_refusal refusal() const noexcept { return refusal_; }
    /// The name the peer proved (set once its proof verified).
    const std::string& peer() const noexcept { return peer_; }
    /// The peer's claimed name, known from its AuthHello on (for log lines about a refusal).
    const std::string& claimed_peer() const noexcept { return claimed_; }
    const record_keys& keys() const noexcept { return keys_; }

  private:
    enum class state : std::uint8_t { want_hello, want_proof, done };

    bool take_hello(std::span<const std::byte> body, std::vector<std::byte>& out);
    bool take_proof(std::span<const std::byte> body);
    std::array<std::byte, proof_bytes> proof(std::span<const std::byte> key, bool prover_dialer,
                                             std::string_view prover, std::string_view verifier,
                                             const nonce& prover_nonce,
                                             const nonce& verifier_nonce) const;
    bool refuse(auth_refusal r) noexcept {
        refusal_ = r;
        return false;
    }

    auth_identity self_;
    std::vector<key_bytes> keys_in_ring_;
    bool dialer_;
    nonce mine_;
    nonce theirs_{};
    std::string claimed_, peer_;
    std::vector<std::byte> pending_;  // a handshake message arriving in pieces
    state state_ = state::want_hello;
    auth_refusal refusal_ = auth_refusal::none;
    record_keys keys_;
};

}  // namespace ringmesh::transport::secure
