#include "tools/node_workload.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "engine/core/log.h"

namespace ringmesh::tools {

namespace msg = messaging;

// ---- node_view ----

node_view::node_view(unsigned shards) : slots_(std::make_unique<slot[]>(shards)), count_(shards) {}

void node_view::mark_endpoint(shard_id id) noexcept {
    slots_[id].endpoint.store(true, std::memory_order_relaxed);
}

void node_view::update(shard_id id, bool acked) noexcept {
    slot& s = slots_[id];
    s.acked.store(acked, std::memory_order_relaxed);
    s.checks.fetch_add(1, std::memory_order_release);  // publishes the flag
}

bool node_view::acked() const noexcept {
    for (unsigned i = 0; i < count_; ++i) {
        if (!slots_[i].acked.load(std::memory_order_relaxed)) return false;
    }
    return true;
}

std::vector<std::uint64_t> node_view::checks() const {
    std::vector<std::uint64_t> out(count_);
    for (unsigned i = 0; i < count_; ++i)
        out[i] = slots_[i].checks.load(std::memory_order_acquire);
    return out;
}

bool node_view::refreshed_since(const std::vector<std::uint64_t>& before) const {
    for (unsigned i = 0; i < count_; ++i) {
        if (slots_[i].endpoint.load(std::memory_order_relaxed) &&
            slots_[i].checks.load(std::memory_order_acquire) <= before[i]) {
            return false;
        }
    }
    return true;
}

// ---- one shard's workload ----

namespace {

// Widens [first, last] to cover [other_first, other_last] (0: nothing happened yet).
void widen(time_ns& first, time_ns& last, time_ns other_first, time_ns other_last) {
    if (other_first == 0) return;
    if (first == 0 || other_first < first) first = other_first;
    last = std::max(last, other_last);
}

}  // namespace

void workload_report::add(const workload_report& o) {
    published += o.published;
    publish_refused += o.publish_refused;
    publish_blocked += o.publish_blocked;
    widen(first_publish_ns, last_publish_ns, o.first_publish_ns, o.last_publish_ns);
    received += o.received;
    in_order += o.in_order;
    duplicates += o.duplicates;
    gaps += o.gaps;
    widen(first_receive_ns, last_receive_ns, o.first_receive_ns, o.last_receive_ns);
    one_way.merge(o.one_way);
    calls_ok += o.calls_ok;
    calls_failed += o.calls_failed;
    rtt.merge(o.rtt);
}

shard_workload::shard_workload(shard& owner, msg::shard_messaging& api,
                               const workload_options& options, node_view& view, int log_fd,
                               std::function<void()> on_finished)
    : shard_(owner),
      api_(api),
      options_(options),
      view_(view),
      log_fd_(log_fd),
      on_finished_(std::move(on_finished)),
      payload_(options.payload_bytes, std::byte{0}),
      lane_base_(static_cast<std::uint64_t>(owner.id()) << lane_shift) {}

std::optional<std::string> shard_workload::start() {
    for (const auto& pattern : options_.subscribe) {
        const auto subscribed =
            api_.subscribe(pattern, [this](const msg::message& m) { on_delivery(m); });
        if (subscribed.status != msg::outcome::accepted) {
            return std::string(msg::to_string(subscribed.status)) + ": subscription pattern '" +
                   pattern + "'";
        }
    }
    // Point-to-point messages are counted like publishes (the last workload shard to start
    // takes the stream).
    api_.on_stream(msg::first_user_stream, [this](const msg::message& m) { on_delivery(m); });
    shard_.add_poller(poll_step::protocol, [this](time_ns now) { return step(now); });
    return std::nullopt;
}

std::size_t shard_workload::step(time_ns now) {
    const std::size_t work = publish_step(now) + rpc_step();
    idle_.store(!call_outstanding_ && api_.quiet(), std::memory_order_relaxed);
    check_finished();
    return work;
}

// --count published and acknowledged: everything handed to the endpoint shards has come back
// (quiet), and every endpoint shard has since looked at its peers and found nothing
// unacknowledged. One look taken before our last messages reached it would prove nothing.
void shard_workload::check_finished() {
    const auto& o = options_;
    if (finished_ || !o.count || o.linger || !o.rpc_peer.empty() || figures_.published < o.count ||
        !idle()) {
        finish_candidate_.reset();
        return;
    }
    if (!finish_candidate_) {
        finish_candidate_ = view_.checks();
        ask_for_fresh_view();
        return;
    }
    if (!view_.refreshed_since(*finish_candidate_)) {
        ask_for_fresh_view();
        return;
    }
    if (!view_.acked()) {
        finish_candidate_ = view_.checks();
        ask_for_fresh_view();
        return;
    }
    finished_ = true;
    if (on_finished_) on_finished_();
}

void shard_workload::ask_for_fresh_view() {
    if (shard_.timers().pending(recheck_)) return;  // asked already; not yet looked
    // An empty task wakes a sleeping endpoint shard, whose duty-cycled look at its peers runs
    // on its first iteration after sleep.
    for (shard_id id = 0; id < view_.shard_count(); ++id) {
        if (id != shard_.id() && view_.runs_endpoint(id)) (void)shard_.submit_to(id, [] {});
    }
    recheck_ = shard_.timers().schedule_at(shard_.now_ns() + ns_per_ms, [] {});
}

std::size_t shard_workload::publish_step(time_ns now) {
    const auto& o = options_;
    const bool sending = !o.send_peer.empty();
    if ((o.publish_topic.empty() && !sending) || publish_stopped_ ||
        view_.stop_sending.load(std::memory_order_relaxed)) {
        return 0;
    }
    if (o.count && figures_.published >= o.count) return 0;
    if (sending ? !api_.connected(o.send_peer)
                : api_.peer_subscribers(o.publish_topic) < o.wait_subscribers) {
        return 0;
    }
    if (figures_.first_publish_ns == 0) figures_.first_publish_ns = now;
    std::size_t work = 0;
    for (; work < 256; ++work) {
        if (o.count && figures_.published >= o.count) break;
        if (o.rate > 0) {
            const auto due =
                figures_.first_publish_ns +
                static_cast<time_ns>(static_cast<double>(figures_.published) * 1e9 / o.rate);
            if (due > now) {
                // Ahead of schedule: make sure the loop wakes for the next message even when
                // the idle strategy sleeps in the kernel.
                if (!shard_.timers().pending(pacing_))
                    pacing_ = shard_.timers().schedule_at(due, [] {});
                break;
            }
        }
        const std::uint64_t seq = lane_base_ + figures_.published + 1;
        const time_ns sent_ns = monotonic_clock::read();
        std::memcpy(payload_.data(), &seq, 8);
        std::memcpy(payload_.data() + 8, &sent_ns, 8);
        const msg::outcome r = sending ? api_.send(o.send_peer, msg::first_user_stream, payload_)
                                       : api_.publish(o.publish_topic, payload_);
        if (r == msg::outcome::back_pressure) {
            ++figures_.publish_blocked;  // a window or the cross-shard bound is full: wait
            break;
        }
        if (r != msg::outcome::accepted) {
            // Retrying cannot help: say it once, count it, and stop.
            ++figures_.publish_refused;
            log::error("node",
                       "{} refused ({}): a {} B message to {}; the frame limit is "
                       "limits.max_body_bytes; not sending",
                       sending ? "send" : "publish", msg::to_string(r), o.payload_bytes,
                       sending ? o.send_peer : o.publish_topic);
            publish_stopped_ = true;
            break;
        }
        ++figures_.published;
        figures_.last_publish_ns = sent_ns;
    }
    return work;
}

std::size_t shard_workload::rpc_step() {
    const auto& o = options_;
    if (o.rpc_peer.empty() || call_outstanding_ || calls_refused_ ||
        view_.stop_sending.load(std::memory_order_relaxed) || !api_.connected(o.rpc_peer)) {
        return 0;
    }
    const auto outcome =
        api_.call(o.rpc_peer, "echo", payload_, ns_per_s, [this](const msg::rpc_result& r) {
            call_outstanding_ = false;
            if (r.status == wire::RpcStatus::Ok) {
                ++figures_.calls_ok;
                figures_.rtt.record(r.rtt_ns);
            } else {
                ++figures_.calls_failed;
            }
        });
    call_outstanding_ = outcome == msg::outcome::accepted;
    if (outcome != msg::outcome::accepted && !msg::retryable(outcome) &&
        outcome != msg::outcome::unknown_peer) {  // (unknown until it first connects)
        log::error("node", "call to {} refused ({}); not calling", o.rpc_peer,
                   msg::to_string(outcome));
        calls_refused_ = true;  // said once; no call is counted
    }
    return 1;
}

void shard_workload::on_delivery(const msg::message& m) {
    const time_ns now = monotonic_clock::read();
    if (m.bytes.size() < 16) return;
    std::uint64_t seq;
    time_ns sent_ns;
    std::memcpy(&seq, m.bytes.data(), 8);
    std::memcpy(&sent_ns, m.bytes.data() + 8, 8);
    auto& f = figures_;
    if (f.received++ == 0) f.first_receive_ns = now;
    f.last_receive_ns = now;
    f.one_way.record(now - sent_ns);
    // Order per (publisher, lane): numbers in a lane start at lane_base + 1.
    const auto key = std::make_pair(std::string(m.peer), lane_of(seq));
    auto [it, first] = last_seq_.try_emplace(key, 0);
    std::uint64_t& last = it->second;
    const std::uint64_t expected = first ? (lane_of(seq) << lane_shift) + 1 : last + 1;
    if (seq == expected || first) {
        ++f.in_order;
    } else if (seq <= last) {
        ++f.duplicates;
    } else {
        ++f.gaps;
    }
    if (first || seq > last) last = seq;
    // write(2), not stdio: what was delivered survives a kill -9 of this process.
    if (log_fd_ >= 0) [[maybe_unused]]
        auto n = ::write(log_fd_, &seq, sizeof seq);
}

// ---- the report ----

namespace {

double pct_us(const latency_histogram& h, double q) {
    return static_cast<double>(h.quantile(q)) / 1e3;
}

}  // namespace

void print_workload_report(const workload_report& w, const workload_options& o,
                           const std::string& who) {
    auto u = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
    if (!o.publish_topic.empty() || !o.send_peer.empty()) {
        const double secs = static_cast<double>(w.last_publish_ns - w.first_publish_ns) / 1e9;
        std::printf(
            "[%s] published %llu messages of %zu B %s %s in %.2f s: %.0f msg/s "
            "(%llu waits for acks or the cross-shard bound)\n",
            who.c_str(), u(w.published), o.payload_bytes, o.send_peer.empty() ? "on" : "to",
            o.send_peer.empty() ? o.publish_topic.c_str() : o.send_peer.c_str(), secs,
            secs > 0 ? static_cast<double>(w.published) / secs : 0.0, u(w.publish_blocked));
    }
    if (!o.subscribe.empty() || w.received > 0) {
        const double secs = static_cast<double>(w.last_receive_ns - w.first_receive_ns) / 1e9;
        std::printf(
            "[%s] received %llu messages in %.2f s: %.0f msg/s; one-way latency p50 %.1f us, "
            "p99 %.1f us, p99.9 %.1f us, max %.1f us; in order %llu, duplicates %llu, gaps %llu\n",
            who.c_str(), u(w.received), secs,
            secs > 0 ? static_cast<double>(w.received) / secs : 0.0, pct_us(w.one_way, 0.5),
            pct_us(w.one_way, 0.99), pct_us(w.one_way, 0.999),
            static_cast<double>(w.one_way.max()) / 1e3, u(w.in_order), u(w.duplicates), u(w.gaps));
    }
    if (!o.rpc_peer.empty()) {
        std::printf(
            "[%s] rpc echo to %s: %llu ok, %llu failed; round trip p50 %.1f us, p99 %.1f us, "
            "p99.9 %.1f us\n",
            who.c_str(), o.rpc_peer.c_str(), u(w.calls_ok), u(w.calls_failed), pct_us(w.rtt, 0.5),
            pct_us(w.rtt, 0.99), pct_us(w.rtt, 0.999));
    }
}

}  // namespace ringmesh::tools
