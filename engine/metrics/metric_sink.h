// What a node's metrics are made of before anyone formats them: families (a name in Prometheus
// conventions, a help line, a type) of samples (bounded labels: shard, peer, group, reason —
// never a name taken unbounded from user input). Sources write into a metric_sink on the
// shard that owns the figures; the HTTP side (metrics_http.h) turns the families into the
// Prometheus exposition with prometheus-cpp. Counters and gauges are plain doubles; latency
// histograms (recorded in nanoseconds) are exported in seconds over fixed buckets.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/core/histogram.h"

namespace ringmesh::metrics {

enum class metric_kind : std::uint8_t { counter, gauge, histogram };

struct label {
    std::string name, value;
};

struct sample {
    std::vector<label> labels;
    double value = 0;  ///< counter, gauge
    /// histogram: (upper bound in base units, cumulative count), ascending; +Inf is implied
    /// by count.
    std::vector<std::pair<double, std::uint64_t>> buckets;
    std::uint64_t count = 0;
    double sum = 0;
};

struct family {
    std::string name, help;
    metric_kind kind = metric_kind::counter;
    std::vector<sample> samples;
};

/// Collects the samples of one snapshot; families keep the order they were first written in.
/// Not thread-safe: one sink per snapshot, filled on one thread.
class metric_sink {
  public:
    /// `name` ends in _total (a counter's convention).
    void counter(std::string_view name, std::string_view help, double value,
                 std::initializer_list<label> labels = {});
    void gauge(std::string_view name, std::string_view help, double value,
               std::initializer_list<label> labels = {});
    /// A latency histogram recorded in nanoseconds, as seconds (`name` ends in _seconds).
    void latency(std::string_view name, std::string_view help, const latency_histogram& ns,
                 std::initializer_list<label> labels = {});
    /// Adds every label in `labels` to the samples written from now on (e.g. shard="1").
    void set_common_labels(std::vector<label> labels) { common_ = std::move(labels); }

    std::vector<family> take();

  private:
    sample& add(std::string_view name, std::string_view help, metric_kind kind,
                std::initializer_list<label> labels);

    std::vector<family> families_;
    std::map<std::string, std::size_t, std::less<>> index_;
    std::vector<label> common_;
};

/// Appends `more`'s families to `into`, merging the samples of families with the same name.
void merge_families(std::vector<family>& into, std::vector<family> more);

}  // namespace ringmesh::metrics
