#include "tests/sim/harness/raft_sim.h"

#include "engine/replication/log_records.h"
#include "tests/sim/harness/sim_raft_disk.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <queue>
#include <set>
#include <sstream>
#include <unordered_map>

namespace ringmesh::sim {
namespace {

using namespace replication;  // NOLINT(google-build-using-namespace): the harness speaks Raft

std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdULL;
}

std::uint64_t hash_bytes(std::span<const std::byte> bytes) {
    std::uint64_t h = 1469598103934665603ULL;
    for (std::byte b : bytes)
        h = (h ^ std::to_integer<std::uint8_t>(b)) * 1099511628211ULL;
    return h;
}

std::vector<std::byte> id_bytes(std::uint64_t id) {
    std::vector<std::byte> out(8);
    std::memcpy(out.data(), &id, 8);
    return out;
}

std::uint64_t id_of(const log_entry& e) {
    std::uint64_t id = 0;
    if (e.kind == entry_kind::command && e.data.size() == 8) std::memcpy(&id, e.data.data(), 8);
    return id;
}

// The replicated application: every command's id, in order, and a hash of everything applied.
struct app_state {
    log_index applied = 0;
    std::uint64_t hash = 0;
    std::vector<std::uint64_t> ids;

    std::vector<std::byte> serialize() const {
        std::vector<std::byte> out((3 + ids.size()) * 8);
        const std::uint64_t head[3] = {applied, hash, ids.size()};
        std::memcpy(out.data(), head, sizeof(head));
        if (!ids.empty()) std::memcpy(out.data() + 24, ids.data(), ids.size() * 8);
        return out;
    }
    static app_state parse(const std::vector<std::byte>& bytes) {
        app_state s;
        if (bytes.size() < 24) return s;
        std::uint64_t head[3];
        std::memcpy(head, bytes.data(), sizeof(head));
        s.applied = head[0];
        s.hash = head[1];
        s.ids.resize(head[2]);
        if (!s.ids.empty()) std::memcpy(s.ids.data(), bytes.data() + 24, s.ids.size() * 8);
        return s;
    }
};

struct sim_node {
    node_id id = 0;
    bool alive = true;
    bool damaged = false;  // its log failed recovery: it refuses to start, for good
    std::uint64_t incarnation = 0;
    std::unique_ptr<raft> replica;
    app_state app;
    sim_disk disk;
};

struct event {
    enum class kind : std::uint8_t { deliver, persisted, restart, heal } what = kind::deliver;
    time_ns at = 0;
    std::uint64_t order = 0;
    int node = 0;
    std::uint64_t incarnation = 0;
    std::uint64_t seq = 0;
    raft_message message;
    std::vector<std::pair<int, int>> cuts;  // heal: the directed links to restore
};

struct later {
    bool operator()(const std::shared_ptr<event>& a, const std::shared_ptr<event>& b) const {
        return a->at != b->at ? a->at > b->at : a->order > b->order;
    }
};

struct proposal {
    std::uint64_t id = 0;
    int node = 0;
    std::uint64_t incarnation = 0;
    log_index index = 0;
    term_t term = 0;
};

class simulation {
  public:
    explicit simulation(const raft_sim_options& o) : o_(o), rng_(o.seed) {
        const int total = o.voters + o.spares;
        for (int i = 0; i < o.voters; ++i)
            initial_.voters.push_back(static_cast<node_id>(i + 1));
        for (int i = 0; i < total; ++i) {
            auto n = std::make_unique<sim_node>();
            n->id = static_cast<node_id>(i + 1);
            nodes_.push_back(std::move(n));
            start(i);
        }
    }

