// A reliable session with one peer: per stream, sequence numbers, cumulative acks piggybacked
// on reverse traffic (or sent alone after a short delay), credit-based flow control, dedup,
// in-order delivery, retransmission on timeout over datagrams, and resend of every
// unacknowledged frame after a reconnect. Sans-I/O: it consumes frames and time and produces
// wire bytes; the endpoint moves them over whatever transport is underneath.
//
// A session follows the peer *process* (its incarnation), not what membership believes: a
// peer that reconnects with the same incarnation resumes where it left off, whatever the
// cluster thought of it meanwhile. Loss is never silent:
//  - the peer restarted (a new incarnation): its receive state died with it, so our
//    unacknowledged messages are dropped and counted, and both directions start from 1;
//  - we gave up on a peer that stayed away too long (discard_unacked()): its messages are
//    dropped and counted here, and a Skip frame tells the peer, if it comes back, to jump
//    over them and count them as lost on its side too.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "engine/core/clock.h"
#include "engine/core/histogram.h"
#include "engine/messaging/byte_fifo.h"
#include "engine/messaging/outcome.h"
#include "engine/wire/frame_codec.h"

namespace ringmesh::messaging {

struct session_config {
    std::uint32_t max_in_flight_frames = 8192;  ///< unacked frames per stream, local cap
    /// Unacked bytes per stream, like a socket's send buffer: more than the path holds only
    /// lets the application run ahead, and the kernel then copies frames that have gone
    /// cold (measured: 64 KiB messages went 0.4x -> 1.1x the raw writer going from 64 to 1 MiB).
    std::size_t max_in_flight_bytes = 1u << 20;
    std::uint32_t receive_window_frames = 8192;  ///< credit granted to the peer per stream
    time_ns ack_delay_ns = 200 * ns_per_us;      ///< standalone ack when nothing to carry it
    /// Ack at once when this many body bytes arrived unacknowledged: the sender's
    /// retransmit blocks are then released while still in its cache.
    std::size_t ack_after_bytes = std::size_t{256} << 10;
    bool datagram = false;                             ///< lossy transport: retransmit, reorder
    time_ns retransmit_timeout_ns = 20 * ns_per_ms;    ///< datagram: first RTO
    time_ns max_retransmit_timeout_ns = 1 * ns_per_s;  ///< datagram: RTO backoff cap
    /// Bodies larger than one frame (the codec's max_body_bytes) up to this size are split
    /// into consecutive Fragment frames and reassembled by the peer's session; 0: refused.
    std::size_t max_message_bytes = 0;
    /// Datagrams: consecutive frames leave in runs of at most this many bytes (one datagram
    /// each, the endpoint sets its MTU); 0: one frame per emit.
    std::size_t datagram_run_bytes = 0;
};

struct session_stats {
    std::uint64_t frames_queued = 0;
    std::uint64_t frames_transmitted = 0;
    std::uint64_t frames_retransmitted = 0;  ///< datagram timeouts and reconnect resends
    std::uint64_t frames_delivered = 0;
    /// Bytes each way, frame headers included (retransmissions count again when sent): the
    /// link's throughput, as a rate of these.
    std::uint64_t bytes_transmitted = 0, bytes_delivered = 0;
    /// Connections (or datagram introductions) the session was resumed on: reconnects are
    /// one less.
    std::uint64_t connections = 0;
    std::uint64_t frames_acked = 0;  ///< by the peer
    std::uint64_t duplicates_dropped = 0;
    std::uint64_t out_of_window_dropped = 0;
    std::uint64_t acks_sent = 0;
    std::uint64_t back_pressure = 0;
    std::uint64_t peer_restarts = 0;
    std::uint64_t messages_split = 0, messages_reassembled = 0;
    std::uint64_t fragments_refused = 0;  ///< kinds mixed, or a message over the limit
    /// Pieces of a message the restarted peer had partly acknowledged: never delivered.
    std::uint64_t fragments_dropped_on_restart = 0;
    /// Messages dropped unacknowledged: the peer restarted, or stayed away past retention.
    std::uint64_t messages_discarded = 0;
    /// Frames the peer dropped for us and told us to skip (its Skip frames).
    std::uint64_t frames_skipped = 0;
};

/// What a session could not deliver: the caller reports it, never drops it silently.
struct session_loss {
    std::uint64_t to_peer = 0;    ///< our messages dropped without the peer's ack
    std::uint64_t from_peer = 0;  ///< the peer's frames it dropped (Skip) or a half message
    bool first_contact = false;   ///< (on_connected) the peer's first connection
    bool peer_restarted = false;  ///< (on_connected) a new incarnation: a new process
    bool any() const noexcept { return to_peer != 0 || from_peer != 0; }
};

/// One per peer; owned by the shard that owns the peer's connection and used only there.
class session {
  public:
    session(const session_config& config, const wire::codec_limits& limits);

