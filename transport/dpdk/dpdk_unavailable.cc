// Built without libdpdk: the DPDK transport explains that it cannot start, and `auto` falls
// back to io_uring with that reason.
#include "engine/core/errc.h"
#include "transport/dpdk/dpdk_transport.h"

namespace ringmesh::transport {

struct dpdk_transport::impl {
    dpdk_stats stats;
    address listen_address;
};

result<std::unique_ptr<dpdk_transport>> dpdk_transport::create(const dpdk_config&, shard_id,
                                                               shard*) {
    return make_error(transport_errc::not_supported,
                      "DPDK: this build has no DPDK support (libdpdk-dev was not found when it "
                      "was configured)");
}

dpdk_transport::dpdk_transport(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
dpdk_transport::~dpdk_transport() = default;
result<void> dpdk_transport::listen(const address&) {
    return make_error(transport_errc::not_supported, "DPDK: not built");
}
result<connection_id> dpdk_transport::connect(const address&) {
    return make_error(transport_errc::not_supported, "DPDK: not built");
}
void dpdk_transport::close(connection_id) {}
std::size_t dpdk_transport::poll(time_ns, event_handler&) {
    return 0;
}
std::size_t dpdk_transport::send(connection_id, std::span<const std::byte>) {
    return 0;
}
std::size_t dpdk_transport::send_datagram(const address&, std::span<const std::byte>) {
    return 0;
}
std::size_t dpdk_transport::flush() {
    return 0;
}
void dpdk_transport::wait(time_ns, std::span<const int>) {}
capabilities dpdk_transport::caps() const noexcept {
    return {};
}
const dpdk_stats& dpdk_transport::stats() const noexcept {
    return impl_->stats;
}
const address& dpdk_transport::listen_address() const noexcept {
    return impl_->listen_address;
}
std::string dpdk_transport::port_name() const {
    return {};
}
buffer_pool& dpdk_transport::receive_pool() noexcept {
    std::abort();
}

}  // namespace ringmesh::transport
