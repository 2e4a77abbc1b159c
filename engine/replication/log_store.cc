#include "engine/replication/log_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "engine/core/errc.h"
#include "engine/replication/crc32c.h"
#include "engine/replication/log_records.h"

namespace ringmesh::replication {

namespace {

using namespace log_records;

constexpr std::size_t snapshot_header_bytes = 4096;
constexpr char snapshot_magic[8] = {'R', 'M', 'S', 'N', 'A', 'P', '0', '1'};

error io_error(const std::string& what, int err) {
    return make_error(storage_errc::io_error, what + ": " + errno_text(err));
}

std::string segment_name(std::uint64_t seqno) {
    char name[32];
    std::snprintf(name, sizeof(name), "seg-%016llx.log", static_cast<unsigned long long>(seqno));
    return name;
}

std::string snapshot_name(log_index index) {
    char name[40];
    std::snprintf(name, sizeof(name), "snap-%020llu.snap", static_cast<unsigned long long>(index));
    return name;
}

result<std::vector<std::byte>> read_file(int fd, std::uint64_t offset, std::size_t length) {
    std::vector<std::byte> out(length);
    std::size_t done = 0;
    while (done < length) {
        const ssize_t n =
            ::pread(fd, out.data() + done, length - done, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return io_error("pread", errno);
        if (n == 0) break;
        done += static_cast<std::size_t>(n);
    }
    out.resize(done);
    return out;
}

std::vector<std::string> file_names(const std::string& dir) {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec))
        names.push_back(e.path().filename().string());
    return names;
}

// The snapshot file's header: magic, meta, data checksum, and a checksum of the header.
std::vector<std::byte> snapshot_header(const snapshot_meta& meta, std::uint32_t data_crc) {
    std::vector<std::byte> members = encode_members(meta.members);
    std::vector<std::byte> h(snapshot_header_bytes);
    std::memcpy(h.data(), snapshot_magic, 8);
    put_u64(h.data() + 12, meta.index);
    put_u64(h.data() + 20, meta.term);
    put_u64(h.data() + 28, meta.size_bytes);
    put_u32(h.data() + 36, data_crc);
    put_u32(h.data() + 40, static_cast<std::uint32_t>(members.size()));
    std::memcpy(h.data() + 44, members.data(), std::min(members.size(), h.size() - 44));
    put_u32(h.data() + 8, crc32c({h.data() + 12, h.size() - 12}));
    return h;
}

}  // namespace

struct log_store::group {
    std::vector<std::byte> records;
    std::vector<std::uint64_t> seqs;
    std::vector<raft_message> chunks;  // their bytes live here until the writes complete
    std::vector<std::byte> chunk_header;
    std::optional<snapshot_meta> installed;
    std::string installed_name;  // the kernel reads it when the chain is submitted
    log_index compact = 0;
    int failures = 0;
    int pending = 0;
};

log_store::log_store(disk_ring& ring, log_store_config config)
    : ring_(ring), config_(std::move(config)) {}

log_store::~log_store() {
    // Whoever owned us is going away: what completes now is waited for, not reported.
    on_durable = nullptr;
    on_failure = nullptr;
    closing_ = true;
    while (in_flight_ || reads_in_flight_ > 0)
        ring_.reap(true);
    for (segment& s : segments_) {
        if (s.fd >= 0) ::close(s.fd);
    }
    if (snapshot_fd_ >= 0) ::close(snapshot_fd_);
    if (incoming_fd_ >= 0) ::close(incoming_fd_);
    if (dir_fd_ >= 0) ::close(dir_fd_);
}

std::string log_store::path_of(const std::string& name) const {
    return config_.dir + "/" + name;
}

result<std::unique_ptr<log_store>> log_store::open(disk_ring& ring, log_store_config config) {
    if (config.dir.empty()) return make_error(storage_errc::bad_config, "no directory given");
    if (config.segment_bytes < 4096)
        return make_error(storage_errc::bad_config, "segment_bytes below 4096");
    if (::mkdir(config.dir.c_str(), 0750) != 0 && errno != EEXIST)
        return io_error("mkdir " + config.dir, errno);
    std::unique_ptr<log_store> s(new log_store(ring, std::move(config)));
    s->dir_fd_ = ::open(s->config_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dir_fd_ < 0) return io_error("open " + s->config_.dir, errno);
    if (result<void> r = s->recover(); !r) return r.err();
    return s;
}

