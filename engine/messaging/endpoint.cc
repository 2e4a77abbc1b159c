#include "engine/messaging/endpoint.h"

#include "engine/messaging/endpoint_state.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "engine/core/errc.h"
#include "engine/messaging/topic.h"

namespace ringmesh::messaging {

namespace {
constexpr std::uint32_t pubsub_stream = 1;  // Publish, Subscribe, Unsubscribe
constexpr std::uint32_t rpc_stream = 2;     // RpcRequest, RpcResponse

wire::ErrorCode error_code_for(wire::frame_error e) {
    switch (e) {
        case wire::frame_error::oversized:
            return wire::ErrorCode::Oversized;
        case wire::frame_error::bad_version:
            return wire::ErrorCode::UnsupportedVersion;
        case wire::frame_error::unknown_kind:
            return wire::ErrorCode::UnknownKind;
        default:
            return wire::ErrorCode::BadFrame;
    }
}

// A frame outside any session (Hello, Error): no sequence, no ack, stream 0.
std::vector<std::byte> control_frame(wire::FrameKind kind, std::span<const std::byte> body) {
    std::vector<std::byte> frame(wire::wire_size(body.size()));
    wire::write_frame(
        frame, wire::make_header(kind, static_cast<std::uint32_t>(body.size()), 0, 0, 0, 0), body);
    return frame;
}
}  // namespace

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
         [t] { return t->ready_fd(); }});
    dial_targets_.resize(config_.peers.size());
    for (std::size_t i = 0; i < config_.peers.size(); ++i) {
        dial_targets_[i].address = config_.peers[i];
        dial_targets_[i].backoff_ns = config_.reconnect_min_ns;
        dial(i);
    }
    for (const auto& address : config_.datagram_peers) {
        datagram_peer& d = datagram_peer_for(address);
        d.dialed = true;
        d.hello_backoff_ns = config_.datagram_hello_interval_ns;
        retry_datagram_hello(datagram_peers_.size() - 1);
    }
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

// ---- transport events ----

void endpoint::on_connected(transport::connection_id id, bool inbound) {
    auto c = std::make_unique<conn_state>();
    c->id = id;
    c->inbound = inbound;
    if (inbound) {
        ++stats_.connections_accepted;
    } else {
        ++stats_.connections_dialed;
        for (std::size_t i = 0; i < dial_targets_.size(); ++i) {
            if (dial_targets_[i].in_progress && dial_targets_[i].conn == id) {
                c->dial_index = static_cast<int>(i);
                dial_targets_[i].in_progress = false;
                break;
            }
        }
    }
    const auto body = builder_.hello(config_.cluster_id, config_.node_id, incarnation_,
                                     static_cast<std::uint16_t>(shard_.shard_count()));
    const std::vector<std::byte> frame = control_frame(wire::FrameKind::Hello, body);
    transport_->send(id, frame);
    conn_state* raw = c.get();
    c->handshake_timer =
        shard_.timers().schedule_at(shard_.now_ns() + config_.handshake_timeout_ns, [this, raw] {
            if (raw->handshaken || raw->closing) return;
            ++stats_.handshake_timeouts;
            refuse(*raw, wire::ErrorCode::ProtocolViolation, "no Hello within the timeout");
        });
    conns_[id.index] = std::move(c);
}

void endpoint::on_received(transport::connection_id id, buffer_handle chunk) {
    conn_state* c = find_conn(id);
    if (c == nullptr || c->closing) return;
    consume(*c, chunk.bytes(), &chunk);
}

