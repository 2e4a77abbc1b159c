#include "engine/kv/kv_client.h"

#include <cstring>

#include "engine/core/random.h"
#include "engine/wire/aligned.h"

namespace ringmesh::kv {

kv_client::kv_client(messaging::endpoint& endpoint, kv_client_config config)
    : client_id_(config.client_id != 0 ? config.client_id
                                       : random_source(random_source::os_seed()).next_nonzero()),
      caller_(endpoint, std::move(config.calls), "kv") {}

void kv_client::get(std::string_view key, done_fn done, bool lease_read) {
    start(wire::KvOp::Get, key, {}, {}, false, lease_read, std::move(done));
}
void kv_client::put(std::string_view key, std::span<const std::byte> value, done_fn done) {
    start(wire::KvOp::Put, key, value, {}, false, false, std::move(done));
}
void kv_client::append(std::string_view key, std::span<const std::byte> value, done_fn done) {
    start(wire::KvOp::Append, key, value, {}, false, false, std::move(done));
}
void kv_client::cas(std::string_view key, std::optional<std::span<const std::byte>> expected,
                    std::span<const std::byte> value, done_fn done) {
    start(wire::KvOp::Cas, key, value, expected.value_or(std::span<const std::byte>{}),
          !expected.has_value(), false, std::move(done));
}
void kv_client::remove(std::string_view key, done_fn done) {
    start(wire::KvOp::Delete, key, {}, {}, false, false, std::move(done));
}

void kv_client::start(wire::KvOp op, std::string_view key, std::span<const std::byte> value,
                      std::span<const std::byte> expected, bool expect_absent, bool lease_read,
                      done_fn done) {
    const bool write = op != wire::KvOp::Get;
    flatbuffers::FlatBufferBuilder b(64 + key.size() + value.size() + expected.size());
    const auto k = b.CreateString(key.data(), key.size());
    const auto v =
        b.CreateVector(reinterpret_cast<const std::uint8_t*>(value.data()), value.size());
    const auto e =
        b.CreateVector(reinterpret_cast<const std::uint8_t*>(expected.data()), expected.size());
    // Each write gets the next sequence once; its retries repeat it.
    const std::uint64_t sequence = write ? ++sequence_ : 0;
    b.Finish(wire::CreateKvCommand(b, op, k, v, e, expect_absent, write ? client_id_ : 0, sequence,
                                   lease_read));
    const auto* p = reinterpret_cast<const std::byte*>(b.GetBufferPointer());
    // The service's last answer, read by `interpret` and handed to `done`.
    auto outcome = std::make_shared<kv_outcome>();
    caller_.call(
        {p, p + b.GetSize()}, write,
        [outcome](std::span<const std::byte> answer, std::string& leader) {
            std::vector<std::uint64_t> storage;  // the reply sits inside the RPC body
            const auto* reply = wire::verified_root<wire::KvReply>(answer, storage);
            if (reply == nullptr) return cluster::answer_kind::retry;
            outcome->status = reply->status();
            outcome->index = reply->index();
            outcome->value.clear();
            if (reply->value() != nullptr) {
                const auto* got = reinterpret_cast<const std::byte*>(reply->value()->data());
                outcome->value.assign(got, got + reply->value()->size());
            }
            switch (reply->status()) {
                case wire::KvStatus::Ok:
                case wire::KvStatus::NotFound:
                    return cluster::answer_kind::done;
                case wire::KvStatus::NotLeader:
                    leader = reply->leader() != nullptr ? reply->leader()->str() : std::string{};
                    return cluster::answer_kind::redirect;
                case wire::KvStatus::Unavailable:
                    return cluster::answer_kind::retry;
                default:  // cas not matched, too large, bad request
                    return cluster::answer_kind::refused;
            }
        },
        [outcome, done = std::move(done)](cluster::call_verdict verdict, int attempts) {
            outcome->verdict = verdict;
            outcome->attempts = attempts;
            if (done) done(*outcome);
        });
}

}  // namespace ringmesh::kv
