// The messaging API of one shard: point-to-point streams, pub/sub with wildcard topics, and
// request/response RPC, to named peers over any transport. The application sees payloads as
// spans into the receive buffers (no copy) and never any transport type.
//
// Underneath: a handshake (Hello) binds each connection to a peer's node id and incarnation;
// a reliable session per peer carries every message; subscriptions are propagated so that a
// publish only travels to peers that want it. Bad input of any kind closes the offending
// connection with a counted reason and an Error frame; other peers are unaffected.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/core/histogram.h"
#include "engine/core/random.h"
#include "engine/core/shard.h"
#include "engine/messaging/frame_intake.h"
#include "engine/messaging/outcome.h"
#include "engine/messaging/service_port.h"
#include "engine/messaging/session.h"
#include "engine/messaging/topic.h"
#include "engine/messaging/topic_counts.h"
#include "engine/wire/body_builder.h"
#include "engine/wire/frame_codec.h"
#include "transport/transport.h"

namespace ringmesh::messaging {

/// Streams below this id are the engine's own (pub/sub, rpc).
inline constexpr std::uint32_t first_user_stream = 16;

struct endpoint_config {
    std::string cluster_id = "ringmesh";
    std::string node_id;                       ///< this node's name; required
    std::optional<transport::address> listen;  ///< accept connections here
    std::vector<transport::address> peers;     ///< dial these (and redial when lost)
    /// Reach these peers over datagrams (UDP): sessions retransmit on timeout and reorder,
    /// frames are packed per datagram up to the transport's max datagram size.
    std::vector<transport::address> datagram_peers;
    time_ns datagram_hello_interval_ns = 50 * ns_per_ms;  ///< first Hello retry; doubles
    /// A datagram from a sender that never introduced itself is dropped and answered with our
    /// Hello (rate-limited per address), in case we restarted and it did not. Such strangers
    /// get an address entry only while fewer than this many addresses are known, so forged
    /// source addresses cannot grow the table (or our answers) without bound.
    std::size_t max_datagram_addresses = 4096;
    /// Unacked frames per stream to a datagram peer: small enough that a window fits the
    /// receiver's socket buffer (a lost burst costs a retransmission timeout).
    std::uint32_t datagram_window_frames = 1024;
    wire::codec_limits limits;
    session_config session;
    time_ns reconnect_min_ns = 10 * ns_per_ms;
    time_ns reconnect_max_ns = 1 * ns_per_s;
    time_ns handshake_timeout_ns = 2 * ns_per_s;
    /// This process's incarnation; 0 draws one from random_seed.
    std::uint64_t incarnation = 0;
    /// Seeds the incarnation and the jitter of redials and Hello retries; 0: drawn from the
    /// OS once, at creation. The simulator pins it, so a run replays exactly.
    std::uint64_t random_seed = 0;
    /// How long a peer may stay away (no connection, or declared dead or left by membership
    /// with no sign of life) before its unacknowledged messages are dropped and reported
    /// (peer_loss). A peer that returns within it, the same process, resumes with nothing
    /// lost or repeated.
    time_ns peer_retention_ns = 30 * ns_per_s;
    /// Unacknowledged bytes an unreachable peer may hold before it is given up at once.
    std::size_t peer_retention_bytes = 64u << 20;
    /// Priority-lane bytes (replication batches) that may wait for one peer's next flush;
    /// beyond it send_replication says back_pressure.
    std::size_t priority_queue_bytes = 8u << 20;
    /// Distinct topics counted apart in the metrics (topic_counts.h); later ones are counted
    /// together as "_other". 0: no per-topic counts.
    std::size_t topic_metrics_limit = 64;
    /// A node that runs an endpoint on each of several shards: how many (node_shards) and
    /// this one's place among them (node_shard, 0-based). A peer's session belongs to the
    /// endpoint shard_for_peer() names, on both nodes; endpoint k listens on the port of
    /// `listen` minus node_shard plus k, a peer that dials another endpoint is told which
    /// port to use (WrongShard), and a connection this endpoint dialed to a peer it does not
    /// own is handed to the owner (on_misplaced_peer). Give every endpoint of a node the same
    /// `incarnation`: a peer sees one process.
    std::uint32_t node_shards = 1, node_shard = 0;
};

/// Which of `shards` endpoints of a node holds the session with `peer` (a stable hash of the
/// name: every node computes it the same way).
std::uint32_t shard_for_peer(std::string_view peer, std::uint32_t shards) noexcept;

/// A received message. `bytes` is valid while the handler runs; retain() keeps it longer.
struct message {
    std::string_view peer;
    std::uint32_t stream = 0;
    std::string_view topic;  ///< pub/sub only
    std::span<const std::byte> bytes;
    const buffer_handle* owner = nullptr;  ///< the receive buffer holding `bytes`, if any

