#include "engine/cluster/raft_link.h"

#include "engine/core/assert.h"

namespace ringmesh::cluster {

raft_link::raft_link(messaging::service_port& endpoint, std::vector<raft_peer> directory)
    : endpoint_(endpoint) {
    for (raft_peer& p : directory) {
        RM_ASSERT(p.id != replication::no_node && !p.name.empty(),
                  "a raft peer needs a replica id and a node name");
        RM_ASSERT(!names_.contains(p.id) && !ids_.contains(p.name),
                  "raft peer ids and names must be unique");
        ids_.emplace(p.name, p.id);
        names_.emplace(p.id, std::move(p.name));
    }
}

raft_link::~raft_link() {
    if (host_ != nullptr) endpoint_.on_replication(nullptr);
}

replication::raft_host_config raft_link::host_config(replication::raft_host_config base) {
    base.send = [this](replication::node_id to, std::span<const std::byte> batch) {
        return send(to, batch);
    };
    // On a stream the lane takes a frame up to the body limit; datagram peers take less,
    // and a batch over their limit is dropped and counted (see stats().too_large).
    base.max_batch_bytes = endpoint_.limits().max_body_bytes;
    return base;
}

void raft_link::attach(replication::raft_host& host) {
    host_ = &host;
    messaging::service_port* e = &endpoint_;
    endpoint_.on_replication([this, e](std::string_view peer, std::span<const std::byte> batch) {
        const replication::node_id from = id_of(peer);
        if (from == replication::no_node) {
            ++stats_.unknown_sender;
            return;
        }
        host_->on_batch(batch, e->owner().now_ns(), from);
    });
}

bool raft_link::send(replication::node_id to, std::span<const std::byte> batch) {
    const std::string* name = name_of(to);
    if (name == nullptr) {
        ++stats_.unknown_destination;
        return false;
    }
    switch (endpoint_.send_replication(*name, batch)) {
        case messaging::outcome::accepted:
            return true;
        case messaging::outcome::back_pressure:
            ++stats_.back_pressure;
            return false;
        case messaging::outcome::too_large:
            ++stats_.too_large;
            return false;
        default:
            ++stats_.unreachable;
            return false;
    }
}

const std::string* raft_link::name_of(replication::node_id id) const {
    auto it = names_.find(id);
    return it == names_.end() ? nullptr : &it->second;
}

replication::node_id raft_link::id_of(std::string_view name) const {
    auto it = ids_.find(name);
    return it == ids_.end() ? replication::no_node : it->second;
}

}  // namespace ringmesh::cluster
