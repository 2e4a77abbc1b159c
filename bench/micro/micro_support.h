// What the micro-benchmarks on a live node share: a node of busy-spinning shards (or the
// benchmark skipped, with the reason), and percentiles of sorted samples.
#pragma once

#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "engine/node.h"

namespace ringmesh::bench {

/// A node of `shards` busy-spinning shards, not started; null (the benchmark skipped, with
/// the reason) when it cannot be made.
inline std::unique_ptr<node> busy_node(benchmark::State& state, unsigned shards) {
    node_config config;
    config.shard_count = shards;
    config.shard.idle.kind = idle_kind::busy_spin;
    auto n = node::create(config);
    if (!n) {
        state.SkipWithError(n.err().message().c_str());
        return nullptr;
    }
    return std::move(n).value();
}

/// The value at quantile q of ascending `sorted` (which must not be empty).
inline double percentile(const std::vector<time_ns>& sorted, double q) {
    return static_cast<double>(
        sorted[static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1))]);
}

}  // namespace ringmesh::bench
