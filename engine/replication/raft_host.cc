#include "engine/replication/raft_host.h"

#include <algorithm>
#include <limits>

#include "engine/core/assert.h"

namespace ringmesh::replication {

raft_host::raft_host(disk_ring& ring, raft_host_config config) : raft_host(std::move(config)) {
    ring_ = &ring;
}

raft_host::raft_host(raft_host_config config) : config_(std::move(config)) {
    RM_ASSERT(config_.self != no_node, "a raft host needs its node id");
}

raft_host::~raft_host() {
    detach();
}

void raft_host::attach(shard& s) {
    detach();
    attached_ = &s;
    if (ring_ != nullptr) ring_->attach(s);
    poller_ = s.add_poller(poll_step::protocol, [this](time_ns now) {
        const std::size_t work = poll(now);
        arm_timer();
        return work;
    });
    arm_timer();
}

void raft_host::detach() {
    if (attached_ == nullptr) return;
    attached_->remove_poller(poller_);
    attached_->timers().cancel(timer_);
    if (ring_ != nullptr) ring_->detach();
    attached_ = nullptr;
    timer_at_ = 0;
}

void raft_host::arm_timer() {
    const time_ns at = next_deadline();
    if (at == timer_at_ || at == std::numeric_limits<time_ns>::max()) return;
    attached_->timers().cancel(timer_);
    // Nothing to do in it: firing wakes the loop, whose next poll ticks the replica.
    timer_ = attached_->timers().schedule_at(at, [] {});
    timer_at_ = at;
}

result<raft*> raft_host::add_group(raft_config config, log_store_config storage,
                                   raft_application app, time_ns now) {
    if (ring_ == nullptr)
        return make_error(storage_errc::bad_config, "this raft host has no disk ring for logs");
    result<std::unique_ptr<log_store>> opened = log_store::open(*ring_, std::move(storage));
    if (!opened) return opened.err();
    return add_group(std::move(config), std::move(opened).value(), std::move(app), now);
}

result<raft*> raft_host::add_group(raft_config config, std::unique_ptr<raft_storage> storage,
                                   raft_application app, time_ns now) {
    if (config.id != config_.self)
        return make_error(storage_errc::bad_config, "the group's replica id is not this node's");
    if (groups_.contains(config.group))
        return make_error(storage_errc::bad_config,
                          "group " + std::to_string(config.group) + " runs here already");
    // The largest message the replica may send must fit one batch on the transport: an
    // append of max_append_bytes (or one entry of max_entry_bytes) with its framing, or a
    // snapshot chunk.
    const std::size_t largest =
        std::max({config.max_append_bytes + config.max_append_entries * entry_bound_overhead,
                  config.max_entry_bytes + entry_bound_overhead,
                  std::size_t{config.snapshot_chunk_bytes} + chunk_bound_overhead}) +
        message_bound_overhead + batch_bound_overhead + config_.cluster_id.size();
    if (largest > config_.max_batch_bytes) {
        return make_error(storage_errc::bad_config,
                          "group " + std::to_string(config.group) + ": a message may take " +
                              std::to_string(largest) +
                              " bytes, over the transport's batch "
                              "limit of " +
                              std::to_string(config_.max_batch_bytes) +
                              " (lower max_append_bytes, max_entry_bytes or snapshot_chunk_bytes)");
    }
    if (!storage) return make_error(storage_errc::bad_config, "a group needs its storage");
    const group_id id = config.group;
    hosted& h = groups_[id];
    h.store = std::move(storage);
    h.app = std::move(app);
    const raft_recovered recovered = h.store->recovered();
    if (recovered.snapshot && h.app.restore) {
        result<std::vector<std::byte>> data = h.store->read_snapshot_data();
        if (!data) {
            groups_.erase(id);
            return data.err();
        }
        h.app.restore(*recovered.snapshot, *data);
    }
    h.replica = std::make_unique<raft>(std::move(config), recovered, now);
    raft* replica = h.replica.get();
    h.store->on_durable = [this, replica](std::uint64_t seq) { replica->on_persisted(now_, seq); };
    h.store->on_failure = [this, id](const error&) {
        auto it = groups_.find(id);
        if (it == groups_.end() || it->second.failed) return;
        it->second.failed = true;  // a replica whose disk fails must stop: it cannot promise
        ++stats_.storage_failures;
    };
    return replica;
}

std::vector<group_id> raft_host::groups() const {
    std::vector<group_id> ids;
    for (const auto& [id, h] : groups_)
        ids.push_back(id);
    return ids;
}

raft* raft_host::group(group_id id) {
    auto it = groups_.find(id);
    return it == groups_.end() || it->second.failed ? nullptr : it->second.replica.get();
}

raft_storage* raft_host::store(group_id id) {
    auto it = groups_.find(id);
    return it == groups_.end() ? nullptr : it->second.store.get();
}

void raft_host::save_snapshot(group_id id, std::vector<std::byte> data, time_ns now) {
    auto it = groups_.find(id);
    if (it == groups_.end() || it->second.failed) return;
    raft& r = *it->second.replica;
    snapshot_meta meta = r.snapshot_meta_at(r.applied_index());
    it->second.store->save_snapshot(meta, std::move(data),
                                    [this, id, meta, now](const result<void>& saved) {
                                        raft* replica = group(id);
                                        if (!saved || replica == nullptr) return;
                                        snapshot_meta m = meta;
                                        m.size_bytes = store(id)->snapshot()->size_bytes;
                                        replica->snapshot_taken(std::max(now, now_), m);
                                    });
}

void raft_host::on_batch(std::span<const std::byte> bytes, time_ns now, node_id sender) {
    now_ = std::max(now_, now);
    const raft_codec_error e =
        decode_batch(bytes, config_.cluster_id, config_.self, decode_buffer_, config_.limits);
    if (e != raft_codec_error::none) {
        stats_.refused.count(e);
        return;
    }
    if (sender != no_node && !decode_buffer_.empty() && decode_buffer_.front().from != sender) {
        ++stats_.impostors;  // one peer speaking for another: none of it reaches a replica
        return;
    }
    ++stats_.batches_received;
    for (const raft_message& m : decode_buffer_) {
        ++stats_.messages_received;
        raft* r = group(m.group);
        if (r == nullptr) {
            ++stats_.unknown_group;
            continue;
        }
        r->on_message(now_, m);
    }
}

void raft_host::stage(hosted& h, raft_message m) {
    if (m.kind != message_kind::snapshot) {
        outbound_[m.to].push_back(std::move(m));
        return;
    }
    // The chunk's bytes come from the snapshot file, read through the disk ring (the shard
    // never blocks on it); the chunk leaves with the next poll's batches. A chunk of a
    // snapshot replaced meanwhile, or whose read fails, is dropped: the leader's transfer
    // restarts when it stalls.
    const node_id to = m.to;
    const std::uint32_t length = m.chunk_bytes;
    auto chunk = std::make_shared<raft_message>(std::move(m));
    h.store->read_snapshot_chunk(chunk->snapshot, chunk->offset, length,
                                 [this, chunk, to, length](std::vector<std::byte> bytes) {
                                     if (bytes.size() != length) return;
                                     chunk->chunk = std::move(bytes);
                                     outbound_[to].push_back(std::move(*chunk));
                                 });
}

std::size_t raft_host::drain(hosted& h, time_ns now) {
    std::size_t work = 0;
    for (int guard = 0; guard < 16; ++guard) {
        raft_ready ready = h.replica->take_ready(now);
        if (ready.empty()) break;
        ++work;
        h.store->append(ready);
        for (raft_message& m : ready.messages)
            stage(h, std::move(m));
        if (ready.apply_snapshot && h.app.restore) {
            result<std::vector<std::byte>> data = h.store->read_snapshot_data();
            if (data) h.app.restore(*ready.apply_snapshot, *data);
        }
        if (h.app.apply) {
            for (const log_entry& e : ready.committed)
                h.app.apply(e);
        }
        if (h.app.read_ready) {
            for (const read_result& r : ready.reads)
                h.app.read_ready(r);
        }
    }
    return work;
}

std::size_t raft_host::poll(time_ns now) {
    now_ = std::max(now_, now);
    std::size_t work = ring_ != nullptr ? ring_->reap(false) : 0;
    for (auto& [id, h] : groups_) {
        if (h.failed) continue;
        if (h.replica->next_deadline() <= now_) {
            h.replica->on_tick(now_);
            ++work;
        }
        work += drain(h, now_);
        work += h.store->flush(now_);
    }
    for (auto& [to, messages] : outbound_) {
        if (messages.empty()) continue;
        send_batches(to, messages);
        messages.clear();
        ++work;
    }
    return work;
}

void raft_host::send_batches(node_id to, std::vector<raft_message>& messages) {
    // Usually one batch; more only where the bounds say one would not fit the transport.
    const std::size_t base = batch_bound_overhead + config_.cluster_id.size();
    std::size_t begin = 0;
    while (begin < messages.size()) {
        std::size_t end = begin + 1;
        std::size_t bytes = base + encoded_bound(messages[begin]);
        while (end < messages.size() &&
               bytes + encoded_bound(messages[end]) <= config_.max_batch_bytes) {
            bytes += encoded_bound(messages[end]);
            ++end;
        }
        encode_buffer_.clear();
        encode_batch(config_.self, to, std::span(messages).subspan(begin, end - begin),
                     config_.cluster_id, encode_buffer_);
        if (encode_buffer_.size() > config_.max_batch_bytes) {
            stats_.oversized += end - begin;  // a single message (add_group's check failed)
        } else if (config_.send && config_.send(to, encode_buffer_)) {
            ++stats_.batches_sent;
            stats_.messages_sent += end - begin;
        } else {
            ++stats_.batches_dropped;
        }
        begin = end;
    }
}

time_ns raft_host::next_deadline() const {
    time_ns at = std::numeric_limits<time_ns>::max();
    for (const auto& [id, h] : groups_) {
        if (!h.failed) at = std::min(at, h.replica->next_deadline());
    }
    return at;
}

}  // namespace ringmesh::replication