    /// Queues a sequenced frame of `kind` on `stream`; `body` is copied once, into the
    /// retransmit buffer that the transport later sends from.
    outcome send(std::uint32_t stream, wire::FrameKind kind, std::span<const std::byte> body);
    /// Whether send() on `stream` would be accepted now (ignoring size).
    bool writable(std::uint32_t stream) const;

    /// Feeds one verified frame from the peer. Calls deliver(stream, const wire::frame&) for
    /// each frame that is now next in order — exactly once per sequence number. Returns false
    /// when the frame breaks the protocol (the caller closes the connection).
    template <typename Deliver>
    bool on_frame(time_ns now, const wire::frame& f, Deliver&& deliver);

    /// A connection to the peer is up (handshake done) and the peer said its incarnation.
    /// The same incarnation resumes: unacknowledged frames are sent again. A new one (the
    /// peer restarted) drops them and starts over; the returned loss says what was dropped.
    session_loss on_connected(time_ns now, std::uint64_t peer_incarnation);
    /// Gives up on what the peer has not acknowledged (it stayed away past the retention):
    /// drops it, keeps the sequence numbers, and queues a Skip per stream so that the peer,
    /// should it come back, jumps over the gap and counts it. Returns the messages dropped.
    std::uint64_t discard_unacked();
    /// Frames the peer told us to skip since the last call (see Skip): lost from the peer.
    std::uint64_t take_skipped() noexcept { return std::exchange(skipped_unreported_, 0); }
    /// The connection is gone; frames stay queued until the next on_connected().
    void on_disconnected() { connected_ = false; }
    bool connected() const noexcept { return connected_; }

    /// Largest run of consecutive frames handed to emit() at once (stream transports).
    static constexpr std::size_t max_run_bytes = std::size_t{256} << 10;

    /// Hands every frame due now (new data, retransmissions, acks) to emit(std::span<const
    /// std::byte> wire_bytes): each call carries one or more whole, consecutive frames (one
    /// at a time in datagram mode). emit returns false when the transport is full. Returns
    /// the number of frames emitted. An emit that also takes a `const shared_bytes_owner&`
    /// gets the owner of the frames' storage with each run of them: holding it keeps the
    /// bytes alive, so a transport may send them in place (an ack frame comes with an empty
    /// owner: copy it). The bytes of a run stay unchanged while it is unacknowledged, except
    /// when the session resends it on a new connection.
    template <typename Emit>
    std::size_t poll_transmit(time_ns now, Emit&& emit);

    /// The earliest time poll_transmit() has work (ack or retransmit due); INT64_MAX if none.
    time_ns next_deadline_ns() const noexcept;
    /// Whether new frames are waiting for transmission (cheap check for the endpoint's flush).
    bool has_pending_transmit() const noexcept {
        // Over datagrams, unacknowledged frames are pending too: they may need retransmitting.
        return pending_streams_ > 0 || ack_due_any_ || skips_pending_ > 0 ||
               (config_.datagram && unacked_total_ > 0);
    }

    std::uint64_t peer_incarnation() const noexcept { return peer_incarnation_; }
    const session_stats& stats() const noexcept { return stats_; }
    /// What acknowledgements say about the path to the peer (link health). A round trip is
    /// sampled per ack that covers new frames: from the last transmission of the newest frame
    /// it covers to the ack's arrival (so it includes the peer's ack delay, as TCP's does),
    /// and only when that frame was sent once (Karn: a resent frame's ack is ambiguous).
    struct link_health {
        const latency_histogram* rtt = nullptr;  ///< every sample, ns (null: none yet)
        time_ns smoothed_rtt_ns = 0;             ///< EWMA of the samples, 1/8 each (TCP's SRTT)
        /// EWMA (1/16 per ack) of the share of newly acknowledged frames sent more than once.
        double retransmitted_ratio = 0;
        /// 0..1: max(0, 1 - 10 * retransmitted_ratio) / (1 + smoothed_rtt / 1 ms). A clean
        /// loopback or LAN path scores above 0.8; 10 % of frames resent, or a 1 ms round trip,
        /// halve it or worse.
        double quality = 1;
    };
    link_health health() const noexcept;
    /// Frames queued or in flight and not yet acknowledged, over all streams.
    std::uint64_t unacked_frames() const noexcept;
    /// Their wire bytes, over all streams.
    std::size_t unacked_bytes() const noexcept;

