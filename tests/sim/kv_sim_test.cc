// The replicated key-value service on the deterministic simulator: three nodes run one Raft
// group each with the kv_service on it (sim_raft_nodes.h), and a client node runs several
// kv_clients through its own endpoint. Leaders crash (unsynced writes lost or torn) and come
// back, and the network partitions, while every client appends its own tokens to its own key
// and reads the others' keys.
//
// Checked from what the clients were told:
//   - every append acknowledged ok is in its key's final value exactly once, in the order
//     the client issued it; one that ended unknown is there at most once; one that failed is
//     not there at all (retries after a leader change never apply twice);
//   - every get that succeeded saw a prefix of its key's appends that holds every append
//     acknowledged before the get began (reads are linearizable);
//   - once the faults stop, every client's final read succeeds.
// A failure names its seed; RINGMESH_SIM_SEED replays it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/kv/kv_client.h"
#include "engine/kv/kv_service.h"
#include "tests/sim/harness/sim_service_cluster.h"

namespace ringmesh {
namespace {

constexpr int servers = 3;
constexpr int client_count = 4;

std::string text(std::span<const std::byte> b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}
std::span<const std::byte> bytes(const std::string& s) {
    return std::as_bytes(std::span(s.data(), s.size()));
}

// One client's appends to its own key, in issue order, and how each ended.
struct appends {
    std::vector<std::string> tokens;
    std::vector<kv::kv_verdict> verdicts;  // as they end (tokens.size() - 1 may be open)
    std::size_t acked_before_now = 0;      // appends acknowledged ok so far
};

class kv_cluster {
  public:
    explicit kv_cluster(std::uint64_t seed)
        : c_(servers, seed, [this](int at, sim::sim_raft_node& n) { start_service(at, n); }) {
        appends_.resize(client_count);
        c_.on_client([&] {
            for (int k = 0; k < client_count; ++k) {
                kv::kv_client_config cc;
                cc.calls.servers = c_.server_names();
                cc.calls.attempt_timeout = 300 * ns_per_ms;
                cc.calls.deadline = 3 * ns_per_s;
                cc.client_id = static_cast<std::uint64_t>(k + 1);
                clients_.push_back(std::make_unique<kv::kv_client>(c_.client(), cc));
            }
            return 0;
        });
    }
    ~kv_cluster() {
        c_.on_client([&] {
            clients_.clear();
            return 0;
        });
    }

    void run(time_ns faults_for) {
        c_.on_client([&] {
            for (int k = 0; k < client_count; ++k)
                issue(k);
            return 0;
        });
        c_.run_faults(faults_for);
        // Faults stop; the clients finish what they are doing, then read their keys.
        stopping_ = true;
        const bool quiet = c_.run_until([&] { return open_ops_ == 0; }, 30 * ns_per_s);
        if (!quiet) c_.fail("operations still open 30 s after the faults stopped");
        final_reads();
    }

    bool failed() const { return c_.failed(); }
    const std::string& violation() const { return c_.violation(); }
    std::uint64_t acknowledged() const { return acknowledged_; }
    std::uint64_t reads() const { return reads_ok_; }
    std::uint64_t crashes() const { return c_.crashes(); }
    std::uint64_t retries_deduplicated() const {
        std::uint64_t n = 0;
        for (int i = 0; i < servers; ++i)
            n += duplicates_[i];
        return n;
    }
    std::uint64_t snapshots() const { return snapshots_; }

  private:
    void start_service(int at, sim::sim_raft_node& n) {
        kv::kv_service_config sc;
        sc.snapshot_every = 50;  // snapshots, and installs on nodes that fall behind
        auto service = std::make_shared<kv::kv_service>(*n.endpoint, *n.link, sc);
        auto added = n.host->add_group(c_.nodes().group_config(at, 1), c_.nodes().storage(at, 1),
                                       service->application(), c_.now());
        if (!added) c_.fail("add_group: " + added.err().message());
        service->attach(*n.host);
        services_[at] = service.get();
        n.services.push_back(std::move(service));
    }

    static std::string key(int c) { return "key" + std::to_string(c); }

    // The client's next operation: mostly an append to its own key, sometimes a read of
    // another client's key. Runs on the client's shard (from a completion, or bound by run).
    void issue(int c) {
        if (stopping_ || c_.failed()) return;
        ++open_ops_;
        kv::kv_client& client = *clients_[static_cast<std::size_t>(c)];
        if (c_.rng()() % 4 == 0) {
            const int other = static_cast<int>(c_.rng()() % client_count);
            const std::size_t acked_before = appends_[other].acked_before_now;
            client.get(
                key(other),
                [this, c, other, acked_before](const kv::kv_outcome& o) {
                    if (o.verdict == kv::kv_verdict::ok) {
                        ++reads_ok_;
                        const std::string error = check(other, text(o.value), acked_before);
                        if (!error.empty())
                            c_.fail("a read of key" + std::to_string(other) + ": " + error);
                    }
                    done_op(c);
                },
                c_.rng()() % 2 == 0);
            return;
        }
        appends& a = appends_[c];
        const std::string token = std::to_string(c) + "." + std::to_string(a.tokens.size()) + ";";
        a.tokens.push_back(token);
        client.append(key(c), bytes(token), [this, c](const kv::kv_outcome& o) {
            appends& mine = appends_[c];
            mine.verdicts.push_back(o.verdict);
            if (o.verdict == kv::kv_verdict::ok) {
                ++mine.acked_before_now;
                ++acknowledged_;
            }
            done_op(c);
        });
    }
    void done_op(int c) {
        --open_ops_;
        issue(c);
    }

