// The messaging API on every shard of a node: send, publish, subscribe, call, serve and
// on_stream callable on any shard, whichever shard runs the endpoint that holds a peer's
// session.
//
// A peer's session lives on one shard (its owner: the shard whose endpoint holds the
// connection), and every shard learns who owns which peer from the owner's announcements.
// Work for a peer owned elsewhere crosses exactly one cross-core ring: a shard writes what it
// hands to another shard (a send, a publish, a call, a delivery for a subscriber there) into a
// batch per destination during its iteration, and the flush step passes each batch over the
// ring mesh as one task. The receiver works through batches in order and hands each back
// when done, so the bytes a shard has in flight to another are known, and bounded: over
// `max_bytes_in_flight`, send, publish and call answer back_pressure, as a full session window
// does. Order per (sending shard, peer, stream) is the batch order.
//
// Where a message from a non-owner shard waits: in its batch on the owner, when the peer's
// window (or a subscriber's) is full. The owner takes the batch's records in order and stops
// at the first that cannot go yet, retrying each iteration; what follows it from the same
// shard waits behind it, whichever peer it is for (order is kept per sending shard, not per
// peer). The sender's in-flight bytes then stop shrinking, and its callers see back_pressure.
//
// Local subscribers on every shard are reached without the network: a publish is delivered
// to the publishing shard's subscribers at once and passed to each shard that subscribes to
// a matching pattern or whose endpoint holds a peer that does (each endpoint shard announces
// its peers' subscriptions when they change; until a shard has heard, it sends). Each
// shard's patterns are subscribed on every endpoint of the node (so peers learn them), and
// remote publishes they match are passed to the subscribing shard.
//
// Owned by its shard: created, used and destroyed on that shard's thread, after the endpoint
// it is given (whose handlers point into it) has gone. The directory is
// node-wide and is filled as the shards start; a batch for a shard whose shard_messaging
// does not exist yet waits at its sender until it does. The directory holds the batches, so
// it must outlive every shard's loop (create it before the node starts, destroy it after the
// node has stopped).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/core/shard.h"
#include "engine/messaging/endpoint.h"
#include "engine/messaging/service_port.h"

namespace ringmesh::messaging {

class shard_messaging;

/// Records from one shard for another, handed over as one cross-core task (and back).
struct cross_shard_batch {
    std::vector<std::byte> bytes;
};

/// Which shard_messaging runs on each member shard of a node. Each shard registers its own
/// (on its thread, as it starts); any shard reads the entries.
class messaging_directory {
  public:
    /// `node_id`: the node's name, the `peer` of a message published on one of its shards.
    messaging_directory(std::string node_id, std::vector<shard_id> members);

    const std::string& node_id() const noexcept { return node_id_; }
    const std::vector<shard_id>& members() const noexcept { return members_; }
    /// Null until `id`'s shard_messaging exists (and after it is gone).
    shard_messaging* at(shard_id id) const noexcept;
    /// The largest message every endpoint of the node takes (endpoint::largest_message_bytes,
    /// the smallest over them): a shard refuses a larger one at once, as its owner would.
    std::size_t largest_message() const noexcept {
        return largest_message_.load(std::memory_order_relaxed);
    }

  private:
    friend class shard_messaging;
    void set(shard_id id, shard_messaging* m) noexcept;
    /// A new batch made by shard `maker` (its thread only). Batches are kept here, not by the
    /// shard that made them, so that one another shard still holds, or a task in a ring still
    /// names, stays valid until the directory goes: after the whole node has stopped, not when
    /// the first shard tears down.
    cross_shard_batch* make_batch(shard_id maker);

    std::vector<std::vector<std::unique_ptr<cross_shard_batch>>> batches_;  // by maker

    void note_largest_message(std::size_t bytes) noexcept;

    std::string node_id_;
    std::vector<shard_id> members_;
    std::atomic<std::size_t> largest_message_{SIZE_MAX};
    std::unique_ptr<std::atomic<shard_messaging*>[]> by_shard_;
    shard_id max_id_ = 0;
};

struct shard_messaging_config {
    /// Bytes one shard may have handed to another and not yet seen taken: beyond it send,
    /// publish and call answer back_pressure. Deliveries and replies the engine owes are never
    /// refused (counted in over_limit_records when they go past it).
    std::size_t max_bytes_in_flight = 4u << 20;
};

struct shard_messaging_stats {
    std::uint64_t records_out = 0, records_in = 0;  ///< crossed the ring mesh, each way
    std::uint64_t batches_out = 0, batches_in = 0;
    std::uint64_t back_pressure = 0;          ///< calls refused: the destination's bound
    std::uint64_t ring_full_retries = 0;      ///< a hand-over found the task ring full
    std::uint64_t blocked_retries = 0;        ///< iterations a batch waited for a peer's window
    std::uint64_t over_limit_records = 0;     ///< owed records sent past the bound
    std::uint64_t undeliverable = 0;          ///< accepted, then the owner knew no such peer
    std::uint64_t replication_dropped = 0;    ///< batches the owner's priority lane refused
    std::uint64_t replication_unclaimed = 0;  ///< inbound batches for a shard with no handler
};

class shard_messaging final : public service_port {
  public:
    using stream_handler = endpoint::stream_handler;
    using topic_handler = endpoint::topic_handler;
    using rpc_handler = endpoint::rpc_handler;
    using reply_handler = endpoint::reply_handler;
    using deferred_handler = endpoint::deferred_handler;
    using replication_handler = endpoint::replication_handler;
    using peer_handler = endpoint::peer_handler;
    using subscription_id = endpoint::subscription_id;

