// A transport in a secured mode: wraps a backend's transport (io_uring, the simulator) and
// runs a handshake on every new stream connection before the layer above hears of it, then
// protects every record of the byte stream and checks every record before a byte reaches the
// layer above. The mode decides what runs on each connection (stream_guard.h):
//   authenticated  the keyring handshake, then AES-GMAC-tagged records (integrity);
//   encrypted      TLS 1.3 with mutual certificates (integrity and confidentiality).
// The endpoint above is unchanged: it sees on_connected only for a proven peer, and its Hello
// must repeat the name the handshake proved (peer_identity).
//
// Costs, and where they fall: what the layer above sends in one iteration is copied once,
// as it is sent, into the connection's output buffer as records of up to 16 KiB (TLS stages
// it and encrypts at the flush); flush() ends the last record (one tag per record, not per
// message: a flush of many small messages pays once) and hands the buffer to the backend as
// the owner of its bytes, so that a large flush leaves without another copy. Received records
// are checked whole and their payloads copied into this layer's own receive buffers, so that
// a record split across the backend's chunks is delivered contiguous (only a split record's
// bytes are gathered first).
//
// Refusals (each counted by reason in secure_stats, said in a rate-limited log line): a peer
// that does not start with the mode's handshake (a plaintext or keyless stranger, or another
// mode), a bad proof or certificate, a replay, a cluster mismatch, a handshake that does not
// finish in time, and, once a peer is proven, any record that fails its check (a changed,
// dropped, repeated or reordered byte): the connection is closed and nothing of that record
// reaches the layer above; the sessions resend what was not acknowledged once the peer
// reconnects.
//
// Datagrams (UDP, DPDK) run the keyring handshake per peer address over datagrams, then every
// datagram is sealed (datagram_session.h, datagram_seal.h): encrypted with AES-256-GCM in
// `encrypted` mode, tagged in `authenticated` mode, with an anti-replay window either way. A
// send to an address without a session starts the handshake and waits in the session (up to
// max_waiting_datagrams; beyond, nothing is taken, as with a full backend) until it completes;
// a datagram without a session or with a bad tag or a replayed sequence is dropped and counted.
// Without a keyring (an `encrypted` node with certificates only) no datagrams are offered.
//
// Owned by one shard, like every transport; key_store and tls_credentials are the pieces
// shared between shards.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/core/buffer_pool.h"
#include "engine/core/shard_id.h"
#include "transport/secure/auth_handshake.h"
#include "transport/secure/datagram_session.h"
#include "transport/secure/record_seal.h"
#include "transport/secure/stream_guard.h"
#include "transport/secure/tls_context.h"
#include "transport/transport.h"

namespace ringmesh::transport::secure {

/// The keyring the handshakes prove with, shared by a node's shards; replaced whole on key
/// rotation (the primary first). Any thread. Sessions already proven keep their record keys.
class key_store {
  public:
    explicit key_store(std::vector<key_bytes> keys) : keys_(std::move(keys)) {}
    std::vector<key_bytes> snapshot() const {
        std::lock_guard lock(mutex_);
        return keys_;
    }
    void replace(std::vector<key_bytes> keys) {
        std::lock_guard lock(mutex_);
        keys_ = std::move(keys);
    }

  private:
    mutable std::mutex mutex_;
    std::vector<key_bytes> keys_;
};

struct secure_settings {
    auth_identity identity;                      ///< its mode picks the guard
    std::shared_ptr<const key_store> keys;       ///< authenticated
    std::shared_ptr<const tls_credentials> tls;  ///< encrypted
    time_ns handshake_timeout_ns = 5'000'000'000;
    /// Bytes per connection staged or sealed and not yet taken by the backend; beyond it
    /// send() takes nothing (the layer above retries, as with a full backend).
    std::size_t max_unsent_bytes = 8u << 20;
    shard_id owner = no_shard;
    /// Each handshake's nonce; empty: fresh random bytes (OpenSSL). The simulator gives a
    /// seeded source, so that a run replays.
    std::function<nonce()> nonce_source;
    std::size_t receive_buffers = 512;  ///< of receive_buffer_bytes each
    std::size_t receive_buffer_bytes = 32768;
    /// Datagram sessions at most (peer addresses with a session or a handshake under way):
    /// strangers' forged source addresses cannot grow the table without bound.
    std::size_t max_datagram_sessions = 4096;
    time_ns datagram_retry_ns = 100'000'000;  ///< a handshake step repeated at most this often
    std::size_t max_waiting_datagrams = 64;   ///< per session, while its handshake runs
};

struct secure_stats {
    std::uint64_t handshakes = 0;  ///< peers proven
    std::array<std::uint64_t, static_cast<std::size_t>(auth_refusal::count)> refused{};
    std::uint64_t records_sealed = 0, records_opened = 0;
    std::uint64_t records_refused = 0;       ///< a failed tag or an oversized header: closed
    std::uint64_t receive_buffer_waits = 0;  ///< records held: every receive buffer in use
    // Datagrams.
    std::uint64_t datagram_handshakes = 0;  ///< datagram sessions proven
    std::uint64_t datagrams_sealed = 0, datagrams_opened = 0;
    std::uint64_t datagrams_refused = 0;   ///< a failed tag, or not a datagram of this layer
    std::uint64_t datagrams_replayed = 0;  ///< seen before, or older than the replay window
    std::uint64_t datagrams_dropped = 0;   ///< no session (yet) with the sender, or no room
    std::uint64_t refused_total() const noexcept {
        std::uint64_t n = 0;
        for (std::uint64_t v : refused)
            n += v;
        return n;
    }
};

class secure_transport final : public transport, private event_handler {
  public:
    static result<std::unique_ptr<secure_transport>> wrap(std::unique_ptr<transport> inner,
                                                          secure_settings settings);
    ~secure_transport() override;
    secure_transport(const secure_transport&) = delete;
    secure_transport& operator=(const secure_transport&) = delete;

