#include "tools/node_replication.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "engine/cluster/raft_placement.h"
#include "engine/core/errc.h"
#include "engine/core/random.h"
#include "engine/replication/log_store.h"

namespace ringmesh::tools {

void replication_board::publish(shard_id shard, std::size_t groups, std::string status_lines,
                                std::string not_ready) {
    std::lock_guard lock(mutex_);
    entry& e = shards_.at(shard);
    e.published = true;
    e.groups = groups;
    e.status_lines = std::move(status_lines);
    e.not_ready = std::move(not_ready);
}

void replication_board::expect(shard_id shard) {
    std::lock_guard lock(mutex_);
    shards_.at(shard).expected = true;
}

void replication_board::write_status(std::FILE* f) const {
    std::lock_guard lock(mutex_);
    std::size_t groups = 0;
    for (const entry& e : shards_)
        groups += e.groups;
    std::fprintf(f, "# replication: %zu group(s)\n", groups);
    std::fprintf(f, "%-6s %-10s %6s %-12s %10s %10s %10s %-7s %8s %5s\n", "group", "role", "term",
                 "leader", "commit", "applied", "last", "serves", "size", "shard");
    for (const entry& e : shards_)
        std::fputs(e.status_lines.c_str(), f);
}

std::string replication_board::not_ready_reason() const {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < shards_.size(); ++i) {
        const entry& e = shards_[i];
        if (e.expected && !e.published) return "replication_starting_shard_" + std::to_string(i);
        if (!e.not_ready.empty()) return e.not_ready;
    }
    return {};
}

replication::node_id node_replication::self_id(const replication_settings& settings,
                                               std::string_view node_name) {
    for (const auto& p : settings.replicas) {
        if (p.name == node_name) return p.id;
    }
    return replication::no_node;
}

result<std::unique_ptr<node_replication>> node_replication::start(
    shard& s, messaging::service_port& e, const std::string& cluster_id,
    const replication_settings& settings, unsigned shard_count) {
    std::vector<std::uint32_t> ids;
    for (std::uint32_t g : settings.all_groups()) {
        if (cluster::shard_for_group(g, shard_count) == s.id()) ids.push_back(g);
    }
    if (ids.empty()) return std::unique_ptr<node_replication>();
    std::sort(ids.begin(), ids.end());
    std::unique_ptr<node_replication> r(new node_replication());
    r->shard_ = &s;
    std::error_code ec;
    std::filesystem::create_directories(settings.dir, ec);
    if (ec)
        return make_error(core_errc::bad_config,
                          "replication.dir " + settings.dir + ": " + ec.message());
    auto ring = replication::disk_ring::create();
    if (!ring) return ring.err();
    r->ring_ = std::move(ring).value();
    r->link_ = std::make_unique<cluster::raft_link>(e, settings.replicas);
    const replication::node_id self = self_id(settings, e.node_id());
    replication::raft_host_config hc;
    hc.self = self;
    hc.cluster_id = cluster_id;
    r->host_ = std::make_unique<replication::raft_host>(*r->ring_, r->link_->host_config(hc));
    r->link_->attach(*r->host_);
    for (std::uint32_t g : ids) {
        group& grp = r->groups_.emplace_back();
        grp.id = g;
        replication::raft_application app;
        if (g == settings.topic_group) {
            topics::topic_service_config tc;
            tc.group = g;
            tc.snapshot_every = settings.snapshot_every;
            tc.limits.retention_bytes = settings.retention_bytes;
            tc.limits.retention_ms = settings.retention_ms;
            grp.topics = std::make_unique<topics::topic_service>(e, *r->link_, tc);
            app = grp.topics->application();
        } else {
            kv::kv_service_config kc;
            kc.group = g;
            kc.method = kv::method_of_group(g);
            kc.snapshot_every = settings.snapshot_every;
            kc.allow_lease_reads = settings.lease_reads;
            grp.kv = std::make_unique<kv::kv_service>(e, *r->link_, kc);
            app = grp.kv->application();
        }
        replication::raft_config c;
        c.id = self;
        c.group = g;
        for (const auto& p : settings.replicas)
            c.initial_members.voters.push_back(p.id);
        c.heartbeat_interval = settings.heartbeat;
        c.election_timeout_min = settings.election_timeout_min;
        c.election_timeout_max = settings.election_timeout_max;
        c.rng_seed = random_source::os_seed();
        replication::log_store_config lc;
        lc.dir = settings.dir + "/group-" + std::to_string(g);
        lc.segment_bytes = settings.segment_bytes;
        auto added = r->host_->add_group(c, lc, std::move(app), s.now_ns());
        if (!added) {
            error failed = added.err();
            failed.detail = "group " + std::to_string(g) + ": " + failed.detail;
            return failed;
        }
        if (grp.kv) grp.kv->attach(*r->host_);
        if (grp.topics) grp.topics->attach(*r->host_);
    }
    r->host_->attach(s);
    return r;
}

