#include "engine/core/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace ringmesh {
namespace {

TEST(HistogramTest, SmallValuesAreExact) {
    latency_histogram h;
    for (int v = 0; v < 100; ++v)
        h.record(v);
    EXPECT_EQ(h.quantile(0.0), 0);
    EXPECT_EQ(h.quantile(0.5), 49);
    EXPECT_EQ(h.quantile(1.0), 99);
    EXPECT_EQ(h.count(), 100u);
}

TEST(HistogramTest, QuantilesStayWithinTheRelativeErrorBound) {
    std::mt19937_64 rng(9);
    std::lognormal_distribution<double> dist(9.0, 1.5);  // ~8 us median, long tail
    latency_histogram h;
    std::vector<std::int64_t> values;
    for (int i = 0; i < 200000; ++i) {
        const auto v = static_cast<std::int64_t>(dist(rng));
        values.push_back(v);
        h.record(v);
    }
    std::sort(values.begin(), values.end());
    for (double q : {0.5, 0.9, 0.99, 0.999, 0.9999}) {
        const auto exact = values[static_cast<std::size_t>(q * (values.size() - 1))];
        const auto approx = h.quantile(q);
        EXPECT_GE(approx, exact) << q;
        EXPECT_LE(static_cast<double>(approx - exact), exact / 64.0 + 1) << q;
    }
    EXPECT_EQ(h.quantile(1.0), values.back());
}

TEST(HistogramTest, BucketsCoverTheWholeRangeWithoutGaps) {
    for (std::size_t i = 128; i + 1 < latency_histogram::bucket_count; ++i) {
        ASSERT_EQ(latency_histogram::index_of(latency_histogram::upper_edge(i)), i);
        ASSERT_EQ(latency_histogram::index_of(latency_histogram::upper_edge(i) + 1), i + 1);
    }
    latency_histogram h;
    h.record(std::numeric_limits<std::int64_t>::max());
    h.record(-5);  // clamped to 0
    EXPECT_EQ(h.quantile(0), 0);
}

TEST(HistogramTest, MergeEqualsRecordingEverythingInOne) {
    latency_histogram a, b, all;
    for (int i = 0; i < 1000; ++i) {
        (i % 2 ? a : b).record(i * 37);
        all.record(i * 37);
    }
    a.merge(b);
    EXPECT_EQ(a.count(), all.count());
    EXPECT_EQ(a.quantile(0.99), all.quantile(0.99));
    EXPECT_EQ(a.max(), all.max());
}

}  // namespace
}  // namespace ringmesh