    raft_sim_result run() {
        time_ns next_proposal = 0, next_read = 0, next_fault = 0, next_partition = 0,
                next_transfer = 0, next_change = 0;
        auto gap = [this](double per_s) {
            if (per_s <= 0) return time_ns{1} << 60;
            return static_cast<time_ns>(exponential(per_s) * static_cast<double>(ns_per_s)) + 1;
        };
        next_proposal = gap(o_.proposals_per_s);
        next_read = gap(o_.reads_per_s);
        next_fault = gap(o_.crashes_per_s);
        next_partition = gap(o_.partitions_per_s);
        next_transfer = gap(o_.transfers_per_s);
        next_change = o_.spares > 0 ? gap(o_.member_changes_per_s) : time_ns{1} << 60;
        bool faults = true;
        time_ns settle_deadline = 0;
        const time_ns end = o_.run_for + o_.settle_bound;
        while (result_.ok) {
            if (faults && now_ >= o_.run_for) {
                faults = false;
                stop_faults();
                settle_deadline = now_ + o_.settle_bound;
            }
            if (!faults && progress_after_faults_ && settled()) break;
            if (!faults && now_ >= settle_deadline) {
                fail("no progress within " + std::to_string(o_.settle_bound / ns_per_ms) +
                     " ms after the faults stopped");
                break;
            }
            if (now_ > end) break;
            // The next thing to happen.
            time_ns t = settle_deadline > 0 ? settle_deadline : end;
            int tick_node = -1;
            for (std::size_t i = 0; i < nodes_.size(); ++i) {
                const sim_node& n = *nodes_[i];
                if (n.alive && n.replica->next_deadline() < t) {
                    t = n.replica->next_deadline();
                    tick_node = static_cast<int>(i);
                }
            }
            const bool event_first = !queue_.empty() && queue_.top()->at <= t;
            if (event_first) t = queue_.top()->at;
            time_ns workload = std::min({next_proposal, next_read});
            if (faults)
                workload =
                    std::min({workload, next_fault, next_partition, next_transfer, next_change});
            if (workload < t) {
                now_ = std::max(now_, workload);
                if (workload == next_proposal) {
                    propose_somewhere();
                    next_proposal = now_ + gap(faults ? o_.proposals_per_s : 50);
                } else if (workload == next_read) {
                    read_somewhere();
                    next_read = now_ + gap(o_.reads_per_s);
                } else if (workload == next_fault) {
                    crash_someone();
                    next_fault = now_ + gap(o_.crashes_per_s);
                } else if (workload == next_partition) {
                    partition();
                    next_partition = now_ + gap(o_.partitions_per_s);
                } else if (workload == next_transfer) {
                    transfer();
                    next_transfer = now_ + gap(o_.transfers_per_s);
                } else {
                    change_members();
                    next_change = now_ + gap(o_.member_changes_per_s);
                }
            } else if (event_first) {
                std::shared_ptr<event> e = queue_.top();
                queue_.pop();
                now_ = std::max(now_, e->at);
                handle(*e);
            } else if (tick_node >= 0) {
                now_ = std::max(now_, t);
                sim_node& n = *nodes_[static_cast<std::size_t>(tick_node)];
                trace("tick", tick_node, nullptr);
                n.replica->on_tick(now_);
                drain(tick_node);
            } else {
                now_ = t;
            }
            ++result_.events;
            if (result_.events % 64 == 0) check_log_matching();
        }
        if (result_.ok) final_checks();
        result_.trace_hash = hash_;
        return std::move(result_);
    }

  private:
    double uniform() { return std::uniform_real_distribution<double>(0, 1)(rng_); }
    double exponential(double rate) { return std::exponential_distribution<double>(rate)(rng_); }
    time_ns between(time_ns lo, time_ns hi) {
        return lo + static_cast<time_ns>(rng_() % static_cast<std::uint64_t>(hi - lo + 1));
    }
    int pick(int n) { return static_cast<int>(rng_() % static_cast<std::uint64_t>(n)); }

    void fail(const std::string& what) {
        if (!result_.ok) return;
        result_.ok = false;
        std::ostringstream s;
        s << "seed " << o_.seed << ", event " << result_.events << ", t=" << now_ / ns_per_us
          << " us: " << what;
        result_.violation = s.str();
    }

