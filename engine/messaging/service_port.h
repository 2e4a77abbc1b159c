// What a replicated service needs of messaging, whichever shard it runs on: a Raft group's
// link (the priority lane for its batches), the RPC service in front of it (deferred
// replies, answered once an entry commits), and a client that calls the leader. Two
// implementations: endpoint (the sessions of the shard it runs on) and shard_messaging (any
// shard of a node, through the shards that hold the peers' sessions), so a node with an
// endpoint on every shard still runs its groups on one.
//
// Called only on owner()'s thread.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "engine/core/shard.h"
#include "engine/messaging/outcome.h"
#include "engine/wire/frame_codec.h"

namespace ringmesh::messaging {

struct message;
struct rpc_reply;
struct rpc_result;

/// A reply owed to a caller of a deferred method (serve_deferred): answer it later with
/// reply(), at most once. It names the calling process, so a reply never reaches a restarted
/// caller (whose call ids start over).
struct pending_reply {
    std::string peer;
    std::uint64_t incarnation = 0;
    std::uint64_t call_id = 0;
    /// (shard_messaging) The shard whose endpoint holds the caller's session, when the call
    /// was passed to another shard to be served (call_id is then its token there);
    /// UINT64_MAX: served where it arrived.
    std::uint64_t via_shard = UINT64_MAX;
};

class service_port {
  public:
    using deferred_handler = std::function<void(const message& request, pending_reply reply)>;
    using reply_handler = std::function<void(const rpc_result&)>;
    using replication_handler =
        std::function<void(std::string_view peer, std::span<const std::byte> batch)>;

    virtual ~service_port() = default;

    virtual shard& owner() noexcept = 0;
    virtual const std::string& node_id() const noexcept = 0;
    virtual const wire::codec_limits& limits() const noexcept = 0;
    virtual bool connected(std::string_view peer) const = 0;
    virtual outcome call(std::string_view peer, std::string_view method,
                         std::span<const std::byte> request, time_ns timeout_ns,
                         reply_handler on_reply) = 0;
    /// Calls to `method` from any peer, answered later with reply(); null stops serving it.
    virtual void serve_deferred(std::string_view method, deferred_handler handler) = 0;
    /// False when the caller is known to be gone (nothing is sent then).
    virtual bool reply(const pending_reply& to, const rpc_reply& reply) = 0;
    /// The priority lane: unsequenced, never retransmitted (Raft retransmits what matters).
    virtual outcome send_replication(std::string_view peer, std::span<const std::byte> batch) = 0;
    /// Every replication batch received, unverified, with the peer it came from.
    virtual void on_replication(replication_handler handler) = 0;

  protected:
    service_port() = default;
    service_port(const service_port&) = default;
    service_port& operator=(const service_port&) = default;
};

}  // namespace ringmesh::messaging
