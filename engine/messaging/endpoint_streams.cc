// Stream connections: dialing and redialing, the Hello exchange that binds a connection to a
// peer (one connection per peer: when both sides dial, both keep the one the smaller node id
// made), frames from a stream, and refusals (an Error frame, then close).
#include "engine/messaging/endpoint.h"

#include "engine/messaging/endpoint_state.h"

#include <algorithm>
#include <cstdio>

#include "engine/core/log.h"

namespace ringmesh::messaging {

namespace {
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
}  // namespace

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
                                     static_cast<std::uint16_t>(shard_.shard_count()), false,
                                     static_cast<std::uint16_t>(config_.node_shards),
                                     static_cast<std::uint16_t>(config_.node_shard));
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
    c->reader.feed(
        intake_, chunk.bytes(), &chunk,
        [this, c](const wire::frame& f, const buffer_handle* owner) {
            return handle_frame(*c, f, owner) && !c->closing;
        },
        [this, c](wire::frame_error e) { refuse(*c, error_code_for(e), wire::to_string(e)); });
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

bool endpoint::handle_frame(conn_state& c, const wire::frame& f, const buffer_handle* owner) {
    if (f.kind() == wire::FrameKind::Error) {  // before or after the Hello: the peer closes
        take_error(c, f);
        return true;
    }
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

void endpoint::take_error(conn_state& c, const wire::frame& f) {
    const auto* e = wire::body_as<wire::Error>(f);
    if (e->code() == wire::ErrorCode::WrongShard && e->redirect_port() != 0 && c.dial_index >= 0) {
        // Its owner endpoint listens on another port of the same host: redial there at once.
        dial_target& target = dial_targets_[static_cast<std::size_t>(c.dial_index)];
        target.address = target.address.with_port(e->redirect_port());
        target.backoff_ns = config_.reconnect_min_ns;
        c.closing = true;
        transport_->close(c.id);  // on_closed schedules the redial
        return;
    }
    if (e->code() == wire::ErrorCode::WrongShard) return;  // placement, not trouble (quiet)
    // A peer's words, printed: bounded per second, however often it says them.
    static thread_local log::site_limit peer_closes;
    log::limited(peer_closes, log::level::warn, "messaging", "{}: peer {} closes: {}",
                 config_.node_id, c.peer.empty() ? std::string_view("(before its Hello)") : c.peer,
                 wire::view_of(e->message()));
}

bool endpoint::misplaced(conn_state& c, std::uint32_t owner) {
    shard_.timers().cancel(c.handshake_timer);
    c.closing = true;
    if (c.inbound) {
        ++stats_.redirected;
        const auto port =
            static_cast<std::uint16_t>(config_.listen->port() - config_.node_shard + owner);
        close_with_error(c, wire::ErrorCode::WrongShard, "dial the owner", port);
        return false;
    }
    ++stats_.handed_to_owner;
    if (c.dial_index >= 0) {
        dial_target& target = dial_targets_[static_cast<std::size_t>(c.dial_index)];
        target.handed_off = true;
        shard_.timers().cancel(target.redial);
        c.dial_index = -1;
        if (misplaced_handler_) misplaced_handler_(owner, target.address, false);
    }
    transport_->close(c.id);
    return false;
}

std::uint32_t shard_for_peer(std::string_view peer, std::uint32_t shards) noexcept {
    if (shards <= 1) return 0;
    std::uint64_t h = 14695981039346656037ull;  // FNV-1a: the same on every node and build
    for (char ch : peer) {
        h ^= static_cast<unsigned char>(ch);
        h *= 1099511628211ull;
    }
    return static_cast<std::uint32_t>(h % shards);
}

bool endpoint::handle_hello(conn_state& c, const wire::frame& f) {
    const auto* hello = wire::body_as<wire::Hello>(f);
    switch (check_hello(*hello)) {
        case hello_check::wrong_cluster:
            refuse(c, wire::ErrorCode::WrongCluster, "this is cluster " + config_.cluster_id);
            return false;
        case hello_check::unsupported_version:
            refuse(c, wire::ErrorCode::UnsupportedVersion, "this node speaks version 1");
            return false;
        case hello_check::ourselves:
            refuse(c, wire::ErrorCode::ProtocolViolation, "connected to itself");
            return false;
        case hello_check::ok:
            break;
    }
    if (const std::string_view proven = transport_->peer_identity(c.id);
        !proven.empty() && proven != wire::view_of(hello->node_id())) {
        ++stats_.identity_mismatches;
        refuse(c, wire::ErrorCode::ProtocolViolation,
               "the Hello names another node than the handshake proved");
        return false;
    }
    if (c.inbound && hello->endpoints() > 1 &&
        shard_for_peer(config_.node_id, hello->endpoints()) != hello->endpoint_index()) {
        // Dialed from an endpoint of its node that does not own us: it hands the dial to the
        // one that does (on our Hello). Refused before anything binds, so nothing flaps.
        shard_.timers().cancel(c.handshake_timer);
        close_with_error(c, wire::ErrorCode::WrongShard, "dial from the owner");
        return false;
    }
    if (config_.node_shards > 1 && config_.listen) {
        const std::uint32_t owner =
            shard_for_peer(wire::view_of(hello->node_id()), config_.node_shards);
        if (owner != config_.node_shard) return misplaced(c, owner);
    }
    shard_.timers().cancel(c.handshake_timer);
    bind(c, std::string(wire::view_of(hello->node_id())), hello->incarnation());
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
    c.handshaken = true;
    c.peer = peer_id;
    c.bound = &p;
    p.conn = c.id;
    if (c.dial_index >= 0) {
        dial_target& target = dial_targets_[static_cast<std::size_t>(c.dial_index)];
        target.known_peer = peer_id;
        target.backoff_ns = config_.reconnect_min_ns;
    }
    peer_introduced(p, incarnation);
}

void endpoint::refuse(conn_state& c, wire::ErrorCode code, std::string_view why) {
    if (c.closing) return;
    c.closing = true;
    // Counted by the caller; said here, at most 10 lines a second however hard a stranger
    // or a broken peer pushes.
    static thread_local log::site_limit refusals;
    log::limited(refusals, log::level::warn, "messaging", "{}: refusing connection {} ({}): {}",
                 config_.node_id,
                 c.peer.empty() ? std::string_view("from an unknown peer") : c.peer, c.id.index,
                 why);
    close_with_error(c, code, why);
}

void endpoint::close_with_error(conn_state& c, wire::ErrorCode code, std::string_view why,
                                std::uint16_t redirect_port) {
    c.closing = true;
    const auto body = builder_.error(code, why, redirect_port);
    transport_->send(c.id, control_frame(wire::FrameKind::Error, body));
    transport_->close(c.id);  // after the Error frame is flushed
}

// ---- dialing ----

void endpoint::dial(std::size_t index) {
    dial_target& target = dial_targets_[index];
    if (shutting_down_ || target.in_progress || target.handed_off) return;
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
    for (dial_target& target : dial_targets_) {
        if (target.address != address) continue;
        if (target.handed_off) {  // handed here again: this endpoint owns it after all
            target.handed_off = false;
            dial(static_cast<std::size_t>(&target - dial_targets_.data()));
        }
        return;
    }
    dial_target& target = dial_targets_.emplace_back();
    target.address = address;
    target.backoff_ns = config_.reconnect_min_ns;
    dial(dial_targets_.size() - 1);
}

void endpoint::schedule_redial(std::size_t index) {
    dial_target& target = dial_targets_[index];
    if (shutting_down_ || target.handed_off || shard_.timers().pending(target.redial)) return;
    const time_ns delay = jittered(target.backoff_ns);
    target.backoff_ns = std::min(target.backoff_ns * 2, config_.reconnect_max_ns);
    target.redial =
        shard_.timers().schedule_at(shard_.now_ns() + delay, [this, index] { dial(index); });
}

}  // namespace ringmesh::messaging