    void trace(const char* what, int node, const raft_message* m) {
        hash_ = mix(hash_, static_cast<std::uint64_t>(now_));
        hash_ = mix(hash_, std::hash<std::string_view>{}(what));
        hash_ = mix(hash_, static_cast<std::uint64_t>(node));
        if (m != nullptr) {
            hash_ = mix(hash_, static_cast<std::uint64_t>(m->kind));
            hash_ = mix(hash_, m->from * 131 + m->to);
            hash_ = mix(hash_, m->term);
            hash_ = mix(hash_, m->index + m->prev_index * 7 + m->entries.size() * 13);
        }
        if (!o_.record_trace) return;
        std::ostringstream s;
        s << now_ / ns_per_us << "us n" << node + 1 << " " << what;
        if (m != nullptr) {
            s << " " << to_string(m->kind) << " " << m->from << "->" << m->to << " t" << m->term
              << " prev=" << m->prev_index << "/" << m->prev_term << " n=" << m->entries.size()
              << " idx=" << m->index << " c=" << m->commit << (m->reject ? " reject" : "")
              << (m->pre_vote ? " pre" : "");
        }
        if (nodes_[static_cast<std::size_t>(node)]->alive) {
            const raft& r = *nodes_[static_cast<std::size_t>(node)]->replica;
            s << " | " << to_string(r.role()) << " t" << r.term() << " last=" << r.last_index()
              << " commit=" << r.commit_index();
        }
        result_.trace.push_back(s.str());
    }

    void start(int i) {
        sim_node& n = *nodes_[static_cast<std::size_t>(i)];
        raft_config c;
        c.id = n.id;
        c.group = 7;
        if (n.id <= static_cast<node_id>(o_.voters)) c.initial_members = initial_;
        c.heartbeat_interval = 30 * ns_per_ms;
        c.election_timeout_min = 150 * ns_per_ms;
        c.election_timeout_max = 300 * ns_per_ms;
        c.max_inflight_appends = 8;
        c.max_append_entries = 16;
        c.snapshot_chunk_bytes = 4096;
        c.max_inflight_snapshot_chunks = 2;
        c.snapshot_trailing_entries = o_.trailing_entries;
        c.max_promotion_lag = 8;
        c.rng_seed = rng_() | 1;
        n.app = app_state::parse(n.disk.snap_bytes);
        n.replica = std::make_unique<raft>(c, n.disk.recover(), now_);
        n.alive = true;
        drain(i);
    }

    void send(raft_message m) {
        const int from = static_cast<int>(m.from) - 1;
        const int to = static_cast<int>(m.to) - 1;
        if (to < 0 || to >= static_cast<int>(nodes_.size())) return;
        if (cut_.contains({from, to}) || uniform() < loss_) return;
        const int copies = uniform() < duplicate_ ? 2 : 1;
        for (int c = 0; c < copies; ++c) {
            auto e = std::make_shared<event>();
            e->what = event::kind::deliver;
            e->at = now_ + between(o_.delay_min, o_.delay_max);
            e->order = ++order_;
            e->node = to;
            e->message = m;
            queue_.push(std::move(e));
        }
    }

    void handle(const event& e) {
        sim_node& n = *nodes_[static_cast<std::size_t>(e.node)];
        switch (e.what) {
            case event::kind::deliver:
                if (!n.alive) return;
                trace("deliver", e.node, &e.message);
                n.replica->on_message(now_, e.message);
                drain(e.node);
                return;
            case event::kind::persisted:
                if (!n.alive || n.incarnation != e.incarnation) return;
                while (!n.disk.pending.empty() && n.disk.pending.front().seq <= e.seq) {
                    for (const disk_op& op : n.disk.pending.front().ops)
                        n.disk.apply(op);
                    n.disk.pending.pop_front();
                }
                trace("persisted", e.node, nullptr);
                n.replica->on_persisted(now_, e.seq);
                drain(e.node);
                return;
            case event::kind::restart:
                if (n.alive || n.damaged || n.incarnation != e.incarnation) return;
                trace("restart", e.node, nullptr);
                start(e.node);
                return;
            case event::kind::heal:
                for (const auto& c : e.cuts)
                    cut_.erase(c);
                trace("heal", e.node, nullptr);
                return;
        }
    }

    void drain(int i) {
        sim_node& n = *nodes_[static_cast<std::size_t>(i)];
        for (int guard = 0; guard < 1000 && n.alive; ++guard) {
            raft_ready r = n.replica->take_ready(now_);
            if (r.empty()) break;
            handle_ready(i, r);
        }
        check_leaders(i);
    }