  private:
    struct frame_ref {
        byte_fifo::record where;         // in tx_state::frames
        std::uint32_t size;              // wire bytes
        time_ns sent_ns;                 // last transmission, -1: not yet sent on this connection
        std::uint8_t transmissions = 0;  // saturating: more than one makes it a resend
        std::span<std::byte> bytes() const noexcept { return {where.data, size}; }
    };
    struct tx_state {
        std::uint64_t next_seq = 1;
        std::uint64_t acked = 0;         // peer has every seq <= acked
        std::uint64_t next_to_send = 1;  // first seq not yet sent on this connection
        std::uint32_t peer_credit;       // peer accepts seq <= acked + peer_credit
        std::size_t unacked_bytes = 0;
        time_ns rto_ns;
        byte_fifo frames;  // wire bytes of acked+1 .. next_seq-1
        std::deque<frame_ref> refs;
        bool acked_inside_message = false;  // the last acked frame was a non-final fragment
        std::uint64_t skip_to = 0;  // a Skip to this sequence awaits the peer's ack (0: none)
        time_ns skip_sent_ns = -1;  // -1: not yet sent on this connection
    };
    struct rx_state {
        std::uint64_t delivered = 0;      // every seq <= delivered went to the application
        std::uint64_t acked_to_peer = 0;  // the highest cumulative ack we sent
        std::size_t bytes_since_ack = 0;  // body bytes received since that ack
        time_ns ack_due_ns = INT64_MAX;
        std::map<std::uint64_t, std::vector<std::byte>> early;  // datagram reordering
        std::vector<std::byte> partial;  // fragments of the message being reassembled
        std::uint8_t partial_kind = 0;
        bool partial_refused = false;  // drop the rest of this message's fragments
    };
    struct stream_state {
        std::uint32_t id;
        tx_state tx;
        rx_state rx;
    };

    stream_state& stream(std::uint32_t id);
    const stream_state* find_stream(std::uint32_t id) const;
    void on_ack(time_ns now, stream_state& s, std::uint64_t ack, std::uint32_t credit);
    void schedule_ack(time_ns now, rx_state& rx);
    void stamp_ack(stream_state& s, std::span<std::byte> wire_bytes);
    std::uint64_t restart_for_new_peer();
    void drop_unacked(tx_state& tx, std::uint64_t& messages);
    template <typename Emit>
    bool emit_skip(time_ns now, stream_state& s, Emit& emit);
    static bool is_open_fragment(std::span<const std::byte> wire_bytes);
    std::uint64_t send_limit(const tx_state& tx) const;
    /// Calls emit with the bytes' owner when it takes one (see poll_transmit), else without.
    template <typename Emit>
    static bool emit_to(Emit& emit, std::span<const std::byte> bytes,
                        const shared_bytes_owner& owner) {
        if constexpr (std::is_invocable_r_v<bool, Emit&, std::span<const std::byte>,
                                            const shared_bytes_owner&>) {
            return emit(bytes, owner);
        } else {
            return emit(bytes);
        }
    }
    template <typename Deliver>
    void deliver_in_order(stream_state& s, const wire::frame& f, Deliver& deliver);
    template <typename Deliver>
    void deliver_or_reassemble(stream_state& s, const wire::frame& f, Deliver& deliver);
    void append_frame(stream_state& s, const wire::FrameHeader& header,
                      std::span<const std::byte> body);

