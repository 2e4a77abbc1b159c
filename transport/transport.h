// The transport seam: what the messaging layer needs from a network backend. Control path
// (listen, connect, close) returns result<>; data path (poll, send, send_datagram, flush)
// returns counts; wait and ready_fd let a shard sleep until the backend has work. Backends:
// uring/ (io_uring TCP + UDP), dpdk/ (UDP/IPv4 on a DPDK port) and sim/ (the deterministic
// in-memory network). The application never sees any backend type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "engine/core/buffer_pool.h"
#include "engine/core/clock.h"
#include "engine/core/result.h"
#include "engine/core/shared_bytes.h"
#include "transport/address.h"

namespace ringmesh::transport {

/// Names one connection of one transport; the generation makes stale ids harmless.
struct connection_id {
    std::uint32_t index = UINT32_MAX;
    std::uint32_t generation = 0;
    bool valid() const noexcept { return index != UINT32_MAX; }
    friend bool operator==(connection_id, connection_id) = default;
};

enum class close_reason : std::uint8_t {
    peer_closed,      ///< orderly shutdown by the peer
    local_close,      ///< close() was called
    connect_failed,   ///< refused or unreachable
    connect_timeout,  ///< no answer within connect_timeout_ns
    io_error,         ///< a send or receive failed
};
const char* to_string(close_reason reason) noexcept;

/// What poll() reports. Implemented by the layer above; called on the owner shard only.
class event_handler {
  public:
    virtual ~event_handler() = default;
    /// A connection is established (inbound: accepted by a listener).
    virtual void on_connected(connection_id conn, bool inbound) = 0;
    /// Bytes arrived on a stream connection; `chunk` holds them (retain it to keep them).
    virtual void on_received(connection_id conn, buffer_handle chunk) = 0;
    /// A datagram arrived from `from`; `payload` lies inside `owner` (retain it to keep it).
    virtual void on_datagram(const address& from, std::span<const std::byte> payload,
                             buffer_handle owner) = 0;
    /// A connection ended; the id is dead from here on. `error` is an errno or 0.
    virtual void on_closed(connection_id conn, close_reason reason, int error) = 0;
};

struct capabilities {
    bool streams = false;  ///< connection-oriented, ordered, reliable
    bool datagrams = false;
    std::size_t max_datagram_bytes = 0;
};

/// Owned by one shard; every call on that shard's thread.
class transport {
  public:
    virtual ~transport() = default;

    // ---- control path ----
    /// Accepts stream connections on `local` (and receives datagrams there, if supported).
    virtual result<void> listen(const address& local) = 0;
    /// Starts connecting; the outcome arrives as on_connected or on_closed.
    virtual result<connection_id> connect(const address& remote) = 0;
    /// Closes after the bytes already passed to send() are flushed; on_closed follows.
    virtual void close(connection_id conn) = 0;

    // ---- data path ----
    /// Reaps completions and reports them to `handler`; returns the events handled.
    virtual std::size_t poll(time_ns now, event_handler& handler) = 0;
    /// Appends `bytes` to the connection's outgoing batch; returns bytes.size() when taken
    /// whole, 0 when the batch has no room (back-pressure: try again after a flush).
    virtual std::size_t send(connection_id conn, std::span<const std::byte> bytes) = 0;
    /// The same, for bytes that `owner` keeps alive and that stay unchanged until the peer
    /// has them: a backend may send them in place, holding `owner` until the kernel is done,
    /// instead of copying them into its batch. The default copies.
    virtual std::size_t send(connection_id conn, std::span<const std::byte> bytes,
                             const shared_bytes_owner& owner) {
        (void)owner;
        return send(conn, bytes);
    }
    /// Queues one datagram to `to`; returns bytes.size(), or 0 when out of send buffers.
    virtual std::size_t send_datagram(const address& to, std::span<const std::byte> bytes) = 0;
    /// The same, for bytes that `owner` keeps alive: a backend may transmit them in place
    /// (DPDK: an external mbuf) holding `owner` until the device is done. The default copies.
    virtual std::size_t send_datagram(const address& to, std::span<const std::byte> bytes,
                                      const shared_bytes_owner& owner) {
        (void)owner;
        return send_datagram(to, bytes);
    }
    /// Hands every queued send to the kernel in one submission; returns operations submitted.
    virtual std::size_t flush() = 0;
    /// Blocks until I/O completes, one of `wake_fds` (eventfds: the shard's waker, other
    /// sources' ready fds) becomes readable, or timeout_ns passes (< 0: no limit); drains the
    /// wake fds that fired. The block idle strategy calls it after announcing the shard is
    /// parked.
    virtual void wait(time_ns timeout_ns, std::span<const int> wake_fds) = 0;
    /// An eventfd that becomes readable when I/O completes, for a shard on which another
    /// source sleeps; set up on the first call. -1: the backend cannot offer one (it then
    /// has to be the source that sleeps). Control path.
    virtual int ready_fd() { return -1; }
    /// `fd` is no longer a wake fd (its source left the shard, and the number may soon name
    /// another file): stop watching it. Called before the next wait().
    virtual void forget_wake_fd(int /*fd*/) {}

    virtual capabilities caps() const noexcept = 0;

    /// The node name a secure layer proved for `conn` in its handshake (secure/); empty where
    /// nothing was proved (a plain backend). The endpoint refuses a Hello naming another.
    virtual std::string_view peer_identity(connection_id /*conn*/) const { return {}; }
    /// The same for a datagram peer: the name proven for datagrams from `from`.
    virtual std::string_view datagram_peer_identity(const address& /*from*/) const { return {}; }
};

}  // namespace ringmesh::transport
