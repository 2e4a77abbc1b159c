#include "engine/metrics/metric_sink.h"

namespace ringmesh::metrics {

namespace {
// Histogram bucket bounds, in seconds: 10 us to 10 s, 1-2-5 per decade.
constexpr double latency_bounds[] = {10e-6,  20e-6, 50e-6, 100e-6, 200e-6, 500e-6, 1e-3,
                                     2e-3,   5e-3,  10e-3, 20e-3,  50e-3,  100e-3, 200e-3,
                                     500e-3, 1,     2,     5,      10};
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
    s.buckets.reserve(std::size(latency_bounds));
    for (double bound : latency_bounds)
        s.buckets.emplace_back(bound, ns.count_at_most(static_cast<std::int64_t>(bound * 1e9)));
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
