// engine/metrics: what sinks record (labels in order, histograms cumulative in seconds),
// families merged across shards, and snapshots asked for from another thread and built by
// each shard on its own thread, sleeping shards included.
#include "engine/metrics/shard_metrics.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "engine/metrics/metric_sink.h"
#include "engine/node.h"

namespace ringmesh::metrics {
namespace {

const family* find(const std::vector<family>& all, const std::string& name) {
    for (const family& f : all) {
        if (f.name == name) return &f;
    }
    return nullptr;
}

TEST(MetricSinkTest, SamplesKeepTheirLabelsAndCommonLabelsGoLast) {
    metric_sink sink;
    sink.set_common_labels({{"shard", "3"}});
    sink.counter("ringmesh_x_total", "X.", 7, {{"peer", "n2"}});
    sink.counter("ringmesh_x_total", "X.", 8, {{"peer", "n3"}});
    sink.gauge("ringmesh_y", "Y.", 1.5);
    const std::vector<family> all = sink.take();
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].name, "ringmesh_x_total");
    EXPECT_EQ(all[0].kind, metric_kind::counter);
    ASSERT_EQ(all[0].samples.size(), 2u);
    ASSERT_EQ(all[0].samples[1].labels.size(), 2u);
    EXPECT_EQ(all[0].samples[1].labels[0].value, "n3");
    EXPECT_EQ(all[0].samples[1].labels[1].name, "shard");
    EXPECT_EQ(all[0].samples[1].value, 8);
    EXPECT_EQ(all[1].kind, metric_kind::gauge);
    EXPECT_TRUE(sink.take().empty()) << "take() leaves the sink empty";
}

TEST(MetricSinkTest, LatencyHistogramsAreCumulativeInSeconds) {
    latency_histogram ns;
    for (int i = 0; i < 10; ++i)
        ns.record(5'000);  // 5 us
    for (int i = 0; i < 5; ++i)
        ns.record(3'000'000);   // 3 ms
    ns.record(20'000'000'000);  // 20 s: only in +Inf
    metric_sink sink;
    sink.latency("ringmesh_op_seconds", "Op.", ns);
    const sample s = sink.take().at(0).samples.at(0);
    EXPECT_EQ(s.count, 16u);
    EXPECT_NEAR(s.sum, 10 * 5e-6 + 5 * 3e-3 + 20, 1e-9);
    ASSERT_FALSE(s.buckets.empty());
    std::uint64_t previous = 0;
    for (const auto& [bound, cumulative] : s.buckets) {
        EXPECT_GE(cumulative, previous) << "at " << bound;
        previous = cumulative;
        if (bound >= 10e-6 && bound < 3e-3) {
            EXPECT_EQ(cumulative, 10u) << "at " << bound;
        }
        if (bound >= 5e-3) {
            EXPECT_EQ(cumulative, 15u) << "at " << bound;
        }
    }
    EXPECT_EQ(s.buckets.back().second, 15u) << "20 s lies above the last bound";
}

TEST(MetricSinkTest, MergingPutsSamplesOfTheSameFamilyTogether) {
    metric_sink a, b;
    a.counter("ringmesh_x_total", "X.", 1, {{"shard", "0"}});
    b.counter("ringmesh_x_total", "X.", 2, {{"shard", "1"}});
    b.gauge("ringmesh_z", "Z.", 3);
    std::vector<family> all = a.take();
    merge_families(all, b.take());
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].samples.size(), 2u);
    EXPECT_EQ(all[1].name, "ringmesh_z");
}

class ShardMetricsTest : public ::testing::TestWithParam<idle_kind> {};

TEST_P(ShardMetricsTest, AnotherThreadGetsFreshSnapshotsBuiltOnEachShard) {
    node_config config;
    config.shard_count = 2;
    config.pin_threads = false;
    config.shard.idle.kind = GetParam();
    auto n = node::create(config);
    ASSERT_TRUE(n) << n.err().message();
    std::vector<std::unique_ptr<shard_metrics>> per_shard(2);
    std::atomic<int> reads_on_wrong_thread{0};
    std::vector<std::uint64_t> asked(2, 0);  // each written by its shard only
    ASSERT_TRUE((*n)->start([&](shard& s) {
        auto& mine = per_shard[s.id()];
        mine = std::make_unique<shard_metrics>(s);
        const shard_id id = s.id();
        mine->add_source([&, id](metric_sink& sink) {
            if (this_shard_id() != id) reads_on_wrong_thread.fetch_add(1);
            sink.counter("ringmesh_test_snapshots_total", "Snapshots built.",
                         static_cast<double>(++asked[id]));
        });
        s.on_stop([&mine] { mine.reset(); });
    }));
    for (int round = 1; round <= 3; ++round) {
        for (shard_id id = 0; id < 2; ++id) {
            bool fresh = false;
            const std::vector<family> got =
                per_shard[id]->collect(std::chrono::milliseconds(5000), &fresh);
            EXPECT_TRUE(fresh) << "shard " << id << " round " << round;
            const family* loop = find(got, "ringmesh_loop_iterations_total");
            ASSERT_NE(loop, nullptr);
            ASSERT_EQ(loop->samples.size(), 1u);
            EXPECT_EQ(loop->samples[0].labels.at(0).value, std::to_string(id));
            const family* mine = find(got, "ringmesh_test_snapshots_total");
            ASSERT_NE(mine, nullptr);
            EXPECT_EQ(mine->samples[0].value, round) << "one snapshot per collect";
        }
    }
    (*n)->stop();
    EXPECT_EQ(reads_on_wrong_thread.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Idle, ShardMetricsTest,
                         ::testing::Values(idle_kind::busy_spin, idle_kind::backoff,
                                           idle_kind::block),
                         [](const ::testing::TestParamInfo<idle_kind>& p) {
                             return std::string(to_string(p.param));
                         });

}  // namespace
}  // namespace ringmesh::metrics