    /// A handle that keeps `bytes` alive (the receive buffer, shared), or an empty handle
    /// when they do not live in one (a frame reassembled across reads: copy them instead).
    buffer_handle retain() const { return owner ? *owner : buffer_handle{}; }
};

struct rpc_reply {
    wire::RpcStatus status = wire::RpcStatus::Ok;
    std::span<const std::byte> payload;  ///< must stay valid until the handler returns
    std::string_view message;            ///< detail for a non-Ok status
};

/// The outcome of a call(): the reply, or why there is none.
struct rpc_result {
    wire::RpcStatus status = wire::RpcStatus::Ok;
    std::span<const std::byte> payload;  ///< valid during the callback
    std::string_view message;
    time_ns rtt_ns = 0;
};

/// What became of a publish: one outcome per remote subscriber, counted, and the one that
/// matters most. `status` is invalid_topic (nothing sent), else too_large if any subscriber
/// can never receive it, else back_pressure if any window was full, else accepted.
struct publish_result {
    outcome status = outcome::accepted;
    std::uint32_t peers_sent = 0;           ///< remote subscribers the message was queued for
    std::uint32_t peers_back_pressure = 0;  ///< remote subscribers whose window was full
    /// Remote subscribers the message can never reach: larger than their frame limit.
    /// Retrying will not help (unlike back-pressure).
    std::uint32_t peers_too_large = 0;
    std::uint32_t local_deliveries = 0;  ///< local handlers called
};

enum class peer_event : std::uint8_t { connected, disconnected, restarted };

/// Why messages to or from a peer were given up.
enum class loss_reason : std::uint8_t {
    peer_restarted,     ///< it came back as a new process: its unacked messages were dropped
    retention_expired,  ///< it stayed away past peer_retention_ns (or _bytes)
    peer_left,          ///< it left the cluster and closed before acknowledging everything
    peer_gave_up,       ///< it gave up on us (its retention) and skipped what it had queued
};
const char* to_string(loss_reason reason) noexcept;

/// Messages that were not delivered: said once, to the loss handler, never silently.
struct peer_loss {
    std::string_view peer;
    loss_reason reason;
    std::uint64_t not_delivered_to = 0;    ///< ours, dropped without the peer's ack
    std::uint64_t not_delivered_from = 0;  ///< the peer's, which it dropped (frames)
};

/// Frames received and refused (by reason) come from intake_counters.
struct endpoint_stats : intake_counters {
    std::uint64_t connections_accepted = 0, connections_dialed = 0, handshakes = 0;
    std::uint64_t wrong_cluster = 0, protocol_violations = 0, handshake_timeouts = 0;
    /// Hellos naming another node than the secure layer's handshake proved (transport/secure).
    std::uint64_t identity_mismatches = 0;
    std::uint64_t duplicate_connections = 0, transport_full = 0, reconnect_attempts = 0;
    std::uint64_t published = 0, delivered_local = 0, delivered_remote = 0;
    std::uint64_t rpc_calls = 0, rpc_served = 0, rpc_timeouts = 0, rpc_no_such_method = 0;
    std::uint64_t rpc_replies_undeliverable = 0;  ///< deferred replies whose caller was gone
    std::uint64_t unknown_stream = 0;
    std::uint64_t datagrams_received = 0, datagrams_sent = 0, datagrams_dropped = 0;
    std::uint64_t datagram_unknown_sender = 0;
    std::uint64_t peers_gone = 0;         ///< membership said dead or left
    std::uint64_t sessions_given_up = 0;  ///< retention expired, or the peer left
    std::uint64_t peer_restarts = 0;
    /// Multi-shard nodes: peers told to dial another of our endpoints, and connections we
    /// dialed from the wrong one, handed to the owner.
    std::uint64_t redirected = 0, handed_to_owner = 0;
    std::uint64_t messages_lost_to = 0, frames_lost_from = 0;  ///< reported as peer_loss
    std::uint64_t publish_too_large = 0, publish_invalid_topic = 0, subscribe_invalid_pattern = 0;
    // The priority lane.
    std::uint64_t replication_sent = 0, replication_received = 0;
    std::uint64_t replication_dropped = 0;    ///< queued, then the peer became unreachable
    std::uint64_t replication_unclaimed = 0;  ///< received with no replication handler
};

/// Owned by one shard; every member is called on that shard's thread.
class endpoint final : public service_port, transport::event_handler {
  public:
    using stream_handler = std::function<void(const message&)>;
    using topic_handler = std::function<void(const message&)>;
    using rpc_handler = std::function<rpc_reply(const message& request)>;
    using deferred_handler = service_port::deferred_handler;
    using reply_handler = service_port::reply_handler;
    using peer_handler = std::function<void(std::string_view peer, peer_event event)>;
    using loss_handler = std::function<void(const peer_loss& loss)>;
    using replication_handler = service_port::replication_handler;
    using subscription_id = std::uint64_t;

