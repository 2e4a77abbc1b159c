// Control path of the io_uring backend: ring and buffer-ring setup, sockets, listen, connect,
// close. Nothing here runs per message.
#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/core/errc.h"
#include "transport/uring/uring_transport.h"

namespace ringmesh::transport {

namespace {
constexpr unsigned stream_bgid = 0;
constexpr unsigned datagram_bgid = 1;

error sys_error(transport_errc code, const std::string& what, int err) {
    return make_error(code, what + ": " + errno_text(err));
}
}  // namespace

uring_transport::uring_transport(const uring_config& config, shard_id owner)
    : config_(config), owner_(owner) {}

result<std::unique_ptr<uring_transport>> uring_transport::create(const uring_config& config,
                                                                 shard_id owner,
                                                                 std::string* setup_note) {
    if (config.recv_buffer_count == 0 ||
        (config.recv_buffer_count & (config.recv_buffer_count - 1)) ||
        config.recv_buffer_count > 32768) {
        return make_error(transport_errc::ring_setup_failed,
                          "recv_buffer_count must be a power of two up to 32768");
    }
    if (config.max_connections == 0 || config.ring_entries < 8) {
        return make_error(transport_errc::ring_setup_failed, "ring too small");
    }
    std::unique_ptr<uring_transport> t(new uring_transport(config, owner));
    if (auto r = t->setup_ring(setup_note); !r) return r.err();
    // Twice the ring's worth of buffers: the ring stays full while handlers hold some.
    auto pool = buffer_pool::create(2 * std::size_t{config.recv_buffer_count} * 2,
                                    config.recv_buffer_bytes, owner);
    if (!pool) return pool.err();
    t->recv_pool_ = std::move(pool).value();
    if (auto r = t->setup_buffer_ring(t->stream_buffers_, stream_bgid); !r) return r.err();
    if (auto r = t->setup_buffer_ring(t->datagram_buffers_, datagram_bgid); !r) return r.err();
    t->replenish(t->stream_buffers_, t->stream_in_ring_, stream_bgid);
    t->replenish(t->datagram_buffers_, t->datagram_in_ring_, datagram_bgid);
    auto send_pool =
        buffer_pool::create(config.datagram_send_slots, config.max_datagram_bytes, owner);
    if (!send_pool) return send_pool.err();
    t->datagram_send_pool_ = std::move(send_pool).value();
    t->datagram_slots_.resize(config.datagram_send_slots);
    for (unsigned i = 0; i < config.gso_batches; ++i) {
        t->gso_batches_.push_back(std::make_unique<gso_batch>());
        t->gso_batches_.back()->bytes.reserve(65536);
        t->gso_free_.push_back(i);
    }
    t->connections_.resize(config.max_connections);
    for (std::uint32_t i = config.max_connections; i-- > 0;)
        t->free_connections_.push_back(i);
    return t;
}

result<void> uring_transport::setup_ring(std::string* setup_note) {
    io_uring_params params{};
    if (config_.defer_taskrun) {
        // TASKRUN_FLAG: the kernel marks the shared ring when completions wait for us, so
        // a busy loop enters the kernel only when there is something to submit or reap.
        params.flags =
            IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
        int rc = io_uring_queue_init_params(config_.ring_entries, &ring_, &params);
        if (rc == 0) {
            ring_ready_ = defer_taskrun_ = true;
        } else if (setup_note) {
            *setup_note = std::string("io_uring: SINGLE_ISSUER|DEFER_TASKRUN refused (") +
                          errno_text(-rc) + "); using a plain ring";
        }
    }
    if (!ring_ready_) {
        params = io_uring_params{};
        const int rc = io_uring_queue_init_params(config_.ring_entries, &ring_, &params);
        // ENOSYS: a kernel without io_uring; EPERM: io_uring disabled (kernel.io_uring_disabled
        // or a seccomp policy). Both say "unsupported here"; anything else is a failure.
        if (rc == -ENOSYS || rc == -EPERM)
            return sys_error(transport_errc::not_supported, "io_uring_queue_init", -rc);
        if (rc != 0)
            return sys_error(transport_errc::ring_setup_failed, "io_uring_queue_init", -rc);
        ring_ready_ = true;
    }
    // A single-issuer ring is entered by its own thread only: registering its fd spares
    // each io_uring_enter (one per loop iteration) the file lookup. Optional.
    if (defer_taskrun_) io_uring_register_ring_fd(&ring_);
    if (const int rc = io_uring_register_files_sparse(&ring_, config_.max_connections); rc != 0) {
        return sys_error(transport_errc::ring_setup_failed, "io_uring_register_files_sparse", -rc);
    }
    return ok();
}

result<void> uring_transport::setup_buffer_ring(io_uring_buf_ring*& ring, unsigned bgid) {
    const std::size_t bytes = std::size_t{config_.recv_buffer_count} * sizeof(io_uring_buf);
    void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return sys_error(transport_errc::ring_setup_failed, "mmap", errno);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uint64_t>(mem);
    reg.ring_entries = config_.recv_buffer_count;
    reg.bgid = static_cast<std::uint16_t>(bgid);
    if (const int rc = io_uring_register_buf_ring(&ring_, &reg, 0); rc != 0) {
        ::munmap(mem, bytes);
        return sys_error(transport_errc::ring_setup_failed, "io_uring_register_buf_ring", -rc);
    }
    ring = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_ring_init(ring);
    return ok();
}

int uring_transport::ready_fd() {
    if (ready_fd_ >= 0 || !ring_ready_) return ready_fd_;
    const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) return -1;
    if (io_uring_register_eventfd(&ring_, fd) != 0) {
        ::close(fd);
        return -1;
    }
    ready_fd_ = fd;
    return ready_fd_;
}