void endpoint::on_datagram(const transport::address& from, std::span<const std::byte> payload,
                           buffer_handle owner) {
    ++stats_.datagrams_received;
    // A datagram is checked frame by frame; the first bad frame drops the rest of it (there
    // is no connection to close): counted, never trusted.
    std::span<const std::byte> rest = payload;
    // Every frame of a datagram comes from the same sender: look it up once (again after a
    // Hello, which may have introduced it).
    datagram_peer* sender = nullptr;
    peer_state* p = nullptr;
    while (!rest.empty()) {
        const auto parsed = wire::parse_frame(rest, config_.limits);
        wire::frame_error error = parsed.error;
        if (parsed.status == wire::parse_status::need_more) error = wire::frame_error::truncated;
        // A fragment's body is verified once the message is whole (handle_peer_frame).
        if (error == wire::frame_error::none && !parsed.value.fragment())
            error = wire::verify_body(parsed.value, config_.limits);
        if (error != wire::frame_error::none) {
            ++stats_.frames_refused;
            ++stats_.refused_by[static_cast<std::size_t>(error)];
            ++stats_.datagrams_dropped;
            return;
        }
        ++stats_.frames_received;
        const wire::frame& f = parsed.value;
        if (f.kind() == wire::FrameKind::Hello) {
            handle_datagram_hello(from, f);
            sender = nullptr;
        } else {
            if (sender == nullptr) {
                sender = find_datagram_peer(from);
                // A stranger gets an entry (to rate-limit our Hello to it) only while the
                // table is small: forged source addresses cannot grow it without bound.
                if (sender == nullptr && datagram_peers_.size() < config_.max_datagram_addresses) {
                    sender = &datagram_peer_for(from);
                }
                p = sender == nullptr || sender->peer.empty() ? nullptr : find_peer(sender->peer);
            }
            if (p == nullptr) {
                ++stats_.datagram_unknown_sender;
                ++stats_.datagrams_dropped;
                // Perhaps we restarted and it did not: introduce ourselves (rate-limited;
                // only to addresses the table had room for).
                if (sender != nullptr &&
                    shard_.now_ns() - sender->last_hello_ns >= config_.datagram_hello_interval_ns) {
                    send_datagram_hello(*sender, false);
                }
                return;
            }
            handle_peer_frame(*p, f, &owner);
        }
        rest = rest.subspan(parsed.consumed);
    }
}

void endpoint::handle_datagram_hello(const transport::address& from, const wire::frame& f) {
    const auto* hello = wire::body_as<wire::Hello>(f);
    if (wire::view_of(hello->cluster_id()) != config_.cluster_id) {
        ++stats_.wrong_cluster;
        ++stats_.datagrams_dropped;
        return;
    }
    const std::string peer_id(wire::view_of(hello->node_id()));
    if (hello->version_min() > wire::protocol_version ||
        hello->version_max() < wire::protocol_version || peer_id == config_.node_id) {
        ++stats_.protocol_violations;
        ++stats_.datagrams_dropped;
        return;
    }
    datagram_peer& d = datagram_peer_for(from);
    const auto index = static_cast<int>(std::find_if(datagram_peers_.begin(), datagram_peers_.end(),
                                                     [&](const auto& e) { return e.get() == &d; }) -
                                        datagram_peers_.begin());
    peer_state& p = peer_named(peer_id, true);
    if (p.conn.valid()) {
        ++stats_.duplicate_connections;  // already reached over a stream: keep that
        return;
    }
    const std::uint64_t incarnation = hello->incarnation();
    const bool first = p.s.peer_incarnation() == 0;
    const bool restarted = !first && p.s.peer_incarnation() != incarnation;
    if (first || restarted || d.peer != peer_id || p.datagram != index) {
        if (restarted) p.remote_patterns.clear();
        d.peer = peer_id;
        p.datagram = index;
        shard_.timers().cancel(d.hello_retry);
        connect_session(p, incarnation);
        if (first || restarted) send_subscriptions(p);
        ++stats_.handshakes;
        if (peer_handler_) {
            if (restarted) peer_handler_(p.id, peer_event::restarted);
            peer_handler_(p.id, peer_event::connected);
        }
    }
    if (!hello->seen_you()) send_datagram_hello(d, true);
}

endpoint::datagram_peer* endpoint::find_datagram_peer(const transport::address& address) {
    for (auto& d : datagram_peers_) {
        if (d->address == address) return d.get();
    }
    return nullptr;
}

endpoint::datagram_peer& endpoint::datagram_peer_for(const transport::address& address) {
    if (datagram_peer* d = find_datagram_peer(address)) return *d;
    auto& d = datagram_peers_.emplace_back(std::make_unique<datagram_peer>());
    d->address = address;
    return *d;
}

