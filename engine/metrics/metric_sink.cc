#include "engine/metrics/metric_sink.h"

#include <array>

namespace ringmesh::metrics {

namespace {
// Histogram bucket bounds, in nanoseconds: 10 us to 10 s, 1-2-5 per decade.
constexpr std::array<std::int64_t, 19> latency_bounds_ns = {
    10'000,        20'000,        50'000,        100'000,       200'000,
    500'000,       1'000'000,     2'000'000,     5'000'000,     10'000'000,
    20'000'000,    50'000'000,    100'000'000,   200'000'000,   500'000'000,
    1'000'000'000, 2'000'000'000, 5'000'000'000, 10'000'000'000};
}  // namespace

sample& metric_sink::add(std::string_view name, std::string_view help, metric_kind kind,
                         std::initializer_list<label> labels) {
    auto it = index_.find(name);
    if (it == index_.end()) {
        it = index_.emplace(std::string(name), families_.size()).first;
        families_.push_back({std::string(name), std::string(help), kind, {}});
    }
    sample& s = families_[it->second].samples.emplace_back();
    s.labels.assign(labels.begin(), labels.end());
    s.labels.insert(s.labels.end(), common_.begin(), common_.end());
    return s;
}

void metric_sink::counter(std::string_view name, std::string_view help, double value,
                          std::initializer_list<label> labels) {
    add(name, help, metric_kind::counter, labels).value = value;
}

void metric_sink::gauge(std::string_view name, std::string_view help, double value,
                        std::initializer_list<label> labels) {
    add(name, help, metric_kind::gauge, labels).value = value;
}

void metric_sink::latency(std::string_view name, std::string_view help, const latency_histogram& ns,
                          std::initializer_list<label> labels) {
    sample& s = add(name, help, metric_kind::histogram, labels);
    std::array<std::uint64_t, latency_bounds_ns.size()> cumulative{};
    ns.cumulative_counts(latency_bounds_ns, cumulative);
    s.buckets.reserve(latency_bounds_ns.size());
    for (std::size_t k = 0; k < latency_bounds_ns.size(); ++k)
        s.buckets.emplace_back(static_cast<double>(latency_bounds_ns[k]) / 1e9, cumulative[k]);
    s.count = ns.count();
    s.sum = static_cast<double>(ns.sum()) / 1e9;
}

std::vector<family> metric_sink::take() {
    index_.clear();
    return std::exchange(families_, {});
}

void merge_families(std::vector<family>& into, std::vector<family> more) {
    for (family& f : more) {
        family* same = nullptr;
        for (family& existing : into) {
            if (existing.name == f.name) same = &existing;
        }
        if (same == nullptr) {
            into.push_back(std::move(f));
            continue;
        }
        for (sample& s : f.samples)
            same->samples.push_back(std::move(s));
    }
}

}  // namespace ringmesh::metrics