    session_config config_;
    wire::codec_limits limits_;
    // Few per peer, so a linear scan beats hashing; a deque keeps references stable when a
    // delivery callback opens a new stream.
    std::deque<stream_state> streams_;
    std::uint64_t peer_incarnation_ = 0;
    bool connected_ = false;
    std::size_t pending_streams_ = 0;  // streams with next_to_send < next_seq (approximate)
    bool ack_due_any_ = false;
    std::uint64_t unacked_total_ = 0;  // queued or in flight, over all streams
    std::size_t skips_pending_ = 0;    // streams with a Skip not yet acknowledged
    std::uint64_t skipped_unreported_ = 0;
    session_stats stats_;
    // Link health (health()): allocated at the first round-trip sample.
    std::unique_ptr<latency_histogram> rtt_;
    time_ns smoothed_rtt_ns_ = 0;
    double retransmitted_ratio_ = 0;
};

// ---- template members ----

template <typename Deliver>
bool session::on_frame(time_ns now, const wire::frame& f, Deliver&& deliver) {
    stream_state& s = stream(f.header.stream_id());
    on_ack(now, s, f.header.ack(), f.header.credit());
    rx_state& rx = s.rx;
    if (f.kind() == wire::FrameKind::Skip) {
        // The peer dropped its frames up to here: nothing below it will come. Count the gap,
        // drop a half-reassembled message, and ack so that the peer stops repeating it.
        const std::uint64_t to = f.header.sequence();
        if (to > rx.delivered) {
            const std::uint64_t gap = to - rx.delivered;
            stats_.frames_skipped += gap;
            skipped_unreported_ += gap;
            rx.delivered = to;
            rx.early.erase(rx.early.begin(), rx.early.upper_bound(to));
            rx.partial.clear();
            rx.partial_refused = false;
        }
        rx.ack_due_ns = now;
        ack_due_any_ = true;
        return true;
    }
    if (!f.sequenced()) return true;  // Ack (or control) frame: its header was the message
    const std::uint64_t seq = f.header.sequence();
    if (seq <= rx.delivered) {
        ++stats_.duplicates_dropped;  // a resend we already have: re-ack so the peer stops
        rx.ack_due_ns = now;
        ack_due_any_ = true;
        return true;
    }
    rx.bytes_since_ack += f.body.size();
    if (seq == rx.delivered + 1) {
        deliver_in_order(s, f, deliver);
    } else if (seq <= rx.delivered + config_.receive_window_frames && config_.datagram) {
        if (rx.early.size() < config_.receive_window_frames) {
            auto [it, inserted] = rx.early.try_emplace(seq);
            if (inserted) {
                // Keep the whole wire frame: it is re-parsed when its turn comes.
                it->second.resize(wire::wire_size(f.body.size()));
                wire::write_frame(it->second, f.header, f.body);
            } else {
                ++stats_.duplicates_dropped;
            }
        }
    } else if (!config_.datagram) {
        return false;  // a gap on an ordered stream transport: the peer broke the protocol
    } else {
        ++stats_.out_of_window_dropped;
    }
    schedule_ack(now, rx);
    return true;
}

template <typename Deliver>
void session::deliver_in_order(stream_state& s, const wire::frame& f, Deliver& deliver) {
    rx_state& rx = s.rx;
    ++rx.delivered;
    ++stats_.frames_delivered;
    stats_.bytes_delivered += wire::header_size + f.body.size();
    deliver_or_reassemble(s, f, deliver);
    while (!rx.early.empty() && rx.early.begin()->first == rx.delivered + 1) {
        std::vector<std::byte> bytes = std::move(rx.early.begin()->second);
        rx.early.erase(rx.early.begin());
        const auto parsed = wire::parse_frame(bytes, limits_);
        ++rx.delivered;
        ++stats_.frames_delivered;
        stats_.bytes_delivered += wire::header_size + parsed.value.body.size();
        deliver_or_reassemble(s, parsed.value, deliver);
    }
}

template <typename Deliver>
void session::deliver_or_reassemble(stream_state& s, const wire::frame& f, Deliver& deliver) {
    if (!f.fragment()) {
        deliver(s.id, f);
        return;
    }
    // Fragments arrive here in sequence order: concatenate until the end piece.
    rx_state& rx = s.rx;
    if (rx.partial.empty() && !rx.partial_refused) rx.partial_kind = f.header.kind();
    const std::size_t limit =
        std::max<std::size_t>(config_.max_message_bytes, limits_.max_body_bytes);
    if (!rx.partial_refused &&
        (f.header.kind() != rx.partial_kind || rx.partial.size() + f.body.size() > limit)) {
        ++stats_.fragments_refused;
        rx.partial_refused = true;
        rx.partial.clear();
    }
    if (!rx.partial_refused) rx.partial.insert(rx.partial.end(), f.body.begin(), f.body.end());
    if (!f.fragment_end()) return;
    if (!rx.partial_refused) {
        wire::frame whole{f.header, rx.partial};
        whole.header.mutate_length(static_cast<std::uint32_t>(rx.partial.size()));
        ++stats_.messages_reassembled;
        deliver(s.id, whole);
    }
    rx.partial.clear();
    rx.partial_refused = false;
}

template <typename Emit>
std::size_t session::poll_transmit(time_ns now, Emit&& emit) {
    if (!connected_) return 0;
    std::size_t emitted = 0;
    bool stopped = false;
    ack_due_any_ = false;
    pending_streams_ = 0;
    for (stream_state& s : streams_) {
        tx_state& tx = s.tx;
        // Datagrams: go back to the oldest unacked frame when it has waited a full RTO.
        if (config_.datagram && !tx.refs.empty() && tx.refs.front().sent_ns >= 0 &&
            now - tx.refs.front().sent_ns >= tx.rto_ns) {
            stats_.frames_retransmitted += tx.next_to_send - (tx.acked + 1);
            tx.next_to_send = tx.acked + 1;
            tx.rto_ns = std::min(tx.rto_ns * 2, config_.max_retransmit_timeout_ns);
        }
        // A Skip goes before any frame after it: on a stream transport the peer must see it
        // first, or the next sequence would look like a gap.
        if (tx.skip_to != 0 && !stopped && !emit_skip(now, s, emit)) stopped = true;
        const std::uint64_t limit = send_limit(tx);
        while (!stopped && tx.next_to_send < tx.next_seq && tx.next_to_send <= limit) {
            // Consecutive frames lie back to back in the FIFO, so they leave as one run: one
            // emit, one copy. Over a stream transport up to max_run_bytes; over datagrams up
            // to one datagram's worth (datagram_run_bytes), or one frame at a time.
            const std::uint64_t first = tx.next_to_send;
            const std::uint64_t last_allowed = std::min(tx.next_seq - 1, limit);
            const std::size_t first_index = first - tx.acked - 1;
            const frame_ref& head = tx.refs[first_index];
            std::size_t run_bytes = head.size;
            std::uint64_t last = first;
            const std::size_t run_limit =
                config_.datagram ? config_.datagram_run_bytes : max_run_bytes;
            while (last < last_allowed) {
                const frame_ref& next = tx.refs[first_index + (last - first) + 1];
                if (run_bytes + next.size > run_limit ||
                    next.where.data != head.where.data + run_bytes) {
                    break;  // too long, or the next frame starts a new block
                }
                ++last;
                run_bytes += next.size;
            }
            // The freshest ack rides on the run's last frame; earlier ones carry older,
            // still-true cumulative acks.
            stamp_ack(s, tx.refs[first_index + (last - first)].bytes());
            if (!emit_to(emit, std::span<const std::byte>(head.where.data, run_bytes),
                         tx.frames.owner_of(head.where))) {  // may send in place
                stopped = true;
                break;
            }
            for (std::size_t i = first_index; i <= first_index + (last - first); ++i) {
                frame_ref& sent = tx.refs[i];
                sent.sent_ns = now;
                if (sent.transmissions < 255) ++sent.transmissions;
            }
            const std::uint64_t count = last - first + 1;
            tx.next_to_send = last + 1;
            stats_.frames_transmitted += count;
            stats_.bytes_transmitted += run_bytes;
            emitted += count;
        }
        if (tx.next_to_send < tx.next_seq && tx.next_to_send <= limit) ++pending_streams_;
        rx_state& rx = s.rx;
        if (rx.delivered > rx.acked_to_peer || rx.ack_due_ns != INT64_MAX) {
            if (rx.ack_due_ns <= now && !stopped) {
                std::array<std::byte, wire::header_size> ack_frame;
                wire::write_frame(ack_frame,
                                  wire::make_header(wire::FrameKind::Ack, 0, s.id, 0, rx.delivered,
                                                    config_.receive_window_frames),
                                  {});
                if (emit_to(emit, std::span<const std::byte>(ack_frame), shared_bytes_owner{})) {
                    rx.acked_to_peer = rx.delivered;
                    rx.bytes_since_ack = 0;
                    rx.ack_due_ns = INT64_MAX;
                    ++stats_.acks_sent;
                    ++emitted;
                } else {
                    stopped = true;
                }
            }
            if (rx.ack_due_ns != INT64_MAX) ack_due_any_ = true;
        }
    }
    return emitted;
}

template <typename Emit>
bool session::emit_skip(time_ns now, stream_state& s, Emit& emit) {
    tx_state& tx = s.tx;
    const bool due =
        tx.skip_sent_ns < 0 || (config_.datagram && now - tx.skip_sent_ns >= tx.rto_ns);  // lost?
    if (!due) return true;
    std::array<std::byte, wire::header_size> skip_frame;
    wire::write_frame(skip_frame,
                      wire::make_header(wire::FrameKind::Skip, 0, s.id, tx.skip_to, s.rx.delivered,
                                        config_.receive_window_frames),
                      {});
    if (!emit_to(emit, std::span<const std::byte>(skip_frame), shared_bytes_owner{})) return false;
    tx.skip_sent_ns = now;
    return true;
}

}  // namespace ringmesh::messaging
