// The io_uring floor: the raw ping-pong again, through one ring per side the way the engine
// uses io_uring (SINGLE_ISSUER | DEFER_TASKRUN | TASKRUN_FLAG, multishot recv into a provided
// buffer ring, send, the ring polled in a busy loop) and nothing else. Next to `raw` (plain
// recv/send) it shows what io_uring itself costs per round trip on this kernel; next to
// ringmesh-tcp, what the engine adds on top.
#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "bench/harness/harness.h"
#include "bench/harness/loopback_tcp.h"

namespace ringmesh::bench {
namespace {

constexpr unsigned buffer_count = 16;
constexpr unsigned buffer_bytes = 16384;
constexpr std::uint64_t recv_tag = 1, send_tag = 2;

// One connected socket on one ring; every call on the thread that made it.
class ring_socket {
  public:
    bool open(int fd) {
        fd_ = fd;
        io_uring_params params{};
        params.flags =
            IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
        if (io_uring_queue_init_params(64, &ring_, &params) != 0) return false;
        ready_ = true;
        const std::size_t ring_bytes = buffer_count * sizeof(io_uring_buf);
        void* mem =
            ::mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED) return false;
        buffers_ = static_cast<io_uring_buf_ring*>(mem);
        io_uring_buf_reg reg{};
        reg.ring_addr = reinterpret_cast<std::uint64_t>(mem);
        reg.ring_entries = buffer_count;
        reg.bgid = 0;
        if (io_uring_register_buf_ring(&ring_, &reg, 0) != 0) return false;
        io_uring_buf_ring_init(buffers_);
        storage_.resize(std::size_t{buffer_count} * buffer_bytes);
        for (unsigned i = 0; i < buffer_count; ++i)
            give_back(i);
        arm_recv();
        return true;
    }
    ~ring_socket() {
        if (ready_) io_uring_queue_exit(&ring_);
        if (fd_ >= 0) ::close(fd_);
    }

    bool send(const std::vector<std::byte>& msg) {
        out_ = msg;  // the kernel reads it after we return: keep our own copy
        io_uring_sqe* sqe = next_sqe();
        if (sqe == nullptr) return false;
        io_uring_prep_send(sqe, fd_, out_.data(), out_.size(), MSG_NOSIGNAL);
        io_uring_sqe_set_data64(sqe, send_tag);
        return io_uring_submit(&ring_) >= 0;
    }
    // Busy-polls until msg.size() bytes arrived; false when the connection ended.
    bool receive(std::vector<std::byte>& msg) {
        while (inbox_.size() < msg.size()) {
            if (!reap()) return false;
        }
        std::memcpy(msg.data(), inbox_.data(), msg.size());
        inbox_.erase(inbox_.begin(), inbox_.begin() + static_cast<std::ptrdiff_t>(msg.size()));
        return true;
    }

  private:
    io_uring_sqe* next_sqe() {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        if (sqe == nullptr) {  // full: submit what is there and try once more
            io_uring_submit(&ring_);
            sqe = io_uring_get_sqe(&ring_);
        }
        return sqe;
    }
    void give_back(unsigned bid) {
        io_uring_buf_ring_add(buffers_, storage_.data() + std::size_t{bid} * buffer_bytes,
                              buffer_bytes, static_cast<unsigned short>(bid),
                              io_uring_buf_ring_mask(buffer_count), 0);
        io_uring_buf_ring_advance(buffers_, 1);
    }
    void arm_recv() {
        io_uring_sqe* sqe = next_sqe();
        if (sqe == nullptr) return;
        io_uring_prep_recv_multishot(sqe, fd_, nullptr, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = 0;
        io_uring_sqe_set_data64(sqe, recv_tag);
        io_uring_submit(&ring_);
    }
    // One pass: enter the kernel only when it marked the ring, then handle what completed.
    bool reap() {
        if (IO_URING_READ_ONCE(*ring_.sq.kflags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) {
            io_uring_get_events(&ring_);
        }
        io_uring_cqe* cqe;
        while (io_uring_peek_cqe(&ring_, &cqe) == 0) {
            const std::uint64_t tag = cqe->user_data;
            const int res = cqe->res;
            const unsigned flags = cqe->flags;
            io_uring_cqe_seen(&ring_, cqe);
            if (tag == send_tag) {
                if (res < 0) return false;
                continue;
            }
            if (res == 0 || (res < 0 && res != -ENOBUFS)) return false;
            if (res > 0) {
                const unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
                const std::byte* data = storage_.data() + std::size_t{bid} * buffer_bytes;
                inbox_.insert(inbox_.end(), data, data + res);
                give_back(bid);
            }
            if (!(flags & IORING_CQE_F_MORE)) arm_recv();
        }
        return true;
    }

    int fd_ = -1;
    io_uring ring_{};
    bool ready_ = false;
    io_uring_buf_ring* buffers_ = nullptr;
    std::vector<std::byte> storage_;
    std::vector<std::byte> inbox_;
    std::vector<std::byte> out_;
};

run_result receiver(const run_config& c) {  // the echo side
    const int fd = accept_one(c.port);
    if (fd < 0) return run_result::failed("raw-uring: accept failed");
    ring_socket s;
    if (!s.open(fd)) return run_result::failed("raw-uring: ring setup failed");
    std::vector<std::byte> msg(c.payload_bytes);
    while (s.receive(msg)) {
        if (!s.send(msg) || kind_of(msg.data()) == msg_end) break;
    }
    return {};
}

run_result sender(const run_config& c) {  // the client: measures round trips
    const int fd = connect_retrying(c.port);
    if (fd < 0) return run_result::failed("raw-uring: connect failed");
    ring_socket s;
    if (!s.open(fd)) return run_result::failed("raw-uring: ring setup failed");
    std::vector<std::byte> msg(c.payload_bytes);
    return windowed_round_trips(
        c, 1, msg, [&](auto& m) { return s.send(m); }, [&](auto& m) { return s.receive(m); });
}

bool supports(const run_config& c, std::string* why) {
    if (c.what != scenario::pingpong) {
        *why = "the io_uring floor is a ping-pong only";
        return false;
    }
    return true;
}

}  // namespace

const system_roles raw_uring_roles{"raw-uring", receiver, sender, supports};

}  // namespace ringmesh::bench
