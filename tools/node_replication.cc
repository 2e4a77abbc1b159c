#include "tools/node_replication.h"

#include <filesystem>

#include "engine/core/errc.h"
#include "engine/core/random.h"

namespace ringmesh::tools {

namespace {

const char* role_name(replication::raft_role role) {
    return replication::to_string(role);
}

}  // namespace

result<std::unique_ptr<node_replication>> node_replication::start(
    shard& s, messaging::endpoint& e, const std::string& cluster_id,
    const replication_settings& settings) {
    std::unique_ptr<node_replication> r(new node_replication());
    std::error_code ec;
    std::filesystem::create_directories(settings.dir, ec);
    if (ec)
        return make_error(core_errc::bad_config,
                          "replication.dir " + settings.dir + ": " + ec.message());
    auto ring = replication::disk_ring::create();
    if (!ring) return ring.err();
    r->ring_ = std::move(ring).value();
    r->link_ = std::make_unique<cluster::raft_link>(e, settings.replicas);
    replication::node_id self = replication::no_node;
    for (const auto& p : settings.replicas) {
        if (p.name == e.node_id()) self = p.id;
    }
    replication::raft_host_config hc;
    hc.self = self;
    hc.cluster_id = cluster_id;
    r->host_ = std::make_unique<replication::raft_host>(*r->ring_, r->link_->host_config(hc));
    r->link_->attach(*r->host_);
    for (std::uint32_t g : settings.groups) {
        kv::kv_service_config kc;
        kc.group = g;
        kc.method = g == 1 ? "kv" : "kv/" + std::to_string(g);
        kc.snapshot_every = settings.snapshot_every;
        kc.allow_lease_reads = settings.lease_reads;
        auto service = std::make_unique<kv::kv_service>(e, *r->link_, kc);
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
        auto added = r->host_->add_group(c, lc, service->application(), s.now_ns());
        if (!added) {
            error failed = added.err();
            failed.detail = "group " + std::to_string(g) + ": " + failed.detail;
            return failed;
        }
        service->attach(*r->host_);
        r->services_.push_back(std::move(service));
        r->groups_.push_back(g);
    }
    r->host_->attach(s);
    return r;
}

node_replication::~node_replication() {
    host_.reset();  // no more callbacks into the services
    services_.clear();
    link_.reset();
}

const std::string& node_replication::name_of(replication::node_id id) const {
    static const std::string none = "-";
    const std::string* name = link_->name_of(id);
    return name != nullptr ? *name : none;
}

void node_replication::write_status(std::FILE* f) const {
    std::fprintf(f, "# replication: %zu group(s)\n", groups_.size());
    std::fprintf(f, "%-6s %-10s %6s %-12s %10s %10s %10s %8s\n", "group", "role", "term", "leader",
                 "commit", "applied", "last", "keys");
    for (std::size_t i = 0; i < groups_.size(); ++i) {
        const replication::raft* r = host_->group(groups_[i]);
        if (r == nullptr) {
            std::fprintf(f, "%-6u stopped (its storage failed)\n", groups_[i]);
            continue;
        }
        std::fprintf(
            f, "%-6u %-10s %6llu %-12s %10llu %10llu %10llu %8zu\n", groups_[i],
            role_name(r->role()), static_cast<unsigned long long>(r->term()),
            name_of(r->leader()).c_str(), static_cast<unsigned long long>(r->commit_index()),
            static_cast<unsigned long long>(r->applied_index()),
            static_cast<unsigned long long>(r->last_index()), services_[i]->state().size());
        if (!r->is_leader()) continue;
        for (replication::node_id id : r->members().voters) {
            if (id == r->id()) continue;
            const replication::follower_progress* p = r->progress_of(id);
            if (p == nullptr) continue;
            std::fprintf(f, "       follower %-12s match %10llu lag %8llu %s\n",
                         name_of(id).c_str(), static_cast<unsigned long long>(p->match),
                         static_cast<unsigned long long>(r->last_index() -
                                                         std::min(p->match, r->last_index())),
                         p->state == replication::follower_progress::mode::replicate  ? "replicate"
                         : p->state == replication::follower_progress::mode::snapshot ? "snapshot"
                                                                                      : "probe");
        }
    }
}

void node_replication::report(const std::string& self) const {
    for (std::size_t i = 0; i < groups_.size(); ++i) {
        const replication::raft* r = host_->group(groups_[i]);
        const kv::kv_service_stats& k = services_[i]->stats();
        if (r == nullptr) {
            std::printf("[%s] replication group %u: stopped (storage failed)\n", self.c_str(),
                        groups_[i]);
            continue;
        }
        const replication::raft_stats& rs = r->stats();
        std::printf(
            "[%s] replication group %u: %s term %llu, commit %llu applied %llu, elections "
            "won %llu; kv: %zu keys, %llu writes answered, %llu lost with a leader, reads %llu "
            "(lease %llu), not-leader %llu, snapshots %llu saved %llu restored\n",
            self.c_str(), groups_[i], role_name(r->role()),
            static_cast<unsigned long long>(r->term()),
            static_cast<unsigned long long>(r->commit_index()),
            static_cast<unsigned long long>(r->applied_index()),
            static_cast<unsigned long long>(rs.elections_won), services_[i]->state().size(),
            static_cast<unsigned long long>(k.writes_answered),
            static_cast<unsigned long long>(k.writes_lost),
            static_cast<unsigned long long>(k.reads_answered),
            static_cast<unsigned long long>(k.reads_lease),
            static_cast<unsigned long long>(k.not_leader),
            static_cast<unsigned long long>(k.snapshots_saved),
            static_cast<unsigned long long>(k.snapshots_restored));
    }
    const replication::raft_host_stats& h = host_->stats();
    std::printf(
        "[%s] replication: %llu batches out, %llu in, %llu dropped, %llu refused, %llu impostors\n",
        self.c_str(), static_cast<unsigned long long>(h.batches_sent),
        static_cast<unsigned long long>(h.batches_received),
        static_cast<unsigned long long>(h.batches_dropped),
        static_cast<unsigned long long>(h.refused.total()),
        static_cast<unsigned long long>(h.impostors));
}

}  // namespace ringmesh::tools