    /// Binds to `owner` (registers its pollers and idle wait), listens and starts dialing.
    static result<std::unique_ptr<endpoint>> create(shard& owner,
                                                    std::unique_ptr<transport::transport> t,
                                                    endpoint_config config);
    ~endpoint() override;

    // ---- point to point ----
    /// accepted, or why not: back_pressure (retry later), too_large, unknown_peer (no session
    /// with `peer`: it never connected). Only an accepted message was taken.
    outcome send(std::string_view peer, std::uint32_t stream, std::span<const std::byte> bytes);
    void on_stream(std::uint32_t stream, stream_handler handler);

    // ---- pub/sub ----
    publish_result publish(std::string_view topic, std::span<const std::byte> bytes);
    /// Like publish, to the remote subscribers only: for a node whose local subscribers
    /// (on every shard) are reached another way (shard_messaging.h).
    publish_result publish_to_peers(std::string_view topic, std::span<const std::byte> bytes);
    /// How many connected peers subscribe to a pattern matching `topic`.
    std::size_t subscribers(std::string_view topic) const;
    /// A peer's subscriptions, as it propagated them.
    struct peer_subscriptions {
        std::string peer;
        bool reachable = false;  ///< connected (or a datagram peer that introduced itself)
        std::vector<std::string> patterns;
    };
    /// Every peer with a subscription (publishes are queued for it, reachable or not).
    std::vector<peer_subscriptions> remote_subscriptions() const;
    /// Changes whenever a peer's subscriptions do (not when it comes or goes).
    std::uint64_t remote_subscriptions_version() const noexcept {
        return remote_subscriptions_version_;
    }
    /// Whether every peer that wants `topic` has room in its window: a publish now would be
    /// queued for all of them (none would report back-pressure).
    bool publish_ready(std::string_view topic) const;
    /// The subscription's id (for unsubscribe), or why there is none: invalid_topic when the
    /// pattern is not valid.
    struct subscribe_result {
        outcome status = outcome::accepted;
        subscription_id id = 0;
    };
    subscribe_result subscribe(std::string_view pattern, topic_handler handler);
    void unsubscribe(subscription_id id);

    // ---- rpc ----
    void serve(std::string_view method, rpc_handler handler);
    /// Like serve, for a method whose answer comes later (a write answered once it is
    /// committed): the handler keeps `reply` and answers it with reply(). A caller that is
    /// never answered sees its own deadline pass. A null handler stops serving the method.
    void serve_deferred(std::string_view method, deferred_handler handler) override;
    /// Answers a deferred call. False when the caller is gone: no session with it, or it is a
    /// new process since the call (nothing is sent then).
    bool reply(const pending_reply& to, const rpc_reply& reply) override;
    outcome call(std::string_view peer, std::string_view method, std::span<const std::byte> request,
                 time_ns timeout_ns, reply_handler on_reply) override;

