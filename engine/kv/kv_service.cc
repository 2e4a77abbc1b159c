#include "engine/kv/kv_service.h"

namespace ringmesh::kv {

using replication::raft_status;

kv_service::kv_service(messaging::service_port& endpoint, cluster::raft_link& link,
                       kv_service_config config)
    : group_service(endpoint, link, config.group, config.method, config.snapshot_every, "kv"),
      config_(std::move(config)),
      state_(config_.limits) {}

// ---- requests ----

void kv_service::on_request(const messaging::message& m, messaging::pending_reply reply) {
    ++stats_.requests;
    const checked_command checked = check_command(m.bytes, config_.limits);
    if (checked.status != wire::KvStatus::Ok) {
        ++(checked.status == wire::KvStatus::TooLarge ? stats_.too_large : stats_.bad_requests);
        answer(reply, {checked.status, {}, 0});
        return;
    }
    if (checked.command->op() == wire::KvOp::Get) {
        read(*checked.command, std::move(reply));
    } else {
        write(m.bytes, std::move(reply));
    }
}

void kv_service::write(std::span<const std::byte> command, messaging::pending_reply reply) {
    replication::raft* r = replica();
    if (r == nullptr || !r->is_leader()) {
        refuse_not_leader(reply);
        return;
    }
    const replication::propose_result p = r->propose(endpoint_.owner().now_ns(), command);
    switch (p.status) {
        case raft_status::ok:
            break;
        case raft_status::not_leader:
            refuse_not_leader(reply);
            return;
        case raft_status::too_large:
            ++stats_.too_large;
            answer(reply, {wire::KvStatus::TooLarge, {}, 0});
            return;
        default:  // transferring, a fresh leader not ready yet: soon
            ++stats_.unavailable;
            answer(reply, {wire::KvStatus::Unavailable, {}, 0});
            return;
    }
    ++stats_.writes_proposed;
    // An older write still waiting at this index was lost with an earlier term.
    if (auto lost = writes_.add(p.index, p.term, std::move(reply))) {
        ++stats_.writes_lost;
        answer(lost->reply, {wire::KvStatus::Unavailable, {}, p.index});
    }
}

void kv_service::read(const wire::KvCommand& c, messaging::pending_reply reply) {
    replication::raft* r = replica();
    if (r == nullptr || !r->is_leader()) {
        refuse_not_leader(reply);
        return;
    }
    const time_ns now = endpoint_.owner().now_ns();
    // check_command made sure the key is there.
    const std::string key = c.key() != nullptr ? c.key()->str() : std::string{};
    pending_read pending{key, std::move(reply), 0};
    if (c.lease_read() && config_.allow_lease_reads) {
        if (const std::optional<replication::log_index> at = r->lease_read(now)) {
            ++stats_.reads_lease;
            pending.index = *at;
            reads_waiting_.emplace(*at, std::move(pending));
            serve_reads_up_to(state_.applied());
            return;
        }
    }
    const std::uint64_t id = next_read_++;
    const raft_status s = r->read_index(now, id);
    if (s != raft_status::ok) {
        if (s == raft_status::not_leader) {
            refuse_not_leader(pending.reply);
        } else {
            ++stats_.unavailable;
            answer(pending.reply, {wire::KvStatus::Unavailable, {}, 0});
        }
        return;
    }
    ++stats_.reads_index;
    reads_.emplace(id, std::move(pending));
}

void kv_service::on_read_ready(const replication::read_result& read) {
    auto it = reads_.find(read.request);
    if (it == reads_.end()) return;
    pending_read pending = std::move(it->second);
    reads_.erase(it);
    if (read.status != raft_status::ok) {
        ++stats_.reads_failed;
        refuse_not_leader(pending.reply);
        return;
    }
    pending.index = read.index;
    reads_waiting_.emplace(read.index, std::move(pending));
    serve_reads_up_to(state_.applied());
}

void kv_service::serve_reads_up_to(replication::log_index applied) {
    while (!reads_waiting_.empty() && reads_waiting_.begin()->first <= applied) {
        const pending_read& pending = reads_waiting_.begin()->second;
        ++stats_.reads_answered;
        answer(pending.reply, state_.get(pending.key));
        reads_waiting_.erase(reads_waiting_.begin());
    }
}

void kv_service::refuse_not_leader(const messaging::pending_reply& to) {
    const std::string* leader = leader_elsewhere();
    if (leader == nullptr) {
        ++stats_.unavailable;
        answer(to, {wire::KvStatus::Unavailable, {}, 0});
        return;
    }
    ++stats_.not_leader;
    answer(to, {wire::KvStatus::NotLeader, {}, 0}, *leader);
}

void kv_service::answer(const messaging::pending_reply& to, const kv_result& r,
                        std::string_view leader) {
    flatbuffers::FlatBufferBuilder b(64 + r.value.size());
    const auto value =
        b.CreateVector(reinterpret_cast<const std::uint8_t*>(r.value.data()), r.value.size());
    const auto leader_name = leader.empty() ? 0 : b.CreateString(leader.data(), leader.size());
    b.Finish(wire::CreateKvReply(b, r.status, value, r.index, leader_name));
    send_answer(to, b);
}

// ---- the log ----

void kv_service::on_apply(const replication::log_entry& entry) {
    const kv_result result = state_.apply(entry);
    if (auto settled = writes_.applied(entry.index, entry.term)) {
        if (settled->committed) {
            ++stats_.writes_answered;
            answer(settled->reply, result);
        } else {
            ++stats_.writes_lost;  // another leader's entry took the index
            answer(settled->reply, {wire::KvStatus::Unavailable, {}, entry.index});
        }
    }
    serve_reads_up_to(state_.applied());
}

result<void> kv_service::on_restore(const replication::snapshot_meta& meta,
                                    std::span<const std::byte> data) {
    if (result<void> r = state_.restore(data); !r) return r;
    // Writes waiting at indexes the snapshot covers: whether they are in it is not known
    // here; the client's retry (same sequence) gets the first answer if they are.
    writes_.covered_through(meta.index, [&](const cluster::pending_proposals::settled& s) {
        ++stats_.writes_lost;
        answer(s.reply, {wire::KvStatus::Unavailable, {}, meta.index});
    });
    serve_reads_up_to(state_.applied());
    return ok();
}

}  // namespace ringmesh::kv
