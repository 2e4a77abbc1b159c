// Builds the flatbuffers bodies of control frames. One builder per shard, reused: after warm-up
// building a body allocates nothing. Each call returns a view of the finished body that stays
// valid until the next call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "engine/wire/frame_codec.h"

namespace ringmesh::wire {

/// Owned by one shard.
class body_builder {
  public:
    body_builder() : fbb_(1024) {}

    std::span<const std::byte> hello(std::string_view cluster_id, std::string_view node_id,
                                     std::uint64_t incarnation, std::uint16_t shard_count,
                                     bool seen_you = false, std::uint16_t endpoints = 1,
                                     std::uint16_t endpoint_index = 0);
    std::span<const std::byte> publish(std::string_view topic, std::span<const std::byte> payload);
    std::span<const std::byte> subscription(std::string_view pattern);
    std::span<const std::byte> rpc_request(std::uint64_t call_id, std::string_view method,
                                           std::int64_t timeout_ns,
                                           std::span<const std::byte> payload);
    std::span<const std::byte> rpc_response(std::uint64_t call_id, RpcStatus status,
                                            std::string_view message,
                                            std::span<const std::byte> payload);
    std::span<const std::byte> error(ErrorCode code, std::string_view message,
                                     std::uint16_t redirect_port = 0);

  private:
    std::span<const std::byte> finish(flatbuffers::uoffset_t root);
    flatbuffers::Offset<flatbuffers::String> string(std::string_view s) {
        return fbb_.CreateString(s.data(), s.size());
    }
    flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> bytes(std::span<const std::byte> b) {
        return fbb_.CreateVector(reinterpret_cast<const std::uint8_t*>(b.data()), b.size());
    }

    flatbuffers::FlatBufferBuilder fbb_;
};

}  // namespace ringmesh::wire