result<void> log_store::recover_snapshot() {
    // An install or a save that never finished.
    ::unlink(path_of("snapshot.tmp").c_str());
    ::unlink(path_of("snapshot.save.tmp").c_str());
    std::vector<std::string> snaps;
    for (const std::string& name : file_names(config_.dir)) {
        if (name.starts_with("snap-") && name.ends_with(".snap")) snaps.push_back(name);
    }
    std::sort(snaps.begin(), snaps.end());
    if (snaps.empty()) return ok();
    for (std::size_t i = 0; i + 1 < snaps.size(); ++i)
        ::unlink(path_of(snaps[i]).c_str());  // superseded; a crash left it behind
    const std::string path = path_of(snaps.back());
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return io_error("open " + path, errno);
    snapshot_fd_ = fd;
    result<std::vector<std::byte>> head = read_file(fd, 0, snapshot_header_bytes);
    if (!head) return head.err();
    const std::vector<std::byte>& h = *head;
    if (h.size() != snapshot_header_bytes || std::memcmp(h.data(), snapshot_magic, 8) != 0 ||
        get_u32(h.data() + 8) != crc32c({h.data() + 12, h.size() - 12})) {
        return make_error(storage_errc::corrupted, path + ": the snapshot header is damaged");
    }
    snapshot_meta meta;
    meta.index = get_u64(h.data() + 12);
    meta.term = get_u64(h.data() + 20);
    meta.size_bytes = get_u64(h.data() + 28);
    const std::uint32_t members_bytes = get_u32(h.data() + 40);
    std::optional<group_members> members =
        members_bytes <= h.size() - 44 ? decode_members({h.data() + 44, std::size_t{members_bytes}})
                                       : std::nullopt;
    if (!members) return make_error(storage_errc::corrupted, path + ": bad member list");
    meta.members = std::move(*members);
    result<std::vector<std::byte>> data =
        read_file(fd, snapshot_header_bytes, static_cast<std::size_t>(meta.size_bytes));
    if (!data) return data.err();
    if (data->size() != meta.size_bytes || crc32c(*data) != get_u32(h.data() + 36))
        return make_error(storage_errc::corrupted, path + ": the snapshot data is damaged");
    snapshot_ = meta;
    return ok();
}

result<void> log_store::recover() {
    if (result<void> r = recover_snapshot(); !r) return r;
    std::vector<std::uint64_t> seqnos;
    for (const std::string& name : file_names(config_.dir)) {
        unsigned long long seqno = 0;
        char tail[8] = {};
        if (std::sscanf(name.c_str(), "seg-%16llx.%3s", &seqno, tail) == 2 &&
            std::strcmp(tail, "log") == 0)
            seqnos.push_back(seqno);
    }
    std::sort(seqnos.begin(), seqnos.end());
    recovered_ = {};
    recovered_.snapshot = snapshot_;
    for (std::size_t i = 0; i < seqnos.size(); ++i) {
        segment s;
        s.seqno = seqnos[i];
        const std::string path = path_of(segment_name(s.seqno));
        s.fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
        if (s.fd < 0) return io_error("open " + path, errno);
        segments_.push_back(s);
        if (result<void> r = replay_segment(segments_.back(), i + 1 == seqnos.size()); !r) return r;
    }
    state_ = recovered_.state;
    // Entries the snapshot covers are not the log's any more.
    if (snapshot_) {
        std::erase_if(recovered_.entries,
                      [this](const log_entry& e) { return e.index < snapshot_->index; });
    }
    if (segments_.empty()) return add_segment();
    return ok();
}

