// The comparison bench harness: each measurement runs the two sides of a scenario as two
// forked processes pinned to their own cores, and the measuring side reports through a pipe.
// Every system (ringmesh, ZeroMQ, NATS, the raw kernel floor) implements the same four roles.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "engine/core/clock.h"
#include "engine/core/histogram.h"

namespace ringmesh::bench {

enum class scenario : std::uint8_t { stream, pingpong, rate, rpc, idle, fanout, fanin };

/// Requests kept outstanding by the rpc scenario's client.
inline constexpr int rpc_window = 32;
/// Stream and rate senders read the clock once per batch of up to this many messages (the
/// raw floor once per 256 KiB write), not per message: a clock read costs about as much as
/// a small message through the faster systems, and the stamp is only measured in `rate`.
inline constexpr int batch_size = 512;

struct run_config {
    scenario what = scenario::stream;
    std::size_t payload_bytes = 64;
    double seconds = 2;
    double rate_per_s = 0;  ///< rate scenario: messages/s offered
    int port = 0;           ///< the receiver/server listens here
    int sender_core = 0, receiver_core = 1;
    int fanout = 2;          ///< fanout: subscriber processes (all on the receiver core)
    int receiver_index = 0;  ///< fanout: which subscriber this process is
    int sender_index = 0;    ///< fanin: which publisher this process is
    /// fanin: the receiving node's shards, each with its own endpoint (ringmesh only); the
    /// second runs on the sender core.
    int receiver_shards = 1;
    bool block = false;          ///< ringmesh idle strategy: block instead of busy_spin
    bool udp = false;            ///< ringmesh over datagrams
    bool dpdk = false;           ///< ringmesh over the DPDK transport on a net_memif pair
    int broker_port = 0;         ///< nats: the run's nats-server (0: none)
    bool scraped = false;        ///< ringmesh with /metrics served and scraped every 100 ms
    bool authenticated = false;  ///< ringmesh in security mode authenticated (keyring, tags)
    bool encrypted = false;      ///< ringmesh in security mode encrypted (TLS 1.3, certificates)
    bool curve = false;          ///< zmq with CURVE (libzmq's own encryption)
};

/// The CA of ringmesh-tls's certificates: made in the harness before its roles fork, so that
/// both sides of a run trust the same one.
void prepare_tls_ca();

/// The memif pair of the DPDK systems: the receiver is the memif server (it creates the
/// socket), the sender the client. One socket and one EAL file prefix per run and side.
std::string memif_socket(const run_config& c);
std::vector<std::string> memif_eal_args(const run_config& c, bool receiving);
/// The client side waits (bounded) for the server's socket before starting EAL.
bool wait_for_memif_server(const run_config& c);
/// Removes this side's EAL runtime files (and, on the server, the socket).
void remove_memif_files(const run_config& c, bool receiving);

/// What the measuring side sends back (a plain struct through a pipe).
struct run_result {
    bool ok = false;
    char error[160] = {};
    std::uint64_t messages = 0;
    double seconds = 0;
    /// Latency (ns): p50, p90, p99, p99.9, p99.99, max. One-way for rate, round trip for
    /// pingpong and rpc; empty for stream. For idle: cpu_fraction instead.
    std::array<std::int64_t, 6> latency_ns{};

    double cpu_fraction = 0;        ///< idle: CPU time / wall time of the reporting process
    double slowest_per_second = 0;  ///< fanout: the slowest subscriber's messages/s

    double per_second() const { return seconds > 0 ? static_cast<double>(messages) / seconds : 0; }
    void fill_latency(const latency_histogram& h) {
        const double q[] = {0.5, 0.9, 0.99, 0.999, 0.9999};
        for (int i = 0; i < 5; ++i)
            latency_ns[static_cast<std::size_t>(i)] = h.quantile(q[i]);
        latency_ns[5] = h.max();
    }
    static run_result failed(const std::string& why) {
        run_result r;
        std::strncpy(r.error, why.c_str(), sizeof r.error - 1);
        return r;
    }
};

/// Message layout shared by all systems: [kind:1][pad:7][seq:8][intended_send_ns:8][...]
enum : std::uint8_t { msg_data = 0, msg_end = 1 };
inline constexpr std::size_t header_bytes = 24;

inline void stamp(std::byte* p, std::uint8_t kind, std::uint64_t seq, time_ns sent_ns) {
    p[0] = static_cast<std::byte>(kind);
    std::memcpy(p + 8, &seq, 8);
    std::memcpy(p + 16, &sent_ns, 8);
}
inline std::uint8_t kind_of(const std::byte* p) {
    return static_cast<std::uint8_t>(p[0]);
}
inline time_ns sent_of(const std::byte* p) {
    time_ns t;
    std::memcpy(&t, p + 16, 8);
    return t;
}

/// Bookkeeping of a receiver: counts data messages, times first to last, and for the rate
/// scenario records one-way latency from the *intended* send time.
struct receive_tally {
    std::uint64_t messages = 0;
    time_ns first_ns = 0, last_ns = 0;
    latency_histogram latency;
    bool done = false;

