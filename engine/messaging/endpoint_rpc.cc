// RPC: methods served here, calls to peers (a deadline each, the reply or DeadlineExceeded,
// whichever comes first, and the round trip from the shard's clock).
#include "engine/messaging/endpoint.h"

#include "engine/messaging/endpoint_state.h"

namespace ringmesh::messaging {

void endpoint::serve(std::string_view method, rpc_handler handler) {
    rpc_handlers_[std::string(method)] = std::move(handler);
}

void endpoint::serve_deferred(std::string_view method, deferred_handler handler) {
    if (!handler) {
        deferred_handlers_.erase(std::string(method));
        return;
    }
    deferred_handlers_[std::string(method)] = std::move(handler);
}

bool endpoint::reply(const pending_reply& to, const rpc_reply& r) {
    peer_state* p = find_peer(to.peer);
    if (p == nullptr || p->s.peer_incarnation() != to.incarnation) {
        ++stats_.rpc_replies_undeliverable;
        return false;
    }
    const auto body = builder_.rpc_response(to.call_id, r.status, r.message, r.payload);
    if (p->s.send(rpc_stream, wire::FrameKind::RpcResponse, body) != outcome::accepted) {
        ++stats_.rpc_replies_undeliverable;
        return false;
    }
    return true;
}

outcome endpoint::call(std::string_view peer, std::string_view method,
                       std::span<const std::byte> request, time_ns timeout_ns,
                       reply_handler on_reply) {
    peer_state* p = find_peer(peer);
    if (p == nullptr) return outcome::unknown_peer;
    const std::uint64_t call_id = next_call_id_++;
    const auto body = builder_.rpc_request(call_id, method, timeout_ns, request);
    if (const outcome sent = p->s.send(rpc_stream, wire::FrameKind::RpcRequest, body);
        sent != outcome::accepted) {
        return sent;
    }
    ++stats_.rpc_calls;
    const time_ns now = shard_.read_clock();  // not the iteration's start: a precise RTT
    const timer_id deadline =
        shard_.timers().schedule_at(shard_.now_ns() + timeout_ns, [this, call_id] {
            auto it = calls_.find(call_id);
            if (it == calls_.end()) return;
            it->second.deadline = {};  // firing now: nothing to cancel
            ++stats_.rpc_timeouts;
            finish_call(call_id, {wire::RpcStatus::DeadlineExceeded, {}, "deadline exceeded", 0},
                        false);
        });
    calls_.emplace(call_id, pending_call{std::move(on_reply), deadline, now});
    return outcome::accepted;
}

void endpoint::serve_request(peer_state& p, const wire::frame& f, const buffer_handle* owner) {
    const auto* request = wire::body_as<wire::RpcRequest>(f);
    const message m{p.id, rpc_stream, {}, wire::bytes_of(request->payload()), owner};
    const std::string method(wire::view_of(request->method()));
    if (auto deferred = deferred_handlers_.find(method); deferred != deferred_handlers_.end()) {
        ++stats_.rpc_served;
        const deferred_handler handler = deferred->second;  // survives a serve_deferred inside
        handler(m, pending_reply{p.id, p.s.peer_incarnation(), request->call_id()});
        return;
    }
    rpc_reply reply{wire::RpcStatus::NoSuchMethod, {}, "no such method"};
    auto handler = rpc_handlers_.find(method);
    if (handler != rpc_handlers_.end()) {
        ++stats_.rpc_served;
        reply = handler->second(m);
    } else {
        ++stats_.rpc_no_such_method;
    }
    const auto body =
        builder_.rpc_response(request->call_id(), reply.status, reply.message, reply.payload);
    p.s.send(rpc_stream, wire::FrameKind::RpcResponse, body);
}

void endpoint::take_response(const wire::frame& f) {
    const auto* response = wire::body_as<wire::RpcResponse>(f);
    finish_call(response->call_id(),
                {response->status(), wire::bytes_of(response->payload()),
                 wire::view_of(response->message()), 0},
                true);
}

void endpoint::finish_call(std::uint64_t call_id, const rpc_result& result, bool answered) {
    auto it = calls_.find(call_id);
    if (it == calls_.end()) return;  // late reply after the deadline: dropped
    pending_call call = std::move(it->second);
    calls_.erase(it);
    shard_.timers().cancel(call.deadline);
    rpc_result with_rtt = result;
    with_rtt.rtt_ns = shard_.read_clock() - call.sent_ns;
    if (answered) {
        if (!rpc_latency_) rpc_latency_ = std::make_unique<latency_histogram>();
        rpc_latency_->record(with_rtt.rtt_ns);
    }
    if (call.on_reply) call.on_reply(with_rtt);
}

}  // namespace ringmesh::messaging
