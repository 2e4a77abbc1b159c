#include "transport/secure/secure_transport.h"

#include <algorithm>

#include "engine/core/errc.h"
#include "engine/core/log.h"
#include "transport/secure/tls_guard.h"

namespace ringmesh::transport::secure {

result<std::unique_ptr<secure_transport>> secure_transport::wrap(std::unique_ptr<transport> inner,
                                                                 secure_settings settings) {
    switch (settings.identity.mode) {
        case security_mode::authenticated:
            if (!settings.keys || settings.keys->snapshot().empty()) {
                return make_error(
                    core_errc::bad_config,
                    "mode authenticated needs a keyring (membership.keyring or --key)");
            }
            break;
        case security_mode::encrypted:
            if (!settings.tls || !settings.tls->snapshot()) {
                return make_error(core_errc::bad_config,
                                  "mode encrypted needs certificates (security.ca_file, "
                                  "cert_file, key_file)");
            }
            break;
        case security_mode::none:
            return make_error(core_errc::bad_config, "the secure layer does not run mode none");
    }
    if (settings.receive_buffer_bytes < max_record_payload)
        return make_error(core_errc::bad_config, "receive buffers smaller than a record");
    auto pool = buffer_pool::create(settings.receive_buffers, settings.receive_buffer_bytes,
                                    settings.owner);
    if (!pool) return pool.err();
    return std::unique_ptr<secure_transport>(
        new secure_transport(std::move(inner), std::move(settings), std::move(pool).value()));
}

secure_transport::secure_transport(std::unique_ptr<transport> inner, secure_settings settings,
                                   std::unique_ptr<buffer_pool> pool)
    : inner_(std::move(inner)), settings_(std::move(settings)), pool_(std::move(pool)) {}

// The connections (and the buffers they hold) go before the pool; the backend last.
secure_transport::~secure_transport() {
    conns_.clear();
}

bool secure_transport::offers_datagrams() const noexcept {
    return settings_.keys != nullptr && inner_->caps().datagrams;
}

capabilities secure_transport::caps() const noexcept {
    capabilities c = inner_->caps();
    // Datagram sessions prove the keyring: a node with certificates only offers none.
    c.datagrams = offers_datagrams() && c.max_datagram_bytes > sealed_datagram_overhead;
    c.max_datagram_bytes = c.datagrams ? c.max_datagram_bytes - sealed_datagram_overhead : 0;
    return c;
}

std::string_view secure_transport::datagram_peer_identity(const address& from) const {
    auto it = datagram_sessions_.find(from);
    return it != datagram_sessions_.end() && it->second->established()
               ? std::string_view(it->second->peer())
               : std::string_view();
}

datagram_session* secure_transport::datagram_session_for(const address& peer) {
    auto it = datagram_sessions_.find(peer);
    if (it != datagram_sessions_.end()) return it->second.get();
    if (datagram_sessions_.size() >= settings_.max_datagram_sessions) return nullptr;
    datagram_settings ds{settings_.identity, settings_.identity.mode == security_mode::encrypted,
                         settings_.datagram_retry_ns};
    return datagram_sessions_.emplace(peer, std::make_unique<datagram_session>(ds))
        .first->second.get();
}

nonce secure_transport::fresh_nonce() const {
    return settings_.nonce_source ? settings_.nonce_source() : auth_handshake::random_nonce();
}

datagram_session::bytes secure_transport::initiate(datagram_session& s) {
    if (!s.would_start(now_)) return s.initiate(now_, {}, nonce{});
    return s.initiate(now_, settings_.keys->snapshot(), fresh_nonce());
}

void secure_transport::send_waiting(const address& to, datagram_session& s) {
    for (const auto& datagram : s.waiting()) {
        s.sealer().seal(datagram, sealed_);
        if (inner_->send_datagram(to, sealed_) == sealed_.size()) {
            ++stats_.datagrams_sealed;
        } else {
            ++stats_.datagrams_dropped;  // the backend is full: as if lost on the way
        }
    }
    s.waiting().clear();
}

void secure_transport::refuse_datagram(const address& from, auth_refusal why) {
    ++stats_.refused[static_cast<std::size_t>(why)];
    static thread_local log::site_limit refusals;
    log::limited(refusals, log::level::warn, "secure",
                 "{}: refusing the datagram handshake of {}: {}", settings_.identity.node_id,
                 from.to_string(), to_string(why));
}

secure_transport::conn* secure_transport::find(connection_id id) {
    auto it = conns_.find(id.index);
    return it != conns_.end() && it->second->id == id ? it->second.get() : nullptr;
}

const secure_transport::conn* secure_transport::find(connection_id id) const {
    auto it = conns_.find(id.index);
    return it != conns_.end() && it->second->id == id ? it->second.get() : nullptr;
}

std::string_view secure_transport::peer_identity(connection_id id) const {
    const conn* c = find(id);
    return c != nullptr && c->up ? std::string_view(c->guard->peer()) : std::string_view();
}

std::unique_ptr<stream_guard> secure_transport::new_guard(bool inbound) {
    if (settings_.identity.mode == security_mode::encrypted)
        return std::make_unique<tls_guard>(settings_.tls->snapshot(), settings_.identity.node_id,
                                           !inbound);
    return std::make_unique<keyring_guard>(settings_.identity, settings_.keys->snapshot(), !inbound,
                                           fresh_nonce());
}

result<connection_id> secure_transport::connect(const address& remote) {
    return inner_->connect(remote);  // the handshake starts on the backend's on_connected
}

std::size_t secure_transport::poll(time_ns now, event_handler& handler) {
    upper_ = &handler;
    now_ = now;
    std::size_t work = 0;
    // Records held for want of a receive buffer go first: the layer above may have let some go.
    if (!stalled_.empty()) {
        std::vector<std::uint32_t> waiting;
        waiting.swap(stalled_);
        for (std::uint32_t index : waiting) {
            auto it = conns_.find(index);
            if (it == conns_.end() || it->second->closing) continue;
            work += take_records(*it->second, {}) ? 1 : 0;
        }
    }
    work += inner_->poll(now, *this);
    expire_handshakes(now);
    return work;
}

void secure_transport::expire_handshakes(time_ns now) {
    for (auto& [index, c] : conns_) {
        if (!c->up && !c->closing && c->deadline <= now) refuse(*c, auth_refusal::timeout);
    }
    // Half-open datagram handshakes (a hello answered, no proof) end; the established keys
    // stay; sessions with neither go once their quiet time after a refusal is over. (A linear
    // walk, bounded by max_datagram_sessions, at most once per datagram_retry_ns.)
    if (datagram_sessions_.empty() || now - last_datagram_sweep_ < settings_.datagram_retry_ns)
        return;
    last_datagram_sweep_ = now;
    for (auto it = datagram_sessions_.begin(); it != datagram_sessions_.end();) {
        if (it->second->expire(now - settings_.handshake_timeout_ns)) {
            refuse_datagram(it->first, auth_refusal::timeout);
        }
        if (!it->second->established() && !it->second->handshaking() &&
            now >= it->second->quiet_until()) {
            it = datagram_sessions_.erase(it);
        } else {
            ++it;
        }
    }
}

void secure_transport::on_connected(connection_id id, bool inbound) {
    auto c = std::make_unique<conn>();
    c->id = id;
    c->inbound = inbound;
    c->deadline = now_ + settings_.handshake_timeout_ns;
    c->guard = new_guard(inbound);
    c->out = fresh_buffer();
    c->guard->start(*c->out);  // leaves at the next flush, ahead of everything
    conn& ref = *c;
    conns_[id.index] = std::move(c);
    if (ref.guard->refusal() != auth_refusal::none) {
        refuse(ref, ref.guard->refusal());
        return;
    }
    mark_dirty(ref);
}

void secure_transport::on_received(connection_id id, buffer_handle chunk) {
    conn* c = find(id);
    if (c == nullptr || c->closing) return;
    std::span<const std::byte> bytes = chunk.bytes();
    if (!c->up) {
        const std::size_t before = c->out->size();
        const std::size_t used = c->guard->feed(bytes, *c->out);
        if (c->out->size() != before) mark_dirty(*c);
        if (c->guard->refusal() != auth_refusal::none) {
            refuse(*c, c->guard->refusal());
            return;
        }
        if (!c->guard->done()) return;
        c->up = true;
        ++stats_.handshakes;
        upper_->on_connected(id, c->inbound);
        c = find(id);  // the layer above may have closed it
        if (c == nullptr || c->closing) return;
        bytes = bytes.subspan(used);
    }
    take_records(*c, bytes);
}

bool secure_transport::take_records(conn& c, std::span<const std::byte> bytes) {
    c.stalled = false;
    // A record begun in an earlier chunk is completed first, with only the bytes it lacks.
    while (!c.received.empty()) {
        const std::size_t header = c.guard->header_bytes();
        std::size_t need = header;
        bool bad = false;
        if (c.received.size() >= header) {
            std::size_t size = 0;
            bad = c.guard->next(c.received, size) == record_status::oversized;
            need = bad ? c.received.size() : size;
        }
        // (Held records may already make `received` longer than the first one needs.)
        const std::size_t take =
            need > c.received.size() ? std::min(need - c.received.size(), bytes.size()) : 0;
        c.received.insert(c.received.end(), bytes.begin(),
                          bytes.begin() + static_cast<std::ptrdiff_t>(take));
        bytes = bytes.subspan(take);
        if (c.received.size() < need) return true;  // still short: the next chunk
        if (!bad && need == header) continue;       // the header is whole: its size
        std::size_t used = 0;
        if (!deliver_records(c, c.received, used)) return false;
        c.received.erase(c.received.begin(), c.received.begin() + static_cast<long>(used));
        if (c.stalled) {  // held until a receive buffer is free: keep everything, in order
            c.received.insert(c.received.end(), bytes.begin(), bytes.end());
            return true;
        }
    }
    // The rest straight from the chunk; a record cut at its end waits in `received`.
    std::size_t used = 0;
    if (!deliver_records(c, bytes, used)) return false;
    c.received.assign(bytes.begin() + static_cast<std::ptrdiff_t>(used), bytes.end());
    return true;
}

bool secure_transport::deliver_records(conn& c, std::span<const std::byte> bytes,
                                       std::size_t& used) {
    buffer_handle out;
    const connection_id id = c.id;
    auto hand_up = [&] {
        if (out && out.size() > 0) upper_->on_received(id, std::move(out));
        out = buffer_handle();
    };
    while (used < bytes.size()) {
        std::size_t size = 0;
        const std::span<const std::byte> rest = bytes.subspan(used);
        const record_status next = c.guard->next(rest, size);
        if (next == record_status::incomplete) break;
        if (next == record_status::ok && (!out || out.capacity() - out.size() < size)) {
            hand_up();
            if (find(id) == nullptr || c.closing) return false;  // closed from above
            out = pool_->try_get();
            if (!out) {
                ++stats_.receive_buffer_waits;
                c.stalled = true;
                stalled_.push_back(id.index);
                return true;  // held: retried at the next poll
            }
        }
        std::size_t written = 0;
        const std::size_t replies = c.out->size();
        const record_status opened =
            next == record_status::ok
                ? c.guard->open(rest.first(size), out.storage().subspan(out.size()), written,
                                *c.out)
                : next;
        if (c.out->size() != replies) mark_dirty(c);
        if (opened != record_status::ok) {
            if (opened != record_status::closed) ++stats_.records_refused;
            static thread_local log::site_limit bad_records;
            const std::string detail = c.guard->refusal_detail();
            log::limited(bad_records, log::level::warn, "secure",
                         "{}: closing the connection of {}: a record was {}{}",
                         settings_.identity.node_id, c.guard->peer(), to_string(opened),
                         detail.empty() ? std::string() : " (" + detail + ")");
            out = buffer_handle();  // nothing of a bad record, nor after it, goes up
            c.closing = true;
            inner_->close(id);
            return false;
        }
        ++stats_.records_opened;
        out.set_size(out.size() + written);
        used += size;
    }
    hand_up();
    return true;
}

void secure_transport::refuse(conn& c, auth_refusal why) {
    ++stats_.refused[static_cast<std::size_t>(why)];
    static thread_local log::site_limit refusals;
    const std::string& who = c.guard->claimed_peer();
    const std::string detail = c.guard->refusal_detail();
    log::limited(refusals, log::level::warn, "secure", "{}: refusing {} connection {} ({}): {}{}",
                 settings_.identity.node_id, c.inbound ? "inbound" : "outbound", c.id.index,
                 who.empty() ? std::string("an unproven peer") : "claims " + who, to_string(why),
                 detail.empty() ? std::string() : " (" + detail + ")");
    c.closing = true;
    push_out(c);  // our proof, if it was due: the peer learns the refusal is ours
    inner_->close(c.id);
}

void secure_transport::on_datagram(const address& from, std::span<const std::byte> payload,
                                   buffer_handle owner) {
    if (!offers_datagrams()) {
        ++stats_.datagrams_dropped;
        return;
    }
    if (is_handshake_datagram(payload)) {
        datagram_session* s = datagram_session_for(from);
        if (s == nullptr) {
            ++stats_.datagrams_dropped;  // the table is full
            return;
        }
        datagram_session::outcome step =
            s->take(payload, now_, settings_.keys->snapshot(), fresh_nonce());
        if (!step.send.empty()) inner_->send_datagram(from, step.send);
        if (step.established) {
            ++stats_.datagram_handshakes;
            send_waiting(from, *s);
        }
        if (step.refused != auth_refusal::none) {
            refuse_datagram(from, step.refused);
            if (!s->established() && !s->handshaking()) {
                stats_.datagrams_dropped += s->waiting().size();  // never sealed: lost, counted
                s->waiting().clear();
            }
        }
        return;
    }
    if (payload.empty() || payload[0] != sealed_datagram_type) {
        ++stats_.datagrams_refused;  // plaintext, or a stranger's protocol
        ++stats_.refused[static_cast<std::size_t>(auth_refusal::not_secure)];
        return;
    }
    auto it = datagram_sessions_.find(from);
    if (it == datagram_sessions_.end() || !it->second->established()) {
        ++stats_.datagrams_dropped;
        // The sender holds a session we do not: we are waiting for its proof (repeat our
        // reply), or we restarted (start a handshake of our own). Rate-limited per address,
        // and only where the table has room.
        datagram_session* s =
            it != datagram_sessions_.end() ? it->second.get() : datagram_session_for(from);
        if (s == nullptr) return;
        datagram_session::bytes again = s->handshaking() ? s->nudge(now_) : initiate(*s);
        if (!again.empty()) inner_->send_datagram(from, again);
        return;
    }
    // Opened in place: the payload lies in `owner`, which this layer now holds.
    // (Its written bytes, or its whole buffer: a DPDK holder's covers only the datagram.)
    std::span<std::byte> storage = owner.bytes();
    auto inside = [&](std::span<std::byte> area) {
        return !area.empty() && payload.data() >= area.data() &&
               payload.data() + payload.size() <= area.data() + area.size();
    };
    if (!inside(storage)) storage = owner.storage();
    if (!inside(storage)) {
        ++stats_.datagrams_dropped;  // (every backend hands its datagrams over in their buffer)
        return;
    }
    const std::span<std::byte> writable(storage.data() + (payload.data() - storage.data()),
                                        payload.size());
    std::span<const std::byte> plain;
    switch (it->second->opener().open(writable, plain)) {
        case datagram_status::ok:
            ++stats_.datagrams_opened;
            upper_->on_datagram(from, plain, std::move(owner));
            return;
        case datagram_status::replayed:
            ++stats_.datagrams_replayed;
            return;
        case datagram_status::malformed:
        case datagram_status::tampered:
            ++stats_.datagrams_refused;
            static thread_local log::site_limit bad_datagrams;
            log::limited(bad_datagrams, log::level::warn, "secure",
                         "{}: a datagram from {} failed its tag: dropped",
                         settings_.identity.node_id, from.to_string());
            return;
    }
}

void secure_transport::on_closed(connection_id id, close_reason reason, int error) {
    auto it = conns_.find(id.index);
    const bool known = it != conns_.end() && it->second->id == id;
    const bool up = known && it->second->up;
    const bool inbound = known && it->second->inbound;
    if (known) conns_.erase(it);
    // The layer above knows a connection it was told of, and every one it dialed (a dial that
    // never got through the handshake ends like a failed connect: it redials).
    if (up) {
        upper_->on_closed(id, reason, error);
    } else if (!inbound) {
        upper_->on_closed(id, close_reason::connect_failed, error);
    }
}

void secure_transport::close(connection_id id) {
    conn* c = find(id);
    if (c == nullptr) {
        inner_->close(id);
        return;
    }
    if (c->closing) return;
    c->closing = true;
    push_out(*c);  // what the layer above sent before closing (an Error frame) goes first
    inner_->close(id);
}

std::size_t secure_transport::send(connection_id id, std::span<const std::byte> bytes) {
    conn* c = find(id);
    if (c == nullptr || !c->up || c->closing) return 0;
    if (c->out->size() + c->waiting_bytes + bytes.size() > settings_.max_unsent_bytes) return 0;
    c->guard->append(bytes, *c->out);
    mark_dirty(*c);
    return bytes.size();
}

std::size_t secure_transport::send_datagram(const address& to, std::span<const std::byte> bytes) {
    if (!offers_datagrams()) return 0;
    datagram_session* s = datagram_session_for(to);
    if (s == nullptr) return 0;
    if (!s->established()) {
        // Nothing leaves before the peer is proven: the handshake starts (or is repeated when
        // due) and the datagram waits for it, within bounds.
        const bool room = s->waiting().size() < settings_.max_waiting_datagrams;
        if (room) s->waiting().emplace_back(bytes.begin(), bytes.end());
        datagram_session::bytes hello = initiate(*s);
        if (!hello.empty()) inner_->send_datagram(to, hello);
        return room ? bytes.size() : 0;
    }
    s->sealer().seal(bytes, sealed_);
    if (inner_->send_datagram(to, sealed_) != sealed_.size()) return 0;
    ++stats_.datagrams_sealed;
    return bytes.size();
}

void secure_transport::mark_dirty(conn& c) {
    if (c.dirty) return;
    c.dirty = true;
    dirty_.push_back(c.id.index);
}

std::shared_ptr<secure_transport::byte_buffer> secure_transport::fresh_buffer() {
    for (auto& b : spare_) {
        if (b.use_count() == 1) {  // the backend is done with it
            std::shared_ptr<byte_buffer> free = std::move(b);
            b = std::move(spare_.back());
            spare_.pop_back();
            free->clear();
            return free;
        }
    }
    auto b = std::make_shared<byte_buffer>();
    b->reserve(std::size_t{64} * 1024);
    return b;
}

void secure_transport::push_out(conn& c) {
    if (c.up) {
        c.guard->close(*c.out);
        stats_.records_sealed += c.guard->records_sealed() - c.sealed_counted;
        c.sealed_counted = c.guard->records_sealed();
    }
    if (!c.out->empty()) {
        c.waiting_bytes += c.out->size();
        c.waiting.emplace_back(std::move(c.out), 0);
        c.out = fresh_buffer();
    }
    while (!c.waiting.empty()) {
        auto& [buffer, at] = c.waiting.front();
        const std::span<const std::byte> rest(buffer->data() + at, buffer->size() - at);
        const std::size_t taken = inner_->send(c.id, rest, buffer);
        at += taken;
        c.waiting_bytes -= taken;
        if (at < buffer->size()) break;  // the backend is full: the rest at the next flush
        if (spare_.size() < 64) spare_.push_back(std::move(buffer));
        c.waiting.pop_front();
    }
}

std::size_t secure_transport::flush() {
    if (!dirty_.empty()) {
        std::vector<std::uint32_t> work;
        work.swap(dirty_);
        for (std::uint32_t index : work) {
            auto it = conns_.find(index);
            if (it == conns_.end()) continue;
            conn& c = *it->second;
            c.dirty = false;
            if (c.closing) continue;
            push_out(c);
            if (!c.waiting.empty()) mark_dirty(c);  // the backend was full: the rest later
        }
    }
    return inner_->flush();
}

}  // namespace ringmesh::transport::secure