    /// On `owner`'s thread, before its shard exchanges messages. `ep` is the endpoint this
    /// shard runs (null: none); shard_messaging takes its peer-event handler, and offers
    /// on_peer_event instead.
    shard_messaging(shard& owner, messaging_directory& directory, endpoint* ep,
                    shard_messaging_config config = {});
    ~shard_messaging() override;
    shard_messaging(const shard_messaging&) = delete;
    shard_messaging& operator=(const shard_messaging&) = delete;

    // ---- the API, as endpoint.h has it ----
    /// accepted; back_pressure (the owner's bound, or its window when the owner is this
    /// shard); too_large (over the node's largest message, or the owner's session limit when
    /// the owner is this shard); unknown_peer (no shard has announced the peer).
    outcome send(std::string_view peer, std::uint32_t stream, std::span<const std::byte> bytes);
    /// Messages on `stream` from any peer, on this shard (the last shard to ask gets them).
    void on_stream(std::uint32_t stream, stream_handler handler);
    /// Delivered to matching subscribers on every shard of the node and to the peers that
    /// subscribe. back_pressure when a destination shard is over its bound or a subscribing
    /// peer's window here is full (nothing was published then: retry); too_large over the
    /// node's largest message (nothing published: never retry).
    outcome publish(std::string_view topic, std::span<const std::byte> bytes);
    endpoint::subscribe_result subscribe(std::string_view pattern, topic_handler handler);
    void unsubscribe(subscription_id id);
    /// The reply (or DeadlineExceeded, Unavailable when the owner knows no such peer) comes
    /// back to this shard.
    outcome call(std::string_view peer, std::string_view method, std::span<const std::byte> request,
                 time_ns timeout_ns, reply_handler on_reply) override;
    /// Calls to `method` from any peer run here (the last shard to serve it gets them).
    void serve(std::string_view method, rpc_handler handler);
    /// Like serve, answered later with reply() (a write answered once it commits). A call
    /// that arrived on another shard is answered through it.
    void serve_deferred(std::string_view method, deferred_handler handler) override;
    bool reply(const pending_reply& to, const rpc_reply& reply) override;
    /// The priority lane through the peer's owner: the batch crosses as a record and leaves
    /// there ahead of the peer's session frames. A batch the owner cannot queue is dropped
    /// and counted (replication_dropped): Raft retransmits what matters.
    outcome send_replication(std::string_view peer, std::span<const std::byte> raft_batch) override;
    /// Every batch any endpoint of the node receives comes here (the last shard to ask), or,
    /// with a router, the batches the router names this shard for.
    void on_replication(replication_handler handler) override;
    /// Names the shards an inbound replication batch is for, when a node runs Raft groups on
    /// several shards (engine/cluster/raft_placement.h): calls `to(shard, bytes)` once per
    /// shard. Give every shard the same router, before any shard calls on_replication; the
    /// router then runs on the shard that received the batch, and each part crosses to its
    /// shard as a record (a part for a shard with no handler is dropped and counted).
    using replication_sink = std::function<void(shard_id, std::span<const std::byte>)>;
    using replication_router =
        std::function<void(std::span<const std::byte> batch, const replication_sink& to)>;
    void route_replication(replication_router router);
    shard& owner() noexcept override { return shard_; }
    const std::string& node_id() const noexcept override { return directory_.node_id(); }
    const wire::codec_limits& limits() const noexcept override {
        return ep_ != nullptr ? ep_->limits() : default_limits_;
    }
    /// Connected and disconnected peers, as their owners announce them.
    void on_peer_event(peer_handler handler) { peer_handler_ = std::move(handler); }
    bool connected(std::string_view peer) const override;
    /// The peers some shard of the node holds a session with, as announced here (sorted).
    std::vector<std::string> connected_peers() const;
    /// Nothing of this shard's is on its way to or from another shard: no batch staged, in
    /// flight or waiting to be worked through, and no call or served request unanswered.
    /// (The sessions' own unacknowledged frames are the endpoint's: endpoint::unacked.)
    bool quiet() const;
    /// Whether a subscriber on some shard of this node (as far as this shard has heard)
    /// matches `topic`.
    bool subscribed_on_node(std::string_view topic) const;
    /// Reachable peers subscribing to `topic`, over every endpoint of the node (the others'
    /// as they last announced): the node-wide endpoint::subscribers. A publish here reaches
    /// the peers counted in it.
    std::size_t peer_subscribers(std::string_view topic) const;
    /// Membership's verdict on `peer` (it runs on one shard; its view must reach every
    /// endpoint): gone (dead, or `left`) or alive again, applied to the endpoints of every
    /// other shard — the one holding the peer's session acts on it (endpoint::member_gone,
    /// member_alive), the others know no such session. This shard's own endpoint is left to
    /// the caller (cluster::member applies its verdicts to its own).
    void share_member_verdict(std::string_view peer, bool gone, bool left);
    /// The shard that holds `peer`'s session, once announced.
    std::optional<shard_id> owner_of(std::string_view peer) const;

