// The engine's one logging facility: levels, a process-wide threshold, per-call-site rate
// limits for lines that bad input can provoke on the data path, and a hook through which an
// embedding service takes the lines into its own logger. Without a hook, lines go to stderr
// through spdlog.
//
// Who may call: any thread. A line below the threshold costs one relaxed atomic load and
// formats nothing. A rate-limited site keeps its state per thread (each shard its own), so a
// flood of refused frames on one shard costs a clock read and a compare per suppressed line:
// no lock, no shared write.
//
//   static thread_local log::site_limit refusals;  // 10 lines a second from this site
//   log::limited(refusals, log::level::warn, "messaging", "peer {} refused: {}", id, why);
#pragma once

#include <fmt/core.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace ringmesh::log {

enum class level : std::uint8_t { trace, debug, info, warn, error, off };
inline constexpr std::size_t level_count = 5;  ///< the levels a line can have (not `off`)

std::string_view name(level l);
/// "trace", "debug", "info", "warn", "error" or "off"; nullopt for anything else.
std::optional<level> parse_level(std::string_view text);

namespace detail {
extern std::atomic<level> threshold;
}  // namespace detail

/// Lines below `l` are dropped before they are formatted. Default: info.
void set_level(level l);
inline level current_level() {
    return detail::threshold.load(std::memory_order_relaxed);
}
inline bool enabled(level l) {
    return l >= current_level() && l != level::off;
}

/// Receives every line that passes the threshold and its site's limit, with the component
/// ("messaging", "dpdk", ...) apart from the text. Empty: back to spdlog on stderr. Called with
/// a lock held (one line at a time); it must not log itself.
using line_handler = std::function<void(level, std::string_view component, std::string_view text)>;
void set_handler(line_handler handler);

/// The name the default sink prints on every line (a daemon sets its node id). Default
/// "ringmesh".
void set_tag(std::string_view tag);

/// Lines written since start, by level, and lines a site limit held back. Suppressed lines
/// are added when their site next writes (the line says how many it stands for), so the
/// count may trail by one window per site.
struct totals {
    std::array<std::uint64_t, level_count> lines{};
    std::uint64_t suppressed = 0;
};
totals counted();

/// Writes one already formatted line (no threshold check; `write` and `limited` make it).
void emit(level l, std::string_view component, std::string_view text);
/// Adds lines a site held back to `counted().suppressed`.
void note_suppressed(std::uint64_t lines);

/// At most `burst` lines per `window_ns` from one call site on one thread; the first line
/// after a window that held some back says how many. Declare it `static thread_local` at
/// the site.
class site_limit {
  public:
    explicit site_limit(std::uint32_t burst = 10, std::int64_t window_ns = 1'000'000'000)
        : burst_(burst), window_ns_(window_ns) {}

    /// Whether a line at `now_ns` may be written; when it may, `held_back` is set to the
    /// lines suppressed since the last one written.
    bool admit(std::int64_t now_ns, std::uint64_t& held_back);

  private:
    std::uint32_t burst_;
    std::int64_t window_ns_;
    std::int64_t window_start_ = 0;
    bool started_ = false;
    std::uint32_t written_ = 0;
    std::uint64_t held_back_ = 0;
};

/// CLOCK_MONOTONIC_COARSE in ns: the time a site limit needs, a few ns to read.
std::int64_t coarse_now_ns();

template <class... Args>
void write(level l, std::string_view component, fmt::format_string<Args...> format,
           Args&&... args) {
    if (!enabled(l)) return;
    emit(l, component, fmt::format(format, std::forward<Args>(args)...));
}

template <class... Args>
void limited(site_limit& site, level l, std::string_view component,
             fmt::format_string<Args...> format, Args&&... args) {
    if (!enabled(l)) return;
    std::uint64_t held_back = 0;
    if (!site.admit(coarse_now_ns(), held_back)) return;
    std::string text = fmt::format(format, std::forward<Args>(args)...);
    if (held_back > 0) {
        text +=
            fmt::format(" ({} similar line{} suppressed)", held_back, held_back == 1 ? "" : "s");
        note_suppressed(held_back);
    }
    emit(l, component, text);
}

template <class... Args>
void info(std::string_view component, fmt::format_string<Args...> format, Args&&... args) {
    write(level::info, component, format, std::forward<Args>(args)...);
}
template <class... Args>
void warn(std::string_view component, fmt::format_string<Args...> format, Args&&... args) {
    write(level::warn, component, format, std::forward<Args>(args)...);
}
template <class... Args>
void error(std::string_view component, fmt::format_string<Args...> format, Args&&... args) {
    write(level::error, component, format, std::forward<Args>(args)...);
}

}  // namespace ringmesh::log