node_replication::~node_replication() {
    if (shard_ != nullptr) shard_->timers().cancel(publish_timer_);
    host_.reset();  // no more callbacks into the services
    groups_.clear();
    link_.reset();
}

topics::topic_service* node_replication::topic_service() const {
    for (const group& g : groups_) {
        if (g.topics) return g.topics.get();
    }
    return nullptr;
}

namespace {

/// The offset after the last one a resume file records (1 when it has none).
topics::log_index resume_point(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "r");
    if (f == nullptr) return 1;
    topics::log_index last = 0;
    char line[512];
    while (std::fgets(line, sizeof line, f) != nullptr) {
        // A line cut short by a kill has no newline: it was not recorded.
        if (std::strchr(line, '\n') != nullptr) last = std::strtoull(line, nullptr, 10);
    }
    std::fclose(f);
    return last + 1;
}

}  // namespace

bool node_replication::subscribe(const std::string& pattern, const std::string& resume_file) {
    topics::topic_service* t = topic_service();
    if (t == nullptr) return false;
    tally_ = std::make_unique<subscriber_tally>();
    tally_->pattern = pattern;
    topics::log_index from = 1;
    if (!resume_file.empty()) {
        from = resume_point(resume_file);
        tally_->resume_fd =
            ::open(resume_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (tally_->resume_fd < 0) return false;
    }
    subscriber_tally* tally = tally_.get();
    return t->subscribe(
               pattern, from,
               [tally](const topics::delivery& d) {
                   if (d.index <= tally->last) ++tally->out_of_order;
                   if (tally->first == 0) tally->first = d.index;
                   tally->last = std::max(tally->last, d.index);
                   ++tally->received;
                   if (tally->resume_fd >= 0) tally->record(d);
               },
               [tally](topics::log_index first) { tally->truncated_to = first; }) != 0;
}

void node_replication::subscriber_tally::record(const topics::delivery& d) const {
    // One write per delivery, so that a kill leaves whole lines behind (at most the last
    // one cut short, which resume_point ignores and the restart delivers again).
    std::string line = std::to_string(d.index);
    line += ' ';
    line.append(d.topic);
    line += ' ';
    line.append(reinterpret_cast<const char*>(d.payload.data()), d.payload.size());
    line += '\n';
    [[maybe_unused]] const ssize_t n = ::write(resume_fd, line.data(), line.size());
}

node_replication::subscriber_tally::~subscriber_tally() {
    if (resume_fd >= 0) ::close(resume_fd);
}

const std::string& node_replication::name_of(replication::node_id id) const {
    static const std::string none = "-";
    const std::string* name = link_->name_of(id);
    return name != nullptr ? *name : none;
}

void node_replication::publish(replication_board& board, time_ns every,
                               const cluster::raft_batch_router* router) {
    // The lines are rendered into memory here, on the groups' shard, so that shard 0 only
    // copies text: open_memstream gives write_status a FILE* over a growing buffer.
    char* text = nullptr;
    std::size_t size = 0;
    if (std::FILE* f = open_memstream(&text, &size)) {
        write_status(f);
        if (router != nullptr) {
            const cluster::raft_router_stats& r = router->stats();
            std::fprintf(f, "       shard %u routed batches: whole %llu split %llu into %llu\n",
                         shard_->id(), static_cast<unsigned long long>(r.whole),
                         static_cast<unsigned long long>(r.split),
                         static_cast<unsigned long long>(r.parts));
        }
        std::fclose(f);
    }
    board.publish(shard_->id(), groups_.size(), text != nullptr ? std::string(text, size) : "",
                  not_ready_reason());
    std::free(text);  // NOLINT(cppcoreguidelines-no-malloc): open_memstream's buffer
    publish_timer_ = shard_->timers().schedule_at(
        shard_->now_ns() + every, [this, &board, every, router] { publish(board, every, router); });
}

void node_replication::write_status(std::FILE* f) const {
    for (const group& g : groups_) {
        const replication::raft* r = host_->group(g.id);
        if (r == nullptr) {
            std::fprintf(f, "%-6u stopped (its storage failed)\n", g.id);
            continue;
        }
        const std::size_t size = g.kv ? g.kv->state().size() : g.topics->log().retained();
        std::fprintf(f, "%-6u %-10s %6llu %-12s %10llu %10llu %10llu %-7s %8zu %5u\n", g.id,
                     replication::to_string(r->role()), static_cast<unsigned long long>(r->term()),
                     name_of(r->leader()).c_str(),
                     static_cast<unsigned long long>(r->commit_index()),
                     static_cast<unsigned long long>(r->applied_index()),
                     static_cast<unsigned long long>(r->last_index()), g.kv ? "kv" : "topics", size,
                     shard_->id());
        // Group commits: how many entries each fdatasync carried, and how long it took.
        if (const auto* store = dynamic_cast<const replication::log_store*>(host_->store(g.id))) {
            const replication::log_store_stats& st = store->stats();
            std::fprintf(
                f, "       storage fsyncs %llu records %llu group-commit p50 %lld us p99 %lld us\n",
                static_cast<unsigned long long>(st.fsyncs),
                static_cast<unsigned long long>(st.records),
                static_cast<long long>(st.group_commit_ns.quantile(0.5) / 1000),
                static_cast<long long>(st.group_commit_ns.quantile(0.99) / 1000));
        }
        if (!r->is_leader()) continue;
        for (replication::node_id id : r->members().voters) {
            if (id == r->id()) continue;
            const replication::follower_progress* p = r->progress_of(id);
            if (p == nullptr) continue;
            const char* mode =
                p->state == replication::follower_progress::mode::replicate  ? "replicate"
                : p->state == replication::follower_progress::mode::snapshot ? "snapshot"
                                                                             : "probe";
            std::fprintf(f, "       follower %-12s match %10llu lag %8llu %s\n",
                         name_of(id).c_str(), static_cast<unsigned long long>(p->match),
                         static_cast<unsigned long long>(r->last_index() -
                                                         std::min(p->match, r->last_index())),
                         mode);
        }
    }
}

void node_replication::write_metrics(metrics::metric_sink& sink) const {
    auto d = [](std::uint64_t v) { return static_cast<double>(v); };
    for (const group& g : groups_) {
        const replication::raft* r = host_->group(g.id);
        const std::string id = std::to_string(g.id);
        if (r == nullptr) {
            sink.gauge("ringmesh_raft_group_failed", "1: the group stopped (its storage failed).",
                       1, {{"group", id}});
            continue;
        }
        sink.gauge("ringmesh_raft_term", "The group's current term.", d(r->term()),
                   {{"group", id}});
        sink.gauge("ringmesh_raft_leader", "1 when this node leads the group.",
                   r->is_leader() ? 1 : 0, {{"group", id}});
        sink.gauge("ringmesh_raft_commit_index", "The highest index known committed.",
                   d(r->commit_index()), {{"group", id}});
        sink.gauge("ringmesh_raft_applied_index", "The highest index applied here.",
                   d(r->applied_index()), {{"group", id}});
        sink.gauge("ringmesh_raft_last_index", "The last index in the local log.",
                   d(r->last_index()), {{"group", id}});
        sink.counter("ringmesh_raft_elections_won_total", "Elections this node won.",
                     d(r->stats().elections_won), {{"group", id}});
        if (const auto* store = dynamic_cast<const replication::log_store*>(host_->store(g.id))) {
            const replication::log_store_stats& st = store->stats();
            sink.counter("ringmesh_raft_fsyncs_total", "Group commits made durable (fdatasync).",
                         d(st.fsyncs), {{"group", id}});
            sink.counter("ringmesh_raft_log_bytes_written_total", "Bytes written to the log.",
                         d(st.bytes_written), {{"group", id}});
            sink.latency("ringmesh_raft_group_commit_seconds",
                         "A group commit, from submission to durable (write + fdatasync).",
                         st.group_commit_ns, {{"group", id}});
        }
    }
    const replication::raft_host_stats& h = host_->stats();
    sink.counter("ringmesh_raft_batches_total", "Replication batches, by direction.",
                 d(h.batches_sent), {{"direction", "sent"}});
    sink.counter("ringmesh_raft_batches_total", "Replication batches, by direction.",
                 d(h.batches_received), {{"direction", "received"}});
    sink.counter("ringmesh_raft_batches_refused_total",
                 "Inbound replication batches refused (bad, forged or from an impostor).",
                 d(h.refused.total() + h.impostors));
}

std::string node_replication::not_ready_reason() const {
    for (const group& g : groups_) {
        const replication::raft* r = host_->group(g.id);
        if (r == nullptr || r->leader() == replication::no_node)
            return "no_leader_group_" + std::to_string(g.id);
    }
    return {};
}

void node_replication::report(const std::string& self) const {
    for (const group& g : groups_) {
        const replication::raft* r = host_->group(g.id);
        if (r == nullptr) {
            std::printf("[%s] replication group %u: stopped (storage failed)\n", self.c_str(),
                        g.id);
            continue;
        }
        std::printf(
            "[%s] replication group %u: %s term %llu, commit %llu applied %llu, "
            "elections won %llu; ",
            self.c_str(), g.id, replication::to_string(r->role()),
            static_cast<unsigned long long>(r->term()),
            static_cast<unsigned long long>(r->commit_index()),
            static_cast<unsigned long long>(r->applied_index()),
            static_cast<unsigned long long>(r->stats().elections_won));
        if (g.kv) {
            const kv::kv_service_stats& k = g.kv->stats();
            std::printf(
                "kv: %zu keys, %llu writes answered, %llu lost with a leader, reads %llu "
                "(lease %llu), not-leader %llu, snapshots %llu saved %llu restored\n",
                g.kv->state().size(), static_cast<unsigned long long>(k.writes_answered),
                static_cast<unsigned long long>(k.writes_lost),
                static_cast<unsigned long long>(k.reads_answered),
                static_cast<unsigned long long>(k.reads_lease),
                static_cast<unsigned long long>(k.not_leader),
                static_cast<unsigned long long>(g.kv->group_stats().snapshots_saved),
                static_cast<unsigned long long>(g.kv->group_stats().snapshots_restored));
        } else {
            const topics::topic_service_stats& t = g.topics->stats();
            const topics::topic_log& log = g.topics->log();
            std::printf(
                "topics: %zu messages retained from offset %llu, %llu publishes "
                "answered, %llu lost with a leader, not-leader %llu, %llu delivered here\n",
                log.retained(), static_cast<unsigned long long>(log.first_index()),
                static_cast<unsigned long long>(t.answered),
                static_cast<unsigned long long>(t.lost),
                static_cast<unsigned long long>(t.not_leader),
                static_cast<unsigned long long>(t.delivered));
        }
    }
    if (tally_) {
        std::printf(
            "[%s] replicated subscribe %s: %llu received, offsets %llu..%llu, %llu out of "
            "order or repeated%s\n",
            self.c_str(), tally_->pattern.c_str(),
            static_cast<unsigned long long>(tally_->received),
            static_cast<unsigned long long>(tally_->first),
            static_cast<unsigned long long>(tally_->last),
            static_cast<unsigned long long>(tally_->out_of_order),
            tally_->truncated_to != 0 ? " (the log had been truncated)" : "");
    }
    const replication::raft_host_stats& h = host_->stats();
    std::printf(
        "[%s] replication on shard %u: %llu batches out, %llu in, %llu dropped, %llu refused, "
        "%llu impostors\n",
        self.c_str(), shard_->id(), static_cast<unsigned long long>(h.batches_sent),
        static_cast<unsigned long long>(h.batches_received),
        static_cast<unsigned long long>(h.batches_dropped),
        static_cast<unsigned long long>(h.refused.total()),
        static_cast<unsigned long long>(h.impostors));
}

}  // namespace ringmesh::tools
