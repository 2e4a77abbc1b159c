// Topic names and subscription patterns. Topics are hierarchical, '/'-separated levels
// ("md/eq/AAPL"). A pattern may use '*' for exactly one level and '**' (last level only) for
// one or more remaining levels: "md/*/AAPL", "md/**".
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace ringmesh::messaging {

/// A publishable topic: non-empty levels, no wildcards, no control characters.
bool valid_topic(std::string_view topic) noexcept;
/// A subscription pattern: like a topic, plus '*' levels and a final '**'.
bool valid_pattern(std::string_view pattern) noexcept;
/// Whether `topic` falls under `pattern` (both assumed valid).
bool topic_matches(std::string_view pattern, std::string_view topic) noexcept;
/// Whether `topic` falls under any of `patterns` (a peer's subscriptions).
bool any_pattern_matches(std::span<const std::string> patterns, std::string_view topic) noexcept;

}  // namespace ringmesh::messaging
