// The storage floor of the replicate scenario: what one durable append costs on this disk,
// without any replication: 4 KiB written at the end of a file, then fdatasync, repeated.
#include <fcntl.h>
#include <unistd.h>

#include <system_error>
#include <thread>
#include <vector>

#include "bench/replicate/child_process.h"
#include "bench/replicate/replicate.h"
#include "engine/core/clock.h"

namespace ringmesh::bench {

measured measured::from(const latency_histogram& h, double seconds) {
    measured m;
    m.ok = h.count() > 0;
    if (!m.ok) m.error = "nothing measured";
    m.count = h.count();
    m.seconds = seconds;
    m.p50_us = static_cast<double>(h.quantile(0.5)) / 1e3;
    m.p99_us = static_cast<double>(h.quantile(0.99)) / 1e3;
    m.p999_us = static_cast<double>(h.quantile(0.999)) / 1e3;
    return m;
}

namespace {

measured one_writer(const std::string& path, double seconds) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    if (fd < 0)
        return measured::failed("open " + path + ": " + std::generic_category().message(errno));
    std::vector<char> block(4096, 'r');
    latency_histogram h;
    const time_ns start = monotonic_clock::read();
    const time_ns end = start + static_cast<time_ns>(seconds * 1e9);
    time_ns now = start;
    // Bounded by time and by count (a 1 GiB file at most).
    for (int i = 0; i < 262'144 && now < end; ++i) {
        const time_ns t0 = monotonic_clock::read();
        if (::write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size()) ||
            ::fdatasync(fd) != 0) {
            const std::string why = std::generic_category().message(errno);
            ::close(fd);
            ::unlink(path.c_str());
            return measured::failed("append + fdatasync: " + why);
        }
        now = monotonic_clock::read();
        h.record(now - t0);
    }
    ::close(fd);
    ::unlink(path.c_str());
    return measured::from(h, static_cast<double>(now - start) / 1e9);
}

}  // namespace

measured storage_floor(const std::string& dir, double seconds, int writers) {
    std::vector<measured> each(static_cast<std::size_t>(writers));
    std::vector<std::thread> threads;
    threads.reserve(static_cast<std::size_t>(writers));
    for (int i = 0; i < writers; ++i) {
        threads.emplace_back([&each, &dir, seconds, i] {
            each[static_cast<std::size_t>(i)] =
                one_writer(in_dir(dir, "storage-floor-" + std::to_string(i) + ".dat"), seconds);
        });
    }
    for (std::thread& t : threads)
        t.join();
    for (const measured& m : each) {
        if (!m.ok) return m;
    }
    return each.front();  // writer 0's distribution: the others ran alongside it
}

}  // namespace ringmesh::bench
