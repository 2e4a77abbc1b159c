// The endpoint's peer lifecycle: what membership's opinions do to sessions, the retention
// clock, and loss reports. The rule: a session belongs to the peer *process*. Membership
// saying "dead" or "left" starts a clock and nothing else; the same process coming back
// resumes its session with nothing lost or repeated. Only a new process (a new incarnation in
// its Hello), a peer that left and closed, or a clock that ran out with no sign of life gives
// messages up, and every message given up is reported through the loss handler.
#include "engine/messaging/endpoint.h"
#include "engine/messaging/endpoint_state.h"

namespace ringmesh::messaging {

const char* to_string(loss_reason reason) noexcept {
    switch (reason) {
        case loss_reason::peer_restarted:
            return "peer restarted";
        case loss_reason::retention_expired:
            return "peer away past the retention";
        case loss_reason::peer_left:
            return "peer left the cluster";
        case loss_reason::peer_gave_up:
            return "peer gave up on us";
    }
    return "?";
}

endpoint::hello_check endpoint::check_hello(const wire::Hello& hello) {
    if (wire::view_of(hello.cluster_id()) != config_.cluster_id) {
        ++stats_.wrong_cluster;
        return hello_check::wrong_cluster;
    }
    if (hello.version_min() > wire::protocol_version ||
        hello.version_max() < wire::protocol_version) {
        ++stats_.protocol_violations;
        return hello_check::unsupported_version;
    }
    if (wire::view_of(hello.node_id()) == config_.node_id) {
        ++stats_.protocol_violations;
        return hello_check::ourselves;
    }
    return hello_check::ok;
}

void endpoint::peer_introduced(peer_state& p, std::uint64_t incarnation) {
    const session_loss loss = p.s.on_connected(shard_.now_ns(), incarnation);
    p.given_up = false;  // back: a resumed session (Skips pending) or a fresh one
    if (loss.peer_restarted) {
        ++stats_.peer_restarts;
        p.remote_patterns.clear();  // its subscriptions died with it
        ++remote_subscriptions_version_;
        // A new process: whatever made the old one's retention clock run is over.
        p.member_gone = p.member_left = false;
        report_loss(p, loss_reason::peer_restarted, loss);
    }
    if (!p.member_gone) stop_retention(p);
    if (loss.first_contact || loss.peer_restarted) send_subscriptions(p);
    ++stats_.handshakes;
    if (peer_handler_) {
        if (loss.peer_restarted) peer_handler_(p.id, peer_event::restarted);
        peer_handler_(p.id, peer_event::connected);
    }
}

void endpoint::member_gone(std::string_view peer, bool left) {
    peer_state* p = find_peer(peer);
    if (p == nullptr) return;  // no session: nothing to keep or give up
    ++stats_.peers_gone;
    if (!p->member_gone) p->frames_in_at_gone = p->frames_in;
    p->member_gone = true;
    p->member_left = p->member_left || left;
    if (p->given_up) return;
    if (left && !reachable(*p)) {
        give_up(*p, loss_reason::peer_left);
        return;
    }
    start_retention(*p);
}

void endpoint::member_alive(std::string_view peer) {
    peer_state* p = find_peer(peer);
    if (p == nullptr) return;
    p->member_gone = p->member_left = false;
    if (reachable(*p)) stop_retention(*p);
}

bool endpoint::disconnect(std::string_view peer) {
    peer_state* p = find_peer(peer);
    return p != nullptr && close_connection(find_conn(p->conn));
}

bool endpoint::close_connection(conn_state* c) {
    if (c == nullptr || c->closing) return false;
    c->closing = true;
    transport_->close(c->id);  // on_closed follows
    return true;
}

void endpoint::start_retention(peer_state& p) {
    if (p.given_up || shard_.timers().pending(p.retention) || shutting_down_) return;
    const std::string name = p.id;  // peers are never erased: the name finds it again
    p.retention = shard_.timers().schedule_at(shard_.now_ns() + config_.peer_retention_ns,
                                              [this, name] { retention_expired(name); });
}

void endpoint::stop_retention(peer_state& p) {
    shard_.timers().cancel(p.retention);
    p.retention = {};
}

void endpoint::retention_expired(const std::string& name) {
    peer_state* p = find_peer(name);
    if (p == nullptr) return;
    p->retention = {};
    // Connected and talking since membership's verdict: the process is alive whatever
    // membership says (a partition between gossip ports, say). Look again later.
    if (reachable(*p) && (!p->member_gone || p->frames_in > p->frames_in_at_gone)) {
        if (p->member_gone) {
            p->frames_in_at_gone = p->frames_in;
            start_retention(*p);
        }
        return;
    }
    give_up(*p, p->member_left ? loss_reason::peer_left : loss_reason::retention_expired);
}

void endpoint::give_up(peer_state& p, loss_reason reason) {
    stop_retention(p);
    // A connection that carries nothing (a partition): close it; the peer, if it lives,
    // redials and learns of the gap from our Skip frames.
    close_connection(find_conn(p.conn));
    p.given_up = true;
    ++stats_.sessions_given_up;
    report_loss(p, reason, {p.s.discard_unacked(), 0});
}

void endpoint::report_loss(peer_state& p, loss_reason reason, const session_loss& loss) {
    if (!loss.any()) return;  // a departure that cost nothing is not news
    stats_.messages_lost_to += loss.to_peer;
    stats_.frames_lost_from += loss.from_peer;
    if (loss_handler_) loss_handler_({p.id, reason, loss.to_peer, loss.from_peer});
}

}  // namespace ringmesh::messaging
