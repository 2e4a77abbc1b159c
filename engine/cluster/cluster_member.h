// One node's place in the cluster, on one shard: the messaging endpoint and the membership
// agent, composed, and the one place where they meet (and where replication will attach).
// What membership concludes reaches messaging here, and only here:
//  - dead or left: the endpoint starts the peer's retention clock (endpoint::member_gone);
//    its session survives a false verdict, and only a real departure gives messages up,
//    reported through endpoint::on_peer_loss;
//  - alive again (refuted, rejoined): the clock stops (endpoint::member_alive);
//  - a member announcing a stream address is dialed (by the smaller node id of the pair, so
//    that two members do not both dial), so joining through a gossip seed is enough to
//    exchange messages with the whole cluster.
// Both rings share the shard's sleep: the messaging transport sleeps for the shard and the
// gossip ring's eventfd wakes it; gossip runs on a duty cycle while the shard is busy, and a
// timer at the protocol's own next deadline when it is idle. No polling throttle, no wake-up
// timer.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "engine/core/shard.h"
#include "engine/membership/gossip_agent.h"
#include "engine/membership/keyring.h"
#include "engine/messaging/endpoint.h"
#include "transport/transport.h"

namespace ringmesh::cluster {

struct member_config {
    messaging::endpoint_config messaging;
    /// Gossip membership (SWIM/Lifeguard); none: a static cluster of configured peers.
    std::optional<membership::agent_config> membership;
    /// The gossip keyring: the first key seals, every key opens. Empty: gossip unencrypted.
    std::vector<membership::key_bytes> keys;
    /// Dial members whose metadata carries a "tcp" address (the smaller node id dials).
    bool dial_discovered_members = true;
    /// How often a busy shard looks at the gossip ring (it is on a scale of milliseconds).
    time_ns membership_poll_every_ns = 50 * ns_per_us;
    /// The member's randomness: the endpoint's incarnation and jitter (unless
    /// messaging.random_seed is set), gossip's probe order and the keyring's nonce salt all
    /// derive from it. 0: drawn from the OS once. The simulator pins it.
    std::uint64_t random_seed = 0;
};

/// Created, used and destroyed on its shard's thread (register its destruction with
/// shard::on_stop). The application calls messaging() and membership() from there.
class member {
  public:
    using event_handler = std::function<void(const membership::member_event&)>;

    /// `gossip_transport` is required when config.membership is set, ignored otherwise.
    static result<std::unique_ptr<member>> create(
        shard& owner, std::unique_ptr<transport::transport> messaging_transport,
        std::unique_ptr<transport::transport> gossip_transport, member_config config);
    ~member();
    member(const member&) = delete;
    member& operator=(const member&) = delete;

    messaging::endpoint& messaging() noexcept { return *endpoint_; }
    /// Null without membership.
    membership::gossip_agent* membership() noexcept { return agent_.get(); }
    const membership::gossip_agent* membership() const noexcept { return agent_.get(); }

    /// Called for every membership event, after the engine has acted on it.
    void on_member_event(event_handler handler) { event_handler_ = std::move(handler); }
    /// Announces a graceful leave to the cluster (the process goes on until it stops).
    void leave();

  private:
    member(shard& owner, member_config config);
    result<void> start_membership(std::unique_ptr<transport::transport> gossip_transport,
                                  std::uint64_t nonce_salt);
    std::size_t poll_membership(time_ns now);
    void apply(const membership::member_event& e);
    void arm_membership_deadline();

    shard& shard_;
    member_config config_;
    std::unique_ptr<messaging::endpoint> endpoint_;
    std::unique_ptr<membership::gossip_agent> agent_;
    event_handler event_handler_;
    shard::poller_id poller_ = 0;
    shard::wait_source_id wait_source_ = 0;
    wake_deadline membership_deadline_;
};

}  // namespace ringmesh::cluster
