// Always-on assertions for programmer errors: they stay in release builds and crash with
// context (file, line, condition, message), because a broken invariant on the data path is
// worse than a crash. Expected failures (bad input, full rings, exhausted pools) never use
// these: they are counted and reported as values.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace ringmesh::detail {

[[noreturn, gnu::cold, gnu::noinline]] inline void assert_failed(const char* condition,
                                                                 const char* message,
                                                                 const char* file, int line,
                                                                 const char* function) {
    std::fprintf(stderr, "ringmesh: assertion failed: %s\n  %s\n  at %s:%d in %s\n", condition,
                 message, file, line, function);
    std::fflush(stderr);
    std::abort();
}

}  // namespace ringmesh::detail

/// RM_ASSERT(condition, "what went wrong") — checked in every build type.
#define RM_ASSERT(condition, message)                                                             \
    do {                                                                                          \
        if (__builtin_expect(!(condition), 0)) [[unlikely]] {                                     \
            ::ringmesh::detail::assert_failed(#condition, message, __FILE__, __LINE__, __func__); \
        }                                                                                         \
    } while (false)