    void handle_ready(int i, raft_ready& r) {
        sim_node& n = *nodes_[static_cast<std::size_t>(i)];
        std::vector<disk_op> ops = sim_disk::ops_of(r);
        if (r.persist_seq != 0) {
            n.disk.pending.push_back({r.persist_seq, std::move(ops)});
            const time_ns done = std::max(n.disk.last_done_at,
                                          now_ + between(o_.disk_latency_min, o_.disk_latency_max));
            n.disk.last_done_at = done;
            auto e = std::make_shared<event>();
            e->what = event::kind::persisted;
            e->at = done;
            e->order = ++order_;
            e->node = i;
            e->incarnation = n.incarnation;
            e->seq = r.persist_seq;
            queue_.push(std::move(e));
        } else if (!ops.empty()) {
            // A compaction alone: behind a durable snapshot, after every write before it.
            if (n.disk.pending.empty()) {
                for (const disk_op& op : ops)
                    n.disk.apply(op);
            } else {
                auto& tail = n.disk.pending.back().ops;
                tail.insert(tail.end(), ops.begin(), ops.end());
            }
        }
        for (raft_message& m : r.messages) {
            if (m.kind == message_kind::snapshot) {
                if (!n.disk.snap || n.disk.snap->index != m.snapshot.index) continue;
                const auto begin = static_cast<std::ptrdiff_t>(m.offset);
                m.chunk.assign(n.disk.snap_bytes.begin() + begin,
                               n.disk.snap_bytes.begin() + begin + m.chunk_bytes);
            }
            send(std::move(m));
        }
        if (r.apply_snapshot) install(i, *r.apply_snapshot);
        for (const log_entry& e : r.committed)
            apply(i, e);
        for (const read_result& read : r.reads)
            check_read(i, read);
        maybe_snapshot(i);
    }

    void install(int i, const snapshot_meta& meta) {
        sim_node& n = *nodes_[static_cast<std::size_t>(i)];
        if (!n.disk.snap || n.disk.snap->index != meta.index) {
            fail("node " + std::to_string(i + 1) + " told to apply a snapshot its disk lacks");
            return;
        }
        n.app = app_state::parse(n.disk.snap_bytes);
        ++result_.snapshots_installed;
        if (n.app.applied != meta.index) fail("snapshot content does not match its index");
        check_state_hash(i, n.app.applied, n.app.hash);
    }

    void apply(int i, const log_entry& e) {
        sim_node& n = *nodes_[static_cast<std::size_t>(i)];
        if (e.index != n.app.applied + 1) {
            fail("node " + std::to_string(i + 1) + " applied " + std::to_string(e.index) +
                 " after " + std::to_string(n.app.applied));
            return;
        }
        const std::uint64_t entry_hash =
            mix(mix(e.term, static_cast<std::uint64_t>(e.kind)), hash_bytes(e.data));
        if (e.index >= committed_.size()) committed_.resize(e.index + 1, {0, 0});
        auto& [term, h] = committed_[e.index];
        if (term == 0) {
            term = e.term;
            h = entry_hash;
            result_.committed = std::max<std::uint64_t>(result_.committed, e.index);
        } else if (term != e.term || h != entry_hash) {
            fail("state machine safety: node " + std::to_string(i + 1) +
                 " applied another entry at " + std::to_string(e.index));
            return;
        }
        n.app.applied = e.index;
        n.app.hash = mix(n.app.hash, entry_hash);
        if (std::uint64_t id = id_of(e); id != 0) n.app.ids.push_back(id);
        check_state_hash(i, e.index, n.app.hash);
        // The client that proposed it hears back from the replica it asked.
        auto it = proposals_.find({i, e.index});
        if (it != proposals_.end()) {
            const proposal p = it->second;
            proposals_.erase(it);
            if (p.incarnation == n.incarnation && p.term == e.term && id_of(e) == p.id) {
                acked_[p.id] = p.index;
                max_acked_index_ = std::max(max_acked_index_, p.index);
                ++result_.acknowledged;
                if (first_id_after_faults_ != 0 && p.id >= first_id_after_faults_)
                    progress_after_faults_ = true;
            }
        }
    }

