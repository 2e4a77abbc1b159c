// Datagram links (UDP, DPDK): an address table (a hash map: strangers are looked up on every
// datagram), Hellos that introduce the two ends and are retried until answered, and frames
// packed per datagram up to the transport's datagram size.
#include "engine/messaging/endpoint.h"

#include "engine/messaging/endpoint_state.h"

#include <algorithm>

#include "engine/core/log.h"

namespace ringmesh::messaging {

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
        const frame_intake::verdict v = intake_.next(rest, frame_intake::input::datagram);
        if (v.status != wire::parse_status::frame) {
            ++stats_.datagrams_dropped;
            static thread_local log::site_limit bad_datagrams;
            log::limited(bad_datagrams, log::level::warn, "messaging",
                         "{}: datagram from {} dropped: {}", config_.node_id, from.to_string(),
                         v.status == wire::parse_status::error ? wire::to_string(v.error)
                                                               : "truncated frame");
            return;
        }
        const wire::frame& f = v.frame;
        if (f.kind() == wire::FrameKind::Hello) {
            handle_datagram_hello(from, f);
            sender = nullptr;
        } else if (f.kind() == wire::FrameKind::Error &&
                   wire::body_as<wire::Error>(f)->code() == wire::ErrorCode::WrongShard) {
            take_datagram_redirect(from, *wire::body_as<wire::Error>(f));
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
        rest = rest.subspan(v.consumed);
    }
}

void endpoint::handle_datagram_hello(const transport::address& from, const wire::frame& f) {
    const auto* hello = wire::body_as<wire::Hello>(f);
    if (check_hello(*hello) != hello_check::ok) {
        ++stats_.datagrams_dropped;  // no connection to refuse: counted, and dropped
        return;
    }
    const std::string peer_id(wire::view_of(hello->node_id()));
    // Under a secure layer the sender's name was proven in its datagram handshake: a Hello
    // must repeat it (a holder of the key cannot speak for another node).
    if (const std::string_view proven = transport_->datagram_peer_identity(from);
        !proven.empty() && proven != peer_id) {
        ++stats_.identity_mismatches;
        ++stats_.datagrams_dropped;
        return;
    }
    if (config_.node_shards > 1 && config_.listen) {
        const std::uint32_t owner = shard_for_peer(peer_id, config_.node_shards);
        if (owner != config_.node_shard) return datagram_misplaced(from, owner);
    }
    if (hello->endpoints() > 1 &&
        shard_for_peer(config_.node_id, hello->endpoints()) != hello->endpoint_index()) {
        // Said by an endpoint of its node that does not own us: our Hello tells it who we
        // are, and it hands us to the one that does. Nothing binds here.
        if (!hello->seen_you()) send_datagram_hello(datagram_peer_for(from), true);
        return;
    }
    datagram_peer& d = datagram_peer_for(from);
    peer_state& p = peer_named(peer_id, true);
    if (p.conn.valid()) {
        ++stats_.duplicate_connections;  // already reached over a stream: keep that
        return;
    }
    // Hellos repeat (they are retried until answered): only news introduces the peer again —
    // a new process, or the same one at another address.
    if (p.s.peer_incarnation() != hello->incarnation() || d.peer != peer_id ||
        p.datagram != d.index) {
        d.peer = peer_id;
        p.datagram = d.index;
        shard_.timers().cancel(d.hello_retry);
        peer_introduced(p, hello->incarnation());
    }
    if (!hello->seen_you()) send_datagram_hello(d, true);
}

void endpoint::datagram_misplaced(const transport::address& from, std::uint32_t owner) {
    datagram_peer* d = find_datagram_peer(from);
    if (d != nullptr && d->dialed && d->peer.empty()) {
        // We were saying Hello to it: the owner endpoint says it instead.
        d->dialed = false;
        shard_.timers().cancel(d->hello_retry);
        ++stats_.handed_to_owner;
        if (misplaced_handler_) misplaced_handler_(owner, from, true);
    }
    // Tell it where the owner listens, in case it is saying Hello to us too (rate-limited
    // like our Hellos to strangers, so a forged source address gets no flood of answers).
    datagram_peer* entry = d;
    if (entry == nullptr && datagram_peers_.size() < config_.max_datagram_addresses)
        entry = &datagram_peer_for(from);
    if (entry == nullptr ||
        shard_.now_ns() - entry->last_redirect_ns < config_.datagram_hello_interval_ns / 2) {
        ++stats_.datagrams_dropped;
        return;
    }
    entry->last_redirect_ns = shard_.now_ns();
    ++stats_.redirected;
    const auto port =
        static_cast<std::uint16_t>(config_.listen->port() - config_.node_shard + owner);
    const auto body = builder_.error(wire::ErrorCode::WrongShard, "say Hello to the owner", port);
    const std::vector<std::byte> frame = control_frame(wire::FrameKind::Error, body);
    if (transport_->send_datagram(from, frame) == frame.size()) ++stats_.datagrams_sent;
}

void endpoint::take_datagram_redirect(const transport::address& from, const wire::Error& e) {
    datagram_peer* d = find_datagram_peer(from);
    // Only a Hello we are still repeating moves, and only to another port of the same host: a
    // bound session is never moved by a datagram.
    if (d == nullptr || !d->dialed || !d->peer.empty() || e.redirect_port() == 0 ||
        e.redirect_port() == from.port()) {
        ++stats_.datagrams_dropped;
        return;
    }
    d->dialed = false;
    shard_.timers().cancel(d->hello_retry);
    dial_datagram(from.with_port(e.redirect_port()));
}

void endpoint::dial_datagram(const transport::address& address) {
    if (const datagram_peer* known = find_datagram_peer(address);
        known != nullptr && (known->dialed || !known->peer.empty())) {
        return;
    }
    datagram_peer& d = datagram_peer_for(address);
    d.dialed = true;
    d.hello_backoff_ns = config_.datagram_hello_interval_ns;
    retry_datagram_hello(static_cast<std::size_t>(d.index));
}

endpoint::datagram_peer* endpoint::find_datagram_peer(const transport::address& address) {
    auto it = datagram_index_.find(address);
    return it == datagram_index_.end() ? nullptr : datagram_peers_[it->second].get();
}

endpoint::datagram_peer& endpoint::datagram_peer_for(const transport::address& address) {
    if (datagram_peer* d = find_datagram_peer(address)) return *d;
    auto& d = datagram_peers_.emplace_back(std::make_unique<datagram_peer>());
    d->address = address;
    d->index = static_cast<int>(datagram_peers_.size() - 1);
    datagram_index_.emplace(address, datagram_peers_.size() - 1);
    return *d;
}

void endpoint::send_datagram_hello(datagram_peer& d, bool seen_you) {
    const auto body = builder_.hello(config_.cluster_id, config_.node_id, incarnation_,
                                     static_cast<std::uint16_t>(shard_.shard_count()), seen_you,
                                     static_cast<std::uint16_t>(config_.node_shards),
                                     static_cast<std::uint16_t>(config_.node_shard));
    const std::vector<std::byte> frame = control_frame(wire::FrameKind::Hello, body);
    if (transport_->send_datagram(d.address, frame) == frame.size()) ++stats_.datagrams_sent;
    d.last_hello_ns = shard_.now_ns();
}

void endpoint::retry_datagram_hello(std::size_t index) {
    datagram_peer& d = *datagram_peers_[index];
    if (!d.peer.empty() || !d.dialed || shutting_down_) return;  // answered, or handed over
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

}  // namespace ringmesh::messaging
