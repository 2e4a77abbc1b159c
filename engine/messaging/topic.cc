#include "engine/messaging/topic.h"

namespace ringmesh::messaging {

namespace {

// Calls fn(level, is_last) for each level; false as soon as fn says so.
template <typename Fn>
bool for_each_level(std::string_view s, Fn&& fn) {
    if (s.empty()) return false;
    std::size_t start = 0;
    for (;;) {
        const std::size_t slash = s.find('/', start);
        const bool last = slash == std::string_view::npos;
        const std::string_view level = s.substr(start, last ? s.size() - start : slash - start);
        if (!fn(level, last)) return false;
        if (last) return true;
        start = slash + 1;
    }
}

bool plain_level(std::string_view level) {
    if (level.empty()) return false;
    for (char c : level) {
        if (static_cast<unsigned char>(c) < 0x21 || c == 0x7f || c == '*') return false;
    }
    return true;
}

}  // namespace

bool valid_topic(std::string_view topic) noexcept {
    return for_each_level(topic, [](std::string_view level, bool) { return plain_level(level); });
}

bool valid_pattern(std::string_view pattern) noexcept {
    return for_each_level(pattern, [](std::string_view level, bool last) {
        if (level == "*") return true;
        if (level == "**") return last;
        return plain_level(level);
    });
}

bool topic_matches(std::string_view pattern, std::string_view topic) noexcept {
    std::size_t p = 0, t = 0;
    for (;;) {
        const std::size_t p_end = std::min(pattern.find('/', p), pattern.size());
        const std::size_t t_end = std::min(topic.find('/', t), topic.size());
        const std::string_view p_level = pattern.substr(p, p_end - p);
        if (p_level == "**") return t < topic.size();  // one or more levels remain
        if (t >= topic.size() && t != 0) return false;
        const std::string_view t_level = topic.substr(t, t_end - t);
        if (p_level != "*" && p_level != t_level) return false;
        const bool p_done = p_end == pattern.size();
        const bool t_done = t_end == topic.size();
        if (p_done || t_done) return p_done && t_done;
        p = p_end + 1;
        t = t_end + 1;
    }
}

bool any_pattern_matches(std::span<const std::string> patterns, std::string_view topic) noexcept {
    for (const std::string& pattern : patterns) {
        if (topic_matches(pattern, topic)) return true;
    }
    return false;
}

}  // namespace ringmesh::messaging
