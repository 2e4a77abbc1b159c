#include "engine/core/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <ctime>
#include <memory>
#include <mutex>

namespace ringmesh::log {

namespace detail {
std::atomic<level> threshold{level::info};
}  // namespace detail

namespace {

constexpr std::array<std::string_view, 6> level_names{"trace", "debug", "info",
                                                      "warn",  "error", "off"};

/// The sink and its settings; one line at a time passes through it.
struct sink_state {
    std::mutex lock;
    line_handler handler;
    std::shared_ptr<spdlog::logger> stderr_logger;
    std::array<std::atomic<std::uint64_t>, level_count> lines{};
    std::atomic<std::uint64_t> suppressed{0};
};

sink_state& state() {
    static sink_state s;  // constructed on first use: safe from other statics' constructors
    return s;
}

std::shared_ptr<spdlog::logger> make_stderr_logger(std::string_view tag) {
    // Not registered with spdlog's registry: an embedding service's own spdlog set-up (its
    // default logger, its patterns) is left alone.
    auto logger = std::make_shared<spdlog::logger>(
        std::string(tag), std::make_shared<spdlog::sinks::stderr_sink_mt>());
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %n %l %v");
    logger->set_level(spdlog::level::trace);  // the threshold is ours
    logger->flush_on(spdlog::level::trace);   // a daemon's stderr is a pipe: line by line
    return logger;
}

spdlog::level::level_enum to_spdlog(level l) {
    switch (l) {
        case level::trace:
            return spdlog::level::trace;
        case level::debug:
            return spdlog::level::debug;
        case level::info:
            return spdlog::level::info;
        case level::warn:
            return spdlog::level::warn;
        case level::error:
            return spdlog::level::err;
        case level::off:
            break;
    }
    return spdlog::level::off;
}

}  // namespace

std::string_view name(level l) {
    return level_names[static_cast<std::size_t>(l)];
}

std::optional<level> parse_level(std::string_view text) {
    for (std::size_t i = 0; i < level_names.size(); ++i) {
        if (level_names[i] == text) return static_cast<level>(i);
    }
    return std::nullopt;
}

void set_level(level l) {
    detail::threshold.store(l, std::memory_order_relaxed);
}

void set_handler(line_handler handler) {
    sink_state& s = state();
    const std::lock_guard guard(s.lock);
    s.handler = std::move(handler);
}

void set_tag(std::string_view tag) {
    sink_state& s = state();
    const std::lock_guard guard(s.lock);
    s.stderr_logger = make_stderr_logger(tag);
}

totals counted() {
    const sink_state& s = state();
    totals t;
    for (std::size_t i = 0; i < level_count; ++i)
        t.lines[i] = s.lines[i].load(std::memory_order_relaxed);
    t.suppressed = s.suppressed.load(std::memory_order_relaxed);
    return t;
}

void emit(level l, std::string_view component, std::string_view text) {
    if (l == level::off) return;
    sink_state& s = state();
    s.lines[static_cast<std::size_t>(l)].fetch_add(1, std::memory_order_relaxed);
    const std::lock_guard guard(s.lock);
    if (s.handler) {
        s.handler(l, component, text);
        return;
    }
    if (!s.stderr_logger) s.stderr_logger = make_stderr_logger("ringmesh");
    s.stderr_logger->log(to_spdlog(l), "{}: {}", component, text);
}

void note_suppressed(std::uint64_t lines) {
    state().suppressed.fetch_add(lines, std::memory_order_relaxed);
}

bool site_limit::admit(std::int64_t now_ns, std::uint64_t& held_back) {
    if (!started_ || now_ns - window_start_ >= window_ns_ || now_ns < window_start_) {
        started_ = true;
        window_start_ = now_ns;
        written_ = 0;
    }
    if (written_ >= burst_) {
        ++held_back_;
        return false;
    }
    ++written_;
    held_back = held_back_;
    held_back_ = 0;
    return true;
}

std::int64_t coarse_now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace ringmesh::log
