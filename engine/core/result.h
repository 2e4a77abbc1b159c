// result<T>: the control path's return type — a value, or a typed error code plus a
// human-readable detail ("core 7 does not exist: this machine has cores 0-1"). C++20 has no
// std::expected; this is the small subset the engine needs. The data path never uses it:
// there, functions return counts and small outcome enums.
#pragma once

#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include "engine/core/assert.h"

namespace ringmesh {

/// A typed error with context for the operator.
struct error {
    std::error_code code;
    std::string detail;

    /// "invalid core list: core 7 does not exist ..." — what a log line or CLI prints.
    std::string message() const {
        return detail.empty() ? code.message() : code.message() + ": " + detail;
    }
};

template <typename ErrcEnum>
error make_error(ErrcEnum e, std::string detail = {}) {
    return error{make_error_code(e), std::move(detail)};
}

template <typename T>
class [[nodiscard]] result {
  public:
    result(T value) : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit
    result(error err) : state_(std::in_place_index<1>, std::move(err)) {}  // NOLINT: implicit

    bool has_value() const noexcept { return state_.index() == 0; }
    explicit operator bool() const noexcept { return has_value(); }

    T& value() & {
        RM_ASSERT(has_value(), "result::value() on an error");
        return std::get<0>(state_);
    }
    T&& value() && {
        RM_ASSERT(has_value(), "result::value() on an error");
        return std::get<0>(std::move(state_));
    }
    const T& value() const& {
        RM_ASSERT(has_value(), "result::value() on an error");
        return std::get<0>(state_);
    }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }

    const error& err() const& {
        RM_ASSERT(!has_value(), "result::err() on a value");
        return std::get<1>(state_);
    }

  private:
    std::variant<T, error> state_;
};

template <>
class [[nodiscard]] result<void> {
  public:
    result() = default;
    result(error err) : error_(std::move(err)), failed_(true) {}  // NOLINT: implicit

    bool has_value() const noexcept { return !failed_; }
    explicit operator bool() const noexcept { return has_value(); }
    const error& err() const& {
        RM_ASSERT(failed_, "result::err() on a value");
        return error_;
    }

  private:
    error error_;
    bool failed_ = false;
};

/// `return ok();` from a result<void> function.
inline result<void> ok() {
    return {};
}

}  // namespace ringmesh
