#include "engine/core/errc.h"

namespace ringmesh {
namespace {

class core_category_impl final : public std::error_category {
  public:
    const char* name() const noexcept override { return "ringmesh.core"; }
    std::string message(int value) const override {
        switch (static_cast<core_errc>(value)) {
            case core_errc::bad_config:
                return "invalid configuration";
            case core_errc::bad_core_list:
                return "invalid core list";
            case core_errc::thread_start_failed:
                return "could not start a shard thread";
            case core_errc::already_running:
                return "already running";
            case core_errc::resource_exhausted:
                return "resource exhausted";
            case core_errc::system_error:
                return "system call failed";
        }
        return "unknown core error";
    }
};

}  // namespace

const std::error_category& core_category() noexcept {
    static const core_category_impl instance;
    return instance;
}

}  // namespace ringmesh
