#include "engine/replication/raft_codec.h"

#include <flatbuffers/flatbuffers.h>

#include <algorithm>
#include <cstring>

#include "engine/wire/aligned.h"
#include "raft_generated.h"

namespace ringmesh::replication {

const char* to_string(raft_codec_error e) noexcept {
    switch (e) {
        case raft_codec_error::none:
            return "none";
        case raft_codec_error::malformed:
            return "malformed";
        case raft_codec_error::wrong_cluster:
            return "wrong-cluster";
        case raft_codec_error::bad_kind:
            return "bad-kind";
        case raft_codec_error::bad_field:
            return "bad-field";
        case raft_codec_error::bad_entries:
            return "bad-entries";
        case raft_codec_error::too_large:
            return "too-large";
        case raft_codec_error::count:
            break;
    }
    return "?";
}

namespace {

namespace fb = ringmesh::wire;
using builder = flatbuffers::FlatBufferBuilder;

bool is_beat(message_kind k) {
    return k == message_kind::heartbeat || k == message_kind::heartbeat_reply;
}

flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> bytes_of(builder& b,
                                                                std::span<const std::byte> v) {
    return b.CreateVector(reinterpret_cast<const std::uint8_t*>(v.data()), v.size());
}

flatbuffers::Offset<fb::RaftSnapshotMeta> encode_meta(builder& b, const snapshot_meta& s) {
    auto voters = b.CreateVector(s.members.voters);
    auto learners = b.CreateVector(s.members.learners);
    auto members = fb::CreateRaftMembers(b, voters, learners);
    return fb::CreateRaftSnapshotMeta(b, s.index, s.term, members, s.size_bytes);
}

flatbuffers::Offset<fb::RaftMessage> encode_message(builder& b, const raft_message& m) {
    flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::RaftEntry>>> entries = 0;
    if (!m.entries.empty()) {
        std::vector<flatbuffers::Offset<fb::RaftEntry>> items;
        items.reserve(m.entries.size());
        for (const log_entry& e : m.entries) {
            items.push_back(fb::CreateRaftEntry(
                b, e.term, e.index, static_cast<fb::RaftEntryKind>(e.kind), bytes_of(b, e.data)));
        }
        entries = b.CreateVector(items);
    }
    flatbuffers::Offset<fb::RaftSnapshotMeta> snapshot = 0;
    flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> chunk = 0;
    if (m.kind == message_kind::snapshot || m.kind == message_kind::snapshot_reply) {
        snapshot = encode_meta(b, m.snapshot);
        if (m.kind == message_kind::snapshot) chunk = bytes_of(b, m.chunk);
    }
    fb::RaftMessageBuilder out(b);
    out.add_kind(static_cast<fb::RaftKind>(m.kind));
    out.add_group(m.group);
    out.add_term(m.term);
    out.add_pre_vote(m.pre_vote);
    out.add_transfer(m.transfer);
    out.add_last_log_index(m.last_log_index);
    out.add_last_log_term(m.last_log_term);
    out.add_prev_index(m.prev_index);
    out.add_prev_term(m.prev_term);
    out.add_commit(m.commit);
    if (!entries.IsNull()) out.add_entries(entries);
    out.add_reject(m.reject);
    out.add_index(m.index);
    out.add_hint_index(m.hint_index);
    out.add_hint_term(m.hint_term);
    if (!snapshot.IsNull()) out.add_snapshot(snapshot);
    out.add_offset(m.offset);
    out.add_last_chunk(m.last_chunk);
    if (!chunk.IsNull()) out.add_chunk(chunk);
    return out.Finish();
}

// The Verifier checks a vector's length field for alignment, not its elements: a forged
// buffer can place 8-byte elements at 4 mod 8. The batch itself starts 8-aligned (decode_batch
// sees to it), so an element vector that is not is refused.
template <typename T>
bool aligned(const flatbuffers::Vector<T>* v) {
    return v == nullptr || v->size() == 0 ||  // an empty vector is read nowhere
           reinterpret_cast<std::uintptr_t>(v->Data()) % alignof(std::uint64_t) == 0;
}

bool decode_ids(const flatbuffers::Vector<std::uint64_t>* in, std::vector<node_id>& out) {
    if (in == nullptr) return true;
    if (in->size() > max_group_members || !aligned(in)) return false;
    out.assign(in->begin(), in->end());
    return true;
}

raft_codec_error decode_meta(const fb::RaftSnapshotMeta* in, snapshot_meta& out) {
    if (in == nullptr) return raft_codec_error::bad_field;
    out.index = in->index();
    out.term = in->term();
    out.size_bytes = in->size_bytes();
    if (const fb::RaftMembers* m = in->members()) {
        if (!decode_ids(m->voters(), out.members.voters) ||
            !decode_ids(m->learners(), out.members.learners))
            return raft_codec_error::too_large;
        // The same rules as a config entry: no zero id, none twice.
        if (!decode_members(encode_members(out.members))) return raft_codec_error::bad_field;
    }
    return out.index == 0 ? raft_codec_error::bad_field : raft_codec_error::none;
}

raft_codec_error decode_entries(const fb::RaftMessage& in, raft_message& m,
                                const raft_codec_limits& limits) {
    const auto* entries = in.entries();
    if (entries == nullptr) return raft_codec_error::none;
    if (m.kind != message_kind::append) return raft_codec_error::bad_field;
    if (entries->size() > limits.max_entries) return raft_codec_error::too_large;
    m.entries.reserve(entries->size());
    log_index expected = m.prev_index + 1;
    term_t previous_term = m.prev_term;
    for (const fb::RaftEntry* e : *entries) {
        log_entry& d = m.entries.emplace_back();
        d.term = e->term();
        d.index = e->index();
        const auto kind = static_cast<std::uint8_t>(e->kind());
        if (kind > static_cast<std::uint8_t>(entry_kind::config)) return raft_codec_error::bad_kind;
        d.kind = static_cast<entry_kind>(kind);
        // Raft's invariants on an append: consecutive indexes after prev, terms that never
        // fall and never exceed the leader's.
        if (d.index != expected || d.term < previous_term || d.term > m.term || d.term == 0)
            return raft_codec_error::bad_entries;
        ++expected;
        previous_term = d.term;
        if (const auto* data = e->data()) {
            if (data->size() > limits.max_entry_bytes) return raft_codec_error::too_large;
            const auto* p = reinterpret_cast<const std::byte*>(data->data());
            d.data.assign(p, p + data->size());
        }
        if (d.kind == entry_kind::config && !decode_members(d.data))
            return raft_codec_error::bad_entries;
    }
    return raft_codec_error::none;
}

raft_codec_error decode_message(const fb::RaftMessage& in, raft_message& m,
                                const raft_codec_limits& limits) {
    const auto kind = static_cast<std::uint8_t>(in.kind());
    if (kind < static_cast<std::uint8_t>(message_kind::vote_request) ||
        kind > static_cast<std::uint8_t>(message_kind::timeout_now) ||
        is_beat(static_cast<message_kind>(kind)))
        return raft_codec_error::bad_kind;
    m.kind = static_cast<message_kind>(kind);
    m.group = in.group();
    m.term = in.term();
    m.pre_vote = in.pre_vote();
    m.transfer = in.transfer();
    m.last_log_index = in.last_log_index();
    m.last_log_term = in.last_log_term();
    m.prev_index = in.prev_index();
    m.prev_term = in.prev_term();
    m.commit = in.commit();
    m.reject = in.reject();
    m.index = in.index();
    m.hint_index = in.hint_index();
    m.hint_term = in.hint_term();
    m.offset = in.offset();
    m.last_chunk = in.last_chunk();
    if (m.term == 0 || m.prev_term > m.term) return raft_codec_error::bad_field;
    if (raft_codec_error e = decode_entries(in, m, limits); e != raft_codec_error::none) return e;
    if (m.kind == message_kind::snapshot || m.kind == message_kind::snapshot_reply) {
        if (raft_codec_error e = decode_meta(in.snapshot(), m.snapshot);
            e != raft_codec_error::none)
            return e;
    }
    if (m.kind == message_kind::snapshot) {
        const auto* chunk = in.chunk();
        const std::size_t size = chunk != nullptr ? chunk->size() : 0;
        if (size > limits.max_chunk_bytes) return raft_codec_error::too_large;
        if (m.snapshot.term > m.term || m.offset > m.snapshot.size_bytes ||
            size > m.snapshot.size_bytes - m.offset ||
            m.last_chunk != (m.offset + size == m.snapshot.size_bytes))
            return raft_codec_error::bad_field;
        if (chunk != nullptr) {
            const auto* p = reinterpret_cast<const std::byte*>(chunk->data());
            m.chunk.assign(p, p + size);
        }
        m.chunk_bytes = static_cast<std::uint32_t>(size);
    } else if (in.chunk() != nullptr) {
        return raft_codec_error::bad_field;
    }
    return raft_codec_error::none;
}

}  // namespace

std::size_t encoded_bound(const raft_message& m) noexcept {
    if (is_beat(m.kind)) return sizeof(fb::RaftBeat);
    std::size_t bytes = message_bound_overhead + m.chunk.size() + chunk_bound_overhead;
    for (const log_entry& e : m.entries)
        bytes += entry_bound_overhead + e.data.size();
    // The snapshot's members: two vectors of ids.
    bytes += 8 * (m.snapshot.members.voters.size() + m.snapshot.members.learners.size());
    return bytes;
}

void encode_batch(node_id from, node_id to, std::span<const raft_message> messages,
                  std::string_view cluster_id, std::vector<std::byte>& out) {
    builder b(256);
    std::vector<flatbuffers::Offset<fb::RaftMessage>> items;
    std::vector<fb::RaftBeat> beats;
    for (const raft_message& m : messages) {
        if (is_beat(m.kind)) {
            // A heartbeat reply carries no commit; a heartbeat's commit is the leader's.
            beats.emplace_back(m.term, m.commit, m.context, m.group,
                               m.kind == message_kind::heartbeat_reply);
        } else {
            items.push_back(encode_message(b, m));
        }
    }
    auto cluster = b.CreateString(cluster_id.data(), cluster_id.size());
    auto message_vector = items.empty() ? 0 : b.CreateVector(items);
    auto beat_vector = beats.empty() ? 0 : b.CreateVectorOfStructs(beats);
    b.Finish(fb::CreateRaftBatch(b, cluster, from, to, message_vector, beat_vector));
    const auto* p = reinterpret_cast<const std::byte*>(b.GetBufferPointer());
    out.insert(out.end(), p, p + b.GetSize());
}

namespace {

/// The verified batch in `bytes` (copied to `aligned_copy` when it sits at an odd address:
/// flatbuffers reads 8-byte fields in place), or null when the Verifier refuses it.
const fb::RaftBatch* verified_batch(std::span<const std::byte> bytes,
                                    std::vector<std::uint64_t>& aligned_copy,
                                    const raft_codec_limits& limits) {
    bytes = wire::aligned_for_flatbuffers(bytes, aligned_copy);
    const auto* data = reinterpret_cast<const std::uint8_t*>(bytes.data());
    flatbuffers::Verifier::Options options;
    options.max_tables = 16 * limits.max_messages + 4 * limits.max_entries + 64;
    flatbuffers::Verifier verifier(data, bytes.size(), options);
    if (!fb::VerifyRaftBatchBuffer(verifier)) return nullptr;
    return fb::GetRaftBatch(data);
}

/// Within the limits, and the beats (read in place) aligned.
raft_codec_error check_counts(const fb::RaftBatch& batch, const raft_codec_limits& limits) {
    const auto* messages = batch.messages();
    const auto* beats = batch.beats();
    if ((messages != nullptr && messages->size() > limits.max_messages) ||
        (beats != nullptr && beats->size() > limits.max_beats))
        return raft_codec_error::too_large;
    return aligned(beats) ? raft_codec_error::none : raft_codec_error::malformed;
}

}  // namespace

raft_codec_error batch_groups(std::span<const std::byte> bytes, std::vector<group_id>& out,
                              const raft_codec_limits& limits) {
    out.clear();
    std::vector<std::uint64_t> aligned_copy;
    const fb::RaftBatch* batch = verified_batch(bytes, aligned_copy, limits);
    if (batch == nullptr) return raft_codec_error::malformed;
    const auto* messages = batch->messages();
    const auto* beats = batch->beats();
    if (const auto e = check_counts(*batch, limits); e != raft_codec_error::none) return e;
    // A batch carries a handful of groups: a linear look-up beats a set.
    auto note = [&out](group_id g) {
        if (std::find(out.begin(), out.end(), g) == out.end()) out.push_back(g);
    };
    if (messages != nullptr) {
        for (const fb::RaftMessage* m : *messages)
            note(m->group());
    }
    if (beats != nullptr) {
        for (const fb::RaftBeat* beat : *beats)
            note(beat->group());
    }
    return raft_codec_error::none;
}

raft_codec_error decode_batch(std::span<const std::byte> bytes, std::string_view cluster_id,
                              node_id self, std::vector<raft_message>& out,
                              const raft_codec_limits& limits) {
    out.clear();
    std::vector<std::uint64_t> aligned_copy;
    const fb::RaftBatch* batch = verified_batch(bytes, aligned_copy, limits);
    if (batch == nullptr) return raft_codec_error::malformed;
    if (batch->cluster_id() == nullptr || batch->cluster_id()->string_view() != cluster_id)
        return raft_codec_error::wrong_cluster;
    const node_id from = batch->from();
    if (from == no_node || batch->to() != self || from == self) return raft_codec_error::bad_field;
    const auto* messages = batch->messages();
    const auto* beats = batch->beats();
    if (const auto e = check_counts(*batch, limits); e != raft_codec_error::none) return e;
    raft_codec_error error = raft_codec_error::none;
    if (messages != nullptr) {
        for (const fb::RaftMessage* in : *messages) {
            raft_message& m = out.emplace_back();
            m.from = from;
            m.to = self;
            if (error = decode_message(*in, m, limits); error != raft_codec_error::none) break;
        }
    }
    if (error == raft_codec_error::none && beats != nullptr) {
        for (const fb::RaftBeat* beat : *beats) {
            if (beat->term() == 0) {
                error = raft_codec_error::bad_field;
                break;
            }
            raft_message& m = out.emplace_back();
            m.kind = beat->reply() ? message_kind::heartbeat_reply : message_kind::heartbeat;
            m.from = from;
            m.to = self;
            m.group = beat->group();
            m.term = beat->term();
            m.commit = beat->commit();
            m.context = beat->context();
        }
    }
    if (error != raft_codec_error::none) out.clear();
    return error;
}

}  // namespace ringmesh::replication