    // ---- the priority lane (replication) ----
    /// Queues one replication batch (a RaftBatch, schemas/raft.fbs) for `peer`. It leaves
    /// ahead of every session frame to that peer in the next flush, so Raft's heartbeats and
    /// votes never wait behind bulk data on a shared connection. Unsequenced and never
    /// retransmitted: Raft retransmits what matters itself, and a stale vote or append is
    /// worse than none. accepted; unknown_peer when the peer is not reachable now;
    /// too_large over replication_limit(peer); back_pressure when priority_queue_bytes
    /// already wait for it.
    outcome send_replication(std::string_view peer, std::span<const std::byte> batch) override;
    /// The largest batch send_replication takes for `peer` now: the frame body limit on a
    /// stream, what fits one datagram on a datagram link; 0 when it is not reachable.
    std::size_t replication_limit(std::string_view peer) const;
    /// Every replication batch received, with the peer it came from (bound by its Hello).
    /// The batch is unverified: the handler verifies it before use (raft_codec.h).
    void on_replication(replication_handler handler) override {
        replication_handler_ = std::move(handler);
    }

    // ---- peers ----
    void on_peer_event(peer_handler handler) { peer_handler_ = std::move(handler); }
    /// (node_shards > 1) A peer this endpoint dialed (over a stream, or said Hello to over
    /// datagrams: `datagram`) belongs to endpoint `node_shard` of this node: that endpoint
    /// should reach `address` the same way (this one forgets it).
    using misplaced_handler = std::function<void(std::uint32_t node_shard,
                                                 const transport::address& address, bool datagram)>;
    void on_misplaced_peer(misplaced_handler handler) { misplaced_handler_ = std::move(handler); }
    bool connected(std::string_view peer) const override;
    std::vector<std::string> connected_peers() const;
    /// Whether `peer` subscribes to a pattern matching `topic`.
    bool peer_wants(std::string_view peer, std::string_view topic) const;
    /// Frames queued to `peer` and not yet acknowledged.
    std::uint64_t unacked(std::string_view peer) const;
    /// Membership declared `peer` dead (left = false) or said it left. Only an opinion: the
    /// session stays, and the same process resumes it if it comes back. Its retention clock
    /// runs from here; a peer that left and has no connection is given up at once.
    void member_gone(std::string_view peer, bool left);
    /// Membership sees `peer` alive again (it refuted, or rejoined): its retention clock stops
    /// once it is connected.
    void member_alive(std::string_view peer);
    /// Called when messages to or from a peer were given up (see loss_reason).
    void on_peer_loss(loss_handler handler) { loss_handler_ = std::move(handler); }
    /// Closes the connection to `peer` (the session stays; a configured peer is redialed
    /// and resumes it). False if there is none.
    bool disconnect(std::string_view peer);
    /// Dials `address` (and redials it while it is away), unless it is dialed already.
    void dial(const transport::address& address);
    /// Says Hello to `address` over datagrams until it answers, as for a configured
    /// datagram peer, unless it is known already.
    void dial_datagram(const transport::address& address);

    const endpoint_stats& stats() const noexcept { return stats_; }
    /// Messages published and received per topic (bounded: endpoint_config::
    /// topic_metrics_limit).
    const topic_counts& per_topic() const noexcept { return topic_counts_; }
    /// Round trips of the calls that were answered (by a reply of any status; calls that
    /// timed out are rpc_timeouts), in ns; null before the first answer.
    const latency_histogram* rpc_latency() const noexcept { return rpc_latency_.get(); }
    const session_stats* peer_session_stats(std::string_view peer) const;
    /// Round trips, resends and a quality score from the peer's acknowledgements (null when
    /// the peer is unknown).
    std::optional<session::link_health> peer_link_health(std::string_view peer) const;
    const std::string& node_id() const noexcept override { return config_.node_id; }
    const wire::codec_limits& limits() const noexcept override { return config_.limits; }
    /// The largest message body a session of this endpoint takes (one frame, or fragments up
    /// to session.max_message_bytes); a larger one is too_large for every peer.
    std::size_t largest_message_bytes() const noexcept {
        return std::max<std::size_t>(config_.session.max_message_bytes,
                                     config_.limits.max_body_bytes);
    }
    transport::transport& transport() noexcept { return *transport_; }
    shard& owner() noexcept override { return shard_; }

