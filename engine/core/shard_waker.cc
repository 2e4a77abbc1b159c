#include "engine/core/shard_waker.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "engine/core/errc.h"

namespace ringmesh {

shard_waker::shard_waker() = default;

shard_waker::~shard_waker() {
    if (fd_ >= 0) ::close(fd_);
}

result<void> shard_waker::open() {
    if (fd_ >= 0) return ok();
    fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd_ < 0) {
        return make_error(core_errc::system_error, std::string("eventfd: ") + errno_text(errno));
    }
    return ok();
}

bool shard_waker::wait_on_fds(std::span<const int> fds, time_ns timeout_ns) {
    constexpr std::size_t most = 16;
    RM_ASSERT(fds.size() <= most, "too many wake fds on one shard");
    std::array<pollfd, most> pfds{};
    for (std::size_t i = 0; i < fds.size(); ++i)
        pfds[i] = {fds[i], POLLIN, 0};
    timespec ts{};
    timespec* tsp = to_timespec(timeout_ns, ts);
    const int ready = ::ppoll(pfds.data(), fds.size(), tsp, nullptr);
    if (ready <= 0) return false;  // timeout, or EINTR: the loop simply runs again
    for (std::size_t i = 0; i < fds.size(); ++i) {
        if (pfds[i].revents & POLLIN) drain(fds[i]);
    }
    return true;
}

void shard_waker::drain(int fd) noexcept {
    std::uint64_t count = 0;
    [[maybe_unused]] const ssize_t n = ::read(fd, &count, sizeof count);  // re-arm
}

void shard_waker::signal() noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(fd_, &one, sizeof one);
    wakeups_sent_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace ringmesh