void endpoint::send_datagram_hello(datagram_peer& d, bool seen_you) {
    const auto body = builder_.hello(config_.cluster_id, config_.node_id, incarnation_,
                                     static_cast<std::uint16_t>(shard_.shard_count()), seen_you);
    const std::vector<std::byte> frame = control_frame(wire::FrameKind::Hello, body);
    if (transport_->send_datagram(d.address, frame) == frame.size()) ++stats_.datagrams_sent;
    d.last_hello_ns = shard_.now_ns();
}

void endpoint::retry_datagram_hello(std::size_t index) {
    datagram_peer& d = *datagram_peers_[index];
    if (!d.peer.empty() || shutting_down_) return;  // it answered
    send_datagram_hello(d, false);
    const time_ns delay = jittered(d.hello_backoff_ns);
    d.hello_backoff_ns = std::min(d.hello_backoff_ns * 2, config_.reconnect_max_ns);
    d.hello_retry = shard_.timers().schedule_at(shard_.now_ns() + delay,
                                                [this, index] { retry_datagram_hello(index); });
}

std::size_t endpoint::transmit_datagrams(peer_state& p, time_ns now) {
    datagram_peer& d = *datagram_peers_[static_cast<std::size_t>(p.datagram)];
    // A datagram the transport could not take last time goes first; while it cannot, the
    // session keeps its frames (nothing is handed over just to be dropped here).
    if (!flush_datagram(d)) return 0;
    const std::size_t mtu = transport_->caps().max_datagram_bytes;
    const std::size_t frames = p.s.poll_transmit(
        now, [&](std::span<const std::byte> bytes, const shared_bytes_owner& owner) {
            // A run is already as many consecutive frames as fit one datagram. A large one
            // leaves by itself, straight from the session's storage (in place where the
            // transport can: DPDK attaches it to an mbuf), after what was packed before it;
            // when the transport is full it stays there, unsent, for next time. Small runs
            // (other streams, acks) are packed together.
            constexpr std::size_t own_datagram_bytes = 512;
            if (bytes.size() >= own_datagram_bytes) {
                return flush_datagram(d) && send_datagram_now(d, bytes, owner);
            }
            if (d.out.size() + bytes.size() > mtu && !flush_datagram(d)) return false;
            d.out.insert(d.out.end(), bytes.begin(), bytes.end());  // several runs per datagram
            return true;
        });
    flush_datagram(d);
    return frames;
}

bool endpoint::flush_datagram(datagram_peer& d) {
    if (d.out.empty()) return true;
    if (!send_datagram_now(d, d.out)) return false;  // kept, and sent first next iteration
    d.out.clear();
    return true;
}

bool endpoint::send_datagram_now(const datagram_peer& d, std::span<const std::byte> bytes,
                                 const shared_bytes_owner& owner) {
    if (transport_->send_datagram(d.address, bytes, owner) != bytes.size()) {
        ++stats_.transport_full;  // out of send slots: the caller keeps the bytes
        return false;
    }
    ++stats_.datagrams_sent;
    return true;
}

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

void endpoint::on_closed(transport::connection_id id, transport::close_reason, int) {
    for (std::size_t i = 0; i < dial_targets_.size(); ++i) {
        if (dial_targets_[i].in_progress && dial_targets_[i].conn == id) {  // never connected
            dial_targets_[i].in_progress = false;
            schedule_redial(i);
            return;
        }
    }
    auto it = conns_.find(id.index);
    if (it == conns_.end() || !(it->second->id == id)) return;
    std::unique_ptr<conn_state> c = std::move(it->second);
    conns_.erase(it);
    shard_.timers().cancel(c->handshake_timer);
    if (!c->peer.empty()) {
        peer_state* p = find_peer(c->peer);
        if (p && p->conn == id) {
            p->conn = {};
            p->s.on_disconnected();
            if (peer_handler_) peer_handler_(p->id, peer_event::disconnected);
            if (p->member_left && !p->given_up) {
                give_up(*p, loss_reason::peer_left);  // it said it goes, and now it has
            } else {
                start_retention(*p);
            }
            for (std::size_t i = 0; i < dial_targets_.size(); ++i) {
                if (dial_targets_[i].known_peer == p->id && static_cast<int>(i) != c->dial_index) {
                    schedule_redial(i);
                }
            }
        }
    }
    if (c->dial_index >= 0) schedule_redial(static_cast<std::size_t>(c->dial_index));
}

