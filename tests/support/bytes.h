// Test helpers shared by the suites: text as the bytes an API takes, and bytes back as text.
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace ringmesh::test_support {

inline std::span<const std::byte> bytes_of(const std::string& s) {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

inline std::string text_of(std::span<const std::byte> b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace ringmesh::test_support
