// A client of the replicated key-value service, on the shard of the endpoint it calls
// through. Each operation is sent to the node believed to lead, follows NotLeader hints,
// and is retried (another server, after a short pause) on Unavailable or a timed-out
// attempt, until its deadline. A write keeps its (client, sequence) across every retry, so
// it applies at most once however often it is sent.
//
// What an operation ended as, for a linearizability checker's history:
//   ok       it took effect (a get: it observed `value`)
//   fail     it certainly did not take effect (refused, a cas that did not match, no leader
//            answered before the deadline and no attempt could have reached one)
//   unknown  a write some attempt of which may have been applied: its deadline passed
//            with at least one attempt unanswered
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/kv/kv_state.h"
#include "engine/messaging/endpoint.h"

namespace ringmesh::kv {

struct kv_client_config {
    std::vector<std::string> servers;  ///< node names of the group's members
    std::string method = "kv";
    time_ns attempt_timeout = 500 * ns_per_ms;
    time_ns retry_pause = 20 * ns_per_ms;
    time_ns deadline = 5 * ns_per_s;  ///< per operation, all attempts together
    /// This client's id in the service's sessions: unique per client process. 0: drawn.
    std::uint64_t client_id = 0;
};

enum class kv_verdict : std::uint8_t { ok, fail, unknown };
const char* to_string(kv_verdict v) noexcept;

struct kv_outcome {
    kv_verdict verdict = kv_verdict::ok;
    wire::KvStatus status = wire::KvStatus::Ok;  ///< the service's last answer
    std::vector<std::byte> value;
    log_index index = 0;
    int attempts = 0;
};

struct kv_client_stats {
    std::uint64_t operations = 0, attempts = 0, redirects = 0, timeouts = 0, retries = 0;
};

/// Owned by the shard of `endpoint`; every call from it.
class kv_client {
  public:
    using done_fn = std::function<void(const kv_outcome&)>;

    kv_client(messaging::endpoint& endpoint, kv_client_config config);
    ~kv_client();
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
    const kv_client_stats& stats() const noexcept { return stats_; }

  private:
    struct operation;
    void start(wire::KvOp op, std::string_view key, std::span<const std::byte> value,
               std::span<const std::byte> expected, bool expect_absent, bool lease_read,
               done_fn done);
    void attempt(const std::shared_ptr<operation>& op);
    void on_reply(const std::shared_ptr<operation>& op, const messaging::rpc_result& r);
    void retry_later(const std::shared_ptr<operation>& op);
    void finish(const std::shared_ptr<operation>& op, kv_verdict verdict);

    messaging::endpoint& endpoint_;
    kv_client_config config_;
    std::uint64_t client_id_;
    std::uint64_t sequence_ = 0;
    std::string leader_;  ///< the latest leader we heard of (or the first server)
    std::size_t next_server_ = 0;
    std::vector<timer_id> timers_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
    kv_client_stats stats_;
};

}  // namespace ringmesh::kv