    /// Closes every connection (graceful, flushed); the shard keeps running.
    void shutdown();

  private:
    struct peer_state;
    struct conn_state;
    struct dial_target;
    struct datagram_peer;
    struct pending_call {
        reply_handler on_reply;
        timer_id deadline;
        time_ns sent_ns;
    };

    endpoint(shard& owner, std::unique_ptr<transport::transport> t, endpoint_config config);
    result<void> start();

    // transport::event_handler
    void on_connected(transport::connection_id conn, bool inbound) override;
    void on_received(transport::connection_id conn, buffer_handle chunk) override;
    void on_datagram(const transport::address& from, std::span<const std::byte> payload,
                     buffer_handle owner) override;
    void on_closed(transport::connection_id conn, transport::close_reason reason,
                   int error) override;

    std::size_t poll_transport(time_ns now);
    std::size_t transmit(time_ns now);
    bool handle_frame(conn_state& c, const wire::frame& f, const buffer_handle* owner);
    bool handle_hello(conn_state& c, const wire::frame& f);
    bool handle_peer_frame(peer_state& p, const wire::frame& f, const buffer_handle* owner);
    void handle_datagram_hello(const transport::address& from, const wire::frame& f);
    /// (node_shards > 1) A Hello from a peer another of our endpoints owns: hands our own
    /// Hellos to it over to that endpoint, or tells the peer the owner's port.
    void datagram_misplaced(const transport::address& from, std::uint32_t owner);
    void take_datagram_redirect(const transport::address& from, const wire::Error& e);
    datagram_peer& datagram_peer_for(const transport::address& address);
    datagram_peer* find_datagram_peer(const transport::address& address);
    void send_datagram_hello(datagram_peer& d, bool seen_you);
    void retry_datagram_hello(std::size_t index);
    bool flush_datagram(datagram_peer& d);
    /// Hands one datagram to the transport; `owner` (if any) keeps `bytes` alive for a
    /// transport that sends in place.
    bool send_datagram_now(const datagram_peer& d, std::span<const std::byte> bytes,
                           const shared_bytes_owner& owner = {});
    std::size_t transmit_datagrams(peer_state& p, time_ns now);
    /// Sends `p`'s priority-lane frames; false when some must wait (then nothing of the
    /// session may leave before them).
    bool transmit_priority(peer_state& p);
    peer_state& peer_named(const std::string& id, bool datagram);
    static bool reachable(const peer_state& p);
    /// Whether one of `p`'s subscriptions matches `topic`.
    static bool wants(const peer_state& p, std::string_view topic);
    void dispatch(peer_state& p, std::uint32_t stream, const wire::frame& f,
                  const buffer_handle* owner);
    void deliver_publish(peer_state& p, const wire::frame& f, const buffer_handle* owner);
    void apply_subscription(peer_state& p, const wire::frame& f);
    void serve_request(peer_state& p, const wire::frame& f, const buffer_handle* owner);
    void take_response(const wire::frame& f);
    void refuse(conn_state& c, wire::ErrorCode code, std::string_view why);
    void bind(conn_state& c, const std::string& peer_id, std::uint64_t incarnation);
    enum class hello_check : std::uint8_t { ok, wrong_cluster, unsupported_version, ourselves };
    /// Whether a Hello may introduce a peer here; a refusal is counted.
    hello_check check_hello(const wire::Hello& hello);
    /// A peer introduced itself, over a stream or in datagrams, and p.conn or p.datagram
    /// says how to reach it: its session (re)connects, and a new process is told apart from
    /// the same one coming back. The one place both paths share.
    void peer_introduced(peer_state& p, std::uint64_t incarnation);
    void report_loss(peer_state& p, loss_reason reason, const session_loss& loss);
    void start_retention(peer_state& p);
    void stop_retention(peer_state& p);
    void retention_expired(const std::string& peer);
    void give_up(peer_state& p, loss_reason reason);
    /// Closes `c` unless it is gone or already closing; false then.
    bool close_connection(conn_state* c);
    void dial(std::size_t target_index);
    void schedule_redial(std::size_t target_index);
    /// Somewhere in [backoff/2, backoff]: peers that lost us together do not return together.
    time_ns jittered(time_ns backoff_ns) { return random_.between(backoff_ns / 2, backoff_ns); }
    void send_subscriptions(peer_state& p);
    void propagate(wire::FrameKind kind, std::string_view pattern);
    publish_result publish(std::string_view topic, std::span<const std::byte> bytes,
                           bool deliver_locally);
    /// A Hello from a peer another of this node's endpoints owns: redirect it, or hand the
    /// dial to the owner. Returns false (the connection closes).
    bool misplaced(conn_state& c, std::uint32_t owner);
    void take_error(conn_state& c, const wire::frame& f);
    /// Sends an Error frame and closes once it is flushed (refuse() logs first; placement
    /// redirects are quiet).
    void close_with_error(conn_state& c, wire::ErrorCode code, std::string_view why,
                          std::uint16_t redirect_port = 0);
    /// `answered`: a reply came (false: the deadline passed first).
    void finish_call(std::uint64_t call_id, const rpc_result& result, bool answered);
    /// Calls fn(handler) for each local subscription matching `topic`. A handler may
    /// unsubscribe (itself or others) and subscribe while this runs.
    template <typename Fn>
    void for_each_subscriber(std::string_view topic, Fn&& fn) {
        for (subscription_id id = 1; id < next_subscription_;) {
            auto it = subscriptions_.lower_bound(id);
            if (it == subscriptions_.end()) break;
            id = it->first + 1;
            if (topic_matches(it->second.pattern, topic)) {
                const topic_handler handler = it->second.handler;  // survives an unsubscribe
                fn(handler);
            }
        }
    }
    void arm_session_timer();
    peer_state* find_peer(std::string_view id);
    const peer_state* find_peer(std::string_view id) const;
    conn_state* find_conn(transport::connection_id id);

