#include "engine/replication/disk_ring.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include "engine/core/errc.h"
#include "engine/core/shard.h"

namespace ringmesh::replication {

namespace {

class storage_category_impl final : public std::error_category {
  public:
    const char* name() const noexcept override { return "ringmesh.storage"; }
    std::string message(int code) const override {
        switch (static_cast<storage_errc>(code)) {
            case storage_errc::not_supported:
                return "not supported here";
            case storage_errc::io_error:
                return "storage I/O failed";
            case storage_errc::corrupted:
                return "stored data is corrupted";
            case storage_errc::bad_config:
                return "invalid storage configuration";
        }
        return "unknown storage error";
    }
};

}  // namespace

const std::error_category& storage_category() noexcept {
    static const storage_category_impl category;
    return category;
}

result<std::unique_ptr<disk_ring>> disk_ring::create(unsigned entries) {
    std::unique_ptr<disk_ring> r(new disk_ring());
    const int rc = io_uring_queue_init(entries, &r->ring_, 0);
    if (rc == -ENOSYS || rc == -EPERM)
        return make_error(storage_errc::not_supported, "io_uring_queue_init: " + errno_text(-rc));
    if (rc != 0)
        return make_error(storage_errc::io_error, "io_uring_queue_init: " + errno_text(-rc));
    r->ready_ = true;
    return r;
}

disk_ring::~disk_ring() {
    detach();
    if (ready_) {
        // Let what was submitted finish: its buffers belong to callers that outlive us only
        // as long as this waits.
        while (in_flight_ > 0)
            reap(true);
        io_uring_queue_exit(&ring_);
    }
    if (event_fd_ >= 0) ::close(event_fd_);
}

io_uring_sqe* disk_ring::prepare(completion done) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) {
        submit();
        sqe = io_uring_get_sqe(&ring_);
        while (sqe == nullptr) {  // the completion queue is full: make room
            reap(true);
            submit();
            sqe = io_uring_get_sqe(&ring_);
        }
    }
    std::uint32_t slot = 0;
    if (free_slots_.empty()) {
        slot = static_cast<std::uint32_t>(callbacks_.size());
        callbacks_.emplace_back();
    } else {
        slot = free_slots_.back();
        free_slots_.pop_back();
    }
    callbacks_[slot] = std::move(done);
    io_uring_sqe_set_data64(sqe, slot);
    ++in_flight_;
    return sqe;
}

void disk_ring::reserve(unsigned count) {
    if (io_uring_sq_space_left(&ring_) < count) submit();
}

unsigned disk_ring::submit() {
    const int n = io_uring_submit(&ring_);
    return n > 0 ? static_cast<unsigned>(n) : 0;
}

std::size_t disk_ring::reap(bool wait) {
    if (in_flight_ == 0) return 0;
    io_uring_cqe* cqe = nullptr;
    if (wait) {
        submit();
        if (io_uring_wait_cqe(&ring_, &cqe) != 0) return 0;
    }
    std::size_t done = 0;
    while (io_uring_peek_cqe(&ring_, &cqe) == 0) {
        const auto slot = static_cast<std::uint32_t>(io_uring_cqe_get_data64(cqe));
        const int res = cqe->res;
        io_uring_cqe_seen(&ring_, cqe);
        completion fn = std::move(callbacks_[slot]);
        callbacks_[slot] = nullptr;
        free_slots_.push_back(slot);
        --in_flight_;
        ++done;
        if (fn) fn(res);
    }
    if (done > 0 && event_fd_ >= 0) {
        std::uint64_t drain = 0;
        (void)::read(event_fd_, &drain, sizeof(drain));
    }
    return done;
}

int disk_ring::ready_fd() {
    if (event_fd_ >= 0) return event_fd_;
    const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) return -1;
    if (io_uring_register_eventfd(&ring_, fd) != 0) {
        ::close(fd);
        return -1;
    }
    event_fd_ = fd;
    return event_fd_;
}

void disk_ring::attach(shard& s) {
    detach();
    attached_ = &s;
    poller_ = s.add_poller(poll_step::protocol, [this](time_ns) { return reap(false); });
    shard::wait_source source;
    source.ready_fd = [this] { return ready_fd(); };
    wait_source_ = s.add_wait_source(std::move(source));
}

void disk_ring::detach() {
    if (attached_ == nullptr) return;
    attached_->remove_poller(poller_);
    attached_->remove_wait_source(wait_source_);
    attached_ = nullptr;
}

}  // namespace ringmesh::replication
