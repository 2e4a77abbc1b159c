// A log-linear latency histogram: exact below 128, then 64 buckets per power of two, so any
// recorded value is reported within 1/64 (1.6 %) of itself. Fixed size (about 30 KiB), O(1)
// record, mergeable: one per shard, merged off the data path for reports.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <limits>
#include <span>

namespace ringmesh {

/// Owned by one thread; merge() copies of it elsewhere.
class latency_histogram {
  public:
    static constexpr std::size_t bucket_count = 128 + 56 * 64;

    void record(std::int64_t value) noexcept {
        if (value < 0) value = 0;
        ++buckets_[index_of(static_cast<std::uint64_t>(value))];
        ++count_;
        sum_ += static_cast<std::uint64_t>(value);
        if (value < min_) min_ = value;
        if (value > max_) max_ = value;
    }

    void merge(const latency_histogram& other) noexcept {
        for (std::size_t i = 0; i < bucket_count; ++i)
            buckets_[i] += other.buckets_[i];
        count_ += other.count_;
        sum_ += other.sum_;
        if (other.min_ < min_) min_ = other.min_;
        if (other.max_ > max_) max_ = other.max_;
    }

    /// The value at quantile q in [0, 1] (upper edge of its bucket, never above max()).
    std::int64_t quantile(double q) const noexcept {
        if (count_ == 0) return 0;
        const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(count_ - 1)) + 1;
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < bucket_count; ++i) {
            seen += buckets_[i];
            if (seen >= rank) {
                const auto upper = static_cast<std::int64_t>(upper_edge(i));
                return upper < max_ ? upper : max_;
            }
        }
        return max_;
    }

    std::uint64_t count() const noexcept { return count_; }
    /// The sum of every value recorded (for a mean, and Prometheus' _sum).
    std::uint64_t sum() const noexcept { return sum_; }
    /// Cumulative counts at the ascending bounds `at_most`, as Prometheus exports them:
    /// out[k] counts the values in buckets wholly at or below at_most[k] (a value shares its
    /// bucket's upper edge). One pass over the buckets for all the bounds.
    void cumulative_counts(std::span<const std::int64_t> at_most,
                           std::span<std::uint64_t> out) const noexcept {
        std::uint64_t n = 0;
        std::size_t i = 0;
        for (std::size_t k = 0; k < at_most.size() && k < out.size(); ++k) {
            for (; i < bucket_count && at_most[k] >= 0 &&
                   upper_edge(i) <= static_cast<std::uint64_t>(at_most[k]);
                 ++i)
                n += buckets_[i];
            out[k] = n;
        }
    }
    std::int64_t min() const noexcept { return count_ ? min_ : 0; }
    std::int64_t max() const noexcept { return max_; }
    void reset() noexcept { *this = latency_histogram{}; }

    static std::size_t index_of(std::uint64_t v) noexcept {
        if (v < 128) return static_cast<std::size_t>(v);
        const unsigned shift = static_cast<unsigned>(std::bit_width(v)) - 7;  // top in [64, 128)
        const std::uint64_t top = v >> shift;
        return 128 + (shift - 1) * 64 + static_cast<std::size_t>(top - 64);
    }
    static std::uint64_t upper_edge(std::size_t index) noexcept {
        if (index < 128) return index;
        const std::size_t k = index - 128;
        const unsigned shift = static_cast<unsigned>(k / 64) + 1;
        const std::uint64_t top = 64 + k % 64;
        return ((top + 1) << shift) - 1;
    }

  private:
    std::array<std::uint64_t, bucket_count> buckets_{};
    std::uint64_t count_ = 0;
    std::uint64_t sum_ = 0;
    std::int64_t min_ = std::numeric_limits<std::int64_t>::max();
    std::int64_t max_ = 0;
};

}  // namespace ringmesh