    result<void> listen(const address& local) override { return inner_->listen(local); }
    result<connection_id> connect(const address& remote) override;
    void close(connection_id conn) override;
    std::size_t poll(time_ns now, event_handler& handler) override;
    std::size_t send(connection_id conn, std::span<const std::byte> bytes) override;
    std::size_t send_datagram(const address& to, std::span<const std::byte> bytes) override;
    std::size_t flush() override;
    void wait(time_ns timeout_ns, std::span<const int> wake_fds) override {
        inner_->wait(timeout_ns, wake_fds);
    }
    int ready_fd() override { return inner_->ready_fd(); }
    void forget_wake_fd(int fd) override { inner_->forget_wake_fd(fd); }
    capabilities caps() const noexcept override;
    std::string_view peer_identity(connection_id conn) const override;
    std::string_view datagram_peer_identity(const address& from) const override;

    const secure_stats& stats() const noexcept { return stats_; }
    security_mode mode() const noexcept { return settings_.identity.mode; }
    transport& inner() noexcept { return *inner_; }

  private:
    using byte_buffer = std::vector<std::byte>;
    struct conn {
        connection_id id;
        bool inbound = false;
        bool up = false;       // proven, and the layer above told
        bool closing = false;  // closed by this layer or the layer above
        std::unique_ptr<stream_guard> guard;
        std::uint64_t sealed_counted = 0;  // of guard->records_sealed(), in stats_ already
        time_ns deadline = 0;
        std::vector<std::byte> received;  // bytes that are not yet a whole record
        bool stalled = false;             // records held: no receive buffer (in stalled_)
        // This iteration's bytes (handshake messages, then records, the last one open), and
        // earlier flushes' buffers the backend has not taken whole (with how much it took).
        // A buffer handed to the backend is never appended to again: it may send from it.
        std::shared_ptr<byte_buffer> out;
        std::deque<std::pair<std::shared_ptr<byte_buffer>, std::size_t>> waiting;
        std::size_t waiting_bytes = 0;
        bool dirty = false;  // in dirty_
    };

    secure_transport(std::unique_ptr<transport> inner, secure_settings settings,
                     std::unique_ptr<buffer_pool> pool);

    // event_handler: the backend's events, inside poll().
    void on_connected(connection_id id, bool inbound) override;
    void on_received(connection_id id, buffer_handle chunk) override;
    void on_datagram(const address& from, std::span<const std::byte> payload,
                     buffer_handle owner) override;
    void on_closed(connection_id id, close_reason reason, int error) override;

    std::unique_ptr<stream_guard> new_guard(bool inbound);
    conn* find(connection_id id);
    const conn* find(connection_id id) const;
    void refuse(conn& c, auth_refusal why);
    /// Opens the whole records at the front of `bytes` (then of c.received) and delivers
    /// their payloads; false when the connection was closed for a bad record.
    bool take_records(conn& c, std::span<const std::byte> bytes);
    bool deliver_records(conn& c, std::span<const std::byte> bytes, std::size_t& used);
    void push_out(conn& c);
    /// An empty output buffer: one the backend has let go of, or a new one.
    std::shared_ptr<byte_buffer> fresh_buffer();
    void mark_dirty(conn& c);
    void expire_handshakes(time_ns now);
    bool offers_datagrams() const noexcept;
    datagram_session* datagram_session_for(const address& peer);
    void refuse_datagram(const address& from, auth_refusal why);
    void send_waiting(const address& to, datagram_session& s);
    /// A handshake's nonce: the settings' source, or fresh random bytes.
    nonce fresh_nonce() const;
    /// initiate() on `s`, taking a snapshot of the keyring and a nonce only when it starts a
    /// new handshake: it runs on every send to an address whose handshake is not done.
    datagram_session::bytes initiate(datagram_session& s);

    std::unique_ptr<transport> inner_;
    secure_settings settings_;
    std::unique_ptr<buffer_pool> pool_;
    std::unordered_map<std::uint32_t, std::unique_ptr<conn>> conns_;
    std::vector<std::uint32_t> dirty_;                 // connections with bytes to seal or push
    std::vector<std::uint32_t> stalled_;               // connections waiting for a receive buffer
    std::vector<std::shared_ptr<byte_buffer>> spare_;  // output buffers, maybe still sending
    std::unordered_map<address, std::unique_ptr<datagram_session>> datagram_sessions_;
    byte_buffer sealed_;  // the datagram being sealed
    time_ns last_datagram_sweep_ = 0;
    event_handler* upper_ = nullptr;  // during poll()
    time_ns now_ = 0;
    secure_stats stats_;
};

}  // namespace ringmesh::transport::secure
