#include "transport/sim/sim_network.h"

#include <algorithm>
#include <cstring>

#include "engine/core/errc.h"

namespace ringmesh::transport::sim {

namespace {
constexpr std::size_t chunk_bytes = std::size_t{16}
                                    << 10;  // a stream delivery is split into buffers

void fnv(std::uint64_t& h, const void* data, std::size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < n; ++i)
        h = (h ^ p[i]) * 1099511628211ull;
}
}  // namespace

// ---- the network ----

void sim_network::partition(const std::vector<std::string>& side_a,
                            const std::vector<std::string>& side_b) {
    for (const auto& a : side_a) {
        for (const auto& b : side_b) {
            blocked_.insert({a, b});
            blocked_.insert({b, a});
        }
    }
}

void sim_network::partition_one_way(const std::vector<std::string>& from,
                                    const std::vector<std::string>& to) {
    for (const auto& a : from) {
        for (const auto& b : to)
            blocked_.insert({a, b});
    }
}

bool sim_network::blocked(const std::string& x, const std::string& y) const {
    return blocked_.count({x, y}) != 0;
}

time_ns sim_network::delay() {
    if (faults_.max_delay_ns <= faults_.min_delay_ns) return faults_.min_delay_ns;
    return faults_.min_delay_ns +
           static_cast<time_ns>(
               rng_() % static_cast<std::uint64_t>(faults_.max_delay_ns - faults_.min_delay_ns));
}

bool sim_network::chance(double p) {
    return p > 0 && std::uniform_real_distribution<double>(0, 1)(rng_) < p;
}

void sim_network::schedule(event e) {
    e.order = order_++;
    wakes_.push({e.at, e.to});
    inbox_[e.to].push(std::move(e));
}

bool sim_network::stale(const std::pair<time_ns, std::string>& wake) const {
    auto it = inbox_.find(wake.second);
    // Valid while the node's earliest pending event is this one (an earlier one would have
    // its own, earlier entry): otherwise the event was consumed, or the node vanished. What
    // reaches a node that is down (crashed, not yet restarted) waits without moving time, as
    // for a paused one: nothing is there to take it until make_transport brings it back.
    return it == inbox_.end() || it->second.empty() || it->second.top().at != wake.first ||
           nodes_.count(wake.second) == 0;
}

time_ns sim_network::next_event_ns() const {
    while (!wakes_.empty() && stale(wakes_.top()))
        wakes_.pop();
    if (paused_.empty() || wakes_.empty() || paused_.count(wakes_.top().second) == 0) {
        return wakes_.empty() ? INT64_MAX : wakes_.top().first;
    }
    // Some node is paused (a few nodes, in the scenarios that pause): the earliest delivery
    // to one that runs.
    time_ns next = INT64_MAX;
    for (const auto& [node, queue] : inbox_) {
        if (!queue.empty() && paused_.count(node) == 0) next = std::min(next, queue.top().at);
    }
    return next;
}

void sim_network::resume(const std::string& address) {
    paused_.erase(address);
    auto it = inbox_.find(address);
    if (it != inbox_.end() && !it->second.empty()) wakes_.emplace(it->second.top().at, address);
}

std::vector<std::string> sim_network::take_due(time_ns now) {
    std::vector<std::string> due;
    while (!wakes_.empty() && wakes_.top().first <= now) {
        if (!stale(wakes_.top()) &&
            std::find(due.begin(), due.end(), wakes_.top().second) == due.end()) {
            due.push_back(wakes_.top().second);
        }
        wakes_.pop();
    }
    return due;
}

void sim_network::record(const event& e) {
    fnv(trace_, &e.at, sizeof e.at);
    fnv(trace_, e.from.data(), e.from.size());
    fnv(trace_, e.to.data(), e.to.size());
    fnv(trace_, &e.what, sizeof e.what);
    if (!e.payload.empty()) fnv(trace_, e.payload.data(), e.payload.size());
    ++delivered_;
}

std::unique_ptr<sim_transport> sim_network::make_transport(const std::string& local, shard_id owner,
                                                           std::size_t receive_buffers) {
    auto t = std::make_unique<sim_transport>(*this, local, owner, receive_buffers);
    nodes_[local] = t.get();
    // What reached it while it was down is due now.
    auto it = inbox_.find(local);
    if (it != inbox_.end() && !it->second.empty()) wakes_.emplace(it->second.top().at, local);
    return t;
}

