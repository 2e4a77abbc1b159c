#include "engine/messaging/shard_messaging.h"

#include <algorithm>
#include <cstring>

#include "engine/core/log.h"
#include "engine/messaging/endpoint_state.h"
#include "engine/messaging/topic.h"

namespace ringmesh::messaging {

// ---- the directory ----

messaging_directory::messaging_directory(std::string node_id, std::vector<shard_id> members)
    : node_id_(std::move(node_id)), members_(std::move(members)) {
    for (shard_id id : members_)
        max_id_ = std::max(max_id_, id);
    by_shard_ = std::make_unique<std::atomic<shard_messaging*>[]>(max_id_ + 1);
    batches_.resize(max_id_ + 1);
    for (shard_id i = 0; i <= max_id_; ++i)
        by_shard_[i].store(nullptr, std::memory_order_relaxed);
}

shard_messaging* messaging_directory::at(shard_id id) const noexcept {
    return id <= max_id_ ? by_shard_[id].load(std::memory_order_acquire) : nullptr;
}

void messaging_directory::set(shard_id id, shard_messaging* m) noexcept {
    by_shard_[id].store(m, std::memory_order_release);
}

void messaging_directory::note_largest_message(std::size_t bytes) noexcept {
    std::size_t now = largest_message_.load(std::memory_order_relaxed);
    while (bytes < now && !largest_message_.compare_exchange_weak(now, bytes)) {
    }
}

cross_shard_batch* messaging_directory::make_batch(shard_id maker) {
    auto& made = batches_[maker];
    made.push_back(std::make_unique<cross_shard_batch>());
    return made.back().get();
}

// ---- records ----
//
// A batch is a run of records, each [u32 length][u8 kind][fields]: integers in host order
// (both ends are one process), byte strings as [u32 length][bytes].

namespace {

enum class record_kind : std::uint8_t {
    send,               // peer, stream, bytes                         -> the peer's owner
    publish,            // topic, bytes                                -> every shard it concerns
    deliver,            // stream, pattern, topic, peer, bytes         -> a subscriber's shard
    call,               // call id, peer, method, timeout, bytes       -> the peer's owner
    call_result,        // call id, status, message, rtt, bytes        -> the caller's shard
    request,            // token, method, peer, bytes                  -> the serving shard
    response,           // token, status, message, bytes               -> the endpoint's shard
    peer_state,         // peer, owner, connected                      -> every shard
    pattern,            // shard, added, pattern                       -> every shard
    stream_claim,       // stream, shard                               -> every shard
    method_claim,       // method, shard                               -> every shard
    dial,               // datagram, address                           -> a peer's owner
    verdict,            // peer, gone, left                            -> every shard
    peer_patterns,      // shard, count, (peer, reachable, count, patterns) -> every shard
    replication_out,    // peer, batch                           -> the peer's owner
    replication_in,     // peer, batch                           -> the replication shard
    replication_claim,  // shard                                -> every shard
};

class record_writer {
  public:
    record_writer(std::vector<std::byte>& out, record_kind kind) : out_(out), start_(out.size()) {
        put<std::uint32_t>(0);  // the length, set by the destructor
        put(static_cast<std::uint8_t>(kind));
    }
    ~record_writer() {
        const auto length = static_cast<std::uint32_t>(out_.size() - start_);
        std::memcpy(out_.data() + start_, &length, sizeof length);
    }
    record_writer(const record_writer&) = delete;
    record_writer& operator=(const record_writer&) = delete;

    template <typename T>
    record_writer& put(T v) {
        static_assert(std::is_trivially_copyable_v<T>);
        const std::size_t at = out_.size();
        out_.resize(at + sizeof v);
        std::memcpy(out_.data() + at, &v, sizeof v);
        return *this;
    }
    record_writer& bytes(std::span<const std::byte> b) {
        put(static_cast<std::uint32_t>(b.size()));
        out_.insert(out_.end(), b.begin(), b.end());
        return *this;
    }
    record_writer& text(std::string_view s) {
        return bytes({reinterpret_cast<const std::byte*>(s.data()), s.size()});
    }

  private:
    std::vector<std::byte>& out_;
    std::size_t start_;
};

/// Reads a record written by record_writer (one process wrote it: trusted, never short).
class record_reader {
  public:
    explicit record_reader(std::span<const std::byte> record) : rest_(record) {}
    template <typename T>
    T get() {
        T v;
        std::memcpy(&v, rest_.data(), sizeof v);
        rest_ = rest_.subspan(sizeof v);
        return v;
    }
    std::span<const std::byte> bytes() {
        const auto n = get<std::uint32_t>();
        const auto b = rest_.first(n);
        rest_ = rest_.subspan(n);
        return b;
    }
    std::string_view text() {
        const auto b = bytes();
        return {reinterpret_cast<const char*>(b.data()), b.size()};
    }

