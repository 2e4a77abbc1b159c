// SWIM membership with the Lifeguard extensions, sans-I/O: the state machine consumes decoded
// gossip messages and time (on_message, on_tick) and produces messages to send (take_outbox)
// and membership events (take_events). It never touches a socket or a clock, so the
// simulator runs thousands of them in one thread and a seed replays a run exactly.
//
// The protocol, per probe period (probe_interval, scaled by Lifeguard's local health):
//   - ping one member, chosen by randomised round-robin;
//   - no ack within probe_timeout: ask `indirect_checks` others to ping it (ping-req); with
//     Lifeguard they answer nack when the target stays silent, which tells this node that its
//     own links work;
//   - no ack by the end of the period: the member becomes suspect. A suspect that hears of it
//     refutes by raising its incarnation; otherwise its suspicion timeout expires and it is
//     declared dead. With Lifeguard the timeout starts long and shrinks with every
//     independent confirmation from other members.
// Every state change is disseminated by piggybacking it on pings and acks, each update
// retransmitted about retransmit_mult * log10(N) times. A periodic push-pull exchanges the
// full member table over a stream (anti-entropy), and also with a dead member now and then,
// so the two sides of a healed partition find each other again.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/core/clock.h"

namespace ringmesh::membership {

enum class member_state : std::uint8_t { alive, suspect, dead, left };
const char* to_string(member_state state) noexcept;

/// What a member tells the cluster about itself.
struct member_meta {
    std::uint16_t shard_count = 1;
    /// transport name -> address, e.g. {"tcp", "10.0.0.1:7001"}
    std::vector<std::pair<std::string, std::string>> addresses;
    std::vector<std::pair<std::string, std::string>> tags;
    friend bool operator==(const member_meta&, const member_meta&) = default;
};

/// One member's state as some node believes it: a dissemination update or a table row.
struct member_update {
    member_state state = member_state::alive;
    std::string name;
    std::string address;  ///< gossip address, host:port
    std::uint64_t incarnation = 0;
    std::string from;  ///< who raised a suspect/dead
    member_meta meta;
};

enum class gossip_kind : std::uint8_t {
    ping = 1,
    ping_req = 2,
    ack = 3,
    nack = 4,
    push_pull = 5,
    push_pull_reply = 6,
};
const char* to_string(gossip_kind kind) noexcept;

struct gossip_message {
    gossip_kind kind = gossip_kind::ping;
    std::uint32_t seq = 0;
    std::string sender;
    std::string sender_address;
    std::string target;
    std::string target_address;
    std::vector<member_update> updates;
    bool join = false;
};

/// A message the state machine wants sent.
struct outgoing {
    enum class channel : std::uint8_t {
        datagram,      ///< one UDP datagram to `to`
        stream,        ///< push-pull: open a stream to `to`, send, read the one reply
        stream_reply,  ///< the answer on the stream that `reply_token` names
    };
    channel via = channel::datagram;
    std::string to;
    std::uint64_t reply_token = 0;
    gossip_message message;
};

struct member_event {
    enum class kind : std::uint8_t { joined, updated, suspect, alive, dead, left };
    kind what = kind::joined;
    std::string name;
    std::string address;
    std::uint64_t incarnation = 0;
    member_meta meta;
    time_ns at = 0;
};
const char* to_string(member_event::kind kind) noexcept;

struct member_record {
    std::string name;
    std::string address;
    member_meta meta;
    std::uint64_t incarnation = 0;
    member_state state = member_state::alive;
    time_ns state_since = 0;
};

struct swim_config {
    std::string name;     ///< unique in the cluster
    std::string address;  ///< this node's gossip address as others reach it
    member_meta meta;
    std::uint64_t incarnation = 0;
    std::vector<std::string> seeds;  ///< gossip addresses to join through (own one ignored)

    time_ns probe_interval = 500 * ns_per_ms;
    time_ns probe_timeout = 200 * ns_per_ms;  ///< direct ack wait before ping-req
    int indirect_checks = 3;                  ///< k in the SWIM paper
    int retransmit_mult = 4;                  ///< λ: each update goes λ·log10(N+1) times
    int suspicion_mult = 4;                   ///< minimum suspicion = mult·log10(N)·interval
    int suspicion_max_timeout_mult = 6;       ///< Lifeguard: starting timeout = this × minimum
    time_ns push_pull_interval = 15 * ns_per_s;
    time_ns join_retry_interval = 1 * ns_per_s;
    time_ns dead_retention =
        time_ns{300} * ns_per_s;                ///< dead members kept (and retried) this long
    std::size_t piggyback_budget_bytes = 1100;  ///< update bytes per datagram (estimated)

    bool lifeguard = true;  ///< local health, nacks, dynamic suspicion, buddy system
    int awareness_max = 8;  ///< Lifeguard: probe timing scales by (1 + health score)

    /// Probe order and join jitter. cluster::member derives it from its own random_seed.
    std::uint64_t rng_seed = 1;
};

struct swim_stats {
    std::uint64_t probes = 0;
    std::uint64_t probes_failed = 0;  ///< no ack, direct or indirect, within the period
    std::uint64_t indirect_probes = 0;
    std::uint64_t relayed_probes = 0;  ///< ping-reqs served for others
    std::uint64_t nacks_received = 0;
    std::uint64_t suspicions_raised = 0;  ///< by this node's own failed probes
    std::uint64_t declared_dead = 0;      ///< suspicion timeouts expired here
    std::uint64_t refutations = 0;        ///< this node heard itself suspected or dead
    std::uint64_t push_pulls = 0;
    std::uint64_t misdirected = 0;  ///< pings for someone else, unknown acks
    std::uint64_t updates_sent = 0;
};

class swim {
  public:
    explicit swim(swim_config config);

