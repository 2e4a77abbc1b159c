#include "engine/topics/topic_publisher.h"

#include <memory>

#include "engine/core/random.h"
#include "engine/wire/aligned.h"

namespace ringmesh::topics {

topic_publisher::topic_publisher(messaging::endpoint& endpoint, topic_publisher_config config)
    : producer_id_(config.producer_id != 0
                       ? config.producer_id
                       : random_source(random_source::os_seed()).next_nonzero()),
      caller_(endpoint, std::move(config.calls), "topics.publish") {}

void topic_publisher::publish(std::string_view topic, std::span<const std::byte> payload,
                              done_fn done) {
    flatbuffers::FlatBufferBuilder b(64 + topic.size() + payload.size());
    b.Finish(wire::CreateTopicPublish(
        b, b.CreateString(topic.data(), topic.size()),
        b.CreateVector(reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()),
        producer_id_, ++sequence_, 0));
    const auto* p = reinterpret_cast<const std::byte*>(b.GetBufferPointer());
    auto outcome = std::make_shared<publish_outcome>();
    caller_.call(
        {p, p + b.GetSize()}, true,
        [outcome](std::span<const std::byte> answer, std::string& leader) {
            std::vector<std::uint64_t> storage;  // the reply sits inside the RPC body
            const auto* reply = wire::verified_root<wire::TopicReply>(answer, storage);
            if (reply == nullptr) return cluster::answer_kind::retry;
            outcome->status = reply->status();
            outcome->index = reply->index();
            switch (reply->status()) {
                case wire::TopicStatus::Ok:
                    return cluster::answer_kind::done;
                case wire::TopicStatus::NotLeader:
                    leader = reply->leader() != nullptr ? reply->leader()->str() : std::string{};
                    return cluster::answer_kind::redirect;
                case wire::TopicStatus::Unavailable:
                    return cluster::answer_kind::retry;
                default:  // too large, bad request
                    return cluster::answer_kind::refused;
            }
        },
        [outcome, done = std::move(done)](cluster::call_verdict verdict, int attempts) {
            outcome->verdict = verdict;
            outcome->attempts = attempts;
            if (done) done(*outcome);
        });
}

}  // namespace ringmesh::topics