// ---- inbound frames ----

bool endpoint::consume(conn_state& c, std::span<const std::byte> bytes,
                       const buffer_handle* owner) {
    if (!c.partial.empty()) {
        // A frame begun in an earlier read: complete it with just the bytes it still needs
        // (its header says how many), so the rest of this read is parsed in place, uncopied.
        const auto take_into_partial = [&](std::size_t want) {
            const std::size_t take =
                std::min(want - std::min(want, c.partial.size()), bytes.size());
            c.partial.insert(c.partial.end(), bytes.begin(),
                             bytes.begin() + static_cast<std::ptrdiff_t>(take));
            bytes = bytes.subspan(take);
            return c.partial.size() >= want;
        };
        if (!take_into_partial(wire::header_size)) return true;  // all taken, still incomplete
        wire::FrameHeader header;
        std::memcpy(&header, c.partial.data(), sizeof header);
        // An oversized length is refused by parse_frame below: never wait for its body.
        if (header.length() <= config_.limits.max_body_bytes &&
            !take_into_partial(wire::wire_size(header.length()))) {
            return true;
        }
        std::vector<std::byte> whole;
        whole.swap(c.partial);
        std::size_t consumed = 0;
        const bool alive = consume_frames(c, whole, nullptr, consumed);
        whole.clear();
        if (c.partial.empty()) c.partial.swap(whole);  // keep the capacity
        if (!alive) return false;
    }
    std::size_t consumed = 0;
    if (!consume_frames(c, bytes, owner, consumed)) return false;
    if (consumed < bytes.size()) {
        c.partial.assign(bytes.begin() + static_cast<std::ptrdiff_t>(consumed), bytes.end());
    }
    return true;
}

bool endpoint::consume_frames(conn_state& c, std::span<const std::byte> bytes,
                              const buffer_handle* owner, std::size_t& consumed) {
    for (;;) {
        const auto parsed = wire::parse_frame(bytes.subspan(consumed), config_.limits);
        if (parsed.status == wire::parse_status::need_more) return true;
        if (parsed.status == wire::parse_status::error) {
            ++stats_.frames_refused;
            ++stats_.refused_by[static_cast<std::size_t>(parsed.error)];
            refuse(c, error_code_for(parsed.error), wire::to_string(parsed.error));
            return false;
        }
        if (const auto e = parsed.value.fragment()
                               ? wire::frame_error::none
                               : wire::verify_body(parsed.value, config_.limits);
            e != wire::frame_error::none) {
            ++stats_.frames_refused;
            ++stats_.refused_by[static_cast<std::size_t>(e)];
            refuse(c, error_code_for(e), wire::to_string(e));
            return false;
        }
        if (!handle_frame(c, parsed.value, owner) || c.closing) return false;
        consumed += parsed.consumed;
    }
}

bool endpoint::handle_frame(conn_state& c, const wire::frame& f, const buffer_handle* owner) {
    ++stats_.frames_received;
    if (!c.handshaken) {
        if (f.kind() != wire::FrameKind::Hello) {
            ++stats_.protocol_violations;
            refuse(c, wire::ErrorCode::ProtocolViolation, "the first frame must be Hello");
            return false;
        }
        return handle_hello(c, f);
    }
    switch (f.kind()) {
        case wire::FrameKind::Hello:
            ++stats_.protocol_violations;
            refuse(c, wire::ErrorCode::ProtocolViolation, "second Hello");
            return false;
        case wire::FrameKind::Error: {
            const auto* e = wire::body_as<wire::Error>(f);
            std::fprintf(stderr, "ringmesh: %s: peer %s closes: %.*s\n", config_.node_id.c_str(),
                         c.peer.c_str(), static_cast<int>(wire::view_of(e->message()).size()),
                         wire::view_of(e->message()).data());
            return true;
        }
        default:
            break;
    }
    peer_state* p = c.bound;
    if (p == nullptr || !(p->conn == c.id)) return true;  // a connection being retired
    if (!handle_peer_frame(*p, f, owner)) {
        ++stats_.protocol_violations;
        refuse(c, wire::ErrorCode::ProtocolViolation, "sequence gap on an ordered stream");
        return false;
    }
    return true;
}