uring_transport::~uring_transport() {
    for (auto& c : connections_) {
        if (c.fd >= 0) ::close(c.fd);
    }
    if (listen_fd_ >= 0) ::close(listen_fd_);
    if (udp_fd_ >= 0) ::close(udp_fd_);
    if (ring_ready_) {
        // Tearing the ring down cancels every request; then no kernel reference to our
        // buffers remains and the pools may go.
        io_uring_queue_exit(&ring_);
    }
    if (ready_fd_ >= 0) ::close(ready_fd_);
    const std::size_t bytes = std::size_t{config_.recv_buffer_count} * sizeof(io_uring_buf);
    if (stream_buffers_) ::munmap(stream_buffers_, bytes);
    if (datagram_buffers_) ::munmap(datagram_buffers_, bytes);
    // Buffers the kernel still held in its rings go back to the pool before it is destroyed.
    if (recv_pool_) {
        for (std::uint32_t i = 0; i < recv_pool_->buffer_count(); ++i) {
            buffer_slot* slot = recv_pool_->slot_at(i);
            if (slot->refcount > 0) buffer_handle::adopt_raw(slot).reset();
        }
    }
    datagram_slots_.clear();
}

result<void> uring_transport::listen(const address& local) {
    if (listen_fd_ >= 0) {
        return make_error(transport_errc::not_supported, "this transport already listens");
    }
    const int fd = ::socket(local.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return sys_error(transport_errc::socket_failed, "socket", errno);
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    // One listener per shard on the same port: the kernel spreads connections over them.
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // inherited by accepts
    if (::bind(fd, local.sa(), local.length) != 0 || ::listen(fd, 1024) != 0) {
        const int err = errno;
        ::close(fd);
        return sys_error(transport_errc::socket_failed, "bind/listen " + local.to_string(), err);
    }
    listen_fd_ = fd;
    listen_address_.length = sizeof listen_address_.storage;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&listen_address_.storage),
                  &listen_address_.length);
    if (auto udp = open_udp(listen_address_); !udp) return udp;
    arm_accept();
    arm_recvmsg();
    flush();
    return ok();
}