    const shard_messaging_stats& stats() const noexcept { return stats_; }
    shard_id id() const noexcept { return self_; }
    bool runs_endpoint() const noexcept { return ep_ != nullptr; }

  private:
    using batch = cross_shard_batch;
    struct inbound;
    struct outbound;
    struct local_subscription {
        std::string pattern;
        topic_handler handler;
    };
    struct peer_entry {
        shard_id owner = 0;
        bool connected = false;
    };
    /// What an endpoint shard's peers subscribe to, as it last announced.
    struct endpoint_subscriptions {
        bool known = false;
        std::vector<endpoint::peer_subscriptions> peers;
    };

    // Writing records for other shards.
    std::vector<std::byte>& record_to(shard_id to);
    bool room_for(shard_id to, std::size_t bytes) const;
    void broadcast(const std::function<void(std::vector<std::byte>&)>& write);
    std::size_t flush();
    /// Hands a worked-through batch back to the shard that made it; false when that cannot be
    /// done now (it is kept, and the flush step tries again).
    bool give_back(shard_id maker, batch* b);
    void recycle(shard_id from, batch* b);

    // Reading them.
    void take(shard_id from, batch* b);
    std::size_t work_inbound();
    bool apply(shard_id from, std::span<const std::byte> record);

    // The endpoint side (ep_ != null).
    void announce_peer(std::string_view peer, bool connected);
    void claim_pattern(shard_id subscriber, const std::string& pattern, bool add);
    void deliver_local(std::string_view pattern, const message& m);
    void deliver_to_shard(shard_id to, std::string_view pattern, const message& m);
    /// Delivers to this shard's matching subscribers and (with an endpoint) to the peers that
    /// subscribe; the caller has checked that their windows have room.
    void publish_here(std::string_view topic, std::span<const std::byte> bytes);
    bool wanted_by(shard_id other, std::string_view topic) const;
    /// Tells every shard what this endpoint's peers subscribe to (on change).
    void announce_subscriptions();
    bool peers_of_shard_want(shard_id id, std::string_view topic) const;

    shard& shard_;
    shard_id self_;
    messaging_directory& directory_;
    endpoint* ep_;
    shard_messaging_config config_;
    shard_messaging_stats stats_;
    shard::poller_id flush_poller_ = 0, work_poller_ = 0;

    std::vector<std::unique_ptr<outbound>> out_;  // by destination shard id
    std::vector<std::unique_ptr<inbound>> in_;    // by source shard id

    std::vector<shard_id> publish_targets_;  // publish()'s scratch list
    std::unordered_map<std::string, peer_entry> peers_;
    peer_handler peer_handler_;
    std::map<subscription_id, local_subscription> subscriptions_;
    subscription_id next_subscription_ = 1;
    /// Every member shard's patterns (with counts), this one's included: where publishes go.
    std::vector<std::map<std::string, std::uint32_t>> patterns_by_shard_;
    /// Every endpoint shard's peers' subscriptions: where publishes must go to reach peers.
    std::vector<endpoint_subscriptions> subscriptions_by_shard_;
    std::uint64_t announced_subscriptions_version_ = UINT64_MAX;
    bool patterns_dirty_ = true;
    /// (endpoint shards) The endpoint subscription made for (shard, pattern).
    std::map<std::pair<shard_id, std::string>, subscription_id> endpoint_subscriptions_;
    std::unordered_map<std::uint32_t, stream_handler> stream_handlers_;
    std::unordered_map<std::string, rpc_handler> rpc_handlers_;
    std::unordered_map<std::string, deferred_handler> deferred_handlers_;
    replication_handler replication_handler_;
    replication_router replication_router_;
    replication_sink route_to_;          // the router's sink: hands parts on
    std::string_view routing_peer_;      // the sender of the batch being routed
    wire::codec_limits default_limits_;  // limits() without an endpoint
    std::unordered_map<std::uint64_t, reply_handler> calls_;  // issued here, answered by owners
    std::uint64_t next_call_ = 1;
    std::unordered_map<std::uint64_t, pending_reply> served_;  // (endpoint) awaiting a server
    std::uint64_t next_served_ = 1;
};

}  // namespace ringmesh::messaging
