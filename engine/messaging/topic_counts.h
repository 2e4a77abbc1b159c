// Messages per topic, for the metrics and the live view, with a bound: the first `limit`
// distinct topics get counters of their own and every later one is counted under "_other".
// Topic names are the application's choice, or a peer's, so an unbounded label set would let
// either grow a scrape (and this table) without end.
//
// Owned by an endpoint, on its shard. The publish path pays a string compare when a topic
// repeats the previous one, a hash lookup otherwise.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace ringmesh::messaging {

class topic_counts {
  public:
    struct counts {
        std::uint64_t published = 0;  ///< published here
        std::uint64_t received = 0;   ///< published by a peer, received here
    };
    static constexpr std::string_view overflow_topic = "_other";

    /// `limit` 0 counts nothing (at() answers null).
    explicit topic_counts(std::size_t limit) : limit_(limit) {}

    /// The counters of `topic` (the overflow's once `limit` topics have their own); null when
    /// counting is off.
    counts* at(std::string_view topic) {
        if (limit_ == 0) return nullptr;
        if (last_ != nullptr && topic == *last_name_) return last_;
        auto it = table_.find(topic);
        if (it == table_.end()) {
            if (table_.size() >= limit_) {
                it = table_.find(overflow_topic);
                if (it == table_.end()) it = table_.emplace(overflow_topic, counts{}).first;
                return &it->second;  // not cached: the name it stands for keeps changing
            }
            it = table_.emplace(topic, counts{}).first;
        }
        last_name_ = &it->first;  // nodes never move: safe across rehashing
        last_ = &it->second;
        return last_;
    }

    template <typename Fn>
    void for_each(Fn&& fn) const {
        for (const auto& [topic, c] : table_)
            fn(std::string_view(topic), c);
    }
    std::size_t size() const noexcept { return table_.size(); }

  private:
    struct name_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };

    std::size_t limit_;
    // One more than `limit_` entries at most: the overflow's.
    std::unordered_map<std::string, counts, name_hash, std::equal_to<>> table_;
    const std::string* last_name_ = nullptr;
    counts* last_ = nullptr;
};

}  // namespace ringmesh::messaging
