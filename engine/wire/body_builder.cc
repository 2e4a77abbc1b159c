#include "engine/wire/body_builder.h"

namespace ringmesh::wire {

std::span<const std::byte> body_builder::finish(flatbuffers::uoffset_t root) {
    fbb_.Finish(flatbuffers::Offset<void>(root));
    return {reinterpret_cast<const std::byte*>(fbb_.GetBufferPointer()), fbb_.GetSize()};
}

std::span<const std::byte> body_builder::hello(std::string_view cluster_id,
                                               std::string_view node_id, std::uint64_t incarnation,
                                               std::uint16_t shard_count, bool seen_you,
                                               std::uint16_t endpoints,
                                               std::uint16_t endpoint_index) {
    fbb_.Clear();
    const auto cluster = string(cluster_id);
    const auto node = string(node_id);
    return finish(CreateHello(fbb_, protocol_version, protocol_version, cluster, node, incarnation,
                              shard_count, seen_you, endpoints, endpoint_index)
                      .o);
}

std::span<const std::byte> body_builder::publish(std::string_view topic,
                                                 std::span<const std::byte> payload) {
    fbb_.Clear();
    const auto t = string(topic);
    const auto p = bytes(payload);
    return finish(CreatePublish(fbb_, t, p).o);
}

std::span<const std::byte> body_builder::subscription(std::string_view pattern) {
    fbb_.Clear();
    const auto p = string(pattern);
    return finish(CreateSubscription(fbb_, p).o);
}

std::span<const std::byte> body_builder::rpc_request(std::uint64_t call_id, std::string_view method,
                                                     std::int64_t timeout_ns,
                                                     std::span<const std::byte> payload) {
    fbb_.Clear();
    const auto m = string(method);
    const auto p = bytes(payload);
    return finish(CreateRpcRequest(fbb_, call_id, m, timeout_ns, p).o);
}

std::span<const std::byte> body_builder::rpc_response(std::uint64_t call_id, RpcStatus status,
                                                      std::string_view message,
                                                      std::span<const std::byte> payload) {
    fbb_.Clear();
    const auto m = string(message);
    const auto p = bytes(payload);
    return finish(CreateRpcResponse(fbb_, call_id, status, m, p).o);
}

std::span<const std::byte> body_builder::error(ErrorCode code, std::string_view message,
                                               std::uint16_t redirect_port) {
    fbb_.Clear();
    const auto m = string(message);
    return finish(CreateError(fbb_, code, m, redirect_port).o);
}

}  // namespace ringmesh::wire