    // What a successful read of client `c`'s key may hold: its appends in issue order, each
    // at most once; never one that failed; every acknowledged one up to the last it holds
    // (one client's appends apply in order: a later sequence refuses an earlier one); and
    // at least the first `acked_before` acknowledged ones (those acknowledged before the read
    // began). Returns what is wrong, or nothing.
    std::string check(int c, const std::string& value, std::size_t acked_before) const {
        const appends& a = appends_[c];
        std::vector<std::size_t> seen;  // issue indexes
        std::size_t at = 0;
        while (at < value.size()) {
            const std::size_t end = value.find(';', at);
            const std::size_t dot = value.find('.', at);
            if (end == std::string::npos || dot == std::string::npos || dot > end ||
                value.substr(at, dot - at) != std::to_string(c))
                return "'" + value + "' is not this client's tokens";
            seen.push_back(std::stoul(value.substr(dot + 1, end - dot - 1)));
            at = end + 1;
        }
        auto verdict = [&a](std::size_t j) {
            return j < a.verdicts.size() ? std::optional(a.verdicts[j]) : std::nullopt;
        };
        for (std::size_t k = 0; k < seen.size(); ++k) {
            if (seen[k] >= a.tokens.size()) return "an append never issued in '" + value + "'";
            if (k > 0 && seen[k] <= seen[k - 1]) return "duplicated or reordered: '" + value + "'";
            if (verdict(seen[k]) == kv::kv_verdict::fail)
                return "a failed append applied: '" + value + "'";
        }
        const std::size_t last = seen.empty() ? 0 : seen.back() + 1;  // issue indexes covered
        std::size_t acked = 0;
        for (std::size_t j = 0; j < a.verdicts.size(); ++j) {
            if (a.verdicts[j] != kv::kv_verdict::ok) continue;
            const bool there = std::find(seen.begin(), seen.end(), j) != seen.end();
            if (j < last && !there)
                return "acknowledged " + a.tokens[j] + " missing from '" + value + "'";
            if (there) ++acked;
        }
        if (acked < acked_before)
            return "missed an append acknowledged before it began: '" + value + "'";
        return {};
    }

    void final_reads() {
        if (c_.failed()) return;
        std::vector<std::string> finals(client_count);
        std::vector<bool> done(client_count);
        for (int c = 0; c < client_count; ++c) {
            c_.on_client([&] {
                clients_[static_cast<std::size_t>(c)]->get(
                    key(c), [&finals, &done, c](const kv::kv_outcome& o) {
                        if (o.verdict == kv::kv_verdict::ok) finals[c] = text(o.value);
                        done[c] = o.verdict == kv::kv_verdict::ok;
                    });
                return 0;
            });
        }
        const bool read = c_.run_until(
            [&] { return std::all_of(done.begin(), done.end(), [](bool d) { return d; }); },
            20 * ns_per_s);
        if (!read) {
            c_.fail("the final reads did not succeed once the faults stopped");
            return;
        }
        for (int c = 0; c < client_count; ++c) {
            // Every acknowledged append is in the final value.
            const std::string error = check(c, finals[c], appends_[c].acked_before_now);
            if (!error.empty()) {
                c_.fail("key" + std::to_string(c) + " at the end: " + error);
                return;
            }
        }
        for (int i = 0; i < servers; ++i) {
            duplicates_[i] = services_[i]->state().stats().duplicates;
            snapshots_ += services_[i]->group_stats().snapshots_saved;
        }
    }

    // Declared before the cluster: its nodes' setup fills them as the cluster starts.
    std::vector<appends> appends_;
    std::map<int, kv::kv_service*> services_;
    std::uint64_t duplicates_[servers] = {};
    int open_ops_ = 0;
    bool stopping_ = false;
    std::uint64_t acknowledged_ = 0, reads_ok_ = 0, snapshots_ = 0;
    sim::sim_service_cluster c_;
    std::vector<std::unique_ptr<kv::kv_client>> clients_;
};

TEST(KvSimTest, AppendsAndReadsStayLinearizableThroughLeaderCrashes) {
    std::uint64_t acked = 0, reads = 0, crashes = 0, deduplicated = 0, snapshots = 0;
    for (std::uint64_t seed : sim::service_sim_seeds()) {
        kv_cluster c(seed);
        c.run(6 * ns_per_s);
        acked += c.acknowledged();
        reads += c.reads();
        crashes += c.crashes();
        deduplicated += c.retries_deduplicated();
        snapshots += c.snapshots();
        ASSERT_FALSE(c.failed()) << c.violation() << "\n  replay: RINGMESH_SIM_SEED=" << seed;
        EXPECT_GT(c.acknowledged(), 100u) << "seed " << seed;
        EXPECT_GT(c.reads(), 20u) << "seed " << seed;
        EXPECT_GT(c.crashes(), 0u) << "seed " << seed;
    }
    // What the run exercised (a harness whose faults never fire finds nothing).
    std::printf(
        "kv sim: %llu appends acknowledged, %llu reads, %llu leader crashes, %llu retried "
        "writes answered from their session, %llu snapshots\n",
        static_cast<unsigned long long>(acked), static_cast<unsigned long long>(reads),
        static_cast<unsigned long long>(crashes), static_cast<unsigned long long>(deduplicated),
        static_cast<unsigned long long>(snapshots));
    EXPECT_GT(snapshots, 0u);
}

}  // namespace
}  // namespace ringmesh