result<void> log_store::replay_segment(segment& s, bool last) {
    struct stat st {};
    if (::fstat(s.fd, &st) != 0) return io_error("fstat", errno);
    result<std::vector<std::byte>> file = read_file(s.fd, 0, static_cast<std::size_t>(st.st_size));
    if (!file) return file.err();
    const std::string path = path_of(segment_name(s.seqno));
    const segment_scan scan = scan_segment(*file, s.seqno, last, recovered_);
    if (scan.what == segment_scan::verdict::corrupted) {
        return make_error(storage_errc::corrupted,
                          path + ": " + scan.problem +
                              ": acknowledged data is damaged; wipe the directory to rebuild "
                              "this replica from its peers");
    }
    if (scan.what == segment_scan::verdict::torn) {
        // Cut it off, durably, so that appends continue on clean ground.
        std::vector<std::byte> zero(scan.data_end - scan.records_end);
        if (::pwrite(s.fd, zero.data(), zero.size(), static_cast<off_t>(scan.records_end)) !=
                static_cast<ssize_t>(zero.size()) ||
            ::fdatasync(s.fd) != 0)
            return io_error("cutting the torn tail of " + path, errno);
        stats_.torn_bytes_cut += zero.size();
    }
    s.written = scan.records_end;
    s.max_index = scan.max_index;
    return ok();
}

result<void> log_store::add_segment() {
    segment s;
    s.seqno = segments_.empty() ? 1 : segments_.back().seqno + 1;
    const std::string path = path_of(segment_name(s.seqno));
    s.fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (s.fd < 0) return io_error("open " + path, errno);
    // Preallocated, so that appends never extend the file (no size change to sync) and a full
    // disk shows at creation, not in the middle of a group commit.
    if (const int rc = ::posix_fallocate(s.fd, 0, static_cast<off_t>(config_.segment_bytes));
        rc != 0) {
        ::close(s.fd);
        return io_error("fallocate " + path, rc);
    }
    if (::fsync(s.fd) != 0 || ::fsync(dir_fd_) != 0) {
        ::close(s.fd);
        return io_error("fsync " + path, errno);
    }
    segments_.push_back(s);
    ++stats_.segments_created;
    return ok();
}

bool log_store::has_queued() const noexcept {
    return !queued_records_.empty() || !queued_chunks_.empty() || queued_compact_ != 0;
}

void log_store::append(raft_ready& ready) {
    for (const log_entry& e : ready.entries) {
        append_entry(queued_records_, e);
        max_queued_index_ = std::max(max_queued_index_, e.index);
    }
    // The state goes after the entries: its commit index may point at them, and a torn write
    // keeps a prefix of the records, so a commit that survives has its entries.
    if (ready.state) {
        state_ = *ready.state;
        append_state(queued_records_, state_);
    }
    for (raft_message& m : ready.snapshot_chunks)
        queued_chunks_.push_back(std::move(m));
    if (ready.compact_through != 0)
        queued_compact_ = std::max(queued_compact_, ready.compact_through);
    if (ready.persist_seq != 0) queued_seqs_.push_back(ready.persist_seq);
}

