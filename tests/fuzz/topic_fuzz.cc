// Fuzz target: topic and pattern validation and matching on arbitrary strings. A topic that
// validates must match itself and "**"; nothing may crash or read out of bounds.
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "engine/messaging/topic.h"

using namespace ringmesh::messaging;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view all(reinterpret_cast<const char*>(data), size);
    const std::size_t cut = all.find('\n');
    const std::string_view pattern = all.substr(0, cut);
    const std::string_view topic =
        cut == std::string_view::npos ? std::string_view{} : all.substr(cut + 1);
    const bool topic_ok = valid_topic(topic);
    const bool pattern_ok = valid_pattern(pattern);
    if (topic_ok && pattern_ok) (void)topic_matches(pattern, topic);
    if (topic_ok && (!topic_matches(topic, topic) || !topic_matches("**", topic))) std::abort();
    return 0;
}

std::vector<std::vector<std::uint8_t>> fuzz_seeds() {
    auto s = [](std::string_view v) { return std::vector<std::uint8_t>(v.begin(), v.end()); };
    return {s("md/*/AAPL\nmd/eq/AAPL"), s("md/**\nmd/eq"), s("*\nx"), s("a/b\na/b/c")};
}