    void on_message(const std::byte* p, bool record_latency) {
        if (kind_of(p) == msg_end) {
            // Sent right behind the last data message: its arrival ends the measurement.
            if (messages > 0) last_ns = monotonic_clock::read();
            done = true;
            return;
        }
        // Throughput needs only the first and last times: read the clock per message only
        // when measuring latency (a read costs as much as a small message here).
        if (messages++ == 0 || record_latency) {
            const time_ns now = monotonic_clock::read();
            if (messages == 1) first_ns = now;
            last_ns = now;
            if (record_latency) latency.record(now - sent_of(p));
        }
    }
    run_result result(bool with_latency) const {
        run_result r;
        r.ok = messages > 0;
        if (!r.ok) std::strcpy(r.error, "nothing received");
        r.messages = messages;
        r.seconds = static_cast<double>(last_ns - first_ns) / 1e9;
        if (with_latency) r.fill_latency(latency);
        return r;
    }
};

/// The open-loop schedule of the rate scenario: message i is due at start + i / rate, and is
/// stamped with that intended time, so a stalled sender shows up as latency, not as silence.
struct rate_schedule {
    time_ns start_ns;
    double interval_ns;
    time_ns due(std::uint64_t i) const {
        return start_ns + static_cast<time_ns>(static_cast<double>(i) * interval_ns);
    }
};

/// The closed-loop client of pingpong (window 1) and rpc (rpc_window), for systems driven by
/// blocking calls: keeps `window` requests outstanding until `seconds` pass, measures each
/// round trip from the timestamp the request carries, then sends the end marker and waits for
/// its echo. send(msg) and receive(msg) return false when the connection is lost.
template <typename Send, typename Receive>
run_result windowed_round_trips(const run_config& c, int window, std::vector<std::byte>& msg,
                                Send&& send, Receive&& receive) {
    latency_histogram rtt;
    std::uint64_t sent = 0, done = 0;
    const time_ns t0 = monotonic_clock::read();
    const time_ns end = t0 + static_cast<time_ns>(c.seconds * 1e9);
    for (; sent < static_cast<std::uint64_t>(window); ++sent) {
        stamp(msg.data(), msg_data, sent, monotonic_clock::read());
        if (!send(msg)) return run_result::failed("send failed");
    }
    while (done < sent) {
        if (!receive(msg)) return run_result::failed("connection lost");
        const time_ns now = monotonic_clock::read();
        rtt.record(now - sent_of(msg.data()));
        ++done;
        if (now < end) {
            stamp(msg.data(), msg_data, sent++, now);
            if (!send(msg)) return run_result::failed("send failed");
        }
    }
    stamp(msg.data(), msg_end, sent, 0);
    send(msg);
    receive(msg);
    run_result r;
    r.ok = true;
    r.messages = done;
    r.seconds = static_cast<double>(monotonic_clock::read() - t0) / 1e9;
    r.fill_latency(rtt);
    return r;
}

/// The stream and rate sender of a system driven by blocking calls: stamps and sends
/// messages until `seconds` pass (open loop at rate_per_s when set, reading the clock once per
/// batch), then the end marker. send(msg) returns false when the system failed (it stops).
template <typename Send>
bool send_stream(const run_config& c, std::vector<std::byte>& msg, Send&& send) {
    const time_ns start = monotonic_clock::read();
    const time_ns end = start + static_cast<time_ns>(c.seconds * 1e9);
    const rate_schedule schedule{start, c.rate_per_s > 0 ? 1e9 / c.rate_per_s : 0};
    std::uint64_t seq = 0;
    for (time_ns now = start; now < end; now = monotonic_clock::read()) {
        for (int i = 0; i < batch_size; ++i) {
            const time_ns due = schedule.due(seq);
            if (c.rate_per_s > 0 && due > now) break;
            stamp(msg.data(), msg_data, seq++, c.rate_per_s > 0 ? due : now);
            if (!send(msg)) return false;
        }
    }
    stamp(msg.data(), msg_end, seq, 0);
    return send(msg);
}

// Each system: the receiving/serving side and the sending/calling side. The measuring side
// returns the result: the receiver for stream and rate, the client for pingpong.
struct system_roles {
    const char* name;
    run_result (*receiver)(const run_config&);  ///< stream/rate receiver, or pingpong server
    run_result (*sender)(const run_config&);    ///< stream/rate sender, or pingpong client
    bool (*supports)(const run_config&, std::string* why);
};

extern const system_roles raw_floor_roles;
extern const system_roles raw_uring_roles;  ///< the io_uring floor (pingpong)
extern const system_roles zmq_roles;
extern const system_roles zmq_curve_roles;  ///< the same with CURVE on every socket
extern const system_roles nats_roles;       ///< built with libnats only; needs a nats-server
extern const system_roles ringmesh_tcp_roles;
extern const system_roles ringmesh_udp_roles;
extern const system_roles ringmesh_dpdk_roles;  ///< built with DPDK only
extern const system_roles raw_dpdk_roles;       ///< the DPDK memif floor; built with DPDK only

void pin_to_core(int core);

/// Where receiver `index` listens: the base port for the only receiver of the one-to-one
/// scenarios; fan-out subscribers on every second port after it (the sender's own listener,
/// where it has one, takes port + 1).
inline int receiver_port(const run_config& c, int index) {
    return c.port + 2 * index;
}
/// How many receivers the scenario has.
inline int receiver_count(const run_config& c) {
    return c.what == scenario::fanout ? c.fanout : 1;
}
/// How many senders: two publisher processes into one node for fanin, else one.
inline int sender_count(const run_config& c) {
    return c.what == scenario::fanin ? 2 : 1;
}
/// fanin: where sender `index` listens (the receiver's shards take port, port + 1, ...).
inline int fanin_sender_port(const run_config& c, int index) {
    return c.port + 4 + index;
}
/// fanin's receiving side: one ringmesh node with c.receiver_shards shards (ringmesh_fanin.cc).
run_result ringmesh_fanin_receiver(const run_config& c);

}  // namespace ringmesh::bench
