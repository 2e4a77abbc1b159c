// The endpoint as a router: it owns the peers, their sessions and the loop steps, and hands
// each verified frame to the concern that handles it. The concerns live in their own files:
//   frame_intake.h        parsing, verification and counting of every inbound frame
//   endpoint_streams.cc   stream connections: dialing, the Hello exchange, refusals
//   endpoint_datagrams.cc datagram links: the address table, Hellos, packing frames
//   endpoint_peers.cc     peer lifecycle: introductions, membership, retention, loss reports
//   endpoint_pubsub.cc    publish, subscriptions (local and remote), topic delivery
//   endpoint_rpc.cc       serve, call, replies and deadlines
//   endpoint_priority.cc  the priority lane: replication batches ahead of session frames
#include "engine/messaging/endpoint.h"

#include "engine/messaging/endpoint_state.h"

#include <algorithm>

#include "engine/core/errc.h"

namespace ringmesh::messaging {

endpoint::endpoint(shard& owner, std::unique_ptr<transport::transport> t, endpoint_config config)
    : shard_(owner),
      transport_(std::move(t)),
      config_(std::move(config)),
      random_(random_source::seed_or_os(config_.random_seed)),
      incarnation_(config_.incarnation != 0 ? config_.incarnation : random_.next_nonzero()) {}

endpoint::~endpoint() {
    for (shard::poller_id id : pollers_)
        shard_.remove_poller(id);
    shard_.remove_wait_source(wait_source_);
    for (auto& [id, call] : calls_)
        shard_.timers().cancel(call.deadline);
    for (auto& target : dial_targets_)
        shard_.timers().cancel(target.redial);
    for (auto& d : datagram_peers_)
        shard_.timers().cancel(d->hello_retry);
    for (auto& [index, c] : conns_)
        shard_.timers().cancel(c->handshake_timer);
    for (auto& [id, p] : peers_)
        shard_.timers().cancel(p->retention);
    session_deadline_.cancel(shard_.timers());
}

result<std::unique_ptr<endpoint>> endpoint::create(shard& owner,
                                                   std::unique_ptr<transport::transport> t,
                                                   endpoint_config config) {
    if (config.node_id.empty() || config.node_id.size() > config.limits.max_name_bytes) {
        return make_error(
            core_errc::bad_config,
            "node_id must be 1.." + std::to_string(config.limits.max_name_bytes) + " bytes");
    }
    if (config.cluster_id.empty() || config.cluster_id.size() > config.limits.max_name_bytes) {
        return make_error(core_errc::bad_config, "cluster_id must be non-empty");
    }
    std::unique_ptr<endpoint> e(new endpoint(owner, std::move(t), std::move(config)));
    if (auto started = e->start(); !started) return started.err();
    return e;
}

result<void> endpoint::start() {
    if (config_.listen) {
        if (auto r = transport_->listen(*config_.listen); !r) return r;
    }
    endpoint* self = this;
    pollers_[0] = shard_.add_poller(poll_step::transport,
                                    [self](time_ns now) { return self->poll_transport(now); });
    pollers_[1] =
        shard_.add_poller(poll_step::flush, [self](time_ns now) { return self->transmit(now); });
    transport::transport* t = transport_.get();
    wait_source_ = shard_.add_wait_source(
        {[t](time_ns timeout, std::span<const int> fds) { t->wait(timeout, fds); },
         [t] { return t->ready_fd(); }, [t](int fd) { t->forget_wake_fd(fd); }});
    dial_targets_.resize(config_.peers.size());
    for (std::size_t i = 0; i < config_.peers.size(); ++i) {
        dial_targets_[i].address = config_.peers[i];
        dial_targets_[i].backoff_ns = config_.reconnect_min_ns;
        dial(i);
    }
    for (const auto& address : config_.datagram_peers)
        dial_datagram(address);
    return ok();
}

// ---- the two loop steps ----

std::size_t endpoint::poll_transport(time_ns now) {
    return transport_->poll(now, *this);
}

std::size_t endpoint::transmit(time_ns now) {
    std::size_t frames = 0;
    bool deadlines = false;
    for (auto& [id, p] : peers_) {
        if (!p->priority_out.empty()) {
            const std::size_t queued = p->priority_ends.size();
            const bool all_sent = transmit_priority(*p);
            frames += queued - p->priority_ends.size();
            if (!all_sent) continue;  // the session's frames may not overtake them
        }
        if (!p->s.has_pending_transmit()) continue;
        deadlines = true;
        if (p->datagram >= 0 && !p->conn.valid()) {
            frames += transmit_datagrams(*p, now);
            continue;
        }
        if (!p->conn.valid()) continue;
        const transport::connection_id conn = p->conn;
        // Runs leave from the session's blocks in place where the transport can: the block
        // stays alive (and unchanged: it is unacknowledged) until the kernel is done with it.
        frames += p->s.poll_transmit(
            now, [this, conn](std::span<const std::byte> bytes, const shared_bytes_owner& owner) {
                if (transport_->send(conn, bytes, owner) == bytes.size()) return true;
                ++stats_.transport_full;  // resent from the session on a later iteration
                return false;
            });
    }
    // A delayed ack or a retransmission may be due later with nothing else to wake the shard
    // (it may sleep in the kernel): keep the timer at the earliest session deadline.
    if (deadlines) arm_session_timer();
    transport_->flush();
    return frames;
}

void endpoint::arm_session_timer() {
    // Delayed acks and retransmissions must happen even when the shard sleeps: keep one
    // timer at the earliest session deadline.
    time_ns earliest = INT64_MAX;
    for (auto& [id, p] : peers_)
        earliest = std::min(earliest, p->s.next_deadline_ns());
    session_deadline_.arm(shard_.timers(), earliest);
}

// ---- peers and frames ----

endpoint::peer_state& endpoint::peer_named(const std::string& id, bool datagram) {
    auto [it, created] = peers_.try_emplace(id);
    if (created) {
        session_config sc = config_.session;
        wire::codec_limits limits = config_.limits;
        if (datagram) {
            sc.datagram = true;
            sc.max_in_flight_frames =
                std::min(sc.max_in_flight_frames, config_.datagram_window_frames);
            sc.receive_window_frames =
                std::min(sc.receive_window_frames, config_.datagram_window_frames);
            // A frame must fit one datagram; the session splits larger messages into
            // consecutive fragments (up to the configured body limit) and reassembles them.
            const std::size_t mtu = transport_->caps().max_datagram_bytes;
            sc.max_message_bytes = limits.max_body_bytes;
            sc.datagram_run_bytes = mtu;  // a run of frames is one datagram
            limits.max_body_bytes = static_cast<std::uint32_t>(std::min<std::size_t>(
                limits.max_body_bytes, (mtu - wire::header_size) & ~std::size_t{7}));
        }
        it->second = std::make_unique<peer_state>(id, sc, limits);
    }
    return *it->second;
}

bool endpoint::reachable(const peer_state& p) {
    return p.conn.valid() || p.datagram >= 0;
}

bool endpoint::handle_peer_frame(peer_state& peer, const wire::frame& f,
                                 const buffer_handle* owner) {
    peer_state* p = &peer;
    if (f.kind() == wire::FrameKind::Error || f.kind() == wire::FrameKind::Hello) return true;
    ++p->frames_in;
    if (f.kind() == wire::FrameKind::Replication) {  // the priority lane: no session
        ++stats_.replication_received;
        if (replication_handler_) {
            replication_handler_(p->id, f.body);
        } else {
            ++stats_.replication_unclaimed;
        }
        return true;
    }
    if (f.kind() == wire::FrameKind::Skip) {
        const bool ok = p->s.on_frame(shard_.now_ns(), f, [](std::uint32_t, const wire::frame&) {});
        if (const std::uint64_t skipped = p->s.take_skipped(); skipped > 0) {
            report_loss(*p, loss_reason::peer_gave_up, {0, skipped});
        }
        return ok;
    }
    return p->s.on_frame(
        shard_.now_ns(), f, [this, p, owner](std::uint32_t stream, const wire::frame& fr) {
            if (fr.fragment()) {
                // Reassembled from pieces: verified now that it is whole; it lives in the
                // session's reassembly buffer, so there is no receive buffer to retain.
                if (intake_.verify_reassembled(fr) != wire::frame_error::none) {
                    ++stats_.protocol_violations;
                    return;
                }
                dispatch(*p, stream, fr, nullptr);
                return;
            }
            // Frames replayed from the reorder buffer do not live in the receive buffer.
            const bool inside = owner && !fr.body.empty() &&
                                fr.body.data() >= owner->storage().data() &&
                                fr.body.data() < owner->storage().data() + owner->capacity();
            dispatch(*p, stream, fr, inside ? owner : nullptr);
        });
}

void endpoint::dispatch(peer_state& p, std::uint32_t stream, const wire::frame& f,
                        const buffer_handle* owner) {
    switch (f.kind()) {
        case wire::FrameKind::Data: {
            auto handler = stream_handlers_.find(stream);
            if (handler == stream_handlers_.end()) {
                ++stats_.unknown_stream;
                return;
            }
            ++stats_.delivered_remote;
            handler->second(message{p.id, stream, {}, f.body, owner});
            return;
        }
        case wire::FrameKind::Publish:
            deliver_publish(p, f, owner);
            return;
        case wire::FrameKind::Subscribe:
        case wire::FrameKind::Unsubscribe:
            apply_subscription(p, f);
            return;
        case wire::FrameKind::RpcRequest:
            serve_request(p, f, owner);
            return;
        case wire::FrameKind::RpcResponse:
            take_response(f);
            return;
        default:
            return;
    }
}

// ---- point to point ----

outcome endpoint::send(std::string_view peer, std::uint32_t stream,
                       std::span<const std::byte> bytes) {
    RM_ASSERT(stream >= first_user_stream, "streams below 16 are the engine's own");
    peer_state* p = find_peer(peer);
    if (p == nullptr) return outcome::unknown_peer;
    const outcome outcome = p->s.send(stream, wire::FrameKind::Data, bytes);
    if (!reachable(*p) && outcome == outcome::accepted &&
        p->s.unacked_bytes() > config_.peer_retention_bytes) {
        give_up(*p, loss_reason::retention_expired);  // away, and holding too much
    }
    return outcome;
}

void endpoint::on_stream(std::uint32_t stream, stream_handler handler) {
    RM_ASSERT(stream >= first_user_stream, "streams below 16 are the engine's own");
    stream_handlers_[stream] = std::move(handler);
}

bool endpoint::connected(std::string_view peer) const {
    const peer_state* p = find_peer(peer);
    return p != nullptr && reachable(*p);
}

std::vector<std::string> endpoint::connected_peers() const {
    std::vector<std::string> out;
    for (const auto& [id, p] : peers_) {
        if (reachable(*p)) out.push_back(id);
    }
    return out;
}

std::uint64_t endpoint::unacked(std::string_view peer) const {
    const peer_state* p = find_peer(peer);
    return p ? p->s.unacked_frames() : 0;
}

const session_stats* endpoint::peer_session_stats(std::string_view peer) const {
    const peer_state* p = find_peer(peer);
    return p ? &p->s.stats() : nullptr;
}

std::optional<session::link_health> endpoint::peer_link_health(std::string_view peer) const {
    const peer_state* p = find_peer(peer);
    if (p == nullptr) return std::nullopt;
    return p->s.health();
}

void endpoint::shutdown() {
    shutting_down_ = true;
    for (auto& target : dial_targets_)
        shard_.timers().cancel(target.redial);
    for (auto& d : datagram_peers_)
        shard_.timers().cancel(d->hello_retry);
    for (auto& [index, c] : conns_)
        close_connection(c.get());
    transport_->flush();
}

endpoint::peer_state* endpoint::find_peer(std::string_view id) {
    auto it = peers_.find(id);
    return it == peers_.end() ? nullptr : it->second.get();
}

const endpoint::peer_state* endpoint::find_peer(std::string_view id) const {
    auto it = peers_.find(id);
    return it == peers_.end() ? nullptr : it->second.get();
}

endpoint::conn_state* endpoint::find_conn(transport::connection_id id) {
    auto it = conns_.find(id.index);
    return it != conns_.end() && it->second->id == id ? it->second.get() : nullptr;
}

}  // namespace ringmesh::messaging
