#include "engine/cluster/group_service.h"

#include <algorithm>
#include <cstdio>

#include "engine/core/log.h"

namespace ringmesh::cluster {

group_service::group_service(messaging::service_port& endpoint, raft_link& link,
                             replication::group_id group, std::string method,
                             replication::log_index snapshot_every, const char* kind)
    : endpoint_(endpoint),
      link_(link),
      group_(group),
      method_(std::move(method)),
      snapshot_every_(snapshot_every),
      kind_(kind) {}

group_service::~group_service() {
    if (!attached_) return;
    endpoint_.serve_deferred(method_, nullptr);
    endpoint_.owner().remove_poller(poller_);
}

replication::raft_application group_service::application() {
    replication::raft_application app;
    app.apply = [this](const replication::log_entry& e) { on_apply(e); };
    app.restore = [this](const replication::snapshot_meta& meta, std::span<const std::byte> data) {
        restore(meta, data);
    };
    app.read_ready = [this](const replication::read_result& r) { on_read_ready(r); };
    return app;
}

void group_service::attach(replication::raft_host& host) {
    host_ = &host;
    attached_ = true;
    endpoint_.serve_deferred(method_,
                             [this](const messaging::message& m, messaging::pending_reply reply) {
                                 on_request(m, std::move(reply));
                             });
    // After the host's own step (both are protocol steps, registered in this order).
    poller_ = endpoint_.owner().add_poller(poll_step::protocol,
                                           [this](time_ns now) { return maybe_snapshot(now); });
}

replication::raft* group_service::replica() const {
    return host_ == nullptr ? nullptr : host_->group(group_);
}

void group_service::send_answer(const messaging::pending_reply& to,
                                const flatbuffers::FlatBufferBuilder& b) {
    const std::span<const std::byte> body(reinterpret_cast<const std::byte*>(b.GetBufferPointer()),
                                          b.GetSize());
    endpoint_.reply(to, {wire::RpcStatus::Ok, body, {}});
}

const std::string* group_service::leader_elsewhere() const {
    const replication::raft* r = replica();
    if (r == nullptr || r->leader() == replication::no_node) return nullptr;
    const std::string* leader = link_.name_of(r->leader());
    return leader == nullptr || *leader == endpoint_.node_id() ? nullptr : leader;
}

void group_service::restore(const replication::snapshot_meta& meta,
                            std::span<const std::byte> data) {
    if (result<void> r = on_restore(meta, data); !r) {
        // The storage checked the file's checksum and the state its structure: this is a
        // bug, not damage. Loud, and counted; the group keeps the state it had.
        ++group_stats_.restore_failures;
        log::error("replication", "{} group {}: snapshot at {} refused: {}", kind_, group_,
                   meta.index, r.err().message());
        return;
    }
    ++group_stats_.snapshots_restored;
    snapshot_at_ = applied();
}

std::size_t group_service::maybe_snapshot(time_ns now) {
    replication::raft* r = replica();
    const replication::log_index spacing =
        std::max<replication::log_index>(snapshot_every_, state_entries());
    if (r == nullptr || applied() < snapshot_at_ + spacing || applied() != r->applied_index())
        return 0;
    snapshot_at_ = applied();
    ++group_stats_.snapshots_saved;
    host_->save_snapshot(group_, snapshot_state(), now);
    return 1;
}

}  // namespace ringmesh::cluster