    void check_state_hash(int i, log_index index, std::uint64_t h) {
        if (index >= state_hashes_.size()) state_hashes_.resize(index + 1, 0);
        if (state_hashes_[index] == 0) {
            state_hashes_[index] = h;
        } else if (state_hashes_[index] != h) {
            fail("state machine safety: node " + std::to_string(i + 1) +
                 " holds another state at " + std::to_string(index));
        }
    }

    void maybe_snapshot(int i) {
        sim_node& n = *nodes_[static_cast<std::size_t>(i)];
        const log_index have = n.disk.snap ? n.disk.snap->index : 0;
        if (!n.alive || n.app.applied < have + o_.snapshot_every) return;
        if (n.app.applied < n.replica->log().base_index()) return;
        snapshot_meta meta = n.replica->snapshot_meta_at(n.app.applied);
        std::vector<std::byte> bytes = n.app.serialize();
        meta.size_bytes = bytes.size();
        n.disk.snap = meta;  // written to a temp file, synced, renamed: durable at once
        n.disk.snap_bytes = std::move(bytes);
        n.replica->snapshot_taken(now_, meta);
    }

    void check_read(int i, const read_result& read) {
        if (read.status != raft_status::ok) return;
        auto it = reads_.find(read.request);
        if (it == reads_.end()) return;
        if (read.index < it->second) {
            fail("linearizability: node " + std::to_string(i + 1) + " served read " +
                 std::to_string(read.request) + " at " + std::to_string(read.index) +
                 ", below write " + std::to_string(it->second) + " acknowledged before it");
        }
        reads_.erase(it);
        ++result_.reads;
    }

    void check_leaders(int i) {
        sim_node& n = *nodes_[static_cast<std::size_t>(i)];
        if (!n.alive || !n.replica->is_leader()) return;
        const term_t term = n.replica->term();
        auto [it, inserted] = leaders_.emplace(term, n.id);
        if (!inserted && it->second != n.id) {
            fail("election safety: two leaders in term " + std::to_string(term));
            return;
        }
        if (!inserted) return;
        ++result_.elections;
        // Leader completeness: every entry known committed is in the new leader's log.
        const raft_log& log = n.replica->log();
        for (log_index x = log.first_index(); x < committed_.size(); ++x) {
            if (committed_[x].first == 0) continue;
            if (log.term_at(x) != committed_[x].first) {
                fail("leader completeness: leader " + std::to_string(n.id) + " of term " +
                     std::to_string(term) + " lacks committed entry " + std::to_string(x));
                return;
            }
        }
    }

    void check_log_matching() {
        for (std::size_t a = 0; a < nodes_.size(); ++a) {
            for (std::size_t b = a + 1; b < nodes_.size(); ++b) {
                if (!nodes_[a]->alive || !nodes_[b]->alive) continue;
                const raft_log& la = nodes_[a]->replica->log();
                const raft_log& lb = nodes_[b]->replica->log();
                const log_index lo = std::max(la.first_index(), lb.first_index());
                log_index top = std::min(la.last_index(), lb.last_index());
                while (top >= lo && la.term_at(top) != lb.term_at(top))
                    --top;
                for (log_index x = lo; x <= top && top >= lo; ++x) {
                    if (la.at(x) != lb.at(x)) {
                        fail("log matching: nodes " + std::to_string(a + 1) + " and " +
                             std::to_string(b + 1) + " agree at " + std::to_string(top) +
                             " but differ at " + std::to_string(x));
                        return;
                    }
                }
            }
        }
    }

    std::vector<int> leaders_now() const {
        std::vector<int> out;
        for (std::size_t i = 0; i < nodes_.size(); ++i) {
            if (nodes_[i]->alive && nodes_[i]->replica->is_leader())
                out.push_back(static_cast<int>(i));
        }
        return out;
    }

