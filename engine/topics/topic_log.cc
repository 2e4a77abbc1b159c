#include "engine/topics/topic_log.h"

#include "engine/messaging/topic.h"
#include "engine/replication/disk_ring.h"
#include "engine/wire/aligned.h"
#include "engine/wire/frame_codec.h"

namespace ringmesh::topics {

using wire::bytes_of;
using wire::view_of;

checked_publish check_publish(std::span<const std::byte> bytes, const topic_limits& limits) {
    checked_publish out;
    flatbuffers::Verifier::Options options;
    options.max_depth = 4;
    options.max_tables = 4;
    const auto* p = wire::verified_root<wire::TopicPublish>(bytes, out.aligned, options);
    if (p == nullptr) return out;
    const std::string_view topic = view_of(p->topic());
    if (!messaging::valid_topic(topic) || p->producer() == 0 || p->sequence() == 0) return out;
    if (topic.size() > limits.max_topic_bytes ||
        bytes_of(p->payload()).size() > limits.max_payload_bytes) {
        out.status = wire::TopicStatus::TooLarge;
        return out;
    }
    out.status = wire::TopicStatus::Ok;
    out.publish = p;
    return out;
}

std::vector<std::byte> stamped_entry(const wire::TopicPublish& p, std::uint64_t time_ms) {
    flatbuffers::FlatBufferBuilder b(64 + bytes_of(p.payload()).size());
    const std::string_view topic = view_of(p.topic());
    const auto payload = bytes_of(p.payload());
    b.Finish(wire::CreateTopicPublish(
        b, b.CreateString(topic.data(), topic.size()),
        b.CreateVector(reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()),
        p.producer(), p.sequence(), time_ms));
    const auto* data = reinterpret_cast<const std::byte*>(b.GetBufferPointer());
    return {data, data + b.GetSize()};
}

append_result topic_log::apply(const replication::log_entry& entry) {
    applied_ = entry.index;
    if (entry.kind != replication::entry_kind::command) return {wire::TopicStatus::Ok, 0, false};
    const checked_publish checked = check_publish(entry.data, limits_);
    if (checked.status != wire::TopicStatus::Ok) {
        ++stats_.malformed_entries;  // a leader never proposes one: the same no-op everywhere
        return {wire::TopicStatus::BadRequest, 0, false};
    }
    const wire::TopicPublish& p = *checked.publish;
    const log_index* first = nullptr;
    switch (producers_.check(p.producer(), p.sequence(), &first)) {
        case replication::writer_sessions<log_index>::verdict::duplicate:
            ++stats_.duplicates;  // a retry: its first offset, nothing appended again
            return {wire::TopicStatus::Ok, *first, false};
        case replication::writer_sessions<log_index>::verdict::stale:
            ++stats_.stale_sequences;
            return {wire::TopicStatus::BadRequest, 0, false};
        case replication::writer_sessions<log_index>::verdict::fresh:
            break;
    }
    const auto payload = bytes_of(p.payload());
    retained_.push_back({entry.index, std::string(view_of(p.topic())),
                         std::vector<std::byte>(payload.begin(), payload.end()), p.time_ms()});
    retained_bytes_ += payload.size();
    producers_.remember(p.producer(), p.sequence(), entry.index, entry.index);
    ++stats_.appended;
    enforce_retention();
    return {wire::TopicStatus::Ok, entry.index, true};
}

void topic_log::enforce_retention() {
    // The newest message always stays: the one just appended must be there to be delivered.
    const std::uint64_t newest_ms = retained_.back().time_ms;
    while (retained_.size() > 1) {
        const retained_message& oldest = retained_.front();
        const bool too_big = retained_bytes_ > limits_.retention_bytes;
        const bool too_old =
            limits_.retention_ms != 0 && oldest.time_ms + limits_.retention_ms < newest_ms;
        if (!too_big && !too_old) break;
        retained_bytes_ -= oldest.payload.size();
        dropped_through_ = oldest.index;
        retained_.pop_front();
        ++stats_.dropped_by_retention;
    }
}

std::vector<std::byte> topic_log::snapshot() const {
    flatbuffers::FlatBufferBuilder b(1024 + retained_bytes_);
    std::vector<flatbuffers::Offset<wire::TopicMessage>> messages;
    messages.reserve(retained_.size());
    for (const retained_message& m : retained_) {
        messages.push_back(wire::CreateTopicMessage(
            b, m.index, b.CreateString(m.topic),
            b.CreateVector(reinterpret_cast<const std::uint8_t*>(m.payload.data()),
                           m.payload.size()),
            m.time_ms));
    }
    std::vector<flatbuffers::Offset<wire::TopicProducer>> producers;
    producers_.for_each(
        [&](std::uint64_t producer, std::uint64_t sequence, log_index index, const log_index&) {
            producers.push_back(wire::CreateTopicProducer(b, producer, sequence, index));
        });
    b.Finish(wire::CreateTopicSnapshot(b, applied_, b.CreateVector(messages),
                                       b.CreateVector(producers), dropped_through_));
    const auto* p = reinterpret_cast<const std::byte*>(b.GetBufferPointer());
    return {p, p + b.GetSize()};
}

result<void> topic_log::restore(std::span<const std::byte> bytes) {
    auto damaged = [](const std::string& what) {
        return make_error(replication::storage_errc::corrupted, "topic snapshot: " + what);
    };
    std::vector<std::uint64_t> storage;
    flatbuffers::Verifier::Options options;
    options.max_tables = 4 * (bytes.size() / 8 + 16);
    const auto* s = wire::verified_root<wire::TopicSnapshot>(bytes, storage, options);
    if (s == nullptr) return damaged("malformed");
    if (s->dropped_through() > s->applied()) return damaged("dropped past what was applied");
    std::deque<retained_message> retained;
    std::uint64_t retained_bytes = 0;
    if (s->messages() != nullptr) {
        for (const wire::TopicMessage* m : *s->messages()) {
            const std::string_view topic = view_of(m->topic());
            if (!messaging::valid_topic(topic) || m->index() <= s->dropped_through() ||
                m->index() > s->applied() ||
                (!retained.empty() && m->index() <= retained.back().index))
                return damaged("a message out of order, or without a valid topic");
            const auto payload = bytes_of(m->payload());
            retained.push_back({m->index(), std::string(topic),
                                std::vector<std::byte>(payload.begin(), payload.end()),
                                m->time_ms()});
            retained_bytes += payload.size();
        }
    }
    replication::writer_sessions<log_index> producers(limits_.max_producers);
    if (s->producers() != nullptr) {
        for (const wire::TopicProducer* p : *s->producers()) {
            if (p->producer() == 0 ||
                !producers.restore(p->producer(), p->sequence(), p->index(), p->index()))
                return damaged("a bad or repeated producer");
        }
    }
    applied_ = s->applied();
    retained_ = std::move(retained);
    retained_bytes_ = retained_bytes;
    dropped_through_ = s->dropped_through();
    producers_ = std::move(producers);
    return ok();
}

}  // namespace ringmesh::topics