    /// Starts probing and (with seeds) joining at `now`.
    void start(time_ns now);
    /// A decoded, authenticated message. `reply_token` names the stream it came on (push-pull);
    /// a push-pull answer goes back as outgoing::channel::stream_reply with the same token.
    void on_message(time_ns now, const gossip_message& message, std::uint64_t reply_token = 0);
    /// Runs whatever is due; call at next_deadline() or later.
    void on_tick(time_ns now);
    /// Graceful leave: tells the cluster this member left. Keep ticking for a few probe
    /// periods so the news spreads, then stop.
    void leave(time_ns now);
    /// Changes this member's metadata (tags, addresses) and tells the cluster.
    void update_meta(time_ns now, member_meta meta);

    /// The earliest time on_tick has work.
    time_ns next_deadline() const;

    std::vector<outgoing> take_outbox() { return std::exchange(outbox_, {}); }
    std::vector<member_event> take_events() { return std::exchange(events_, {}); }

    const std::vector<member_record>& members() const noexcept { return members_; }
    const member_record* find(const std::string& name) const;
    const member_record& self() const { return members_[0]; }
    /// Alive and suspect members, self included.
    std::size_t alive_count() const noexcept { return live_count_; }
    bool joined() const noexcept { return joined_; }
    /// Lifeguard's local health score, 0 (healthy) .. awareness_max.
    int health_score() const noexcept { return awareness_; }
    const swim_stats& stats() const noexcept { return stats_; }
    const swim_config& config() const noexcept { return config_; }

    /// How long, at worst, from a member's crash until every other member holds it dead, in
    /// a cluster of `n` without message loss: randomised round-robin reaches it within two
    /// rounds of n-1 probe periods; then the longest suspicion timeout; then the dead notice
    /// spreads within its retransmit rounds. (Lifeguard's health multiplier may stretch the
    /// periods of an unhealthy prober; the bound assumes healthy ones.)
    static time_ns detection_bound(const swim_config& config, std::size_t n);

  private:
    struct probe_state {
        bool active = false;
        bool acked = false;
        bool indirect_sent = false;
        std::string target;
        std::uint32_t seq = 0;
        time_ns indirect_at = 0;  ///< send ping-reqs then
        time_ns period_end = 0;   ///< the verdict, and the next probe
        int expected_nacks = 0;
        int nacks = 0;
    };
    struct relay_state {  ///< a ping-req this node serves
        std::string origin_address;
        std::uint32_t origin_seq = 0;
        time_ns nack_at = 0;
    };
    struct suspicion {
        time_ns started = 0;
        time_ns min_timeout = 0, max_timeout = 0;
        int wanted_confirmations = 0;
        std::vector<std::string> confirmers;  ///< independent sources, the first included
        time_ns deadline = 0;
    };
    struct broadcast {
        member_update update;
        int transmits = 0;
        std::uint64_t order = 0;  ///< newer first among equally sent
    };

    member_record* lookup(const std::string& name);
    void set_state(member_record& m, member_state state, time_ns now);
    time_ns scaled(time_ns t) const { return t * (config_.lifeguard ? 1 + awareness_ : 1); }
    void adjust_awareness(int delta);
    int retransmit_limit() const;

    void start_probe(time_ns now);
    void finish_probe(time_ns now);
    void send_indirect_probes();
    void push_pull_tick(time_ns now);
    void reap_dead(time_ns now);

    void apply(time_ns now, const member_update& update, bool from_push_pull);
    void apply_alive(time_ns now, const member_update& update);
    void apply_suspect(time_ns now, const std::string& name, std::uint64_t incarnation,
                       const std::string& from);
    void apply_dead(time_ns now, const std::string& name, std::uint64_t incarnation,
                    const std::string& from, bool left);
    void refute(std::uint64_t heard_incarnation);
    void start_suspicion(time_ns now, const std::string& name, const std::string& from);
    void confirm_suspicion(const std::string& name, const std::string& from);

    void queue_broadcast(member_update update);
    member_update update_of(const member_record& m) const;
    std::vector<member_update> piggyback(const std::string& priority_name);
    void send(std::string to, gossip_message message);
    gossip_message make(gossip_kind kind, std::uint32_t seq) const;
    void emit(time_ns now, member_event::kind what, const member_record& m);

    swim_config config_;
    std::mt19937_64 rng_;
    std::vector<member_record> members_;  ///< [0] is this node
    std::unordered_map<std::string, std::size_t> index_;
    std::vector<std::string> probe_order_;
    std::size_t probe_cursor_ = 0;

    probe_state probe_;
    std::unordered_map<std::uint32_t, relay_state> relays_;
    std::unordered_map<std::string, suspicion> suspicions_;
    std::vector<broadcast> broadcasts_;
    std::uint64_t broadcast_order_ = 0;
    std::vector<std::uint32_t> order_scratch_;
    std::uint32_t next_seq_ = 1;
    int awareness_ = 0;
    std::size_t live_count_ = 1;  // self

    bool started_ = false, joined_ = false, leaving_ = false;
    time_ns next_probe_at_ = 0;
    time_ns next_push_pull_at_ = 0;
    time_ns next_join_at_ = 0;
    time_ns next_reap_at_ = 0;

    std::vector<outgoing> outbox_;
    std::vector<member_event> events_;
    swim_stats stats_;
};

}  // namespace ringmesh::membership