// ---- a node's transport ----

sim_transport::sim_transport(sim_network& net, std::string local, shard_id owner,
                             std::size_t receive_buffers)
    : net_(net), local_(std::move(local)) {
    pool_ = std::move(buffer_pool::create(receive_buffers, chunk_bytes, owner)).value();
}

sim_transport::~sim_transport() {
    // The node vanishes (a crash, as seen from outside): its peers' streams break, and
    // nothing more is delivered to it.
    for (auto& [pipe, index] : by_pipe_) {
        auto& p = net_.pipes_[pipe];
        if (p.closed) continue;
        p.closed = true;
        const std::string& other = p.a == local_ ? p.b : p.a;
        net_.schedule(
            {now_ + net_.delay(), 0, sim_network::event::kind::closed, local_, other, pipe, {}});
    }
    net_.nodes_.erase(local_);
    net_.inbox_.erase(local_);
}

result<void> sim_transport::listen(const address& local) {
    if (local.to_string() != local_) {
        return make_error(transport_errc::bad_address,
                          "a sim node listens on its own address only");
    }
    return ok();
}

std::uint32_t sim_transport::allocate(std::uint32_t pipe, bool dialer) {
    std::uint32_t index = 0;
    while (index < conns_.size() && conns_[index].in_use)
        ++index;
    if (index == conns_.size()) conns_.emplace_back();
    conn& c = conns_[index];
    c.in_use = true;
    c.pipe = pipe;
    c.dialer = dialer;
    c.connected = false;
    c.out.clear();
    by_pipe_[pipe] = index;
    return index;
}

void sim_transport::release(std::uint32_t index) {
    conn& c = conns_[index];
    by_pipe_.erase(c.pipe);
    c.in_use = false;
    c.connected = false;
    ++c.generation;
}

sim_transport::conn* sim_transport::find(connection_id id) {
    if (id.index >= conns_.size()) return nullptr;
    conn& c = conns_[id.index];
    return c.in_use && c.generation == id.generation ? &c : nullptr;
}

result<connection_id> sim_transport::connect(const address& remote) {
    const std::string to = remote.to_string();
    const auto pipe = static_cast<std::uint32_t>(net_.pipes_.size());
    net_.pipes_.push_back({local_, to, {}, false, false});
    const std::uint32_t index = allocate(pipe, true);
    const time_ns there = now_ + net_.delay();
    if (net_.nodes_.count(to) == 0 || net_.blocked(local_, to)) {
        net_.pipes_[pipe].closed = true;
        net_.schedule({there, 0, sim_network::event::kind::closed, to, local_, pipe, {}});
    } else {
        net_.schedule({there, 0, sim_network::event::kind::accepted, local_, to, pipe, {}});
        // The handshake's answer reaches the dialer before anything the acceptor sends after
        // it (as a SYN-ACK precedes data): the acceptor's direction starts there.
        const time_ns connected_at = there + net_.delay();
        net_.pipes_[pipe].last_delivery[1] = connected_at;
        net_.schedule({connected_at, 0, sim_network::event::kind::connected, to, local_, pipe, {}});
    }
    return id_of(index);
}

void sim_transport::close(connection_id id) {
    conn* c = find(id);
    if (c == nullptr) return;
    flush();  // what was sent before close() still goes
    auto& p = net_.pipes_[c->pipe];
    const std::string& other = p.a == local_ ? p.b : p.a;
    if (!p.closed) {
        p.closed = true;
        const time_ns at = std::max(now_ + net_.delay(), p.last_delivery[side_of(*c)]);
        net_.schedule({at, 0, sim_network::event::kind::closed, local_, other, c->pipe, {}});
    }
    net_.schedule({now_, 0, sim_network::event::kind::closed, local_, local_, c->pipe, {}});
}

std::size_t sim_transport::send(connection_id id, std::span<const std::byte> bytes) {
    conn* c = find(id);
    if (c == nullptr || !c->connected || net_.pipes_[c->pipe].closed) return 0;
    c->out.insert(c->out.end(), bytes.begin(), bytes.end());
    return bytes.size();
}