  private:
    std::span<const std::byte> rest_;
};

constexpr std::size_t string_field(std::string_view s) {
    return sizeof(std::uint32_t) + s.size();
}
constexpr std::size_t record_header = sizeof(std::uint32_t) + 1;

}  // namespace

// ---- batches and their flow ----

struct shard_messaging::outbound {
    batch* staging = nullptr;   // records written this iteration, not yet handed over
    std::size_t in_flight = 0;  // bytes handed over and not yet given back
    std::vector<batch*> spare;  // given back, ready for reuse
};

struct shard_messaging::inbound {
    std::deque<batch*> pending;  // in arrival order; the front one is being worked through
    std::size_t offset = 0;      // into pending.front()
    std::vector<batch*> done;    // worked through; their return found the ring full
};

shard_messaging::shard_messaging(shard& owner, messaging_directory& directory, endpoint* ep,
                                 shard_messaging_config config)
    : shard_(owner), self_(owner.id()), directory_(directory), ep_(ep), config_(config) {
    shard_id max_id = 0;
    for (shard_id id : directory_.members())
        max_id = std::max(max_id, id);
    out_.resize(max_id + 1);
    in_.resize(max_id + 1);
    patterns_by_shard_.resize(max_id + 1);
    subscriptions_by_shard_.resize(max_id + 1);
    for (shard_id id : directory_.members()) {
        out_[id] = std::make_unique<outbound>();
        in_[id] = std::make_unique<inbound>();
    }
    flush_poller_ = shard_.add_poller(poll_step::flush, [this](time_ns) { return flush(); });
    work_poller_ =
        shard_.add_poller(poll_step::protocol, [this](time_ns) { return work_inbound(); });
    if (ep_ != nullptr) {
        ep_->on_peer_event([this](std::string_view peer, peer_event event) {
            if (event == peer_event::restarted) {
                if (peer_handler_) peer_handler_(peer, event);
                return;
            }
            announce_peer(peer, event == peer_event::connected);
        });
        for (const std::string& peer : ep_->connected_peers())
            announce_peer(peer, true);
        // A peer this endpoint dialed belongs to another endpoint of the node: that one
        // dials it (endpoint k of the node runs on the directory's k-th member shard).
        ep_->on_misplaced_peer(
            [this](std::uint32_t node_shard, const transport::address& a, bool datagram) {
                if (node_shard >= directory_.members().size()) return;
                const shard_id owner_shard = directory_.members()[node_shard];
                record_writer(record_to(owner_shard), record_kind::dial)
                    .put(static_cast<std::uint8_t>(datagram))
                    .text(a.to_string());
            });
    }
    if (ep_ != nullptr) directory_.note_largest_message(ep_->largest_message_bytes());
    directory_.set(self_, this);
}

shard_messaging::~shard_messaging() {
    directory_.set(self_, nullptr);
    shard_.remove_poller(flush_poller_);
    shard_.remove_poller(work_poller_);
    // The batches this shard made belong to the directory (make_batch): wherever they are now
    // — staged, spare, in a ring, held by another shard — they stay valid until it goes.
}

std::vector<std::byte>& shard_messaging::record_to(shard_id to) {
    outbound& o = *out_[to];
    if (o.staging == nullptr) {
        if (o.spare.empty()) {
            o.staging = directory_.make_batch(self_);
        } else {
            o.staging = o.spare.back();
            o.spare.pop_back();
        }
    }
    ++stats_.records_out;
    return o.staging->bytes;
}

bool shard_messaging::room_for(shard_id to, std::size_t bytes) const {
    const outbound& o = *out_[to];
    const std::size_t staged = o.staging == nullptr ? 0 : o.staging->bytes.size();
    // A record larger than the bound still goes, alone: else it never could.
    if (o.in_flight == 0 && staged == 0) return true;
    return o.in_flight + staged + bytes <= config_.max_bytes_in_flight;
}

void shard_messaging::broadcast(const std::function<void(std::vector<std::byte>&)>& write) {
    for (shard_id id : directory_.members()) {
        if (id != self_) write(record_to(id));
    }
}

std::size_t shard_messaging::flush() {
    std::size_t work = 0;
    if (ep_ != nullptr && (patterns_dirty_ || ep_->remote_subscriptions_version() !=
                                                  announced_subscriptions_version_)) {
        announce_subscriptions();
        ++work;
    }
    for (shard_id to : directory_.members()) {
        if (to == self_) continue;
        // Batches given back to their senders when the ring had no room.
        inbound& in = *in_[to];
        while (!in.done.empty() && give_back(to, in.done.back()))
            in.done.pop_back();
        outbound& o = *out_[to];
        if (o.staging == nullptr || o.staging->bytes.empty()) continue;
        shard_messaging* target = directory_.at(to);
        if (target == nullptr) continue;  // not started yet: the batch waits here
        batch* b = o.staging;
        const shard_id from = self_;
        if (shard_.submit_to(to, [target, b, from] { target->take(from, b); }) !=
            submit_outcome::accepted) {
            ++stats_.ring_full_retries;
            continue;  // stays staged; later records join it
        }
        o.in_flight += b->bytes.size();
        o.staging = nullptr;
        ++stats_.batches_out;
        ++work;
    }
    return work;
}

bool shard_messaging::give_back(shard_id maker, batch* b) {
    shard_messaging* sender = directory_.at(maker);
    if (sender == nullptr) return false;
    const shard_id self = self_;
    if (shard_.submit_to(maker, [sender, b, self] { sender->recycle(self, b); }) !=
        submit_outcome::accepted) {
        ++stats_.ring_full_retries;
        return false;
    }
    return true;
}

void shard_messaging::recycle(shard_id from, batch* b) {
    outbound& o = *out_[from];
    o.in_flight -= b->bytes.size();
    b->bytes.clear();
    o.spare.push_back(b);
}

void shard_messaging::take(shard_id from, batch* b) {
    ++stats_.batches_in;
    in_[from]->pending.push_back(b);
    work_inbound();
}

std::size_t shard_messaging::work_inbound() {
    std::size_t work = 0;
    for (shard_id from : directory_.members()) {
        if (from == self_) continue;
        inbound& in = *in_[from];
        while (!in.pending.empty()) {
            batch* b = in.pending.front();
            const std::span<const std::byte> all(b->bytes);
            bool blocked = false;
            while (in.offset < all.size()) {
                std::uint32_t length = 0;
                std::memcpy(&length, all.data() + in.offset, sizeof length);
                if (!apply(from, all.subspan(in.offset + sizeof length, length - sizeof length))) {
                    blocked = true;  // a window is full: this record, and what follows, wait
                    ++stats_.blocked_retries;
                    break;
                }
                in.offset += length;
                ++stats_.records_in;
                ++work;
            }
            if (blocked) break;
            in.pending.pop_front();
            in.offset = 0;
            if (!give_back(from, b)) in.done.push_back(b);  // given back by the flush step
        }
    }
    return work;
}

// ---- applying a record from another shard ----

bool shard_messaging::apply(shard_id from, std::span<const std::byte> record) {
    record_reader r(record);
    switch (static_cast<record_kind>(r.get<std::uint8_t>())) {
        case record_kind::send: {
            const std::string_view peer = r.text();
            const auto stream = r.get<std::uint32_t>();
            const auto bytes = r.bytes();
            const outcome o =
                ep_ == nullptr ? outcome::unknown_peer : ep_->send(peer, stream, bytes);
            if (o == outcome::back_pressure) return false;
            if (o != outcome::accepted) {
                ++stats_.undeliverable;
                static thread_local log::site_limit undeliverable;
                log::limited(undeliverable, log::level::warn, "messaging",
                             "a send to {} from shard {} was accepted there and is refused by "
                             "its owner here: {}",
                             peer, from, to_string(o));
            }
            return true;
        }
        case record_kind::publish: {
            const std::string_view topic = r.text();
            // A peer's window here is full: the record (and what follows) waits.
            if (ep_ != nullptr && !ep_->publish_ready(topic)) return false;
            publish_here(topic, r.bytes());
            return true;
        }
        case record_kind::deliver: {
            const auto stream = r.get<std::uint32_t>();
            const std::string_view pattern = r.text();
            const std::string_view topic = r.text();
            const std::string_view peer = r.text();
            const message m{peer, stream, topic, r.bytes(), nullptr};
            if (pattern.empty()) {
                if (auto it = stream_handlers_.find(stream); it != stream_handlers_.end())
                    it->second(m);
            } else {
                deliver_local(pattern, m);
            }
            return true;
        }
        case record_kind::call: {
            const auto call_id = r.get<std::uint64_t>();
            const std::string_view peer = r.text();
            const std::string_view method = r.text();
            const auto timeout = r.get<time_ns>();
            const auto request = r.bytes();
            const auto answer = [this, from, call_id](const rpc_result& result) {
                record_writer(record_to(from), record_kind::call_result)
                    .put(call_id)
                    .put(result.status)
                    .text(result.message)
                    .put(result.rtt_ns)
                    .bytes(result.payload);
            };
            const outcome o = ep_ == nullptr ? outcome::unknown_peer
                                             : ep_->call(peer, method, request, timeout, answer);
            if (o == outcome::back_pressure) return false;
            if (o != outcome::accepted) {
                answer({wire::RpcStatus::Unavailable, {}, to_string(o), 0});
            }
            return true;
        }
        case record_kind::call_result: {
            const auto call_id = r.get<std::uint64_t>();
            rpc_result result;
            result.status = r.get<wire::RpcStatus>();
            result.message = r.text();
            result.rtt_ns = r.get<time_ns>();
            result.payload = r.bytes();
            auto it = calls_.find(call_id);
            if (it == calls_.end()) return true;
            reply_handler handler = std::move(it->second);
            calls_.erase(it);
            if (handler) handler(result);
            return true;
        }
        case record_kind::request: {
            const auto token = r.get<std::uint64_t>();
            const std::string_view method = r.text();
            const std::string_view peer = r.text();
            const message m{peer, 0, {}, r.bytes(), nullptr};
            if (auto it = deferred_handlers_.find(std::string(method));
                it != deferred_handlers_.end()) {
                const deferred_handler handler = it->second;  // survives a change inside
                handler(m, pending_reply{std::string(peer), 0, token, from});
                return true;
            }
            rpc_reply reply{wire::RpcStatus::NoSuchMethod, {}, "no such method"};
            if (auto it = rpc_handlers_.find(std::string(method)); it != rpc_handlers_.end())
                reply = it->second(m);
            record_writer(record_to(from), record_kind::response)
                .put(token)
                .put(reply.status)
                .text(reply.message)
                .bytes(reply.payload);
            return true;
        }
        case record_kind::response: {
            const auto token = r.get<std::uint64_t>();
            rpc_reply reply;
            reply.status = r.get<wire::RpcStatus>();
            reply.message = r.text();
            reply.payload = r.bytes();
            auto it = served_.find(token);
            if (it == served_.end()) return true;
            if (ep_ != nullptr) ep_->reply(it->second, reply);
            served_.erase(it);
            return true;
        }
        case record_kind::peer_patterns: {
            const auto shard = r.get<shard_id>();
            endpoint_subscriptions& view = subscriptions_by_shard_[shard];
            view.known = true;
            view.peers.resize(r.get<std::uint32_t>());
            for (auto& peer : view.peers) {
                peer.peer = r.text();
                peer.reachable = r.get<std::uint8_t>() != 0;
                peer.patterns.resize(r.get<std::uint32_t>());
                for (auto& pattern : peer.patterns)
                    pattern = r.text();
            }
            return true;
        }
        case record_kind::peer_state: {
            const std::string_view peer = r.text();
            const auto owner = r.get<shard_id>();
            const bool connected = r.get<std::uint8_t>() != 0;
            peers_[std::string(peer)] = {owner, connected};
            if (peer_handler_)
                peer_handler_(peer, connected ? peer_event::connected : peer_event::disconnected);
            return true;
        }
        case record_kind::pattern: {
            const auto subscriber = r.get<shard_id>();
            const bool added = r.get<std::uint8_t>() != 0;
            claim_pattern(subscriber, std::string(r.text()), added);
            return true;
        }
        case record_kind::replication_out: {
            const std::string_view peer = r.text();
            const auto raft_batch = r.bytes();
            if (ep_ == nullptr || ep_->send_replication(peer, raft_batch) != outcome::accepted)
                ++stats_.replication_dropped;  // never waits: Raft resends what matters
            return true;
        }
        case record_kind::replication_in: {
            const std::string_view peer = r.text();
            const auto raft_batch = r.bytes();
            if (replication_handler_)
                replication_handler_(peer, raft_batch);
            else
                ++stats_.replication_unclaimed;
            return true;
        }
        case record_kind::replication_claim: {
            const auto claimant = r.get<shard_id>();
            if (ep_ != nullptr) {
                ep_->on_replication(
                    [this, claimant](std::string_view peer, std::span<const std::byte> raft_batch) {
                        record_writer(record_to(claimant), record_kind::replication_in)
                            .text(peer)
                            .bytes(raft_batch);
                    });
            }
            return true;
        }
        case record_kind::stream_claim: {
            const auto stream = r.get<std::uint32_t>();
            const auto claimant = r.get<shard_id>();
            if (ep_ != nullptr) {
                ep_->on_stream(stream, [this, claimant](const message& m) {
                    record_writer(record_to(claimant), record_kind::deliver)
                        .put(m.stream)
                        .text({})
                        .text({})
                        .text(m.peer)
                        .bytes(m.bytes);
                });
            }
            return true;
        }
        case record_kind::verdict: {
            const std::string_view peer = r.text();
            const bool gone = r.get<std::uint8_t>() != 0;
            const bool left = r.get<std::uint8_t>() != 0;
            if (ep_ == nullptr) return true;
            if (gone) {
                ep_->member_gone(peer, left);
            } else {
                ep_->member_alive(peer);
            }
            return true;
        }
        case record_kind::dial: {
            if (ep_ == nullptr) return true;
            const bool datagram = r.get<std::uint8_t>() != 0;
            if (auto address = transport::address::parse(r.text())) {
                if (datagram) {
                    ep_->dial_datagram(*address);
                } else {
                    ep_->dial(*address);
                }
            }
            return true;
        }
        case record_kind::method_claim: {
            const std::string method(r.text());
            const auto server = r.get<shard_id>();
            if (ep_ != nullptr) {
                ep_->serve_deferred(method,
                                    [this, server, method](const message& m, pending_reply reply) {
                                        const std::uint64_t token = next_served_++;
                                        served_.emplace(token, std::move(reply));
                                        record_writer(record_to(server), record_kind::request)
                                            .put(token)
                                            .text(method)
                                            .text(m.peer)
                                            .bytes(m.bytes);
                                    });
            }
            return true;
        }
    }
    return true;
}

// ---- peers ----

void shard_messaging::announce_subscriptions() {
    patterns_dirty_ = false;
    announced_subscriptions_version_ = ep_->remote_subscriptions_version();
    const std::vector<endpoint::peer_subscriptions> subs = ep_->remote_subscriptions();
    const shard_id self = self_;
    broadcast([&](std::vector<std::byte>& out) {
        record_writer w(out, record_kind::peer_patterns);
        w.put(self).put(static_cast<std::uint32_t>(subs.size()));
        for (const auto& sub : subs) {
            w.text(sub.peer)
                .put(static_cast<std::uint8_t>(sub.reachable))
                .put(static_cast<std::uint32_t>(sub.patterns.size()));
            for (const auto& pattern : sub.patterns)
                w.text(pattern);
        }
    });
}

bool shard_messaging::peers_of_shard_want(shard_id id, std::string_view topic) const {
    const endpoint_subscriptions& view = subscriptions_by_shard_[id];
    if (!view.known) return true;  // not heard yet: send, its endpoint knows
    return std::any_of(view.peers.begin(), view.peers.end(),
                       [&](const auto& peer) { return any_pattern_matches(peer.patterns, topic); });
}

std::size_t shard_messaging::peer_subscribers(std::string_view topic) const {
    std::size_t n = ep_ != nullptr ? ep_->subscribers(topic) : 0;
    for (shard_id id : directory_.members()) {
        if (id == self_) continue;
        for (const auto& peer : subscriptions_by_shard_[id].peers) {
            n += peer.reachable && any_pattern_matches(peer.patterns, topic);
        }
    }
    return n;
}

void shard_messaging::announce_peer(std::string_view peer, bool connected) {
    patterns_dirty_ = true;  // its reachability is part of what the others count
    peers_[std::string(peer)] = {self_, connected};
    const shard_id self = self_;
    broadcast([&](std::vector<std::byte>& out) {
        record_writer(out, record_kind::peer_state)
            .text(peer)
            .put(self)
            .put(static_cast<std::uint8_t>(connected));
    });
    if (peer_handler_)
        peer_handler_(peer, connected ? peer_event::connected : peer_event::disconnected);
}

void shard_messaging::share_member_verdict(std::string_view peer, bool gone, bool left) {
    broadcast([&](std::vector<std::byte>& out) {
        record_writer(out, record_kind::verdict)
            .text(peer)
            .put(static_cast<std::uint8_t>(gone))
            .put(static_cast<std::uint8_t>(left));
    });
}

bool shard_messaging::connected(std::string_view peer) const {
    auto it = peers_.find(std::string(peer));
    return it != peers_.end() && it->second.connected;
}

std::vector<std::string> shard_messaging::connected_peers() const {
    std::vector<std::string> out;
    for (const auto& [name, entry] : peers_) {
        if (entry.connected) out.push_back(name);
    }
    std::sort(out.begin(), out.end());
    return out;
}

bool shard_messaging::quiet() const {
    if (!calls_.empty() || !served_.empty()) return false;
    for (shard_id id : directory_.members()) {
        if (id == self_) continue;
        const outbound& o = *out_[id];
        const inbound& i = *in_[id];
        if (o.in_flight > 0 || (o.staging != nullptr && !o.staging->bytes.empty()) ||
            !i.pending.empty() || !i.done.empty()) {
            return false;
        }
    }
    return true;
}

std::optional<shard_id> shard_messaging::owner_of(std::string_view peer) const {
    auto it = peers_.find(std::string(peer));
    if (it == peers_.end()) return std::nullopt;
    return it->second.owner;
}

// ---- point to point ----

outcome shard_messaging::send(std::string_view peer, std::uint32_t stream,
                              std::span<const std::byte> bytes) {
    const auto owner = owner_of(peer);
    if (!owner) return outcome::unknown_peer;
    if (*owner == self_)
        return ep_ != nullptr ? ep_->send(peer, stream, bytes) : outcome::unknown_peer;
    // Refused here, as the owner's session would: once accepted it must be deliverable.
    if (bytes.size() > directory_.largest_message()) return outcome::too_large;
    const std::size_t size = record_header + string_field(peer) + 4 + 4 + bytes.size();
    if (!room_for(*owner, size)) {
        ++stats_.back_pressure;
        return outcome::back_pressure;
    }
    record_writer(record_to(*owner), record_kind::send).text(peer).put(stream).bytes(bytes);
    return outcome::accepted;
}

void shard_messaging::on_stream(std::uint32_t stream, stream_handler handler) {
    stream_handlers_[stream] = std::move(handler);
    const shard_id self = self_;
    broadcast([&](std::vector<std::byte>& out) {
        record_writer(out, record_kind::stream_claim).put(stream).put(self);
    });
    if (ep_ != nullptr) {
        ep_->on_stream(stream, [this, stream](const message& m) {
            if (auto it = stream_handlers_.find(stream); it != stream_handlers_.end())
                it->second(m);
        });
    }
}

// ---- pub/sub ----

bool shard_messaging::wanted_by(shard_id other, std::string_view topic) const {
    for (const auto& [pattern, count] : patterns_by_shard_[other]) {
        if (count > 0 && topic_matches(pattern, topic)) return true;
    }
    return false;
}

bool shard_messaging::subscribed_on_node(std::string_view topic) const {
    for (shard_id id : directory_.members()) {
        if (wanted_by(id, topic)) return true;
    }
    return false;
}

void shard_messaging::deliver_local(std::string_view pattern, const message& m) {
    for (const auto& [id, sub] : subscriptions_) {
        if (sub.pattern == pattern) sub.handler(m);
    }
}

void shard_messaging::deliver_to_shard(shard_id to, std::string_view pattern, const message& m) {
    if (to == self_) {
        deliver_local(pattern, m);
        return;
    }
    // Owed (the endpoint already acknowledged it): never refused, counted past the bound.
    const std::size_t size = record_header + 4 + string_field(pattern) + string_field(m.topic) +
                             string_field(m.peer) + 4 + m.bytes.size();
    if (!room_for(to, size)) ++stats_.over_limit_records;
    record_writer(record_to(to), record_kind::deliver)
        .put(m.stream)
        .text(pattern)
        .text(m.topic)
        .text(m.peer)
        .bytes(m.bytes);
}

void shard_messaging::publish_here(std::string_view topic, std::span<const std::byte> bytes) {
    const message m{directory_.node_id(), pubsub_stream, topic, bytes, nullptr};
    for (const auto& [id, sub] : subscriptions_) {
        if (topic_matches(sub.pattern, topic)) sub.handler(m);
    }
    if (ep_ != nullptr) ep_->publish_to_peers(topic, bytes);
}

outcome shard_messaging::publish(std::string_view topic, std::span<const std::byte> bytes) {
    if (!valid_topic(topic)) return outcome::invalid_topic;
    if (bytes.size() > directory_.largest_message()) return outcome::too_large;
    if (ep_ != nullptr && !ep_->publish_ready(topic)) {
        ++stats_.back_pressure;
        return outcome::back_pressure;
    }
    // The other shards it concerns: those that subscribe to it, and those whose endpoint
    // holds a peer that does (as they last announced). All or none: a retry must not
    // deliver twice.
    const std::size_t size = record_header + string_field(topic) + 4 + bytes.size();
    std::vector<shard_id>& targets = publish_targets_;  // reused: no allocation per publish
    targets.clear();
    for (shard_id id : directory_.members()) {
        if (id == self_) continue;
        const shard_messaging* other = directory_.at(id);
        if (other != nullptr && !wanted_by(id, topic) &&
            !(other->runs_endpoint() && peers_of_shard_want(id, topic))) {
            continue;
        }
        if (!room_for(id, size)) {
            ++stats_.back_pressure;
            return outcome::back_pressure;
        }
        targets.push_back(id);
    }
    for (shard_id id : targets)
        record_writer(record_to(id), record_kind::publish).text(topic).bytes(bytes);
    publish_here(topic, bytes);
    return outcome::accepted;
}

void shard_messaging::claim_pattern(shard_id subscriber, const std::string& pattern, bool add) {
    std::uint32_t& counted = patterns_by_shard_[subscriber][pattern];
    counted = add ? counted + 1 : (counted > 0 ? counted - 1 : 0);
    const std::uint32_t count = counted;  // the entry may go next
    if (count == 0) patterns_by_shard_[subscriber].erase(pattern);
    if (ep_ == nullptr) return;
    const auto key = std::pair{subscriber, pattern};
    auto it = endpoint_subscriptions_.find(key);
    if (add && it == endpoint_subscriptions_.end()) {
        const auto made = ep_->subscribe(pattern, [this, subscriber, pattern](const message& m) {
            deliver_to_shard(subscriber, pattern, m);
        });
        if (made.status == outcome::accepted) endpoint_subscriptions_.emplace(key, made.id);
    } else if (!add && count == 0 && it != endpoint_subscriptions_.end()) {
        ep_->unsubscribe(it->second);
        endpoint_subscriptions_.erase(it);
    }
}

endpoint::subscribe_result shard_messaging::subscribe(std::string_view pattern,
                                                      topic_handler handler) {
    if (!valid_pattern(pattern)) return {outcome::invalid_topic, 0};
    const subscription_id id = next_subscription_++;
    const bool first = patterns_by_shard_[self_].count(std::string(pattern)) == 0;
    subscriptions_[id] = {std::string(pattern), std::move(handler)};
    claim_pattern(self_, std::string(pattern), true);
    if (first) {
        const shard_id self = self_;
        broadcast([&](std::vector<std::byte>& out) {
            record_writer(out, record_kind::pattern).put(self).put(std::uint8_t{1}).text(pattern);
        });
    }
    return {outcome::accepted, id};
}

void shard_messaging::unsubscribe(subscription_id id) {
    auto it = subscriptions_.find(id);
    if (it == subscriptions_.end()) return;
    const std::string pattern = std::move(it->second.pattern);
    subscriptions_.erase(it);
    claim_pattern(self_, pattern, false);
    if (patterns_by_shard_[self_].count(pattern) == 0) {
        const shard_id self = self_;
        broadcast([&](std::vector<std::byte>& out) {
            record_writer(out, record_kind::pattern).put(self).put(std::uint8_t{0}).text(pattern);
        });
    }
}

// ---- rpc ----

outcome shard_messaging::call(std::string_view peer, std::string_view method,
                              std::span<const std::byte> request, time_ns timeout_ns,
                              reply_handler on_reply) {
    const auto owner = owner_of(peer);
    if (!owner) return outcome::unknown_peer;
    if (*owner == self_) {
        return ep_ != nullptr ? ep_->call(peer, method, request, timeout_ns, std::move(on_reply))
                              : outcome::unknown_peer;
    }
    if (request.size() > directory_.largest_message()) return outcome::too_large;
    const std::size_t size = record_header + 8 + string_field(peer) + string_field(method) +
                             sizeof(time_ns) + 4 + request.size();
    if (!room_for(*owner, size)) {
        ++stats_.back_pressure;
        return outcome::back_pressure;
    }
    const std::uint64_t call_id = next_call_++;
    calls_.emplace(call_id, std::move(on_reply));
    record_writer(record_to(*owner), record_kind::call)
        .put(call_id)
        .text(peer)
        .text(method)
        .put(timeout_ns)
        .bytes(request);
    return outcome::accepted;
}

void shard_messaging::serve(std::string_view method, rpc_handler handler) {
    rpc_handlers_[std::string(method)] = std::move(handler);
    const shard_id self = self_;
    broadcast([&](std::vector<std::byte>& out) {
        record_writer(out, record_kind::method_claim).text(method).put(self);
    });
    if (ep_ != nullptr) {
        const std::string name(method);
        ep_->serve(method, [this, name](const message& m) {
            auto it = rpc_handlers_.find(name);
            return it != rpc_handlers_.end()
                       ? it->second(m)
                       : rpc_reply{wire::RpcStatus::NoSuchMethod, {}, "no such method"};
        });
        ep_->serve_deferred(method, nullptr);  // a deferred claim by another shard is replaced
    }
}

// ---- the service port: deferred calls and the priority lane ----

void shard_messaging::serve_deferred(std::string_view method, deferred_handler handler) {
    const std::string name(method);
    if (!handler) {
        deferred_handlers_.erase(name);
        if (ep_ != nullptr) ep_->serve_deferred(method, nullptr);
        return;
    }
    deferred_handlers_[name] = std::move(handler);
    const shard_id self = self_;
    broadcast([&](std::vector<std::byte>& out) {
        record_writer(out, record_kind::method_claim).text(method).put(self);
    });
    if (ep_ != nullptr) {
        // Calls on this shard's own sessions are answered through its endpoint.
        ep_->serve_deferred(method, [this, name](const message& m, pending_reply reply) {
            if (auto it = deferred_handlers_.find(name); it != deferred_handlers_.end()) {
                const deferred_handler serving = it->second;  // survives a change inside
                serving(m, std::move(reply));
            }
        });
    }
}

bool shard_messaging::reply(const pending_reply& to, const rpc_reply& reply) {
    if (to.via_shard == UINT64_MAX) return ep_ != nullptr && ep_->reply(to, reply);
    // Passed here by the shard whose endpoint holds the caller: the answer goes back there,
    // which answers the caller (or finds it gone).
    record_writer(record_to(static_cast<shard_id>(to.via_shard)), record_kind::response)
        .put(to.call_id)
        .put(reply.status)
        .text(reply.message)
        .bytes(reply.payload);
    return true;
}

outcome shard_messaging::send_replication(std::string_view peer,
                                          std::span<const std::byte> raft_batch) {
    const auto owner = owner_of(peer);
    if (!owner || !connected(peer)) return outcome::unknown_peer;
    if (*owner == self_)
        return ep_ != nullptr ? ep_->send_replication(peer, raft_batch) : outcome::unknown_peer;
    if (raft_batch.size() > directory_.largest_message()) return outcome::too_large;
    const std::size_t size = record_header + string_field(peer) + 4 + raft_batch.size();
    if (!room_for(*owner, size)) {
        ++stats_.back_pressure;
        return outcome::back_pressure;
    }
    record_writer(record_to(*owner), record_kind::replication_out).text(peer).bytes(raft_batch);
    return outcome::accepted;
}

void shard_messaging::on_replication(replication_handler handler) {
    const bool claim = static_cast<bool>(handler);
    replication_handler_ = std::move(handler);
    if (replication_router_) return;  // the routers name this shard for its batches
    if (ep_ != nullptr) {
        ep_->on_replication([this](std::string_view peer, std::span<const std::byte> raft_batch) {
            if (replication_handler_) replication_handler_(peer, raft_batch);
        });
    }
    if (!claim) return;  // the others keep passing batches here, dropped until a new claim
    const shard_id self = self_;
    broadcast([&](std::vector<std::byte>& out) {
        record_writer(out, record_kind::replication_claim).put(self);
    });
}

void shard_messaging::route_replication(replication_router router) {
    replication_router_ = std::move(router);
    if (ep_ == nullptr) return;
    if (!replication_router_) {
        ep_->on_replication(nullptr);
        return;
    }
    route_to_ = [this](shard_id to, std::span<const std::byte> part) {
        if (to == self_ || to >= out_.size()) {
            if (to == self_ && replication_handler_)
                replication_handler_(routing_peer_, part);
            else
                ++stats_.replication_unclaimed;
            return;
        }
        // Owed like a delivery: never refused here, the receiving host's Raft paces itself.
        record_writer(record_to(to), record_kind::replication_in).text(routing_peer_).bytes(part);
    };
    ep_->on_replication([this](std::string_view peer, std::span<const std::byte> raft_batch) {
        routing_peer_ = peer;
        replication_router_(raft_batch, route_to_);
        routing_peer_ = {};
    });
}

}  // namespace ringmesh::messaging
