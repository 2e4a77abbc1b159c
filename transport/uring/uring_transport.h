// io_uring backend: TCP streams and UDP datagrams on one ring per shard.
//
// Receive: multishot accept; multishot recv/recvmsg into provided buffer rings whose buffers
// come from a bounded per-shard pool, so the layer above sees received bytes in place (no
// copy) and may keep them by holding the buffer_handle. Send: frames are coalesced per
// connection and leave in one send(msg) per connection per flush; large runs from a session's
// retransmit blocks go in place (an iovec each, the block kept alive meanwhile), small ones
// are copied together; batches above a configured size use SEND_ZC (kept until the kernel's
// notification). Every flush is one submit.
// Setup and control live in uring_setup.cc, the data path in uring_datapath.cc.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/buffer_pool.h"
#include "transport/transport.h"
#include "transport/uring/send_queue.h"

namespace ringmesh::transport {

struct uring_config {
    unsigned ring_entries = 1024;
    unsigned max_connections = 256;    ///< fixed-file slots
    unsigned recv_buffer_count = 256;  ///< provided buffers per ring (power of two)
    std::size_t recv_buffer_bytes = 32768;
    std::size_t max_send_batch_bytes = 8u << 20;  ///< per connection, queued and unsent
    /// Batches of at least this many bytes go out with SEND_ZC; 0 disables it. Off by default:
    /// on loopback and veth the kernel copies anyway and SEND_ZC measured slower than send.
    std::size_t send_zc_threshold_bytes = 0;
    std::size_t max_datagram_bytes = 1472;  ///< UDP payload (1500-byte MTU)
    unsigned datagram_send_slots = 1024;    ///< datagrams queued or in flight at once
    /// Consecutive datagrams to one address, all of one size but a shorter last, leave as
    /// one sendmsg with UDP_SEGMENT (GSO): the kernel's send path runs once per batch.
    bool udp_gso = true;
    unsigned gso_batches = 32;  ///< batches (64 KiB each) queued or in flight at once
    time_ns connect_timeout_ns = 2 * ns_per_s;
    bool defer_taskrun = true;  ///< SINGLE_ISSUER | DEFER_TASKRUN when offered
};

/// Counters; written by the owner shard, read for stats after its loop stopped or racily.
struct uring_stats {
    std::uint64_t accepts = 0, accept_failures = 0, connects = 0, connect_failures = 0;
    std::uint64_t recv_rearms = 0, recv_no_buffers = 0, bytes_received = 0;
    std::uint64_t sends = 0, short_sends = 0, bytes_sent = 0, send_batch_full = 0;
    std::uint64_t send_zc = 0, send_zc_copied = 0;
    std::uint64_t datagrams_received = 0, datagrams_sent = 0, datagram_send_full = 0;
    std::uint64_t datagrams_truncated = 0;
    std::uint64_t gso_sends = 0;  ///< sendmsg calls carrying several datagrams (UDP_SEGMENT)
    std::uint64_t submits = 0, closes = 0, io_errors = 0, connections_refused_full = 0;
};

/// Owned by one shard; created on that shard's thread (the ring is single-issuer).
class uring_transport final : public transport {
  public:
    /// `setup_note` receives a line when the kernel refused a preferred feature.
    static result<std::unique_ptr<uring_transport>> create(const uring_config& config,
                                                           shard_id owner,
                                                           std::string* setup_note = nullptr);
    ~uring_transport() override;

    result<void> listen(const address& local) override;
    result<connection_id> connect(const address& remote) override;
    void close(connection_id conn) override;

    std::size_t poll(time_ns now, event_handler& handler) override;
    std::size_t send(connection_id conn, std::span<const std::byte> bytes) override;
    std::size_t send(connection_id conn, std::span<const std::byte> bytes,
                     const shared_bytes_owner& owner) override;
    using transport::send_datagram;  // the in-place overload copies
    std::size_t send_datagram(const address& to, std::span<const std::byte> bytes) override;
    std::size_t flush() override;
    void wait(time_ns timeout_ns, std::span<const int> wake_fds) override;
    void forget_wake_fd(int fd) override;
    /// An eventfd registered with the ring (io_uring_register_eventfd): the kernel signals it
    /// as completions arrive (with DEFER_TASKRUN too), so a shard sleeping in another ring or
    /// in ppoll wakes for this one's I/O.
    int ready_fd() override;
    capabilities caps() const noexcept override;

    const uring_stats& stats() const noexcept { return stats_; }
    /// The pool received bytes live in (the shard routes foreign releases back to it).
    buffer_pool& receive_pool() noexcept { return *recv_pool_; }
    /// The local address a listener got (port 0 in listen() picks a free one).
    const address& listen_address() const noexcept { return listen_address_; }
    bool uses_defer_taskrun() const noexcept { return defer_taskrun_; }