    std::optional<proposal> propose_somewhere() {
        std::vector<int> leaders = leaders_now();
        if (leaders.empty()) return std::nullopt;
        const int i = leaders[static_cast<std::size_t>(pick(static_cast<int>(leaders.size())))];
        sim_node& n = *nodes_[static_cast<std::size_t>(i)];
        const std::uint64_t id = ++next_id_;
        propose_result r = n.replica->propose(now_, id_bytes(id));
        if (r.status != raft_status::ok) return std::nullopt;
        proposal p{id, i, n.incarnation, r.index, r.term};
        proposals_[{i, r.index}] = p;
        trace("propose", i, nullptr);
        drain(i);
        return p;
    }

    void read_somewhere() {
        std::vector<int> leaders = leaders_now();
        if (leaders.empty()) return;
        const int i = leaders[static_cast<std::size_t>(pick(static_cast<int>(leaders.size())))];
        sim_node& n = *nodes_[static_cast<std::size_t>(i)];
        if (uniform() < 0.5) {
            if (std::optional<log_index> at = n.replica->lease_read(now_)) {
                if (*at < max_acked_index_) {
                    fail("linearizability: lease read on node " + std::to_string(i + 1) + " at " +
                         std::to_string(*at) + ", below acknowledged write " +
                         std::to_string(max_acked_index_));
                }
                ++result_.reads;
                return;
            }
        }
        const std::uint64_t request = ++next_read_;
        if (n.replica->read_index(now_, request) == raft_status::ok)
            reads_[request] = max_acked_index_;
        trace("read", i, nullptr);
        drain(i);
    }

    void crash_someone() {
        // Half the crashes hit a leader: the replica whose unsynced writes matter most.
        std::vector<int> leaders = leaders_now();
        const int i =
            !leaders.empty() && uniform() < 0.5
                ? leaders[static_cast<std::size_t>(pick(static_cast<int>(leaders.size())))]
                : pick(static_cast<int>(nodes_.size()));
        sim_node& n = *nodes_[static_cast<std::size_t>(i)];
        if (!n.alive) return;
        trace("crash", i, nullptr);
        ++result_.crashes;
        // Unsynced writes are lost, or a prefix of them made it to the platter (torn).
        if (uniform() < o_.torn_write) {
            std::size_t total = 0;
            for (const auto& b : n.disk.pending)
                total += b.ops.size();
            std::size_t keep = total == 0 ? 0 : static_cast<std::size_t>(rng_() % (total + 1));
            for (const auto& b : n.disk.pending) {
                for (const disk_op& op : b.ops) {
                    if (keep == 0) break;
                    n.disk.apply(op);
                    --keep;
                }
            }
        }
        n.disk.pending.clear();
        n.disk.last_done_at = 0;
        if (!any_damaged_ && uniform() < o_.bit_flip) flip_a_bit(i);
        n.alive = false;
        n.replica.reset();
        ++n.incarnation;
        std::erase_if(proposals_, [i](const auto& p) { return p.second.node == i; });
        auto e = std::make_shared<event>();
        e->what = event::kind::restart;
        e->at = now_ + between(20 * ns_per_ms, 800 * ns_per_ms);
        e->order = ++order_;
        e->node = i;
        e->incarnation = n.incarnation;
        queue_.push(std::move(e));
    }

    // A bit of node i's synced log flips on the platter. The log is laid out as log_store
    // writes it and read back by its recovery decoder, which must refuse it: the node then
    // stays down, as a node whose store refuses to open does until an operator rebuilds it.
    // The flip lands before the last record: in the last one it reads as a torn write
    // (log_records.h says why), which the torn-write faults cover.
    void flip_a_bit(int i) {
        sim_node& n = *nodes_[static_cast<std::size_t>(i)];
        std::vector<std::byte> image;
        std::vector<std::size_t> starts;
        starts.push_back(image.size());
        log_records::append_segment_header(image, 1);
        starts.push_back(image.size());
        log_records::append_state(image, n.disk.state);
        for (const log_entry& e : n.disk.entries) {
            starts.push_back(image.size());
            log_records::append_entry(image, e);
        }
        starts.push_back(image.size());
        const std::size_t records = starts.size() - 1;
        const std::size_t victim = static_cast<std::size_t>(pick(static_cast<int>(records - 1)));
        const std::size_t at = starts[victim] + static_cast<std::size_t>(
                                                    rng_() % (starts[victim + 1] - starts[victim]));
        image[at] ^= std::byte{static_cast<std::uint8_t>(1u << (rng_() % 8))};
        image.resize(image.size() + 4096);  // the preallocated rest of the segment
        raft_recovered recovered;
        const segment_scan scan = scan_segment(image, 1, true, recovered);
        if (scan.what != segment_scan::verdict::corrupted) {
            fail("a bit flipped at offset " + std::to_string(at) + " (record " +
                 std::to_string(victim + 1) + " of " + std::to_string(records) +
                 ") went undetected by recovery");
            return;
        }
        trace("damaged", i, nullptr);
        n.damaged = true;
        any_damaged_ = true;
        ++result_.bit_flips_detected;
    }