bool endpoint::handle_peer_frame(peer_state& peer, const wire::frame& f,
                                 const buffer_handle* owner) {
    peer_state* p = &peer;
    if (f.kind() == wire::FrameKind::Error || f.kind() == wire::FrameKind::Hello) return true;
    ++p->frames_in;
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
                if (const auto e = wire::verify_body(fr, config_.limits);
                    e != wire::frame_error::none) {
                    ++stats_.frames_refused;
                    ++stats_.refused_by[static_cast<std::size_t>(e)];
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

bool endpoint::handle_hello(conn_state& c, const wire::frame& f) {
    const auto* hello = wire::body_as<wire::Hello>(f);
    if (wire::view_of(hello->cluster_id()) != config_.cluster_id) {
        ++stats_.wrong_cluster;
        refuse(c, wire::ErrorCode::WrongCluster, "this is cluster " + config_.cluster_id);
        return false;
    }
    if (hello->version_min() > wire::protocol_version ||
        hello->version_max() < wire::protocol_version) {
        ++stats_.protocol_violations;
        refuse(c, wire::ErrorCode::UnsupportedVersion, "this node speaks version 1");
        return false;
    }
    const std::string peer_id(wire::view_of(hello->node_id()));
    if (peer_id == config_.node_id) {
        ++stats_.protocol_violations;
        refuse(c, wire::ErrorCode::ProtocolViolation, "connected to itself");
        return false;
    }
    shard_.timers().cancel(c.handshake_timer);
    bind(c, peer_id, hello->incarnation());
    return !c.closing;
}

void endpoint::bind(conn_state& c, const std::string& peer_id, std::uint64_t incarnation) {
    peer_state& p = peer_named(peer_id, false);
    if (p.conn.valid() && !(p.conn == c.id) && p.s.peer_incarnation() == incarnation) {
        // Both sides dialed. Keep the connection the smaller node id initiated, so that both
        // ends pick the same one without talking about it.
        const std::string& smaller = std::min(peer_id, config_.node_id);
        const std::string& c_initiator = c.inbound ? peer_id : config_.node_id;
        ++stats_.duplicate_connections;
        if (c_initiator != smaller) {
            if (c.dial_index >= 0)
                dial_targets_[static_cast<std::size_t>(c.dial_index)].known_peer = peer_id;
            c.dial_index = -1;  // satisfied by the other connection: no redial
            refuse(c, wire::ErrorCode::DuplicateConnection, "kept the other connection");
            return;
        }
        if (conn_state* other = find_conn(p.conn)) {
            other->dial_index = -1;
            other->peer.clear();
            other->bound = nullptr;
            refuse(*other, wire::ErrorCode::DuplicateConnection, "kept the other connection");
        }
    }
    const bool first = p.s.peer_incarnation() == 0;
    const bool restarted = !first && p.s.peer_incarnation() != incarnation;
    if (restarted) p.remote_patterns.clear();  // its subscriptions died with it
    c.handshaken = true;
    c.peer = peer_id;
    c.bound = &p;
    p.conn = c.id;
    connect_session(p, incarnation);
    if (c.dial_index >= 0) {
        dial_target& target = dial_targets_[static_cast<std::size_t>(c.dial_index)];
        target.known_peer = peer_id;
        target.backoff_ns = config_.reconnect_min_ns;
    }
    if (first || restarted) send_subscriptions(p);
    ++stats_.handshakes;
    if (peer_handler_) {
        if (restarted) peer_handler_(p.id, peer_event::restarted);
        peer_handler_(p.id, peer_event::connected);
    }
}

void endpoint::connect_session(peer_state& p, std::uint64_t peer_incarnation) {
    const bool restarted =
        p.s.peer_incarnation() != 0 && p.s.peer_incarnation() != peer_incarnation;
    const session_loss loss = p.s.on_connected(shard_.now_ns(), peer_incarnation);
    p.given_up = false;  // back: a resumed session (Skips pending) or a fresh one
    if (restarted) {
        ++stats_.peer_restarts;
        // A new process: whatever made the old one's retention clock run is over.
        p.member_gone = p.member_left = false;
        report_loss(p, loss_reason::peer_restarted, loss);
    }
    if (!p.member_gone) stop_retention(p);
}

void endpoint::dispatch(peer_state& p, std::uint32_t stream, const wire::frame& f,
                        const buffer_handle* owner) {
    message m{p.id, stream, {}, f.body, owner};
    switch (f.kind()) {
        case wire::FrameKind::Data: {
            auto handler = stream_handlers_.find(stream);
            if (handler == stream_handlers_.end()) {
                ++stats_.unknown_stream;
                return;
            }
            ++stats_.delivered_remote;
            handler->second(m);
            return;
        }
        case wire::FrameKind::Publish: {
            const auto* pub = wire::body_as<wire::Publish>(f);
            m.topic = wire::view_of(pub->topic());
            if (!valid_topic(m.topic)) {
                ++stats_.protocol_violations;
                return;
            }
            m.bytes = wire::bytes_of(pub->payload());
            for_each_subscriber(m.topic, [&](const topic_handler& handler) {
                ++stats_.delivered_remote;
                handler(m);
            });
            return;
        }
        case wire::FrameKind::Subscribe:
        case wire::FrameKind::Unsubscribe: {
            const std::string_view pattern =
                wire::view_of(wire::body_as<wire::Subscription>(f)->pattern());
            if (!valid_pattern(pattern)) {
                ++stats_.protocol_violations;
                return;
            }
            auto at = std::find(p.remote_patterns.begin(), p.remote_patterns.end(), pattern);
            if (f.kind() == wire::FrameKind::Subscribe && at == p.remote_patterns.end()) {
                p.remote_patterns.emplace_back(pattern);
            } else if (f.kind() == wire::FrameKind::Unsubscribe && at != p.remote_patterns.end()) {
                p.remote_patterns.erase(at);
            }
            return;
        }
        case wire::FrameKind::RpcRequest: {
            const auto* request = wire::body_as<wire::RpcRequest>(f);
            m.bytes = wire::bytes_of(request->payload());
            rpc_reply reply{wire::RpcStatus::NoSuchMethod, {}, "no such method"};
            auto handler = rpc_handlers_.find(std::string(wire::view_of(request->method())));
            if (handler != rpc_handlers_.end()) {
                ++stats_.rpc_served;
                reply = handler->second(m);
            } else {
                ++stats_.rpc_no_such_method;
            }
            const auto body = builder_.rpc_response(request->call_id(), reply.status, reply.message,
                                                    reply.payload);
            p.s.send(rpc_stream, wire::FrameKind::RpcResponse, body);
            return;
        }
        case wire::FrameKind::RpcResponse: {
            const auto* response = wire::body_as<wire::RpcResponse>(f);
            finish_call(response->call_id(),
                        {response->status(), wire::bytes_of(response->payload()),
                         wire::view_of(response->message()), 0});
            return;
        }
        default:
            return;
    }
}

void endpoint::refuse(conn_state& c, wire::ErrorCode code, std::string_view why) {
    if (c.closing) return;
    c.closing = true;
    const auto body = builder_.error(code, why);
    const std::vector<std::byte> frame = control_frame(wire::FrameKind::Error, body);
    transport_->send(c.id, frame);
    transport_->close(c.id);  // after the Error frame is flushed
}

// ---- dialing ----

void endpoint::dial(std::size_t index) {
    dial_target& target = dial_targets_[index];
    if (shutting_down_ || target.in_progress) return;
    if (!target.known_peer.empty() && connected(target.known_peer)) return;
    ++stats_.reconnect_attempts;
    auto conn = transport_->connect(target.address);
    if (!conn) {
        schedule_redial(index);
        return;
    }
    target.in_progress = true;
    target.conn = *conn;
}

void endpoint::dial(const transport::address& address) {
    for (const dial_target& target : dial_targets_) {
        if (target.address == address) return;
    }
    dial_target& target = dial_targets_.emplace_back();
    target.address = address;
    target.backoff_ns = config_.reconnect_min_ns;
    dial(dial_targets_.size() - 1);
}

void endpoint::schedule_redial(std::size_t index) {
    dial_target& target = dial_targets_[index];
    if (shutting_down_ || shard_.timers().pending(target.redial)) return;
    const time_ns delay = jittered(target.backoff_ns);
    target.backoff_ns = std::min(target.backoff_ns * 2, config_.reconnect_max_ns);
    target.redial =
        shard_.timers().schedule_at(shard_.now_ns() + delay, [this, index] { dial(index); });
}

// ---- public API ----

send_outcome endpoint::send(std::string_view peer, std::uint32_t stream,
                            std::span<const std::byte> bytes) {
    RM_ASSERT(stream >= first_user_stream, "streams below 16 are the engine's own");
    peer_state* p = find_peer(peer);
    if (p == nullptr) return send_outcome::unknown_peer;
    const send_outcome outcome = p->s.send(stream, wire::FrameKind::Data, bytes);
    if (!reachable(*p) && outcome == send_outcome::queued &&
        p->s.unacked_bytes() > config_.peer_retention_bytes) {
        give_up(*p, loss_reason::retention_expired);  // away, and holding too much
    }
    return outcome;
}

void endpoint::on_stream(std::uint32_t stream, stream_handler handler) {
    RM_ASSERT(stream >= first_user_stream, "streams below 16 are the engine's own");
    stream_handlers_[stream] = std::move(handler);
}

publish_result endpoint::publish(std::string_view topic, std::span<const std::byte> bytes) {
    publish_result result;
    if (!valid_topic(topic)) {
        ++stats_.publish_invalid_topic;
        result.invalid_topic = true;
        return result;
    }
    ++stats_.published;
    std::span<const std::byte> body;
    for (auto& [id, p] : peers_) {
        if (!wants(*p, topic)) continue;
        if (body.empty()) body = builder_.publish(topic, bytes);  // built once for all peers
        switch (p->s.send(pubsub_stream, wire::FrameKind::Publish, body)) {
            case send_outcome::queued:
                ++result.peers_sent;
                break;
            case send_outcome::too_large:
                ++result.peers_too_large;
                ++stats_.publish_too_large;
                break;
            default:
                ++result.peers_back_pressure;
                break;
        }
    }
    message m{config_.node_id, pubsub_stream, topic, bytes, nullptr};
    for_each_subscriber(topic, [&](const topic_handler& handler) {
        ++result.local_deliveries;
        ++stats_.delivered_local;
        handler(m);
    });
    return result;
}

endpoint::subscription_id endpoint::subscribe(std::string_view pattern, topic_handler handler) {
    if (!valid_pattern(pattern)) return 0;
    const subscription_id id = next_subscription_++;
    const bool new_pattern =
        std::none_of(subscriptions_.begin(), subscriptions_.end(),
                     [&](const auto& s) { return s.second.pattern == pattern; });
    subscriptions_[id] = {std::string(pattern), std::move(handler)};
    if (new_pattern) propagate(wire::FrameKind::Subscribe, pattern);
    return id;
}

void endpoint::unsubscribe(subscription_id id) {
    auto it = subscriptions_.find(id);
    if (it == subscriptions_.end()) return;
    const std::string pattern = std::move(it->second.pattern);
    subscriptions_.erase(it);
    const bool still_used = std::any_of(subscriptions_.begin(), subscriptions_.end(),
                                        [&](const auto& s) { return s.second.pattern == pattern; });
    if (!still_used) propagate(wire::FrameKind::Unsubscribe, pattern);
}

void endpoint::propagate(wire::FrameKind kind, std::string_view pattern) {
    const auto body = builder_.subscription(pattern);
    for (auto& [id, p] : peers_)
        p->s.send(pubsub_stream, kind, body);
}

void endpoint::send_subscriptions(peer_state& p) {
    std::vector<std::string_view> sent;
    for (const auto& [id, sub] : subscriptions_) {
        if (std::find(sent.begin(), sent.end(), sub.pattern) != sent.end()) continue;
        sent.push_back(sub.pattern);
        p.s.send(pubsub_stream, wire::FrameKind::Subscribe, builder_.subscription(sub.pattern));
    }
}

void endpoint::serve(std::string_view method, rpc_handler handler) {
    rpc_handlers_[std::string(method)] = std::move(handler);
}

call_outcome endpoint::call(std::string_view peer, std::string_view method,
                            std::span<const std::byte> request, time_ns timeout_ns,
                            reply_handler on_reply) {
    peer_state* p = find_peer(peer);
    if (p == nullptr) return call_outcome::unknown_peer;
    const std::uint64_t call_id = next_call_id_++;
    const auto body = builder_.rpc_request(call_id, method, timeout_ns, request);
    switch (p->s.send(rpc_stream, wire::FrameKind::RpcRequest, body)) {
        case send_outcome::back_pressure:
            return call_outcome::back_pressure;
        case send_outcome::unknown_peer:
            return call_outcome::unknown_peer;
        case send_outcome::too_large:
            return call_outcome::too_large;
        case send_outcome::queued:
            break;
    }
    ++stats_.rpc_calls;
    const time_ns now = shard_.read_clock();  // not the iteration's start: a precise RTT
    const timer_id deadline =
        shard_.timers().schedule_at(shard_.now_ns() + timeout_ns, [this, call_id] {
            auto it = calls_.find(call_id);
            if (it == calls_.end()) return;
            it->second.deadline = {};  // firing now: nothing to cancel
            ++stats_.rpc_timeouts;
            finish_call(call_id, {wire::RpcStatus::DeadlineExceeded, {}, "deadline exceeded", 0});
        });
    calls_.emplace(call_id, pending_call{std::move(on_reply), deadline, now});
    return call_outcome::sent;
}

void endpoint::finish_call(std::uint64_t call_id, const rpc_result& result) {
    auto it = calls_.find(call_id);
    if (it == calls_.end()) return;  // late reply after the deadline: dropped
    pending_call call = std::move(it->second);
    calls_.erase(it);
    shard_.timers().cancel(call.deadline);
    rpc_result with_rtt = result;
    with_rtt.rtt_ns = shard_.read_clock() - call.sent_ns;
    if (call.on_reply) call.on_reply(with_rtt);
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

bool endpoint::wants(const peer_state& p, std::string_view topic) {
    return std::any_of(p.remote_patterns.begin(), p.remote_patterns.end(),
                       [&](const std::string& pattern) { return topic_matches(pattern, topic); });
}

bool endpoint::peer_wants(std::string_view peer, std::string_view topic) const {
    const peer_state* p = find_peer(peer);
    return p != nullptr && wants(*p, topic);
}

std::size_t endpoint::subscribers(std::string_view topic) const {
    std::size_t n = 0;
    for (const auto& [id, p] : peers_)
        n += reachable(*p) && wants(*p, topic);
    return n;
}

bool endpoint::publish_ready(std::string_view topic) const {
    for (const auto& [id, p] : peers_) {
        if (wants(*p, topic) && !p->s.writable(pubsub_stream)) return false;
    }
    return true;
}

std::uint64_t endpoint::unacked(std::string_view peer) const {
    const peer_state* p = find_peer(peer);
    return p ? p->s.unacked_frames() : 0;
}

const session_stats* endpoint::peer_session_stats(std::string_view peer) const {
    const peer_state* p = find_peer(peer);
    return p ? &p->s.stats() : nullptr;
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