result<void> uring_transport::open_udp(const address& local) {
    const int fd = ::socket(local.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return sys_error(transport_errc::socket_failed, "udp socket", errno);
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    // Datagrams that find the socket buffer full are dropped by the kernel and cost a
    // retransmission timeout: ask for room for a burst (FORCE where permitted, else capped).
    const int buffer_bytes = 4 << 20;
    for (const auto& [force, plain] :
         {std::pair{SO_RCVBUFFORCE, SO_RCVBUF}, std::pair{SO_SNDBUFFORCE, SO_SNDBUF}}) {
        if (::setsockopt(fd, SOL_SOCKET, force, &buffer_bytes, sizeof buffer_bytes) != 0) {
            ::setsockopt(fd, SOL_SOCKET, plain, &buffer_bytes, sizeof buffer_bytes);
        }
    }
    if (::bind(fd, local.sa(), local.length) != 0) {
        const int err = errno;
        ::close(fd);
        return sys_error(transport_errc::socket_failed, "udp bind " + local.to_string(), err);
    }
    udp_fd_ = fd;
    recvmsg_template_.msg_namelen = sizeof(sockaddr_storage);
    return ok();
}

result<connection_id> uring_transport::connect(const address& remote) {
    if (free_connections_.empty()) {
        ++stats_.connections_refused_full;
        return make_error(transport_errc::too_many_connections,
                          "all " + std::to_string(config_.max_connections) + " slots in use");
    }
    const int fd = ::socket(remote.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return sys_error(transport_errc::socket_failed, "socket", errno);
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const std::uint32_t index = free_connections_.back();
    free_connections_.pop_back();
    connection& c = connections_[index];
    c.fd = fd;
    c.state = conn_state::connecting;
    c.inbound = false;
    c.remote = remote;  // must outlive the connect request
    c.connect_in_flight = true;
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_connect(sqe, fd, c.remote.sa(), c.remote.length);
    sqe->flags |= IOSQE_IO_LINK;
    io_uring_sqe_set_data64(sqe, pack(op::connect, index, c.generation));
    // The linked timeout cancels the connect (-ECANCELED) if it takes too long.
    static thread_local __kernel_timespec timeout;
    to_timespec(config_.connect_timeout_ns, timeout);
    io_uring_sqe* link = get_sqe();
    io_uring_prep_link_timeout(link, &timeout, 0);
    io_uring_sqe_set_data64(link, pack(op::link_timeout, index, c.generation));
    ++stats_.connects;
    flush();
    return connection_id{index, c.generation};
}

void uring_transport::close(connection_id id) {
    if (id.index >= connections_.size()) return;
    connection& c = connections_[id.index];
    if (c.generation != id.generation || c.state == conn_state::free ||
        c.state == conn_state::closing) {
        return;
    }
    const bool unsent = !c.pending.empty() || c.send_in_flight || !c.in_flight.empty();
    if (c.state == conn_state::open && unsent) {
        // Bytes queued before close() (an Error frame, a last reply) still go out: the
        // socket is shut down when the last send completes.
        c.state = conn_state::closing;
        c.reason = close_reason::local_close;
        c.shutdown_after_flush = true;
        return;
    }
    begin_close(c, close_reason::local_close, 0);
}

void uring_transport::begin_close(connection& c, close_reason reason, int error) {
    if (c.state == conn_state::closing) return;
    c.state = conn_state::closing;
    c.reason = reason;
    c.error = error;
    // Shutting the socket down ends the multishot recv (and a pending connect) with a
    // completion; the connection is released once nothing of ours is in the kernel.
    ::shutdown(c.fd, SHUT_RDWR);
}

void uring_transport::open_connection(connection& c, std::uint32_t index) {
    int fd = c.fd;
    if (io_uring_register_files_update(&ring_, index, &fd, 1) == 1) c.registered = true;
    c.state = conn_state::open;
    c.pending.reserve_copies(std::size_t{64} << 10);
    c.in_flight.reserve_copies(std::size_t{64} << 10);
    arm_recv(c, index);
}

void uring_transport::maybe_finish_close(connection& c, std::uint32_t index,
                                         event_handler& handler) {
    if (c.state != conn_state::closing || c.recv_armed || c.send_in_flight ||
        c.zc_notifs_pending > 0 || c.connect_in_flight) {
        return;
    }
    if (c.registered) {
        int none = -1;
        io_uring_register_files_update(&ring_, index, &none, 1);
    }
    ::close(c.fd);
    const connection_id id{index, c.generation};
    const close_reason reason = c.reason;
    const int error = c.error;
    send_queue keep_pending, keep_in_flight;
    keep_pending.swap(c.pending);
    keep_in_flight.swap(c.in_flight);
    keep_pending.clear();  // lets go of the owners; keeps the capacity for the slot's next user
    keep_in_flight.clear();
    c = connection{};
    c.generation = (id.generation + 1) & 0xffffff;
    c.pending.swap(keep_pending);
    c.in_flight.swap(keep_in_flight);
    free_connections_.push_back(index);
    ++stats_.closes;
    handler.on_closed(id, reason, error);
}

capabilities uring_transport::caps() const noexcept {
    return {.streams = true, .datagrams = true, .max_datagram_bytes = config_.max_datagram_bytes};
}

}  // namespace ringmesh::transport
