#include "engine/kv/kv_client.h"

#include <cstring>

#include "engine/core/random.h"
#include "engine/wire/aligned.h"

namespace ringmesh::kv {

const char* to_string(kv_verdict v) noexcept {
    switch (v) {
        case kv_verdict::ok:
            return "ok";
        case kv_verdict::fail:
            return "fail";
        case kv_verdict::unknown:
            return "unknown";
    }
    return "?";
}

struct kv_client::operation {
    std::vector<std::byte> command;
    bool write = false;
    done_fn done;
    time_ns deadline = 0;
    /// A write some attempt of which timed out: it may have been applied.
    bool maybe_applied = false;
    bool finished = false;
    kv_outcome outcome;
};

kv_client::kv_client(messaging::endpoint& endpoint, kv_client_config config)
    : endpoint_(endpoint),
      config_(std::move(config)),
      client_id_(config_.client_id != 0 ? config_.client_id
                                        : random_source(random_source::os_seed()).next_nonzero()) {}

kv_client::~kv_client() {
    *alive_ = false;  // replies still in flight find no one
    for (timer_id t : timers_)
        endpoint_.owner().timers().cancel(t);
}

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
    auto o = std::make_shared<operation>();
    o->write = op != wire::KvOp::Get;
    o->done = std::move(done);
    o->deadline = endpoint_.owner().now_ns() + config_.deadline;
    flatbuffers::FlatBufferBuilder b(64 + key.size() + value.size() + expected.size());
    const auto k = b.CreateString(key.data(), key.size());
    const auto v =
        b.CreateVector(reinterpret_cast<const std::uint8_t*>(value.data()), value.size());
    const auto e =
        b.CreateVector(reinterpret_cast<const std::uint8_t*>(expected.data()), expected.size());
    // Each write gets the next sequence once; its retries repeat it.
    const std::uint64_t sequence = o->write ? ++sequence_ : 0;
    b.Finish(wire::CreateKvCommand(b, op, k, v, e, expect_absent, o->write ? client_id_ : 0,
                                   sequence, lease_read));
    const auto* p = reinterpret_cast<const std::byte*>(b.GetBufferPointer());
    o->command.assign(p, p + b.GetSize());
    ++stats_.operations;
    attempt(o);
}

void kv_client::attempt(const std::shared_ptr<operation>& op) {
    const time_ns now = endpoint_.owner().now_ns();
    if (now >= op->deadline || config_.servers.empty()) {
        finish(op, op->write && op->maybe_applied ? kv_verdict::unknown : kv_verdict::fail);
        return;
    }
    if (leader_.empty() || !endpoint_.connected(leader_)) {
        // The next server we are connected to (a crashed leader's calls would only time
        // out); any, when none is.
        leader_ = config_.servers[next_server_++ % config_.servers.size()];
        for (std::size_t tries = 1; tries < config_.servers.size() && !endpoint_.connected(leader_);
             ++tries)
            leader_ = config_.servers[next_server_++ % config_.servers.size()];
    }
    ++op->outcome.attempts;
    ++stats_.attempts;
    std::weak_ptr<bool> alive = alive_;
    const messaging::outcome sent = endpoint_.call(
        leader_, config_.method, op->command, std::min(config_.attempt_timeout, op->deadline - now),
        [this, alive, op](const messaging::rpc_result& r) {
            const std::shared_ptr<bool> still = alive.lock();
            if (!still || !*still) return;
            on_reply(op, r);
        });
    if (sent != messaging::outcome::accepted) {  // not connected to it (yet): another one
        leader_.clear();
        retry_later(op);
    }
}

void kv_client::on_reply(const std::shared_ptr<operation>& op, const messaging::rpc_result& r) {
    if (op->finished) return;
    if (r.status != wire::RpcStatus::Ok) {
        if (r.status == wire::RpcStatus::DeadlineExceeded) {
            ++stats_.timeouts;
            if (op->write) op->maybe_applied = true;  // it may have reached a leader
        }
        leader_.clear();
        retry_later(op);
        return;
    }
    // The reply sits inside the RPC body at whatever address: aligned before it is read.
    std::vector<std::uint64_t> storage;
    const auto payload = wire::aligned_for_flatbuffers(r.payload, storage);
    const auto* data = reinterpret_cast<const std::uint8_t*>(payload.data());
    flatbuffers::Verifier verifier(data, payload.size(), 8, 8);
    if (r.payload.empty() || !verifier.VerifyBuffer<wire::KvReply>(nullptr)) {
        leader_.clear();
        retry_later(op);
        return;
    }
    const auto* reply = flatbuffers::GetRoot<wire::KvReply>(data);
    op->outcome.status = reply->status();
    op->outcome.index = reply->index();
    if (reply->value() != nullptr) {
        const auto* v = reinterpret_cast<const std::byte*>(reply->value()->data());
        op->outcome.value.assign(v, v + reply->value()->size());
    }
    switch (reply->status()) {
        case wire::KvStatus::Ok:
        case wire::KvStatus::NotFound:
            finish(op, kv_verdict::ok);
            return;
        case wire::KvStatus::CasFailed:
        case wire::KvStatus::TooLarge:
        case wire::KvStatus::BadRequest:
            finish(op, kv_verdict::fail);
            return;
        case wire::KvStatus::NotLeader:
            ++stats_.redirects;
            leader_ = reply->leader() != nullptr ? reply->leader()->str() : std::string{};
            if (op->outcome.attempts % 8 == 0) {  // a loop of stale hints: pause now and then
                retry_later(op);
            } else {
                attempt(op);
            }
            return;
        case wire::KvStatus::Unavailable:
            leader_.clear();
            retry_later(op);
            return;
    }
    finish(op, kv_verdict::fail);
}

void kv_client::retry_later(const std::shared_ptr<operation>& op) {
    ++stats_.retries;
    auto& timers = endpoint_.owner().timers();
    std::erase_if(timers_, [&timers](timer_id t) { return !timers.pending(t); });
    timers_.push_back(timers.schedule_at(endpoint_.owner().now_ns() + config_.retry_pause,
                                         [this, op] { attempt(op); }));
}

void kv_client::finish(const std::shared_ptr<operation>& op, kv_verdict verdict) {
    if (op->finished) return;
    op->finished = true;
    op->outcome.verdict = verdict;
    if (op->done) op->done(op->outcome);
}

}  // namespace ringmesh::kv
