// The kernel floor: what plain non-blocking sockets do with no library in the way.
// stream: length-prefixed frames batched into large writes, parsed from large reads.
// pingpong: one payload each way, both sides busy-polling recv.
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "bench/harness/harness.h"
#include "bench/harness/loopback_tcp.h"

namespace ringmesh::bench {
namespace {

// Busy-polls until all of `n` bytes are written or read (non-blocking sockets).
bool write_all(int fd, const std::byte* p, std::size_t n) {
    while (n > 0) {
        const ssize_t w = ::send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= static_cast<std::size_t>(w);
        } else if (w < 0 && errno != EAGAIN) {
            return false;
        }
    }
    return true;
}
bool read_all(int fd, std::byte* p, std::size_t n) {
    while (n > 0) {
        const ssize_t r = ::recv(fd, p, n, MSG_DONTWAIT);
        if (r > 0) {
            p += r;
            n -= static_cast<std::size_t>(r);
        } else if (r == 0 || (r < 0 && errno != EAGAIN)) {
            return false;
        }
    }
    return true;
}

run_result receiver(const run_config& c) {
    const int fd = accept_one(receiver_port(c, c.receiver_index));
    if (fd < 0) return run_result::failed("raw: accept failed");
    if (c.what == scenario::pingpong || c.what == scenario::rpc) {  // echo server
        std::vector<std::byte> buf(c.payload_bytes);
        while (read_all(fd, buf.data(), buf.size())) {
            if (!write_all(fd, buf.data(), buf.size()) || kind_of(buf.data()) == msg_end) break;
        }
        ::close(fd);
        return {};
    }
    receive_tally tally;
    std::vector<std::byte> buf(1 << 20);
    std::size_t have = 0;
    while (!tally.done) {
        const ssize_t r = ::recv(fd, buf.data() + have, buf.size() - have, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN)) break;
        if (r < 0) continue;
        have += static_cast<std::size_t>(r);
        std::size_t at = 0;
        while (have - at >= 4 + c.payload_bytes) {  // [len:4][payload]
            tally.on_message(buf.data() + at + 4, c.what == scenario::rate);
            at += 4 + c.payload_bytes;
        }
        std::memmove(buf.data(), buf.data() + at, have - at);
        have -= at;
    }
    ::close(fd);
    return tally.result(c.what == scenario::rate);
}

run_result sender(const run_config& c) {
    std::vector<int> fds;  // one per receiver: fan-out writes every batch to each
    for (int r = 0; r < receiver_count(c); ++r) {
        fds.push_back(connect_retrying(receiver_port(c, r)));
        if (fds.back() < 0) return run_result::failed("raw: connect failed");
    }
    const int fd = fds.front();
    std::vector<std::byte> msg(c.payload_bytes);
    const time_ns end = monotonic_clock::read() + static_cast<time_ns>(c.seconds * 1e9);
    if (c.what == scenario::pingpong || c.what == scenario::rpc) {  // 1 or rpc_window outstanding
        const run_result r = windowed_round_trips(
            c, c.what == scenario::rpc ? rpc_window : 1, msg,
            [fd](auto& m) { return write_all(fd, m.data(), m.size()); },
            [fd](auto& m) { return read_all(fd, m.data(), m.size()); });
        ::close(fd);
        return r;
    }
    // stream / rate: frames batched into one large write when the rate allows
    std::vector<std::byte> batch;
    batch.reserve(256 * 1024 + 4 + c.payload_bytes);
    const std::uint32_t len = static_cast<std::uint32_t>(c.payload_bytes);
    const rate_schedule schedule{monotonic_clock::read(),
                                 c.rate_per_s > 0 ? 1e9 / c.rate_per_s : 0};
    std::uint64_t seq = 0;
    for (time_ns now = monotonic_clock::read(); now < end; now = monotonic_clock::read()) {
        while (batch.size() < std::size_t{256} << 10) {
            const time_ns due = schedule.due(seq);
            if (c.rate_per_s > 0 && due > now) break;
            stamp(msg.data(), msg_data, seq++, c.rate_per_s > 0 ? due : now);
            const auto* l = reinterpret_cast<const std::byte*>(&len);
            batch.insert(batch.end(), l, l + 4);
            batch.insert(batch.end(), msg.begin(), msg.end());
        }
        for (int out : fds) {
            if (!batch.empty() && !write_all(out, batch.data(), batch.size())) {
                return run_result::failed("raw: write failed");
            }
        }
        batch.clear();
    }
    stamp(msg.data(), msg_end, seq, 0);
    const auto* l = reinterpret_cast<const std::byte*>(&len);
    batch.insert(batch.end(), l, l + 4);
    batch.insert(batch.end(), msg.begin(), msg.end());
    for (int out : fds) {
        write_all(out, batch.data(), batch.size());
        ::shutdown(out, SHUT_WR);
    }
    for (int out : fds) {
        char sink[64];
        while (::recv(out, sink, sizeof sink, 0) > 0) {
        }
        ::close(out);
    }
    return {};
}

bool supports(const run_config& c, std::string* why) {
    if (c.what == scenario::idle) {
        *why = "idle CPU is measured for ringmesh only";
        return false;
    }
    return true;
}

}  // namespace

const system_roles raw_floor_roles{"raw", receiver, sender, supports};

}  // namespace ringmesh::bench