    void partition() {
        std::vector<std::pair<int, int>> cuts;
        const int total = static_cast<int>(nodes_.size());
        if (uniform() < 0.5) {
            // Symmetric: a random side against the rest.
            std::vector<bool> side(static_cast<std::size_t>(total));
            for (int i = 0; i < total; ++i)
                side[static_cast<std::size_t>(i)] = uniform() < 0.4;
            for (int a = 0; a < total; ++a) {
                for (int b = 0; b < total; ++b) {
                    if (a != b &&
                        side[static_cast<std::size_t>(a)] != side[static_cast<std::size_t>(b)])
                        cuts.emplace_back(a, b);
                }
            }
        } else {
            // Asymmetric: one node's messages to some others vanish, theirs to it arrive.
            const int a = pick(total);
            for (int b = 0; b < total; ++b) {
                if (b != a && uniform() < 0.6) cuts.emplace_back(a, b);
            }
        }
        for (const auto& c : cuts)
            cut_.insert(c);
        trace("partition", 0, nullptr);
        auto e = std::make_shared<event>();
        e->what = event::kind::heal;
        e->at = now_ + between(100 * ns_per_ms, 1500 * ns_per_ms);
        e->order = ++order_;
        e->cuts = std::move(cuts);
        queue_.push(std::move(e));
    }

    void transfer() {
        std::vector<int> leaders = leaders_now();
        if (leaders.empty()) return;
        const int i = leaders.front();
        sim_node& n = *nodes_[static_cast<std::size_t>(i)];
        const auto& voters = n.replica->members().voters;
        const node_id target =
            voters[static_cast<std::size_t>(pick(static_cast<int>(voters.size())))];
        if (n.replica->transfer_leadership(now_, target) == raft_status::ok) ++result_.transfers;
        trace("transfer", i, nullptr);
        drain(i);
    }

    void change_members() {
        std::vector<int> leaders = leaders_now();
        if (leaders.empty()) return;
        const int i = leaders.front();
        sim_node& n = *nodes_[static_cast<std::size_t>(i)];
        const group_members& m = n.replica->members();
        member_change c;
        std::vector<node_id> outside;
        for (const auto& node : nodes_) {
            if (!m.contains(node->id)) outside.push_back(node->id);
        }
        const double r = uniform();
        if (!m.learners.empty() && r < 0.4) {
            c.what = member_change::kind::promote;
            c.node = m.learners.front();
        } else if (!outside.empty() && r < 0.7) {
            c.what = member_change::kind::add_learner;
            c.node = outside[static_cast<std::size_t>(pick(static_cast<int>(outside.size())))];
        } else if (m.voters.size() > 3) {
            c.what = member_change::kind::remove;
            c.node = m.voters[static_cast<std::size_t>(pick(static_cast<int>(m.voters.size())))];
        } else {
            return;
        }
        if (n.replica->change_members(now_, c).status == raft_status::ok) ++result_.member_changes;
        trace("change", i, nullptr);
        drain(i);
    }

    void stop_faults() {
        first_id_after_faults_ = next_id_ + 1;
        loss_ = 0;
        duplicate_ = 0;
        cut_.clear();
        for (std::size_t i = 0; i < nodes_.size(); ++i) {
            if (!nodes_[i]->alive && !nodes_[i]->damaged) start(static_cast<int>(i));
        }
    }