std::size_t sim_transport::send_datagram(const address& to, std::span<const std::byte> bytes) {
    if (bytes.size() > caps().max_datagram_bytes) return 0;
    const std::string dest = to.to_string();
    // A lost datagram was still "sent": the sender cannot tell, as on a real network.
    if (net_.blocked(local_, dest) || net_.chance(net_.faults_.drop)) {
        ++net_.dropped_;
        return bytes.size();
    }
    const int copies = net_.chance(net_.faults_.duplicate) ? 2 : 1;
    for (int i = 0; i < copies; ++i) {
        net_.schedule({now_ + net_.delay(), 0, sim_network::event::kind::datagram, local_, dest, 0,
                       std::vector<std::byte>(bytes.begin(), bytes.end())});
    }
    return bytes.size();
}

std::size_t sim_transport::flush() {
    std::size_t flushed = 0;
    for (std::uint32_t index = 0; index < conns_.size(); ++index) {
        conn& c = conns_[index];
        if (!c.in_use || c.out.empty()) continue;
        auto& p = net_.pipes_[c.pipe];
        const std::string& other = p.a == local_ ? p.b : p.a;
        if (net_.blocked(local_, other)) {  // a partition cuts the stream, both ways
            c.out.clear();
            close(id_of(index));
            continue;
        }
        // In order per direction: never earlier than the previous delivery on this pipe.
        const time_ns at = std::max(now_ + net_.delay(), p.last_delivery[side_of(c)]);
        p.last_delivery[side_of(c)] = at;
        net_.schedule(
            {at, 0, sim_network::event::kind::bytes, local_, other, c.pipe, std::move(c.out)});
        c.out.clear();
        ++flushed;
    }
    return flushed;
}

std::size_t sim_transport::poll(time_ns now, event_handler& handler) {
    now_ = now;
    auto& q = net_.inbox_[local_];
    std::size_t handled = 0;
    while (!q.empty() && q.top().at <= now) {
        sim_network::event e = q.top();
        q.pop();
        net_.record(e);
        ++handled;
        using kind = sim_network::event::kind;
        switch (e.what) {
            case kind::accepted: {
                if (net_.pipes_[e.pipe].closed) break;
                const std::uint32_t index = allocate(e.pipe, false);
                conns_[index].connected = true;
                net_.pipes_[e.pipe].open = true;
                handler.on_connected(id_of(index), true);
                break;
            }
            case kind::connected: {
                auto it = by_pipe_.find(e.pipe);
                if (it == by_pipe_.end() || net_.pipes_[e.pipe].closed) break;
                conns_[it->second].connected = true;
                handler.on_connected(id_of(it->second), false);
                break;
            }
            case kind::bytes: {
                auto it = by_pipe_.find(e.pipe);
                if (it == by_pipe_.end()) break;
                const connection_id id = id_of(it->second);
                for (std::size_t at = 0; at < e.payload.size() && find(id); at += chunk_bytes) {
                    buffer_handle chunk = pool_->try_get();
                    if (!chunk) break;  // pool exhausted: the handler holds every buffer
                    const std::size_t n = std::min(chunk_bytes, e.payload.size() - at);
                    std::memcpy(chunk.storage().data(), e.payload.data() + at, n);
                    chunk.set_size(n);
                    handler.on_received(id, std::move(chunk));
                }
                break;
            }
            case kind::datagram: {
                buffer_handle buf = pool_->try_get();
                auto from = address::parse(e.from);
                if (!buf || !from) break;
                std::memcpy(buf.storage().data(), e.payload.data(), e.payload.size());
                buf.set_size(e.payload.size());
                const std::span<const std::byte> payload = buf.bytes();
                handler.on_datagram(*from, payload, std::move(buf));
                break;
            }
            case kind::closed: {
                auto it = by_pipe_.find(e.pipe);
                if (it == by_pipe_.end()) break;
                const conn& c = conns_[it->second];
                const connection_id id = id_of(it->second);
                const bool was_connected = c.connected;
                net_.pipes_[e.pipe].closed = true;
                release(it->second);
                handler.on_closed(id,
                                  e.from == local_ ? close_reason::local_close
                                  : was_connected  ? close_reason::peer_closed
                                                   : close_reason::connect_failed,
                                  0);
                break;
            }
        }
    }
    return handled;
}

}  // namespace ringmesh::transport::sim
