// Calls the leader of a replicated group over RPC, whoever it is at the moment: a request goes
// to the server believed to lead (skipping those it is not connected to), follows the
// service's "not the leader, ask X" answers, and is sent again (to another server, after a
// pause) when a service says it cannot serve now or an attempt times out, until the
// operation's deadline. The request's bytes are the same in every attempt, so a write carrying
// its writer id and sequence applies at most once however often it is sent
// (replication/writer_sessions.h).
//
// Services answer in their own format; `interpret` reads an answer and says what it means.
// How an operation ended, for clients and linearizability histories:
//   ok       the service answered it
//   fail     it certainly did not take effect (refused, or no attempt can have reached a
//            leader before the deadline)
//   unknown  a write some attempt of which timed out: it may have taken effect
//
// Owned by the shard of `endpoint`; every call from it. The key-value client and the topic
// publisher are built on it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/messaging/endpoint.h"

namespace ringmesh::cluster {

struct leader_caller_config {
    std::vector<std::string> servers;  ///< node names of the group's members
    std::string method;                ///< empty: the client's default
    time_ns attempt_timeout = 500 * ns_per_ms;
    time_ns retry_pause = 20 * ns_per_ms;
    time_ns deadline = 5 * ns_per_s;  ///< per operation, all attempts together
};

enum class call_verdict : std::uint8_t { ok, fail, unknown };
const char* to_string(call_verdict v) noexcept;

/// What one answer means to the caller.
enum class answer_kind : std::uint8_t {
    done,      ///< the operation is over (its outcome is in the answer): ok
    refused,   ///< over, and it certainly did not take effect: fail
    redirect,  ///< ask the leader `interpret` named (empty: unknown, try another)
    retry,     ///< the service cannot serve it now: another server, after a pause
};

struct leader_caller_stats {
    std::uint64_t operations = 0, attempts = 0, redirects = 0, timeouts = 0, retries = 0;
};

class leader_caller {
  public:
    /// Reads a service's answer; sets `leader` for a redirect.
    using interpret_fn =
        std::function<answer_kind(std::span<const std::byte> answer, std::string& leader)>;
    using done_fn = std::function<void(call_verdict verdict, int attempts)>;

    /// `default_method` is called when config.method is empty.
    leader_caller(messaging::endpoint& endpoint, leader_caller_config config,
                  std::string_view default_method = {});
    ~leader_caller();
    leader_caller(const leader_caller&) = delete;
    leader_caller& operator=(const leader_caller&) = delete;

    /// Sends `request` until it is answered or its deadline passes. `write`: an attempt that
    /// times out may have taken effect (the verdict is then unknown rather than fail).
    void call(std::vector<std::byte> request, bool write, interpret_fn interpret, done_fn done);

    const leader_caller_stats& stats() const noexcept { return stats_; }
    messaging::endpoint& endpoint() noexcept { return endpoint_; }

  private:
    struct operation;
    void attempt(const std::shared_ptr<operation>& op);
    void on_reply(const std::shared_ptr<operation>& op, const messaging::rpc_result& r);
    void retry_later(const std::shared_ptr<operation>& op);
    void finish(const std::shared_ptr<operation>& op, call_verdict verdict);

    messaging::endpoint& endpoint_;
    leader_caller_config config_;
    std::string leader_;  ///< the latest leader we heard of (or the server we try)
    std::size_t next_server_ = 0;
    std::vector<timer_id> timers_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
    leader_caller_stats stats_;
};

}  // namespace ringmesh::cluster