    shard& shard_;
    std::unique_ptr<transport::transport> transport_;
    endpoint_config config_;
    random_source random_;
    std::uint64_t incarnation_;
    wire::body_builder builder_;
    std::map<std::string, std::unique_ptr<peer_state>, std::less<>> peers_;
    std::unordered_map<std::uint32_t, std::unique_ptr<conn_state>> conns_;  // by index
    std::vector<dial_target> dial_targets_;
    std::vector<std::unique_ptr<datagram_peer>> datagram_peers_;          // by index; never removed
    std::unordered_map<transport::address, std::size_t> datagram_index_;  // address -> index
    std::unordered_map<std::uint32_t, stream_handler> stream_handlers_;
    struct local_subscription {
        std::string pattern;
        topic_handler handler;
    };
    std::map<subscription_id, local_subscription> subscriptions_;
    subscription_id next_subscription_ = 1;
    std::unordered_map<std::string, rpc_handler> rpc_handlers_;
    std::unordered_map<std::string, deferred_handler> deferred_handlers_;
    std::unordered_map<std::uint64_t, pending_call> calls_;
    std::uint64_t next_call_id_ = 1;
    wake_deadline session_deadline_;
    peer_handler peer_handler_;
    loss_handler loss_handler_;
    replication_handler replication_handler_;
    misplaced_handler misplaced_handler_;
    std::uint64_t remote_subscriptions_version_ = 0;
    endpoint_stats stats_;
    topic_counts topic_counts_{config_.topic_metrics_limit};
    std::unique_ptr<latency_histogram> rpc_latency_;  // 30 KiB: made at the first answer
    frame_intake intake_{config_.limits, stats_};
    bool shutting_down_ = false;
    std::array<shard::poller_id, 2> pollers_{};
    shard::wait_source_id wait_source_ = 0;
};

}  // namespace ringmesh::messaging
