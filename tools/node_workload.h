// The daemon's built-in workloads, run on any shard through the messaging API every shard
// has (engine/messaging/shard_messaging.h), whichever shard holds the peers' sessions:
//   publish   sequence-numbered, timestamped messages on a topic (rate or max)
//   send      the same, point to point to one peer on stream `first_user_stream`
//   subscribe count deliveries (topics and that stream), check order per publisher, one-way
//             latency
//   rpc       closed-loop "echo" calls, round-trip latency
//
// Several shards may run the workload at once (--workload-shards). Each numbers its messages
// in its own lane: the lane (the publishing shard) is the top 16 bits of the sequence number,
// so a subscriber checks order per (peer, lane), and a single-shard publisher's numbers are
// 1, 2, 3 ... as before.
//
// Owned by the daemon's main(): a shard_workload is created on its shard's thread as the
// node starts and stepped only there; main reads its report after the node has stopped (the
// shard threads have been joined). node_view is shared: endpoint shards write it, workload
// shards and main read it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/core/histogram.h"
#include "engine/core/shard.h"
#include "engine/messaging/shard_messaging.h"

namespace ringmesh::tools {

struct workload_options {
    std::vector<std::string> subscribe;
    std::string publish_topic;
    std::string send_peer;    // point to point instead of publishing (stream first_user_stream)
    double rate = 0;          // messages/s per workload shard; 0: as fast as the windows allow
    std::uint64_t count = 0;  // per workload shard; 0: until the run ends
    std::size_t payload_bytes = 64;
    std::size_t wait_subscribers = 0;
    std::string rpc_peer;
    std::string delivery_log;  // one 8-byte sequence number per delivery
    double seconds = 0;        // 0: until a signal
    double drain_seconds = 10;
    bool linger = false;  // after --count, keep serving peers until --seconds or a signal
    std::vector<std::uint32_t> shards = {0};  // the shards that run the workload
    std::string replicated_subscribe;         // read the replicated topics matching this
    std::string replicated_resume;            // ... recording them here
};

/// The top 16 bits of a workload sequence number: the shard that published it.
inline constexpr int lane_shift = 48;
inline std::uint64_t lane_of(std::uint64_t seq) noexcept {
    return seq >> lane_shift;
}

/// What workload shards (and main) need to know of the node's endpoints, which may run on
/// other shards: whether every peer has acknowledged everything. Each endpoint shard writes
/// its own slot on a duty cycle; `checks` counts those writes, so a reader can wait for a
/// fresh one (a flag read just after work was handed to an endpoint shard may predate it).
/// (Who subscribes is asked of shard_messaging::peer_subscribers, which also routes.)
class node_view {
  public:
    explicit node_view(unsigned shards);

    /// Shard `id` runs an endpoint (before the node starts, or on that shard as it starts,
    /// before anyone reads the view).
    void mark_endpoint(shard_id id) noexcept;

    /// Endpoint shard `id`: whether every peer has acknowledged everything.
    void update(shard_id id, bool acked) noexcept;
    bool acked() const noexcept;
    std::vector<std::uint64_t> checks() const;
    unsigned shard_count() const noexcept { return count_; }
    bool runs_endpoint(shard_id id) const noexcept {
        return slots_[id].endpoint.load(std::memory_order_relaxed);
    }
    /// Every endpoint shard has written its slot again since `before` was taken.
    bool refreshed_since(const std::vector<std::uint64_t>& before) const;

    std::atomic<bool> stop_sending{false};
    std::atomic<bool> shutdown_requested{false};
    std::atomic<unsigned> finished_shards{0};  // --count published and acknowledged

  private:
    struct slot {
        std::atomic<bool> acked{true};
        std::atomic<std::uint64_t> checks{0};
        std::atomic<bool> endpoint{false};
    };
    std::unique_ptr<slot[]> slots_;
    unsigned count_;
};

struct workload_report {
    std::uint64_t published = 0, publish_refused = 0, publish_blocked = 0;
    time_ns first_publish_ns = 0, last_publish_ns = 0;
    std::uint64_t received = 0, in_order = 0, duplicates = 0, gaps = 0;
    time_ns first_receive_ns = 0, last_receive_ns = 0;
    latency_histogram one_way;
    std::uint64_t calls_ok = 0, calls_failed = 0;
    latency_histogram rtt;

    void add(const workload_report& other);
};

class shard_workload {
  public:
    /// On `owner`'s thread. `log_fd`: the delivery log (-1: none); `on_finished` is called
    /// once, on this thread, when --count is published and acknowledged.
    shard_workload(shard& owner, messaging::shard_messaging& api, const workload_options& options,
                   node_view& view, int log_fd, std::function<void()> on_finished);
    shard_workload(const shard_workload&) = delete;
    shard_workload& operator=(const shard_workload&) = delete;

    /// Subscribes and takes the stream; an error text when a pattern is refused.
    std::optional<std::string> start();
    /// Nothing of this shard's is unanswered or on its way (main reads it while draining).
    bool idle() const noexcept { return idle_.load(std::memory_order_relaxed); }
    const workload_report& figures() const noexcept { return figures_; }
    shard_id id() const noexcept { return shard_.id(); }

  private:
    std::size_t step(time_ns now);
    std::size_t publish_step(time_ns now);
    std::size_t rpc_step();
    void on_delivery(const messaging::message& m);
    void check_finished();
    /// Makes every endpoint shard look at its peers soon (a sleeping one is woken), and this
    /// shard look again at the result.
    void ask_for_fresh_view();

    shard& shard_;
    messaging::shard_messaging& api_;
    const workload_options& options_;
    node_view& view_;
    int log_fd_;
    std::function<void()> on_finished_;
    std::vector<std::byte> payload_;
    std::uint64_t lane_base_;
    timer_id pacing_;   // wakes a sleeping shard at the next send time
    timer_id recheck_;  // wakes it to look at a fresh view while finishing
    bool publish_stopped_ = false, calls_refused_ = false, call_outstanding_ = false;
    bool finished_ = false;
    std::optional<std::vector<std::uint64_t>> finish_candidate_;
    std::map<std::pair<std::string, std::uint64_t>, std::uint64_t> last_seq_;  // (peer, lane)
    std::atomic<bool> idle_{true};
    workload_report figures_;
};

/// One line per figure the workload has ("[id] published ...", "[id] received ...",
/// "[id] rpc echo to ..."); `who` prefixes them ("n1", or "n1 shard 1").
void print_workload_report(const workload_report& r, const workload_options& o,
                           const std::string& who);

}  // namespace ringmesh::tools