  private:
    enum class op : std::uint8_t {
        accept = 1,
        recv,
        send,
        send_zc,
        connect,
        link_timeout,
        wake_poll,
        recvmsg,
        sendmsg,
        sendmsg_gso,
        wake_poll_remove,  // the answer to cancelling a wake fd's poll: nothing to do
    };
    enum class conn_state : std::uint8_t { free, connecting, open, closing };
    struct connection {
        int fd = -1;
        std::uint32_t generation = 0;
        conn_state state = conn_state::free;
        bool inbound = false;
        bool registered = false;
        bool recv_armed = false;
        bool send_in_flight = false;
        bool dirty = false;
        bool connect_in_flight = false;
        bool shutdown_after_flush = false;  // local close: send what is queued first
        unsigned zc_notifs_pending = 0;
        close_reason reason = close_reason::local_close;
        int error = 0;
        address remote;
        send_queue pending;                       // coalescing: appended by send()
        send_queue in_flight;                     // owned by the kernel until the send completes
        std::vector<shared_bytes_owner> zc_keep;  // sent with SEND_ZC: held until notified
        std::vector<iovec> iov;                   // in_flight's ranges, for the sendmsg in flight
        msghdr msg{};
    };
    struct datagram_slot {
        msghdr msg{};
        iovec iov{};
        address to;
        buffer_handle payload;
    };
    // Datagrams to one address gathered back to back for one UDP_SEGMENT sendmsg.
    struct gso_batch {
        std::vector<std::byte> bytes;
        address to;
        std::size_t segment = 0;  // every datagram but a shorter last one has this size
        unsigned count = 0;
        bool ended = false;  // a shorter datagram closed it
        msghdr msg{};
        iovec iov{};
        alignas(cmsghdr) std::byte control[CMSG_SPACE(sizeof(std::uint16_t))];
    };

    uring_transport(const uring_config& config, shard_id owner);
    result<void> setup_ring(std::string* setup_note);
    result<void> setup_buffer_ring(io_uring_buf_ring*& ring, unsigned bgid);
    result<void> open_udp(const address& local);
    io_uring_sqe* get_sqe();
    static std::uint64_t pack(op o, std::uint32_t index, std::uint32_t generation) noexcept;

    // data path (uring_datapath.cc)
    void handle_cqe(const io_uring_cqe& cqe, event_handler& handler);
    void on_accept(const io_uring_cqe& cqe, event_handler& handler);
    void on_recv(connection& c, connection_id id, const io_uring_cqe& cqe, event_handler& h);
    void on_send(connection& c, connection_id id, const io_uring_cqe& cqe, bool zc,
                 event_handler& h);
    void on_connect(connection& c, connection_id id, const io_uring_cqe& cqe, event_handler& h);
    void on_recvmsg(const io_uring_cqe& cqe, event_handler& handler);
    void arm_accept();
    void arm_recv(connection& c, std::uint32_t index);
    void arm_recvmsg();
    void submit_send(connection& c, std::uint32_t index);
    bool batch_datagram(const address& to, std::span<const std::byte> bytes);
    void submit_batch();
    connection* sendable(connection_id id, std::size_t bytes);
    std::size_t replenish(io_uring_buf_ring* ring, unsigned& in_ring, unsigned bgid);
    buffer_handle take_buffer(const io_uring_cqe& cqe, unsigned& in_ring);
    void begin_close(connection& c, close_reason reason, int error);
    void maybe_finish_close(connection& c, std::uint32_t index, event_handler& handler);
    void open_connection(connection& c, std::uint32_t index);

    uring_config config_;
    shard_id owner_;
    io_uring ring_{};
    bool ring_ready_ = false;
    bool defer_taskrun_ = false;
    std::unique_ptr<buffer_pool> recv_pool_;
    io_uring_buf_ring* stream_buffers_ = nullptr;    // bgid 0: TCP recv
    io_uring_buf_ring* datagram_buffers_ = nullptr;  // bgid 1: UDP recvmsg
    unsigned stream_in_ring_ = 0;
    unsigned datagram_in_ring_ = 0;
    std::vector<connection> connections_;
    std::vector<std::uint32_t> free_connections_;
    std::vector<std::uint32_t> dirty_;  // connections with bytes to flush
    int listen_fd_ = -1;
    bool accept_armed_ = false;
    address listen_address_;
    int udp_fd_ = -1;
    bool recvmsg_armed_ = false;
    msghdr recvmsg_template_{};
    std::unique_ptr<buffer_pool> datagram_send_pool_;
    std::vector<datagram_slot> datagram_slots_;
    std::vector<std::unique_ptr<gso_batch>> gso_batches_;
    std::vector<std::uint32_t> gso_free_;
    std::uint32_t open_batch_ = UINT32_MAX;  // gathering, not yet submitted
    bool gso_refused_ = false;               // the kernel said no once: single datagrams
    struct armed_wake_fd {
        int fd;
        std::uint32_t arming;  // which poll: an fd number can be armed again for a new file
    };
    std::vector<armed_wake_fd> armed_wake_fds_;  // each with a multishot poll in this ring
    std::uint32_t next_arming_ = 0;
    int ready_fd_ = -1;  // registered eventfd, once someone asked for it
    unsigned unsubmitted_ = 0;
    uring_stats stats_;
};

}  // namespace ringmesh::transport
