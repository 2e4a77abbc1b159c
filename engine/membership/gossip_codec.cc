#include "engine/membership/gossip_codec.h"

#include <flatbuffers/flatbuffers.h>

#include "gossip_generated.h"

namespace ringmesh::membership {

const char* to_string(gossip_error e) noexcept {
    switch (e) {
        case gossip_error::none:
            return "none";
        case gossip_error::malformed:
            return "malformed";
        case gossip_error::wrong_cluster:
            return "wrong-cluster";
        case gossip_error::bad_kind:
            return "bad-kind";
        case gossip_error::bad_field:
            return "bad-field";
        case gossip_error::count:
            break;
    }
    return "?";
}

namespace {

namespace fb = ringmesh::wire;
using kv_vector = std::vector<std::pair<std::string, std::string>>;

flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::KeyValue>>> encode_pairs(
    flatbuffers::FlatBufferBuilder& b, const kv_vector& pairs) {
    std::vector<flatbuffers::Offset<fb::KeyValue>> items;
    items.reserve(pairs.size());
    for (const auto& [k, v] : pairs)
        items.push_back(fb::CreateKeyValue(b, b.CreateString(k), b.CreateString(v)));
    return b.CreateVector(items);
}

bool decode_pairs(const flatbuffers::Vector<flatbuffers::Offset<fb::KeyValue>>* in,
                  kv_vector& out) {
    if (in == nullptr) return true;
    if (in->size() > max_meta_entries) return false;
    for (const auto* kv : *in) {
        const flatbuffers::String* key = kv->key();
        const flatbuffers::String* value = kv->value();
        if (key == nullptr || key->size() == 0 || key->size() > max_name_bytes) return false;
        out.emplace_back(key->string_view(),
                         value != nullptr ? value->string_view() : std::string_view{});
    }
    return true;
}

bool text(const flatbuffers::String* s, std::string& out, bool required) {
    if (s == nullptr || s->size() == 0) return !required;
    if (s->size() > max_name_bytes) return false;
    out = s->string_view();
    return true;
}

}  // namespace

void encode(const gossip_message& m, std::string_view cluster_id, std::vector<std::byte>& out) {
    flatbuffers::FlatBufferBuilder b(256 + m.updates.size() * 96);
    std::vector<flatbuffers::Offset<fb::MemberUpdate>> updates;
    updates.reserve(m.updates.size());
    for (const auto& u : m.updates) {
        auto name = b.CreateString(u.name);
        auto address = b.CreateString(u.address);
        auto from = u.from.empty() ? 0 : b.CreateString(u.from);
        auto addresses = u.meta.addresses.empty() ? 0 : encode_pairs(b, u.meta.addresses);
        auto tags = u.meta.tags.empty() ? 0 : encode_pairs(b, u.meta.tags);
        updates.push_back(fb::CreateMemberUpdate(b, static_cast<fb::MemberState>(u.state), name,
                                                 address, u.incarnation, from, u.meta.shard_count,
                                                 addresses, tags));
    }
    auto cluster = b.CreateString(cluster_id.data(), cluster_id.size());
    auto sender = b.CreateString(m.sender);
    auto sender_address = b.CreateString(m.sender_address);
    auto target = m.target.empty() ? 0 : b.CreateString(m.target);
    auto target_address = m.target_address.empty() ? 0 : b.CreateString(m.target_address);
    auto update_vector = updates.empty() ? 0 : b.CreateVector(updates);
    b.Finish(fb::CreateGossipMessage(b, static_cast<fb::GossipKind>(m.kind), cluster, m.seq, sender,
                                     sender_address, target, target_address, update_vector,
                                     m.join));
    const auto* p = reinterpret_cast<const std::byte*>(b.GetBufferPointer());
    out.insert(out.end(), p, p + b.GetSize());
}

gossip_error decode(std::span<const std::byte> bytes, std::string_view cluster_id,
                    gossip_message& out) {
    const auto* data = reinterpret_cast<const std::uint8_t*>(bytes.data());
    flatbuffers::Verifier::Options options;
    options.max_tables = 4 * max_updates + 64;
    flatbuffers::Verifier verifier(data, bytes.size(), options);
    if (!fb::VerifyGossipMessageBuffer(verifier)) return gossip_error::malformed;
    const fb::GossipMessage* m = fb::GetGossipMessage(data);
    if (m->cluster_id() == nullptr || m->cluster_id()->string_view() != cluster_id) {
        return gossip_error::wrong_cluster;
    }
    const auto kind = static_cast<std::uint8_t>(m->kind());
    if (kind < static_cast<std::uint8_t>(gossip_kind::ping) ||
        kind > static_cast<std::uint8_t>(gossip_kind::push_pull_reply)) {
        return gossip_error::bad_kind;
    }
    out = {};
    out.kind = static_cast<gossip_kind>(kind);
    out.seq = m->seq();
    out.join = m->join();
    if (!text(m->sender(), out.sender, true) ||
        !text(m->sender_address(), out.sender_address, true) ||
        !text(m->target(), out.target, false) ||
        !text(m->target_address(), out.target_address, out.kind == gossip_kind::ping_req)) {
        return gossip_error::bad_field;
    }
    if (out.kind == gossip_kind::ping_req && out.target.empty()) return gossip_error::bad_field;
    if (const auto* updates = m->updates()) {
        if (updates->size() > max_updates) return gossip_error::bad_field;
        out.updates.reserve(updates->size());
        for (const auto* u : *updates) {
            member_update& d = out.updates.emplace_back();
            const auto state = static_cast<std::uint8_t>(u->state());
            if (state > static_cast<std::uint8_t>(member_state::left))
                return gossip_error::bad_kind;
            d.state = static_cast<member_state>(state);
            d.incarnation = u->incarnation();
            d.meta.shard_count = u->shard_count();
            if (!text(u->name(), d.name, true) || !text(u->address(), d.address, true) ||
                !text(u->from(), d.from, false) ||
                !decode_pairs(u->addresses(), d.meta.addresses) ||
                !decode_pairs(u->tags(), d.meta.tags)) {
                return gossip_error::bad_field;
            }
        }
    }
    return gossip_error::none;
}

}  // namespace ringmesh::membership