std::size_t log_store::flush(time_ns now) {
    if (in_flight_ || failed_ || (queued_seqs_.empty() && !has_queued())) return 0;
    auto g = std::make_shared<group>();
    g->seqs = std::move(queued_seqs_);
    g->chunks = std::move(queued_chunks_);
    g->compact = std::exchange(queued_compact_, 0);
    queued_seqs_.clear();
    queued_chunks_.clear();
    auto done = [this, g, now](int res) {
        if (res < 0) ++g->failures;
        if (--g->pending == 0) complete(g, now);
    };
    auto link = [&](io_uring_sqe* sqe) { io_uring_sqe_set_flags(sqe, IOSQE_IO_LINK); };
    io_uring_sqe* last = nullptr;
    // A chain must reach the kernel in one submission: room for all of it first.
    ring_.reserve(2 * g->chunks.size() + 8);

    // 1. Received snapshot chunks into snapshot.tmp; the last one makes it current: header,
    //    fsync, rename, fsync of the directory, all before the log records that say so.
    for (raft_message& m : g->chunks) {
        if (m.offset == 0) {
            if (incoming_fd_ >= 0) ::close(incoming_fd_);
            incoming_fd_ = ::open(path_of("snapshot.tmp").c_str(),
                                  O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
            incoming_crc_ = 0;
            if (incoming_fd_ < 0) {
                fail("open snapshot.tmp", errno);
                return 0;
            }
        }
        incoming_crc_ = crc32c(m.chunk, incoming_crc_);
        if (!m.chunk.empty()) {
            last = ring_.prepare(done);
            io_uring_prep_write(last, incoming_fd_, m.chunk.data(),
                                static_cast<unsigned>(m.chunk.size()),
                                snapshot_header_bytes + m.offset);
            link(last);
            ++g->pending;
        }
        if (m.last_chunk) {
            g->installed = m.snapshot;
            g->chunk_header = snapshot_header(m.snapshot, incoming_crc_);
            g->installed_name = snapshot_name(m.snapshot.index);
            last = link_make_durable(incoming_fd_, g->chunk_header, "snapshot.tmp",
                                     g->installed_name, done);
            g->pending += make_durable_steps;
        }
    }
    if (g->installed) append_installed(queued_records_, *g->installed);

    // 2. The log records: into the active segment, or a fresh one when they do not fit.
    // The buffers take turns (one group commit is in flight at a time): the one the last
    // commit wrote, with its capacity, collects the next records, so a busy log does not
    // allocate (and fault in) a fresh megabyte buffer per commit.
    g->records.swap(queued_records_);
    queued_records_.swap(spare_records_);
    queued_records_.clear();
    if (!g->records.empty()) {
        segment* s = &segments_.back();
        if (s->written > 0 && s->written + g->records.size() + 64 > config_.segment_bytes) {
            if (result<void> r = add_segment(); !r) {
                failed_ = true;
                if (on_failure) on_failure(r.err());
                return 0;
            }
            s = &segments_.back();
        }
        if (s->written == 0) {
            // A segment opens with its header and the hard state, so that older ones can be
            // deleted whole once a snapshot covers their entries.
            append_segment_header(queued_records_, s->seqno);
            append_state(queued_records_, state_);
            queued_records_.insert(queued_records_.end(), g->records.begin(), g->records.end());
            g->records = std::move(queued_records_);
            queued_records_.clear();
        }
        last = ring_.prepare(done);
        io_uring_prep_write(last, s->fd, g->records.data(),
                            static_cast<unsigned>(g->records.size()), s->written);
        link(last);
        last = ring_.prepare(done);
        io_uring_prep_fsync(last, s->fd, IORING_FSYNC_DATASYNC);
        g->pending += 2;
        s->written += g->records.size();
        s->max_index = std::max(s->max_index, max_queued_index_);
        stats_.bytes_written += g->records.size();
        ++stats_.fsyncs;
    }
    max_queued_index_ = 0;
    if (last != nullptr) io_uring_sqe_set_flags(last, 0);  // the chain ends here
    if (g->pending == 0) {
        complete(g, now);  // nothing to write (a compaction, or an empty ready)
        return 1;
    }
    in_flight_ = true;
    ring_.submit();
    return 1;
}

void log_store::complete(const std::shared_ptr<group>& g, time_ns submitted) {
    in_flight_ = false;
    if (g->failures > 0) {
        fail("a group commit", EIO);
        return;
    }
    ++stats_.groups;
    if (g->records.capacity() > spare_records_.capacity()) spare_records_.swap(g->records);
    stats_.readies += g->seqs.size();
    stats_.group_commit_ns.record(monotonic_clock::read() - submitted);
    if (g->installed) {
        make_current(*g->installed, incoming_fd_);
        incoming_fd_ = -1;
    }
    if (g->compact != 0) compact(g->compact);
    for (std::uint64_t seq : g->seqs) {
        if (on_durable) on_durable(seq);
    }
}

void log_store::compact(log_index through) {
    // Whole segments only, never the active one, and only below the current snapshot.
    if (!snapshot_ || through > snapshot_->index) return;
    while (segments_.size() > 1 && segments_.front().max_index <= through) {
        segment& s = segments_.front();
        ::close(s.fd);
        ::unlink(path_of(segment_name(s.seqno)).c_str());
        segments_.erase(segments_.begin());
        ++stats_.segments_deleted;
    }
}

void log_store::fail(const std::string& what, int err) {
    failed_ = true;
    if (on_failure) on_failure(io_error(what, err));
}

void log_store::save_snapshot(const snapshot_meta& meta, std::vector<std::byte> data,
                              std::function<void(result<void>)> done) {
    snapshot_meta m = meta;
    m.size_bytes = data.size();
    const std::string tmp = "snapshot.save.tmp";
    const int fd = ::open(path_of(tmp).c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        done(io_error("open " + tmp, errno));
        return;
    }
    struct job {
        std::vector<std::byte> header;
        std::vector<std::byte> data;
        std::string final_name;
        int fd = -1;
        int pending = 0;
        int failures = 0;
    };
    auto j = std::make_shared<job>();
    j->header = snapshot_header(m, crc32c(data));
    j->data = std::move(data);
    j->final_name = snapshot_name(m.index);
    j->fd = fd;
    auto finish = [this, j, m, done = std::move(done)](int res) {
        if (res < 0) ++j->failures;
        if (--j->pending > 0) return;
        if (j->failures > 0) {
            ::close(j->fd);
            done(io_error("writing snapshot " + j->final_name, EIO));
            return;
        }
        // Durable: it replaces the current snapshot (unless an install overtook it).
        if (snapshot_ && snapshot_->index >= m.index) {
            ::close(j->fd);
            ::unlink(path_of(j->final_name).c_str());
        } else {
            make_current(m, j->fd);
        }
        done(ok());
    };
    ring_.reserve(1 + make_durable_steps);
    if (!j->data.empty()) {
        io_uring_sqe* sqe = ring_.prepare(finish);
        io_uring_prep_write(sqe, fd, j->data.data(), static_cast<unsigned>(j->data.size()),
                            snapshot_header_bytes);
        io_uring_sqe_set_flags(sqe, IOSQE_IO_LINK);
        ++j->pending;
    }
    io_uring_sqe* last = link_make_durable(fd, j->header, tmp.c_str(), j->final_name, finish);
    io_uring_sqe_set_flags(last, 0);  // the chain ends here
    j->pending += make_durable_steps;
    ring_.submit();
}

io_uring_sqe* log_store::link_make_durable(int fd, std::span<const std::byte> header,
                                           const char* temp_name, const std::string& final_name,
                                           const disk_ring::completion& done) {
    io_uring_sqe* sqe = ring_.prepare(done);
    io_uring_prep_write(sqe, fd, header.data(), static_cast<unsigned>(header.size()), 0);
    io_uring_sqe_set_flags(sqe, IOSQE_IO_LINK);
    sqe = ring_.prepare(done);
    io_uring_prep_fsync(sqe, fd, 0);
    io_uring_sqe_set_flags(sqe, IOSQE_IO_LINK);
    sqe = ring_.prepare(done);
    io_uring_prep_renameat(sqe, dir_fd_, temp_name, dir_fd_, final_name.c_str(), 0);
    io_uring_sqe_set_flags(sqe, IOSQE_IO_LINK);
    sqe = ring_.prepare(done);
    io_uring_prep_fsync(sqe, dir_fd_, 0);
    io_uring_sqe_set_flags(sqe, IOSQE_IO_LINK);
    return sqe;
}

void log_store::make_current(const snapshot_meta& meta, int fd) {
    if (snapshot_fd_ >= 0) ::close(snapshot_fd_);
    if (snapshot_) ::unlink(path_of(snapshot_name(snapshot_->index)).c_str());
    snapshot_fd_ = fd;
    snapshot_ = meta;
    ++stats_.snapshots_written;
}

result<std::vector<std::byte>> log_store::read_snapshot_data() const {
    if (!snapshot_ || snapshot_fd_ < 0) return std::vector<std::byte>{};
    return read_file(snapshot_fd_, snapshot_header_bytes,
                     static_cast<std::size_t>(snapshot_->size_bytes));
}

bool log_store::read_snapshot_chunk(const snapshot_meta& meta, std::uint64_t offset,
                                    std::uint32_t length,
                                    std::function<void(std::vector<std::byte> bytes)> done) {
    if (!snapshot_ || snapshot_->index != meta.index || snapshot_fd_ < 0 ||
        offset + length > snapshot_->size_bytes)
        return false;
    auto buffer = std::make_shared<std::vector<std::byte>>(length);
    io_uring_sqe* sqe =
        ring_.prepare([this, buffer, length, done = std::move(done)](int res) mutable {
            --reads_in_flight_;
            if (closing_) return;
            if (res != static_cast<int>(length)) buffer->clear();
            done(std::move(*buffer));
        });
    // The ring takes its reference to the file at submission, so a snapshot replaced (and
    // its fd closed) before the read completes does not disturb it.
    io_uring_prep_read(sqe, snapshot_fd_, buffer->data(), length, snapshot_header_bytes + offset);
    ++reads_in_flight_;
    ring_.submit();
    return true;
}

}  // namespace ringmesh::replication
