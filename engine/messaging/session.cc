#include "engine/messaging/session.h"

#include <algorithm>
#include <cstring>

namespace ringmesh::messaging {

const char* to_string(outcome o) noexcept {
    switch (o) {
        case outcome::accepted:
            return "accepted";
        case outcome::back_pressure:
            return "back-pressure";
        case outcome::too_large:
            return "too large";
        case outcome::unknown_peer:
            return "unknown peer";
        case outcome::invalid_topic:
            return "invalid topic";
    }
    return "?";
}

session::session(const session_config& config, const wire::codec_limits& limits)
    : config_(config), limits_(limits) {}

session::stream_state& session::stream(std::uint32_t id) {
    for (stream_state& s : streams_) {
        if (s.id == id) return s;
    }
    stream_state& s = streams_.emplace_back();
    s.id = id;
    s.tx.peer_credit = config_.receive_window_frames;  // until the peer says otherwise
    s.tx.rto_ns = config_.retransmit_timeout_ns;
    return s;
}

const session::stream_state* session::find_stream(std::uint32_t id) const {
    for (const stream_state& s : streams_) {
        if (s.id == id) return &s;
    }
    return nullptr;
}

std::uint64_t session::send_limit(const tx_state& tx) const {
    return tx.acked + std::min<std::uint64_t>(tx.peer_credit, config_.max_in_flight_frames);
}

bool session::writable(std::uint32_t id) const {
    const stream_state* s = find_stream(id);
    if (!s) return true;
    return s->tx.next_seq <= send_limit(s->tx) && s->tx.unacked_bytes < config_.max_in_flight_bytes;
}

outcome session::send(std::uint32_t id, wire::FrameKind kind, std::span<const std::byte> body) {
    // One frame when it fits; otherwise consecutive fragments of at most one frame's body,
    // all queued at once or none (a message never half-sent for back-pressure).
    const std::size_t piece = limits_.max_body_bytes & ~std::size_t{7};
    const bool split = body.size() > limits_.max_body_bytes;
    if (split &&
        (body.size() > config_.max_message_bytes || piece == 0 || !wire::is_sequenced_kind(kind))) {
        return outcome::too_large;
    }
    const std::size_t pieces = split ? (body.size() + piece - 1) / piece : 1;
    if (pieces >
        std::min<std::size_t>(config_.max_in_flight_frames, config_.receive_window_frames)) {
        return outcome::too_large;  // could never be in flight at once
    }
    stream_state& s = stream(id);
    tx_state& tx = s.tx;
    if (tx.next_seq + pieces - 1 > send_limit(tx) ||
        tx.unacked_bytes >= config_.max_in_flight_bytes) {
        ++stats_.back_pressure;
        return outcome::back_pressure;
    }
    if (!split) {
        append_frame(s,
                     wire::make_header(kind, static_cast<std::uint32_t>(body.size()), id,
                                       tx.next_seq, s.rx.delivered, config_.receive_window_frames),
                     body);
        return outcome::accepted;
    }
    ++stats_.messages_split;
    for (std::size_t i = 0; i < pieces; ++i) {
        const auto chunk = body.subspan(i * piece, std::min(piece, body.size() - i * piece));
        wire::FrameHeader header =
            wire::make_header(kind, static_cast<std::uint32_t>(chunk.size()), id, tx.next_seq,
                              s.rx.delivered, config_.receive_window_frames);
        std::uint8_t flags = header.flags() | static_cast<std::uint8_t>(wire::FrameFlags::Fragment);
        if (i + 1 == pieces) flags |= static_cast<std::uint8_t>(wire::FrameFlags::FragmentEnd);
        header.mutate_flags(flags);
        append_frame(s, header, chunk);
    }
    return outcome::accepted;
}

void session::append_frame(stream_state& s, const wire::FrameHeader& header,
                           std::span<const std::byte> body) {
    tx_state& tx = s.tx;
    const std::size_t size = wire::wire_size(body.size());
    std::span<std::byte> out = tx.frames.reserve(size);
    wire::write_frame(out, header, body);
    tx.refs.push_back({tx.frames.commit(size), static_cast<std::uint32_t>(size), -1, 0});
    tx.unacked_bytes += size;
    ++tx.next_seq;
    ++unacked_total_;
    ++stats_.frames_queued;
    ++pending_streams_;
}

session::link_health session::health() const noexcept {
    link_health h;
    h.rtt = rtt_.get();
    h.smoothed_rtt_ns = smoothed_rtt_ns_;
    h.retransmitted_ratio = retransmitted_ratio_;
    const double delivery = std::max(0.0, 1.0 - 10.0 * retransmitted_ratio_);
    h.quality = delivery / (1.0 + static_cast<double>(smoothed_rtt_ns_) / 1e6);
    return h;
}

void session::on_ack(time_ns now, stream_state& s, std::uint64_t ack, std::uint32_t credit) {
    tx_state& tx = s.tx;
    tx.peer_credit = credit;
    if (tx.skip_to != 0 && ack >= tx.skip_to) {  // the peer is past the gap: Skip done
        tx.skip_to = 0;
        --skips_pending_;
    }
    if (ack <= tx.acked) return;
    // An ack beyond what we sent is a broken or forged peer: clamp, never trust it.
    ack = std::min(ack, tx.next_seq - 1);
    if (ack <= tx.acked) return;  // nothing in flight to acknowledge
    // Link health: the newest frame this ack covers gives the round trip (if it was sent
    // once); the share of covered frames that were sent more than once, the resend ratio.
    const frame_ref& newest = tx.refs[ack - tx.acked - 1];
    if (newest.transmissions == 1 && newest.sent_ns >= 0 && now >= newest.sent_ns) {
        const time_ns sample = now - newest.sent_ns;
        if (!rtt_) rtt_ = std::make_unique<latency_histogram>();
        rtt_->record(sample);
        smoothed_rtt_ns_ =
            smoothed_rtt_ns_ == 0 ? sample : smoothed_rtt_ns_ + (sample - smoothed_rtt_ns_) / 8;
    }
    std::uint64_t covered = 0, resent = 0;
    while (tx.acked < ack) {
        const frame_ref& ref = tx.refs.front();
        ++covered;
        resent += ref.transmissions > 1 ? 1 : 0;
        tx.acked_inside_message = is_open_fragment(ref.bytes());
        tx.frames.pop_front(ref.size);
        tx.unacked_bytes -= ref.size;
        tx.refs.pop_front();
        ++tx.acked;
        --unacked_total_;
        ++stats_.frames_acked;
    }
    retransmitted_ratio_ +=
        (static_cast<double>(resent) / static_cast<double>(covered) - retransmitted_ratio_) / 16;
    tx.next_to_send = std::max(tx.next_to_send, tx.acked + 1);
    tx.rto_ns = config_.retransmit_timeout_ns;  // progress: reset the backoff
}

void session::schedule_ack(time_ns now, rx_state& rx) {
    // Ack at once when a quarter of the window is waiting, so the sender never stalls on
    // credit, or a few hundred KiB, so its blocks recycle while cached; otherwise give
    // reverse traffic a short chance to carry it.
    const std::uint64_t waiting = rx.delivered - rx.acked_to_peer;
    const bool now_due = waiting >= config_.receive_window_frames / 4 ||
                         rx.bytes_since_ack >= config_.ack_after_bytes;
    const time_ns due = now_due ? now : now + config_.ack_delay_ns;
    rx.ack_due_ns = std::min(rx.ack_due_ns, due);
    ack_due_any_ = true;
}

void session::stamp_ack(stream_state& s, std::span<std::byte> wire_bytes) {
    wire::FrameHeader header;
    std::memcpy(&header, wire_bytes.data(), sizeof header);
    header.mutate_ack(s.rx.delivered);
    header.mutate_credit(config_.receive_window_frames);
    std::memcpy(wire_bytes.data(), &header, sizeof header);
    s.rx.acked_to_peer = s.rx.delivered;
    s.rx.bytes_since_ack = 0;
    s.rx.ack_due_ns = INT64_MAX;
}

session_loss session::on_connected(time_ns now, std::uint64_t peer_incarnation) {
    ++stats_.connections;
    session_loss loss;
    loss.first_contact = peer_incarnation_ == 0;
    loss.peer_restarted = peer_incarnation_ != 0 && peer_incarnation != peer_incarnation_;
    if (loss.peer_restarted) {
        for (const stream_state& s : streams_) {
            if (!s.rx.partial.empty() || s.rx.partial_refused) ++loss.from_peer;
        }
        loss.to_peer = restart_for_new_peer();
    }
    peer_incarnation_ = peer_incarnation;
    connected_ = true;
    for (stream_state& s : streams_) {
        s.tx.skip_sent_ns = -1;  // a pending Skip is said again on the new connection
        // Whatever was in flight on the old connection may be lost: send it all again; the
        // peer drops what it already has by sequence number.
        stats_.frames_retransmitted += s.tx.next_to_send - (s.tx.acked + 1);
        s.tx.next_to_send = s.tx.acked + 1;
        for (frame_ref& ref : s.tx.refs)
            ref.sent_ns = -1;
        if (s.rx.delivered > 0) {
            s.rx.ack_due_ns = now;  // tell the peer where we are, so it can prune
            ack_due_any_ = true;
        }
    }
    pending_streams_ = streams_.size();
    return loss;
}

void session::drop_unacked(tx_state& tx, std::uint64_t& messages) {
    // A message is counted once, by its last piece. A split message whose first pieces were
    // acknowledged counts too (it was never delivered whole): its pieces are queued all at
    // once, so its last piece is still here.
    while (!tx.refs.empty()) {
        const frame_ref& ref = tx.refs.front();
        if (!is_open_fragment(ref.bytes())) ++messages;
        tx.frames.pop_front(ref.size);
        tx.refs.pop_front();
        --unacked_total_;
    }
    tx.unacked_bytes = 0;
    tx.acked_inside_message = false;
}

std::uint64_t session::discard_unacked() {
    std::uint64_t messages = 0;
    for (stream_state& s : streams_) {
        tx_state& tx = s.tx;
        if (tx.refs.empty()) continue;
        drop_unacked(tx, messages);
        // The sequence numbers stay: a peer that comes back with the same incarnation still
        // expects them, and learns of the gap from the Skip.
        tx.acked = tx.next_seq - 1;
        tx.next_to_send = tx.next_seq;
        if (tx.skip_to == 0) ++skips_pending_;
        tx.skip_to = tx.acked;
        tx.skip_sent_ns = -1;
        tx.rto_ns = config_.retransmit_timeout_ns;
    }
    stats_.messages_discarded += messages;
    return messages;
}

bool session::is_open_fragment(std::span<const std::byte> wire_bytes) {
    wire::FrameHeader header;
    std::memcpy(&header, wire_bytes.data(), sizeof header);
    const auto flags = header.flags();
    return (flags & static_cast<std::uint8_t>(wire::FrameFlags::Fragment)) != 0 &&
           (flags & static_cast<std::uint8_t>(wire::FrameFlags::FragmentEnd)) == 0;
}

std::uint64_t session::restart_for_new_peer() {
    // The old process took its receive state with it: whatever it had not acknowledged may
    // or may not have reached its handlers, and the new process never asked for it. Drop it,
    // count it, and start both directions from sequence 1.
    ++stats_.peer_restarts;
    std::uint64_t messages = 0;
    for (stream_state& s : streams_) {
        s.rx = rx_state{};
        tx_state& tx = s.tx;
        if (tx.acked_inside_message && !tx.refs.empty()) ++stats_.fragments_dropped_on_restart;
        drop_unacked(tx, messages);
        if (tx.skip_to != 0) --skips_pending_;  // the new process has no gap to skip
        tx.skip_to = 0;
        tx.acked = 0;
        tx.next_seq = 1;
        tx.next_to_send = 1;
        tx.peer_credit = config_.receive_window_frames;
        tx.rto_ns = config_.retransmit_timeout_ns;
    }
    stats_.messages_discarded += messages;
    return messages;
}

time_ns session::next_deadline_ns() const noexcept {
    time_ns earliest = INT64_MAX;
    for (const stream_state& s : streams_) {
        earliest = std::min(earliest, s.rx.ack_due_ns);
        if (config_.datagram && !s.tx.refs.empty() && s.tx.refs.front().sent_ns >= 0) {
            earliest = std::min(earliest, s.tx.refs.front().sent_ns + s.tx.rto_ns);
        }
        if (config_.datagram && s.tx.skip_to != 0 && s.tx.skip_sent_ns >= 0) {
            earliest = std::min(earliest, s.tx.skip_sent_ns + s.tx.rto_ns);  // repeat a Skip
        }
    }
    return earliest;
}

std::uint64_t session::unacked_frames() const noexcept {
    return unacked_total_;
}

std::size_t session::unacked_bytes() const noexcept {
    std::size_t bytes = 0;
    for (const stream_state& s : streams_)
        bytes += s.tx.unacked_bytes;
    return bytes;
}

}  // namespace ringmesh::messaging
