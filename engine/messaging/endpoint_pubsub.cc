// Pub/sub: publish to the peers whose subscriptions match (a body built once for all), local
// subscriptions and their propagation to every peer, and delivery of what peers publish.
#include "engine/messaging/endpoint.h"

#include "engine/messaging/endpoint_state.h"

#include <algorithm>

#include "engine/messaging/topic.h"

namespace ringmesh::messaging {

publish_result endpoint::publish(std::string_view topic, std::span<const std::byte> bytes) {
    return publish(topic, bytes, true);
}

publish_result endpoint::publish_to_peers(std::string_view topic,
                                          std::span<const std::byte> bytes) {
    return publish(topic, bytes, false);
}

publish_result endpoint::publish(std::string_view topic, std::span<const std::byte> bytes,
                                 bool deliver_locally) {
    publish_result result;
    if (!valid_topic(topic)) {
        ++stats_.publish_invalid_topic;
        result.status = outcome::invalid_topic;
        return result;
    }
    ++stats_.published;
    if (topic_counts::counts* c = topic_counts_.at(topic)) ++c->published;
    std::span<const std::byte> body;
    for (auto& [id, p] : peers_) {
        if (!wants(*p, topic)) continue;
        if (body.empty()) body = builder_.publish(topic, bytes);  // built once for all peers
        switch (p->s.send(pubsub_stream, wire::FrameKind::Publish, body)) {
            case outcome::accepted:
                ++result.peers_sent;
                break;
            case outcome::too_large:
                ++result.peers_too_large;
                ++stats_.publish_too_large;
                break;
            default:
                ++result.peers_back_pressure;
                break;
        }
    }
    if (result.peers_too_large > 0) {
        result.status = outcome::too_large;
    } else if (result.peers_back_pressure > 0) {
        result.status = outcome::back_pressure;
    }
    if (!deliver_locally) return result;
    message m{config_.node_id, pubsub_stream, topic, bytes, nullptr};
    for_each_subscriber(topic, [&](const topic_handler& handler) {
        ++result.local_deliveries;
        ++stats_.delivered_local;
        handler(m);
    });
    return result;
}

endpoint::subscribe_result endpoint::subscribe(std::string_view pattern, topic_handler handler) {
    if (!valid_pattern(pattern)) {
        ++stats_.subscribe_invalid_pattern;
        return {outcome::invalid_topic, 0};
    }
    const subscription_id id = next_subscription_++;
    const bool new_pattern =
        std::none_of(subscriptions_.begin(), subscriptions_.end(),
                     [&](const auto& s) { return s.second.pattern == pattern; });
    subscriptions_[id] = {std::string(pattern), std::move(handler)};
    if (new_pattern) propagate(wire::FrameKind::Subscribe, pattern);
    return {outcome::accepted, id};
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

void endpoint::deliver_publish(peer_state& p, const wire::frame& f, const buffer_handle* owner) {
    const auto* pub = wire::body_as<wire::Publish>(f);
    message m{p.id, pubsub_stream, wire::view_of(pub->topic()), wire::bytes_of(pub->payload()),
              owner};
    if (!valid_topic(m.topic)) {
        ++stats_.protocol_violations;
        return;
    }
    if (topic_counts::counts* c = topic_counts_.at(m.topic)) ++c->received;
    for_each_subscriber(m.topic, [&](const topic_handler& handler) {
        ++stats_.delivered_remote;
        handler(m);
    });
}

void endpoint::apply_subscription(peer_state& p, const wire::frame& f) {
    const std::string_view pattern = wire::view_of(wire::body_as<wire::Subscription>(f)->pattern());
    if (!valid_pattern(pattern)) {
        ++stats_.protocol_violations;
        return;
    }
    auto at = std::find(p.remote_patterns.begin(), p.remote_patterns.end(), pattern);
    if (f.kind() == wire::FrameKind::Subscribe && at == p.remote_patterns.end()) {
        p.remote_patterns.emplace_back(pattern);
        ++remote_subscriptions_version_;
    } else if (f.kind() == wire::FrameKind::Unsubscribe && at != p.remote_patterns.end()) {
        p.remote_patterns.erase(at);
        ++remote_subscriptions_version_;
    }
}

std::vector<endpoint::peer_subscriptions> endpoint::remote_subscriptions() const {
    std::vector<peer_subscriptions> out;
    for (const auto& [id, p] : peers_) {
        if (!p->remote_patterns.empty()) out.push_back({id, reachable(*p), p->remote_patterns});
    }
    return out;
}

bool endpoint::wants(const peer_state& p, std::string_view topic) {
    return any_pattern_matches(p.remote_patterns, topic);
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

}  // namespace ringmesh::messaging
