#include "engine/cluster/leader_caller.h"

namespace ringmesh::cluster {

const char* to_string(call_verdict v) noexcept {
    switch (v) {
        case call_verdict::ok:
            return "ok";
        case call_verdict::fail:
            return "fail";
        case call_verdict::unknown:
            return "unknown";
    }
    return "?";
}

struct leader_caller::operation {
    std::vector<std::byte> request;
    bool write = false;
    interpret_fn interpret;
    done_fn done;
    time_ns deadline = 0;
    int attempts = 0;
    bool maybe_applied = false;  ///< a write some attempt of which timed out
    bool finished = false;
};

leader_caller::leader_caller(messaging::endpoint& endpoint, leader_caller_config config,
                             std::string_view default_method)
    : endpoint_(endpoint), config_(std::move(config)) {
    if (config_.method.empty()) config_.method = default_method;
}

leader_caller::~leader_caller() {
    *alive_ = false;  // replies still in flight find no one
    for (timer_id t : timers_)
        endpoint_.owner().timers().cancel(t);
}

void leader_caller::call(std::vector<std::byte> request, bool write, interpret_fn interpret,
                         done_fn done) {
    auto op = std::make_shared<operation>();
    op->request = std::move(request);
    op->write = write;
    op->interpret = std::move(interpret);
    op->done = std::move(done);
    op->deadline = endpoint_.owner().now_ns() + config_.deadline;
    ++stats_.operations;
    attempt(op);
}

void leader_caller::attempt(const std::shared_ptr<operation>& op) {
    const time_ns now = endpoint_.owner().now_ns();
    if (now >= op->deadline || config_.servers.empty()) {
        finish(op, op->write && op->maybe_applied ? call_verdict::unknown : call_verdict::fail);
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
    ++op->attempts;
    ++stats_.attempts;
    std::weak_ptr<bool> alive = alive_;
    const messaging::outcome sent = endpoint_.call(
        leader_, config_.method, op->request, std::min(config_.attempt_timeout, op->deadline - now),
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

void leader_caller::on_reply(const std::shared_ptr<operation>& op, const messaging::rpc_result& r) {
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
    std::string hint;
    switch (op->interpret(r.payload, hint)) {
        case answer_kind::done:
            finish(op, call_verdict::ok);
            return;
        case answer_kind::refused:
            finish(op, call_verdict::fail);
            return;
        case answer_kind::redirect:
            ++stats_.redirects;
            leader_ = std::move(hint);
            if (op->attempts % 8 == 0) {  // a loop of stale hints: pause now and then
                retry_later(op);
            } else {
                attempt(op);
            }
            return;
        case answer_kind::retry:
            leader_.clear();
            retry_later(op);
            return;
    }
}

void leader_caller::retry_later(const std::shared_ptr<operation>& op) {
    ++stats_.retries;
    auto& timers = endpoint_.owner().timers();
    std::erase_if(timers_, [&timers](timer_id t) { return !timers.pending(t); });
    timers_.push_back(timers.schedule_at(endpoint_.owner().now_ns() + config_.retry_pause,
                                         [this, op] { attempt(op); }));
}

void leader_caller::finish(const std::shared_ptr<operation>& op, call_verdict verdict) {
    if (op->finished) return;
    op->finished = true;
    if (op->done) op->done(verdict, op->attempts);
}

}  // namespace ringmesh::cluster
