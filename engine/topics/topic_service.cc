#include "engine/topics/topic_service.h"

#include <chrono>

#include "engine/messaging/topic.h"

namespace ringmesh::topics {

using replication::raft_status;

topic_service::topic_service(messaging::service_port& endpoint, cluster::raft_link& link,
                             topic_service_config config)
    : group_service(endpoint, link, config.group, config.method, config.snapshot_every, "topics"),
      config_(std::move(config)),
      log_(config_.limits) {
    if (!config_.wall_clock_ms) {
        config_.wall_clock_ms = [] {
            return static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count());
        };
    }
}

// ---- publishing ----

void topic_service::on_request(const messaging::message& m, messaging::pending_reply reply) {
    ++stats_.publishes;
    const checked_publish checked = check_publish(m.bytes, config_.limits);
    if (checked.status != wire::TopicStatus::Ok) {
        ++stats_.refused;
        answer(reply, checked.status, 0);
        return;
    }
    replication::raft* r = replica();
    if (r == nullptr || !r->is_leader()) {
        refuse_not_leader(reply);
        return;
    }
    const std::vector<std::byte> entry = stamped_entry(*checked.publish, config_.wall_clock_ms());
    const replication::propose_result p = r->propose(endpoint_.owner().now_ns(), entry);
    switch (p.status) {
        case raft_status::ok:
            break;
        case raft_status::not_leader:
            refuse_not_leader(reply);
            return;
        case raft_status::too_large:
            ++stats_.refused;
            answer(reply, wire::TopicStatus::TooLarge, 0);
            return;
        default:  // transferring, a fresh leader not ready yet: soon
            ++stats_.unavailable;
            answer(reply, wire::TopicStatus::Unavailable, 0);
            return;
    }
    ++stats_.proposed;
    if (auto lost = publishes_.add(p.index, p.term, std::move(reply))) {
        ++stats_.lost;
        answer(lost->reply, wire::TopicStatus::Unavailable, p.index);
    }
}

void topic_service::refuse_not_leader(const messaging::pending_reply& to) {
    const std::string* leader = leader_elsewhere();
    if (leader == nullptr) {
        ++stats_.unavailable;
        answer(to, wire::TopicStatus::Unavailable, 0);
        return;
    }
    ++stats_.not_leader;
    answer(to, wire::TopicStatus::NotLeader, 0, *leader);
}

void topic_service::answer(const messaging::pending_reply& to, wire::TopicStatus status,
                           log_index index, std::string_view leader) {
    flatbuffers::FlatBufferBuilder b(64);
    const auto leader_name = leader.empty() ? 0 : b.CreateString(leader.data(), leader.size());
    b.Finish(wire::CreateTopicReply(b, status, index, leader_name));
    send_answer(to, b);
}

// ---- the log and the subscribers ----

void topic_service::on_apply(const replication::log_entry& entry) {
    const append_result result = log_.apply(entry);
    if (auto settled = publishes_.applied(entry.index, entry.term)) {
        if (settled->committed) {
            ++stats_.answered;
            answer(settled->reply, result.status, result.index);
        } else {
            ++stats_.lost;  // another leader's entry took the index
            answer(settled->reply, wire::TopicStatus::Unavailable, entry.index);
        }
    }
    if (!result.appended) return;
    // A handler may subscribe and unsubscribe: walk by id.
    for (subscription_id id = 1; id < next_subscription_;) {
        auto it = subscribers_.lower_bound(id);
        if (it == subscribers_.end()) break;
        id = it->first + 1;
        deliver(it->second, log_.last());
    }
}

void topic_service::deliver(subscriber& s, const retained_message& m) {
    if (m.index < s.next) return;
    s.next = m.index + 1;
    if (!messaging::topic_matches(s.pattern, m.topic)) return;
    ++stats_.delivered;
    const message_handler handler = s.on_message;  // survives an unsubscribe inside
    handler(delivery{m.index, m.topic, m.payload, m.time_ms});
}

void topic_service::catch_up(subscriber& s) {
    const log_index first = log_.first_index();
    if (s.next < first) {
        ++stats_.truncated_notices;
        if (s.on_truncated) s.on_truncated(first);
        s.next = first;
    }
    std::vector<const retained_message*> pending;
    log_.read_from(s.next, [&](const retained_message& m) { pending.push_back(&m); });
    for (const retained_message* m : pending)
        deliver(s, *m);
}

topic_service::subscription_id topic_service::subscribe(std::string_view pattern, log_index from,
                                                        message_handler on_message,
                                                        truncated_handler on_truncated) {
    if (!messaging::valid_pattern(pattern)) return 0;
    const subscription_id id = next_subscription_++;
    subscriber& s = subscribers_[id];
    s.pattern = std::string(pattern);
    s.next = from == 0 ? log_.applied() + 1 : from;
    s.on_message = std::move(on_message);
    s.on_truncated = std::move(on_truncated);
    catch_up(s);
    return id;
}

void topic_service::unsubscribe(subscription_id id) {
    subscribers_.erase(id);
}

result<void> topic_service::on_restore(const replication::snapshot_meta& meta,
                                       std::span<const std::byte> data) {
    if (result<void> r = log_.restore(data); !r) return r;
    publishes_.covered_through(meta.index, [&](const cluster::pending_proposals::settled& s) {
        ++stats_.lost;
        answer(s.reply, wire::TopicStatus::Unavailable, meta.index);
    });
    // The log jumped: every subscriber gets what it now holds from its offset on.
    for (subscription_id id = 1; id < next_subscription_;) {
        auto it = subscribers_.lower_bound(id);
        if (it == subscribers_.end()) break;
        id = it->first + 1;
        catch_up(it->second);
    }
    return ok();
}

}  // namespace ringmesh::topics