    /// The leader of the highest term among those that claim it (a stale one may not know).
    int newest_leader() const {
        int best = -1;
        for (int i : leaders_now()) {
            if (best < 0 || nodes_[static_cast<std::size_t>(i)]->replica->term() >
                                nodes_[static_cast<std::size_t>(best)]->replica->term())
                best = i;
        }
        return best;
    }
    /// The newest leader has applied every acknowledged write.
    bool settled() const {
        const int l = newest_leader();
        return l >= 0 && nodes_[static_cast<std::size_t>(l)]->app.applied >= max_acked_index_;
    }

    void final_checks() {
        check_log_matching();
        const int leader = newest_leader();
        if (leader < 0) return;
        const sim_node& n = *nodes_[static_cast<std::size_t>(leader)];
        const std::set<std::uint64_t> ids(n.app.ids.begin(), n.app.ids.end());
        for (const auto& [id, index] : acked_) {
            if (index <= n.app.applied && !ids.contains(id)) {
                fail("acknowledged proposal " + std::to_string(id) + " at " +
                     std::to_string(index) + " is missing from the leader's state");
                return;
            }
        }
        if (!acked_.empty() && n.app.applied < max_acked_index_)
            fail("the final leader has not applied every acknowledged write");
    }

    raft_sim_options o_;
    std::mt19937_64 rng_;
    group_members initial_;
    std::vector<std::unique_ptr<sim_node>> nodes_;
    std::priority_queue<std::shared_ptr<event>, std::vector<std::shared_ptr<event>>, later> queue_;
    std::uint64_t order_ = 0;
    time_ns now_ = 0;
    std::set<std::pair<int, int>> cut_;
    double loss_ = o_.loss;
    double duplicate_ = o_.duplicate;

    std::vector<std::pair<term_t, std::uint64_t>> committed_;  // index -> (term, entry hash)
    std::vector<std::uint64_t> state_hashes_;                  // index -> app hash after it
    std::map<term_t, node_id> leaders_;
    std::map<std::pair<int, log_index>, proposal> proposals_;
    std::unordered_map<std::uint64_t, log_index> acked_;
    log_index max_acked_index_ = 0;
    std::unordered_map<std::uint64_t, log_index> reads_;  // request -> acked index before it
    std::uint64_t next_id_ = 0;
    std::uint64_t next_read_ = 0;
    /// Liveness: a proposal made after the faults stopped was acknowledged.
    std::uint64_t first_id_after_faults_ = 0;
    bool progress_after_faults_ = false;
    bool any_damaged_ = false;  // one replica at most, so that a majority remains
    std::uint64_t hash_ = 14695981039346656037ULL;
    raft_sim_result result_;
};

}  // namespace

raft_sim_result run_raft_sim(const raft_sim_options& options) {
    raft_sim_options o = options;
    if (o.vary_by_seed) {
        std::mt19937_64 r(o.seed * 0x9e3779b97f4a7c15ULL + 17);
        auto one_of = [&r](std::initializer_list<double> values) {
            return *(values.begin() + static_cast<std::ptrdiff_t>(r() % values.size()));
        };
        o.loss = one_of({0, 0.01, 0.05, 0.2});
        o.duplicate = one_of({0, 0.01, 0.05});
        o.delay_max = static_cast<time_ns>(one_of({0.2, 3, 20}) * 1e6);
        o.crashes_per_s = one_of({0.2, 1, 3});
        o.partitions_per_s = one_of({0, 0.3, 1.5});
        o.disk_latency_max = static_cast<time_ns>(one_of({0.5, 2, 15, 40}) * 1e6);
        o.proposals_per_s = one_of({50, 400, 2000});
        o.snapshot_every = static_cast<log_index>(one_of({30, 200, 1000}));
        o.trailing_entries = static_cast<log_index>(one_of({0, 10, 100}));
        o.transfers_per_s = one_of({0, 0.3, 2});
        o.bit_flip = one_of({0, 0.1, 0.5});
    }
    simulation s(o);
    return s.run();
}

}  // namespace ringmesh::sim
