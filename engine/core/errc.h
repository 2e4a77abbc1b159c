// Typed error codes of the engine core's control path (setup, configuration, start/stop).
// Each subsystem declares its own `errc` enum and category the same way, so a caller can
// compare against `make_error_code(core_errc::bad_core_list)` and print a clear message.
#pragma once

#include <string>
#include <system_error>

namespace ringmesh {

enum class core_errc {
    bad_config = 1,       ///< a setting is out of range or inconsistent
    bad_core_list,        ///< a configured core does not exist or is not allowed to us
    thread_start_failed,  ///< the OS refused to create or pin a shard thread
    already_running,      ///< start() on a running node
    resource_exhausted,   ///< a bounded pool or ring could not be allocated
    system_error,         ///< an OS call failed; the message carries errno's text
};

const std::error_category& core_category() noexcept;

inline std::error_code make_error_code(core_errc e) noexcept {
    return {static_cast<int>(e), core_category()};
}

/// errno's text, safe on any thread (std::strerror is not: shards set up concurrently).
inline std::string errno_text(int err) {
    return std::generic_category().message(err);
}

}  // namespace ringmesh

template <>
struct std::is_error_code_enum<ringmesh::core_errc> : std::true_type {};
