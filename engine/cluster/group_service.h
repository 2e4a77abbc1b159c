// What every service on a Raft group does the same way (the key-value service, replicated
// topics): it is the group's application (apply, restore, reads) on the raft_host, serves its
// requests as a deferred RPC method on the endpoint, snapshots its state every
// `snapshot_every` applied entries, or every state_entries() when the state holds more
// (after the host's step, at an index the replica applied),
// and names the leader when it is not this node. A derived service supplies the state and
// the requests.
//
// Owned by the shard that runs the endpoint and the group's raft_host; every call from it.
// Create it, add the group with application(), then attach(); destroy the host (or its
// group) before the service.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <flatbuffers/flatbuffers.h>

#include "engine/cluster/raft_link.h"
#include "engine/messaging/endpoint.h"
#include "engine/replication/raft_host.h"

namespace ringmesh::cluster {

struct group_service_stats {
    std::uint64_t snapshots_saved = 0, snapshots_restored = 0;
    std::uint64_t restore_failures = 0;  ///< a snapshot the state refused (a bug: said loudly)
};

class group_service {
  public:
    virtual ~group_service();
    group_service(const group_service&) = delete;
    group_service& operator=(const group_service&) = delete;

    /// The callbacks to pass to raft_host::add_group for this service's group.
    replication::raft_application application();
    /// Serves the method and takes snapshots, from now on (the group must run on `host`).
    void attach(replication::raft_host& host);

    const group_service_stats& group_stats() const noexcept { return group_stats_; }

  protected:
    /// `kind` names the service in log lines ("kv", "topics").
    group_service(messaging::service_port& endpoint, raft_link& link, replication::group_id group,
                  std::string method, replication::log_index snapshot_every, const char* kind);

    virtual void on_request(const messaging::message& m, messaging::pending_reply reply) = 0;
    /// Every committed entry, in log order.
    virtual void on_apply(const replication::log_entry& entry) = 0;
    /// Replaces the state with a snapshot's; an error leaves it as it was.
    virtual result<void> on_restore(const replication::snapshot_meta& meta,
                                    std::span<const std::byte> data) = 0;
    virtual void on_read_ready(const replication::read_result& read) { (void)read; }
    /// The index the state has applied, and the state's bytes for a snapshot there.
    virtual replication::log_index applied() const = 0;
    virtual std::vector<std::byte> snapshot_state() const = 0;
    /// How many entries the state holds (messages, keys). A snapshot copies all of them, so
    /// snapshots are spaced at least this many applied entries apart: copying then costs a
    /// bounded amount per applied entry however large the state grows, where a fixed spacing
    /// would copy a large state over and over (and stall the group each time).
    virtual std::uint64_t state_entries() const = 0;

    replication::raft* replica() const;
    /// Answers a deferred call with a finished flatbuffer (the service's reply table).
    void send_answer(const messaging::pending_reply& to, const flatbuffers::FlatBufferBuilder& b);
    /// The node that leads the group, when it is known and not this one (a NotLeader
    /// answer's hint); nullptr otherwise (the answer is then Unavailable).
    const std::string* leader_elsewhere() const;

    messaging::service_port& endpoint_;
    raft_link& link_;

  private:
    void restore(const replication::snapshot_meta& meta, std::span<const std::byte> data);
    std::size_t maybe_snapshot(time_ns now);

    replication::group_id group_;
    std::string method_;
    replication::log_index snapshot_every_;
    const char* kind_;
    replication::raft_host* host_ = nullptr;
    replication::log_index snapshot_at_ = 0;
    shard::poller_id poller_ = 0;
    bool attached_ = false;
    group_service_stats group_stats_;
};

}  // namespace ringmesh::cluster
