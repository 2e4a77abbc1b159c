// Replicated topics on the deterministic simulator: three nodes run one Raft group with the
// topic_service on it (sim_raft_nodes.h), and a client node runs several topic_publishers.
// On every replica a subscriber reads "orders/**" in log order; when its node crashes it
// resumes, after the restart, from the offset after the last it saw (as a consumer that
// keeps its offset would). Leaders crash (unsynced writes lost or torn) and the network
// partitions while the producers publish.
//
// Checked from what publishers were told and subscribers received:
//   - each subscriber sees offsets only grow, never a message twice, never a gap in what
//     the group committed (its streams, across restarts, agree with every other replica's);
//   - every publish acknowledged ok is there, at the offset it was given, on every replica;
//     one that failed is nowhere; one that ended unknown is there at most once;
//   - one producer's messages are in the order it published them.
// A failure names its seed; RINGMESH_SIM_SEED replays it.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "engine/topics/topic_publisher.h"
#include "engine/topics/topic_service.h"
#include "tests/sim/harness/sim_service_cluster.h"

namespace ringmesh {
namespace {

constexpr int servers = 3;
constexpr int producer_count = 3;

std::string text(std::span<const std::byte> b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

struct published {
    std::string payload;
    std::optional<cluster::call_verdict> verdict;
    topics::log_index index = 0;
};

class topics_cluster {
  public:
    explicit topics_cluster(std::uint64_t seed, std::uint64_t retention_bytes = 64ull << 20)
        : retention_bytes_(retention_bytes),
          streams_(servers),
          next_offset_(servers, 1),
          c_(servers, seed, [this](int at, sim::sim_raft_node& n) { start_service(at, n); }) {
        published_.resize(producer_count);
        c_.on_client([&] {
            for (int p = 0; p < producer_count; ++p) {
                topics::topic_publisher_config pc;
                pc.calls.servers = c_.server_names();
                pc.calls.attempt_timeout = 300 * ns_per_ms;
                pc.calls.deadline = 3 * ns_per_s;
                pc.producer_id = static_cast<std::uint64_t>(p + 1);
                publishers_.push_back(std::make_unique<topics::topic_publisher>(c_.client(), pc));
            }
            return 0;
        });
    }
    ~topics_cluster() {
        c_.on_client([&] {
            publishers_.clear();
            return 0;
        });
    }

    /// Publishes for `duration`, with crashes and partitions when `faults`.
    void run(time_ns duration, bool faults = true) {
        c_.on_client([&] {
            for (int p = 0; p < producer_count; ++p)
                publish_next(p);
            return 0;
        });
        c_.run_faults(duration, faults);
        stopping_ = true;
        // Everything settles: publishes end, and every replica has delivered all the group
        // committed.
        const bool settled = c_.run_until(
            [&] {
                if (open_ > 0) return false;
                topics::log_index commit = 0;
                for (int i = 0; i < servers; ++i) {
                    if (auto* r = c_.nodes().at(i).host->group(1))
                        commit = std::max(commit, r->commit_index());
                }
                for (int i = 0; i < servers; ++i) {
                    if (services_[i]->log().applied() < commit) return false;
                }
                return true;
            },
            30 * ns_per_s);
        if (!settled) c_.fail("not settled 30 s after the faults stopped");
        if (!c_.failed()) final_checks();
    }

    /// A consumer that starts on replica i from offset 1, after the run: what it is told.
    struct late_read {
        topics::log_index truncated_to = 0;  // 0: not told
        std::vector<topics::log_index> offsets;
    };
    late_read subscribe_late(int i) {
        late_read out;
        c_.on_server(i, [&] {
            const auto id = services_[i]->subscribe(
                "orders/**", 1, [&](const topics::delivery& d) { out.offsets.push_back(d.index); },
                [&](topics::log_index first) { out.truncated_to = first; });
            services_[i]->unsubscribe(id);
            return 0;
        });
        return out;
    }
    const topics::topic_log& log_of(int i) { return services_[i]->log(); }

    bool failed() const { return c_.failed(); }
    const std::string& violation() const { return c_.violation(); }
    std::uint64_t acknowledged() const { return acknowledged_; }
    std::uint64_t crashes() const { return c_.crashes(); }
    std::uint64_t resumes() const { return resumes_; }

  private:
    void start_service(int at, sim::sim_raft_node& n) {
        topics::topic_service_config tc;
        tc.snapshot_every = 40;  // snapshots, and installs on nodes that fall behind
        tc.limits.retention_bytes = retention_bytes_;
        tc.wall_clock_ms = [this] { return static_cast<std::uint64_t>(c_.now() / ns_per_ms); };
        auto service = std::make_shared<topics::topic_service>(*n.endpoint, *n.link, tc);
        auto added = n.host->add_group(c_.nodes().group_config(at, 1), c_.nodes().storage(at, 1),
                                       service->application(), c_.now());
        if (!added) c_.fail("add_group: " + added.err().message());
        service->attach(*n.host);
        // A consumer that kept its offset: resume after the last message it saw.
        if (n.starts > 1) ++resumes_;
        service->subscribe(
            "orders/**", next_offset_[at],
            [this, at](const topics::delivery& d) { received(at, d); },
            [this, at](topics::log_index first) {
                c_.fail("replica " + std::to_string(at) + " was told its offset is gone (first " +
                        std::to_string(first) + "): retention must keep everything here");
            });
        services_[at] = service.get();
        n.services.push_back(std::move(service));
    }

    void received(int replica, const topics::delivery& d) {
        if (d.index < next_offset_[replica]) {
            c_.fail("replica " + std::to_string(replica) + " delivered offset " +
                    std::to_string(d.index) + " again, or out of order");
            return;
        }
        next_offset_[replica] = d.index + 1;
        streams_[replica].emplace_back(d.index, text(d.payload));
    }

    // On the client's shard: the producer's next message, once its last one has ended.
    void publish_next(int p) {
        if (stopping_ || c_.failed()) return;
        ++open_;
        auto& mine = published_[p];
        const std::size_t k = mine.size();
        mine.push_back({"p" + std::to_string(p) + "." + std::to_string(k), std::nullopt, 0});
        const std::string payload = mine.back().payload;
        publishers_[p]->publish("orders/" + std::to_string(p),
                                std::as_bytes(std::span(payload.data(), payload.size())),
                                [this, p, k](const topics::publish_outcome& o) {
                                    published_[p][k].verdict = o.verdict;
                                    published_[p][k].index = o.index;
                                    if (o.verdict == cluster::call_verdict::ok) ++acknowledged_;
                                    --open_;
                                    publish_next(p);
                                });
    }

    void final_checks() {
        // Every replica's stream, across its restarts, is the same committed sequence.
        for (int i = 1; i < servers; ++i) {
            if (streams_[i] != streams_[0]) {
                c_.fail("replicas 0 and " + std::to_string(i) + " delivered different streams (" +
                        std::to_string(streams_[0].size()) + " and " +
                        std::to_string(streams_[i].size()) + " messages)");
                return;
            }
        }
        std::map<std::string, std::vector<topics::log_index>> at;  // payload -> offsets
        for (const auto& [index, payload] : streams_[0])
            at[payload].push_back(index);
        for (int p = 0; p < producer_count; ++p) {
            topics::log_index last = 0;
            for (const published& m : published_[p]) {
                const auto it = at.find(m.payload);
                const std::size_t times = it == at.end() ? 0 : it->second.size();
                if (m.verdict == cluster::call_verdict::ok) {
                    if (times != 1 || it->second.front() != m.index) {
                        c_.fail("acknowledged " + m.payload + " at " + std::to_string(m.index) +
                                " was delivered " + std::to_string(times) + " time(s)");
                        return;
                    }
                } else if (m.verdict == cluster::call_verdict::fail && times != 0) {
                    c_.fail("failed publish " + m.payload + " was delivered");
                    return;
                } else if (times > 1) {
                    c_.fail("publish " + m.payload + " (unknown) was delivered twice");
                    return;
                }
                if (times == 1) {
                    if (it->second.front() <= last) {
                        c_.fail("producer " + std::to_string(p) + "'s messages out of order at " +
                                m.payload);
                        return;
                    }
                    last = it->second.front();
                }
            }
        }
    }

    // Declared before the cluster: its nodes' setup fills them as the cluster starts.
    std::uint64_t retention_bytes_;
    std::vector<std::vector<published>> published_;
    std::vector<std::vector<std::pair<topics::log_index, std::string>>> streams_;
    std::vector<topics::log_index> next_offset_;  // per replica: the consumer's kept offset
    std::map<int, topics::topic_service*> services_;
    int open_ = 0;
    bool stopping_ = false;
    std::uint64_t acknowledged_ = 0, resumes_ = 0;
    sim::sim_service_cluster c_;
    std::vector<std::unique_ptr<topics::topic_publisher>> publishers_;
};

TEST(TopicsSimTest, PublishesAreDeliveredOnceInOrderEverywhereThroughLeaderCrashes) {
    std::uint64_t acked = 0, crashes = 0, resumes = 0;
    for (std::uint64_t seed : sim::service_sim_seeds()) {
        topics_cluster c(seed);
        c.run(6 * ns_per_s);
        ASSERT_FALSE(c.failed()) << c.violation() << "\n  replay: RINGMESH_SIM_SEED=" << seed;
        EXPECT_GT(c.acknowledged(), 50u) << "seed " << seed;
        acked += c.acknowledged();
        crashes += c.crashes();
        resumes += c.resumes();
    }
    std::printf(
        "topics sim: %llu publishes acknowledged, %llu leader crashes, %llu subscribers "
        "resumed from their offset after a restart\n",
        static_cast<unsigned long long>(acked), static_cast<unsigned long long>(crashes),
        static_cast<unsigned long long>(resumes));
    EXPECT_GT(resumes, 0u);
}

TEST(TopicsSimTest, AConsumerWhoseOffsetRetentionDroppedIsToldWhereTheLogStarts) {
    topics_cluster c(5, /*retention_bytes=*/200);
    c.run(2 * ns_per_s, /*faults=*/false);
    ASSERT_FALSE(c.failed()) << c.violation();
    const topics::topic_log& log = c.log_of(0);
    ASSERT_GT(log.first_index(), 1u) << "retention dropped nothing";
    const auto late = c.subscribe_late(0);
    EXPECT_EQ(late.truncated_to, log.first_index());
    ASSERT_EQ(late.offsets.size(), log.retained());
    EXPECT_GE(late.offsets.front(), log.first_index());
    EXPECT_LE(log.retained_bytes(), 200u);
}

}  // namespace
}  // namespace ringmesh
