#include "engine/kv/kv_state.h"

#include <cstring>

#include "engine/replication/disk_ring.h"
#include "engine/wire/aligned.h"
#include "engine/wire/frame_codec.h"

namespace ringmesh::kv {

using wire::bytes_of;
using wire::view_of;

checked_command check_command(std::span<const std::byte> bytes, const kv_limits& limits) {
    checked_command out;
    flatbuffers::Verifier::Options options;
    options.max_depth = 8;
    options.max_tables = 8;
    const auto* c = wire::verified_root<wire::KvCommand>(bytes, out.aligned, options);
    if (c == nullptr) return out;
    const std::string_view key = view_of(c->key());
    if (c->op() > wire::KvOp::MAX || key.empty()) return out;
    const std::size_t value_bytes = bytes_of(c->value()).size();
    if (key.size() > limits.max_key_bytes || value_bytes > limits.max_value_bytes ||
        bytes_of(c->expected()).size() > limits.max_value_bytes) {
        out.status = wire::KvStatus::TooLarge;
        return out;
    }
    // A write names its client and sequence: that is what makes a retry safe.
    if (c->op() != wire::KvOp::Get && (c->client() == 0 || c->sequence() == 0)) return out;
    out.status = wire::KvStatus::Ok;
    out.command = c;
    return out;
}

kv_result kv_state::apply(const replication::log_entry& entry) {
    applied_ = entry.index;
    if (entry.kind != replication::entry_kind::command) return {wire::KvStatus::Ok, {}, applied_};
    const checked_command checked = check_command(entry.data, limits_);
    if (checked.status != wire::KvStatus::Ok || checked.command->op() == wire::KvOp::Get) {
        ++stats_.malformed_entries;
        return {wire::KvStatus::BadRequest, {}, applied_};
    }
    const wire::KvCommand& c = *checked.command;
    const kv_result* remembered = nullptr;
    switch (sessions_.check(c.client(), c.sequence(), &remembered)) {
        case replication::writer_sessions<kv_result>::verdict::duplicate:
            ++stats_.duplicates;  // a retry: the first answer, nothing applied again
            return *remembered;
        case replication::writer_sessions<kv_result>::verdict::stale:
            ++stats_.stale_sequences;
            return {wire::KvStatus::BadRequest, {}, applied_};
        case replication::writer_sessions<kv_result>::verdict::fresh:
            break;
    }
    kv_result r = write(c, applied_);
    sessions_.remember(c.client(), c.sequence(), applied_, r);
    ++stats_.writes_applied;
    return r;
}

kv_result kv_state::write(const wire::KvCommand& c, log_index index) {
    const std::string_view key = view_of(c.key());
    const std::span<const std::byte> value = bytes_of(c.value());
    auto it = data_.find(key);
    switch (c.op()) {
        case wire::KvOp::Put:
            data_.insert_or_assign(std::string(key),
                                   std::vector<std::byte>(value.begin(), value.end()));
            return {wire::KvStatus::Ok, {}, index};
        case wire::KvOp::Append: {
            if (it == data_.end())
                it = data_.emplace(std::string(key), std::vector<std::byte>{}).first;
            if (it->second.size() + value.size() > limits_.max_value_bytes)
                return {wire::KvStatus::TooLarge, {}, index};
            it->second.insert(it->second.end(), value.begin(), value.end());
            return {wire::KvStatus::Ok, it->second, index};
        }
        case wire::KvOp::Cas: {
            const std::span<const std::byte> expected = bytes_of(c.expected());
            const bool holds =
                c.expect_absent()
                    ? it == data_.end()
                    : it != data_.end() && std::equal(it->second.begin(), it->second.end(),
                                                      expected.begin(), expected.end());
            if (!holds) {
                return {wire::KvStatus::CasFailed,
                        it == data_.end() ? std::vector<std::byte>{} : it->second, index};
            }
            data_.insert_or_assign(std::string(key),
                                   std::vector<std::byte>(value.begin(), value.end()));
            return {wire::KvStatus::Ok, {}, index};
        }
        case wire::KvOp::Delete:
            if (it == data_.end()) return {wire::KvStatus::NotFound, {}, index};
            data_.erase(it);
            return {wire::KvStatus::Ok, {}, index};
        case wire::KvOp::Get:
            break;
    }
    return {wire::KvStatus::BadRequest, {}, index};
}

kv_result kv_state::get(std::string_view key) const {
    auto it = data_.find(key);
    if (it == data_.end()) return {wire::KvStatus::NotFound, {}, applied_};
    return {wire::KvStatus::Ok, it->second, applied_};
}

std::vector<std::byte> kv_state::snapshot() const {
    flatbuffers::FlatBufferBuilder b(1024);
    std::vector<flatbuffers::Offset<wire::KvPair>> pairs;
    pairs.reserve(data_.size());
    for (const auto& [key, value] : data_) {
        pairs.push_back(wire::CreateKvPair(
            b, b.CreateString(key),
            b.CreateVector(reinterpret_cast<const std::uint8_t*>(value.data()), value.size())));
    }
    std::vector<flatbuffers::Offset<wire::KvSession>> sessions;
    sessions_.for_each(
        [&](std::uint64_t client, std::uint64_t sequence, log_index, const kv_result& last) {
            sessions.push_back(wire::CreateKvSession(
                b, client, sequence, last.status,
                b.CreateVector(reinterpret_cast<const std::uint8_t*>(last.value.data()),
                               last.value.size()),
                last.index));
        });
    b.Finish(wire::CreateKvSnapshot(b, applied_, b.CreateVector(pairs), b.CreateVector(sessions)));
    const auto* p = reinterpret_cast<const std::byte*>(b.GetBufferPointer());
    return {p, p + b.GetSize()};
}

result<void> kv_state::restore(std::span<const std::byte> bytes) {
    auto damaged = [](const std::string& what) {
        return make_error(replication::storage_errc::corrupted, "kv snapshot: " + what);
    };
    std::vector<std::uint64_t> aligned;
    flatbuffers::Verifier::Options options;
    options.max_tables = 4 * (bytes.size() / 8 + 16);
    const auto* s = wire::verified_root<wire::KvSnapshot>(bytes, aligned, options);
    if (s == nullptr) return damaged("malformed");
    std::map<std::string, std::vector<std::byte>, std::less<>> data;
    if (s->pairs() != nullptr) {
        for (const wire::KvPair* p : *s->pairs()) {
            const std::string_view key = view_of(p->key());
            if (key.empty() ||
                !data.emplace(key, std::vector<std::byte>(bytes_of(p->value()).begin(),
                                                          bytes_of(p->value()).end()))
                     .second)
                return damaged("an empty or repeated key");
        }
    }
    replication::writer_sessions<kv_result> sessions(limits_.max_sessions);
    if (s->sessions() != nullptr) {
        for (const wire::KvSession* k : *s->sessions()) {
            if (k->client() == 0 || k->status() > wire::KvStatus::MAX)
                return damaged("a bad session");
            const auto v = bytes_of(k->value());
            kv_result last{k->status(), std::vector<std::byte>(v.begin(), v.end()), k->index()};
            if (!sessions.restore(k->client(), k->sequence(), k->index(), std::move(last)))
                return damaged("a repeated session");
        }
    }
    applied_ = s->applied();
    data_ = std::move(data);
    sessions_ = std::move(sessions);
    return ok();
}

}  // namespace ringmesh::kv
