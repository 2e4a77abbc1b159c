#include "engine/membership/gossip_agent.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "engine/core/log.h"

namespace ringmesh::membership {

namespace {
constexpr std::size_t length_prefix = 4;
constexpr std::size_t stream_chunk = std::size_t{64} << 10;  // handed to the transport per send()
}  // namespace

std::uint64_t agent_stats::refused() const noexcept {
    return std::accumulate(refused_by_keyring.begin() + 1, refused_by_keyring.end(),
                           std::uint64_t{0}) +
           std::accumulate(refused_by_codec.begin() + 1, refused_by_codec.end(), std::uint64_t{0}) +
           oversized;
}

result<std::unique_ptr<gossip_agent>> gossip_agent::create(
    std::unique_ptr<transport::transport> transport, agent_config config, keyring keys) {
    if (config.swim.address.empty()) config.swim.address = config.listen.to_string();
    if (config.swim.name.empty()) config.swim.name = config.swim.address;
    if (!transport->caps().datagrams || !transport->caps().streams) {
        return make_error(transport::transport_errc::not_supported,
                          "gossip needs datagrams and streams");
    }
    if (auto r = transport->listen(config.listen); !r) return r.err();
    return std::unique_ptr<gossip_agent>(
        new gossip_agent(std::move(transport), std::move(config), std::move(keys)));
}

gossip_agent::gossip_agent(std::unique_ptr<transport::transport> transport, agent_config config,
                           keyring keys)
    : transport_(std::move(transport)),
      config_(std::move(config)),
      keys_(std::move(keys)),
      swim_(config_.swim) {}

gossip_agent::~gossip_agent() = default;

// Both go through poll(), so the transport learns the time before anything is sent.
void gossip_agent::start(time_ns now) {
    swim_.start(now);
    poll(now);
}

void gossip_agent::leave(time_ns now) {
    swim_.leave(now);
    poll(now);
}

void gossip_agent::update_meta(time_ns now, member_meta meta) {
    now_ = now;
    swim_.update_meta(now, std::move(meta));
}

std::size_t gossip_agent::poll(time_ns now) {
    now_ = now;
    std::size_t work = transport_->poll(now, *this);
    if (now >= swim_.next_deadline()) {
        swim_.on_tick(now);
        ++work;
    }
    send_outbox();
    // Streams that take too long (a peer that accepted and went silent) are cut.
    for (auto& [token, s] : streams_) {
        if (!s.answered && now - s.opened > config_.stream_timeout) {
            s.answered = true;
            ++stats_.stream_timeouts;
            transport_->close(conn_of(token));
        }
        if (s.out_at < s.out.size()) pump_stream(conn_of(token), s);
    }
    work += transport_->flush();
    return work;
}

const transport::address* gossip_agent::resolve(const std::string& text) {
    auto it = resolved_.find(text);
    if (it != resolved_.end()) return &it->second;
    auto parsed = transport::address::parse(text);
    if (!parsed) return nullptr;
    return &resolved_.emplace(text, *parsed).first->second;
}

bool gossip_agent::accept_message(std::span<const std::byte> sealed, gossip_message& out) {
    const open_status opened = keys_.open(sealed, plain_);
    if (opened != open_status::ok) {
        ++stats_.refused_by_keyring[static_cast<std::size_t>(opened)];
        static thread_local log::site_limit keyring_refusals;
        log::limited(keyring_refusals, log::level::warn, "membership",
                     "gossip refused by the keyring: {}", to_string(opened));
        return false;
    }
    const gossip_error decoded = decode(plain_, config_.cluster_id, out);
    if (decoded != gossip_error::none) {
        ++stats_.refused_by_codec[static_cast<std::size_t>(decoded)];
        static thread_local log::site_limit codec_refusals;
        log::limited(codec_refusals, log::level::warn, "membership", "gossip refused: {}",
                     to_string(decoded));
        return false;
    }
    return true;
}

void gossip_agent::send_outbox() {
    for (outgoing& o : swim_.take_outbox()) {
        switch (o.via) {
            case outgoing::channel::datagram: {
                const transport::address* to = resolve(o.to);
                if (to == nullptr) {
                    ++stats_.datagram_send_failed;
                    break;
                }
                plain_.clear();
                encode(o.message, config_.cluster_id, plain_);
                sealed_.clear();
                keys_.seal(plain_, sealed_);
                if (sealed_.size() > transport_->caps().max_datagram_bytes) {
                    // The piggyback budget keeps this rare: go without the updates.
                    o.message.updates.clear();
                    plain_.clear();
                    encode(o.message, config_.cluster_id, plain_);
                    sealed_.clear();
                    keys_.seal(plain_, sealed_);
                }
                if (transport_->send_datagram(*to, sealed_) == 0) {
                    ++stats_.datagram_send_failed;
                } else {
                    ++stats_.datagrams_out;
                }
                break;
            }
            case outgoing::channel::stream: {
                const transport::address* to = resolve(o.to);
                auto conn = to ? transport_->connect(*to)
                               : result<transport::connection_id>(
                                     make_error(transport::transport_errc::bad_address));
                if (!conn) {
                    ++stats_.stream_failures;  // a join retries every join_retry_interval
                    break;
                }
                ++stats_.streams_opened;
                stream_state& s = streams_[token_of(*conn)];
                s = {};
                s.outbound = true;
                s.opened = now_;
                queue_stream_message(s, o.message);
                break;
            }
            case outgoing::channel::stream_reply: {
                auto it = streams_.find(o.reply_token);
                if (it == streams_.end()) break;  // the asker hung up
                queue_stream_message(it->second, o.message);
                it->second.answered = true;  // close once the reply is out
                pump_stream(conn_of(o.reply_token), it->second);
                break;
            }
        }
    }
}

void gossip_agent::queue_stream_message(stream_state& s, const gossip_message& m) {
    plain_.clear();
    encode(m, config_.cluster_id, plain_);
    const std::size_t at = s.out.size();
    s.out.resize(at + length_prefix);
    keys_.seal(plain_, s.out);
    const auto length = static_cast<std::uint32_t>(s.out.size() - at - length_prefix);
    std::memcpy(s.out.data() + at, &length, length_prefix);
}

void gossip_agent::pump_stream(transport::connection_id conn, stream_state& s) {
    if (!s.connected) return;
    while (s.out_at < s.out.size()) {
        const std::size_t n = std::min(stream_chunk, s.out.size() - s.out_at);
        if (transport_->send(conn, std::span(s.out).subspan(s.out_at, n)) == 0) return;
        s.out_at += n;
    }
    // An inbound stream is done once its reply is out: close (after the flush).
    if (!s.outbound && s.answered) transport_->close(conn);
}

void gossip_agent::on_connected(transport::connection_id conn, bool inbound) {
    if (inbound) {
        ++stats_.streams_accepted;
        stream_state& s = streams_[token_of(conn)];
        s = {};
        s.opened = now_;
        s.connected = true;
        return;
    }
    auto it = streams_.find(token_of(conn));
    if (it == streams_.end()) return;
    it->second.connected = true;
    pump_stream(conn, it->second);
}

void gossip_agent::on_received(transport::connection_id conn, buffer_handle chunk) {
    auto it = streams_.find(token_of(conn));
    if (it == streams_.end()) return;
    stream_state& s = it->second;
    const auto bytes = chunk.bytes();
    s.in.insert(s.in.end(), bytes.begin(), bytes.end());
    if (s.in.size() < length_prefix) return;
    std::uint32_t length = 0;
    std::memcpy(&length, s.in.data(), length_prefix);
    if (length > config_.max_stream_message_bytes) {
        ++stats_.oversized;
        s.answered = true;
        transport_->close(conn);
        return;
    }
    if (s.in.size() < length_prefix + length) return;
    gossip_message m;
    const bool good =
        accept_message(std::span(s.in).subspan(length_prefix, length), m) &&
        (s.outbound ? m.kind == gossip_kind::push_pull_reply : m.kind == gossip_kind::push_pull);
    s.in.clear();
    if (!good || s.outbound) {
        // Outbound: the reply is all we wanted. Inbound garbage: hang up.
        s.answered = true;
        transport_->close(conn);
    }
    if (good) swim_.on_message(now_, m, token_of(conn));
}

void gossip_agent::on_datagram(const transport::address& from, std::span<const std::byte> payload,
                               buffer_handle owner) {
    (void)from;  // the sender's answer address travels inside the authenticated message
    (void)owner;
    ++stats_.datagrams_in;
    gossip_message m;
    if (!accept_message(payload, m)) return;
    if (m.kind == gossip_kind::push_pull || m.kind == gossip_kind::push_pull_reply) {
        ++stats_.refused_by_codec[static_cast<std::size_t>(gossip_error::bad_kind)];
        return;  // full tables travel on streams only
    }
    swim_.on_message(now_, m);
}

void gossip_agent::on_closed(transport::connection_id conn, transport::close_reason reason,
                             int error) {
    (void)reason;
    (void)error;
    auto it = streams_.find(token_of(conn));
    if (it == streams_.end()) return;
    if (it->second.outbound && !it->second.answered) ++stats_.stream_failures;
    streams_.erase(it);
}

}  // namespace ringmesh::membership
