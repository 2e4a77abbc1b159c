// The membership state machine (swim.h) on a real or simulated transport: gossip datagrams
// over UDP, push-pull over a stream, every message sealed with the cluster keyring. The agent
// decodes and authenticates what arrives, feeds the state machine, and sends what it asks
// for; it owns no thread and no clock — the shard (or the simulator) calls poll(now).
//
// Refusals are counted by reason and never reach the state machine: a message no key opens,
// plaintext at a keyed node, bytes the Verifier rejects, another cluster's gossip, a stream
// message over the size limit.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/membership/gossip_codec.h"
#include "engine/membership/keyring.h"
#include "engine/membership/swim.h"
#include "transport/transport.h"

namespace ringmesh::membership {

struct agent_config {
    std::string cluster_id = "ringmesh";
    transport::address listen;  ///< gossip UDP (and push-pull TCP) address
    swim_config swim;           ///< swim.address defaults to listen's text
    std::size_t max_stream_message_bytes = 16u << 20;
    time_ns stream_timeout = 5 * ns_per_s;  ///< a push-pull exchange must finish by then
};

struct agent_stats {
    std::uint64_t datagrams_in = 0, datagrams_out = 0, datagram_send_failed = 0;
    std::uint64_t streams_opened = 0, streams_accepted = 0, stream_failures = 0;
    std::uint64_t stream_timeouts = 0, oversized = 0;
    /// Refused by the keyring, by open_status.
    std::array<std::uint64_t, 5> refused_by_keyring{};
    /// Refused by the decoder, by gossip_error.
    std::array<std::uint64_t, static_cast<std::size_t>(gossip_error::count)> refused_by_codec{};
    std::uint64_t refused() const noexcept;
};

class gossip_agent final : public transport::event_handler {
  public:
    static result<std::unique_ptr<gossip_agent>> create(
        std::unique_ptr<transport::transport> transport, agent_config config, keyring keys);
    ~gossip_agent() override;

    /// Starts the protocol (and joining through the seeds) at `now`.
    void start(time_ns now);
    /// Receives, runs the protocol's timers, sends; returns the work done (0: idle).
    std::size_t poll(time_ns now);
    /// The earliest time poll() has protocol work (I/O aside).
    time_ns next_deadline() const { return swim_.next_deadline(); }
    void leave(time_ns now);
    void update_meta(time_ns now, member_meta meta);

    std::vector<member_event> take_events() { return swim_.take_events(); }
    const swim& state() const noexcept { return swim_; }
    keyring& keys() noexcept { return keys_; }
    const agent_stats& stats() const noexcept { return stats_; }
    transport::transport& transport_backend() noexcept { return *transport_; }

    // transport::event_handler
    void on_connected(transport::connection_id conn, bool inbound) override;
    void on_received(transport::connection_id conn, buffer_handle chunk) override;
    void on_datagram(const transport::address& from, std::span<const std::byte> payload,
                     buffer_handle owner) override;
    void on_closed(transport::connection_id conn, transport::close_reason reason,
                   int error) override;

  private:
    struct stream_state {
        bool outbound = false;
        bool connected = false;
        bool answered = false;  ///< got what it came for; closing
        time_ns opened = 0;
        std::vector<std::byte> in;   ///< length-prefixed message being gathered
        std::vector<std::byte> out;  ///< not yet taken by the transport
        std::size_t out_at = 0;
    };

    gossip_agent(std::unique_ptr<transport::transport> transport, agent_config config,
                 keyring keys);
    static std::uint64_t token_of(transport::connection_id c) {
        return (std::uint64_t{c.index} << 32) | c.generation;
    }
    static transport::connection_id conn_of(std::uint64_t token) {
        return {static_cast<std::uint32_t>(token >> 32), static_cast<std::uint32_t>(token)};
    }
    /// Opens and decodes; counts and returns false on any refusal.
    bool accept_message(std::span<const std::byte> sealed, gossip_message& out);
    void send_outbox();
    void pump_stream(transport::connection_id conn, stream_state& s);
    void queue_stream_message(stream_state& s, const gossip_message& m);
    const transport::address* resolve(const std::string& text);

    std::unique_ptr<transport::transport> transport_;
    agent_config config_;
    keyring keys_;
    swim swim_;
    time_ns now_ = 0;
    std::unordered_map<std::uint64_t, stream_state> streams_;
    std::unordered_map<std::string, transport::address> resolved_;
    std::vector<std::byte> plain_, sealed_;  // scratch, reused
    agent_stats stats_;
};

}  // namespace ringmesh::membership
