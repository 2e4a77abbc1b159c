// One datagram session of the secure layer: the keyring handshake (auth_handshake.h) run over
// datagrams with one peer address, then sealed datagrams (datagram_seal.h) under the keys it
// derived. Sans-I/O: it takes the handshake datagrams that arrive and says what to send, so
// the unit tests and the simulator drive it through loss, duplication and restarts.
//
//   'I' | AuthHello              the initiator's hello (the side that first had to send)
//   'R' | AuthHello | AuthProof  the responder's hello and proof, in one datagram
//   'P' | AuthProof              the initiator's proof: both sides now hold the keys
//
// Datagrams get lost, so every step can be repeated and repeats are recognised: the initiator
// sends its hello again while it still has to send and no reply came (at most every
// retry_ns); a responder that gets the same hello again repeats its reply; an initiator that
// gets the same reply again repeats its proof (its proof was lost: the responder is still
// waiting and says so by repeating). A hello with a new nonce is a new handshake (the peer
// restarted): it runs beside the established session, which keeps carrying traffic until the
// new one completes. Two sides that start at once: the one whose hello sorts lower keeps
// initiating, the other answers it.
//
// Owned by secure_transport (one per peer address); not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/core/clock.h"
#include "transport/secure/auth_handshake.h"
#include "transport/secure/datagram_seal.h"

namespace ringmesh::transport::secure {

inline constexpr std::byte datagram_hello{'I'};
inline constexpr std::byte datagram_reply{'R'};
inline constexpr std::byte datagram_proof{'P'};

/// The first byte of a datagram of the secure layer: a handshake step or a sealed datagram.
inline bool is_handshake_datagram(std::span<const std::byte> d) noexcept {
    return !d.empty() &&
           (d[0] == datagram_hello || d[0] == datagram_reply || d[0] == datagram_proof);
}

struct datagram_settings {
    auth_identity identity;
    bool encrypt = false;  ///< seal payloads with AES-GCM (encrypted mode) or only tag them
    time_ns retry_ns = 100'000'000;
};

class datagram_session {
  public:
    using bytes = std::vector<std::byte>;

    /// What a step asks the caller to do.
    struct outcome {
        bytes send;                                 ///< a handshake datagram to send back, or empty
        auth_refusal refused = auth_refusal::none;  ///< a handshake that failed here
        bool established = false;                   ///< this step completed a handshake
    };

    explicit datagram_session(const datagram_settings& settings) : settings_(settings) {}

    /// The caller has something to send and no session yet: the hello to send now (a first
    /// one, or a repeat once retry_ns have passed), or nothing.
    bytes initiate(time_ns now, const std::vector<key_bytes>& keys, const nonce& fresh);
    /// Whether initiate() would start a new handshake now, and so use its keys and nonce (a
    /// repeat, or a wait while answering the peer's or after a refusal, uses neither).
    bool would_start(time_ns now) const noexcept { return !pending_ && now >= quiet_until_; }
    /// A handshake datagram from the peer.
    outcome take(std::span<const std::byte> datagram, time_ns now,
                 const std::vector<key_bytes>& keys, const nonce& fresh);
    /// A sealed datagram came while this side waits for the initiator's proof: the reply to
    /// repeat (it was lost, or the proof was), at most every retry_ns.
    bytes nudge(time_ns now);
    /// Ends a handshake that did not complete by `deadline` (the established keys stay).
    bool expire(time_ns deadline);

    bool established() const noexcept { return sealer_.has_value(); }
    /// After a refused handshake this side starts no new one before then (a misconfigured or
    /// hostile peer gets one attempt per second, not one per send).
    time_ns quiet_until() const noexcept { return quiet_until_; }
    bool handshaking() const noexcept { return pending_ != nullptr; }
    time_ns handshake_started() const noexcept { return started_; }
    /// The name the peer proved (empty before the first handshake completed).
    const std::string& peer() const noexcept { return peer_; }
    datagram_sealer& sealer() { return *sealer_; }
    datagram_opener& opener() { return *opener_; }
    /// What the layer above sent before the first handshake completed (its owner seals and
    /// sends them then, in order; bounded by its owner).
    std::vector<bytes>& waiting() noexcept { return waiting_; }

  private:
    enum class role : std::uint8_t { initiator, responder };
    void install(const auth_handshake& done);
    outcome refused(auth_refusal why, time_ns now);
    outcome respond(std::span<const std::byte> hello, time_ns now,
                    const std::vector<key_bytes>& keys, const nonce& fresh);

    datagram_settings settings_;
    // The handshake under way, if any, and what it sent and received (to recognise repeats).
    std::unique_ptr<auth_handshake> pending_;
    role pending_role_ = role::initiator;
    bytes my_hello_, their_hello_, reply_, proof_, their_reply_;
    time_ns started_ = 0, last_sent_ = 0, quiet_until_ = 0;
    // The established session.
    std::optional<datagram_sealer> sealer_;
    std::optional<datagram_opener> opener_;
    std::string peer_;
    bytes established_reply_, established_proof_;  // an initiator's last reply and its proof
    std::vector<bytes> waiting_;
};

}  // namespace ringmesh::transport::secure
