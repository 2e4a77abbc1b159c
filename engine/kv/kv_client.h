// A client of the replicated key-value service, on the shard of the endpoint it calls
// through: each operation goes to the group's leader through a cluster::leader_caller (hints
// followed, retries until the deadline), a write keeping its (client, sequence) across every
// retry so that it applies at most once. Each operation ends ok, fail or unknown, as a
// linearizability checker's history needs (leader_caller.h says which is which; a cas that
// did not match is a fail).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

#include "engine/cluster/leader_caller.h"
#include "engine/kv/kv_state.h"
#include "engine/messaging/endpoint.h"

namespace ringmesh::kv {

struct kv_client_config {
    cluster::leader_caller_config calls;  ///< servers, timeouts; method: "kv"
    /// This client's id in the service's sessions: unique per client process. 0: drawn.
    std::uint64_t client_id = 0;
};

using kv_verdict = cluster::call_verdict;

struct kv_outcome {
    kv_verdict verdict = kv_verdict::ok;
    wire::KvStatus status = wire::KvStatus::Ok;  ///< the service's last answer
    std::vector<std::byte> value;
    log_index index = 0;
    int attempts = 0;
};

/// Owned by the shard of `endpoint`; every call from it.
class kv_client {
  public:
    using done_fn = std::function<void(const kv_outcome&)>;

    kv_client(messaging::endpoint& endpoint, kv_client_config config);
    kv_client(const kv_client&) = delete;
    kv_client& operator=(const kv_client&) = delete;

    void get(std::string_view key, done_fn done, bool lease_read = false);
    void put(std::string_view key, std::span<const std::byte> value, done_fn done);
    void append(std::string_view key, std::span<const std::byte> value, done_fn done);
    /// Replaces the value only if it holds `expected` (absent: the key must not exist).
    void cas(std::string_view key, std::optional<std::span<const std::byte>> expected,
             std::span<const std::byte> value, done_fn done);
    void remove(std::string_view key, done_fn done);

    std::uint64_t client_id() const noexcept { return client_id_; }
    const cluster::leader_caller_stats& stats() const noexcept { return caller_.stats(); }

  private:
    void start(wire::KvOp op, std::string_view key, std::span<const std::byte> value,
               std::span<const std::byte> expected, bool expect_absent, bool lease_read,
               done_fn done);

    std::uint64_t client_id_;
    std::uint64_t sequence_ = 0;
    cluster::leader_caller caller_;
};

}  // namespace ringmesh::kv
