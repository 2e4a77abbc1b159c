// A node: N shards, one thread each, pinned to configured cores, connected by the ring mesh.
// This is what an application embeds. Start it, let each shard set itself up on its own
// thread (register handlers, open transports), stop it from any thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "engine/core/clock.h"
#include "engine/core/loop_stats.h"
#include "engine/core/result.h"
#include "engine/core/shard.h"
#include "engine/smp/ring_mesh.h"

namespace ringmesh {

struct node_config {
    std::uint32_t shard_count = 1;
    /// cores[i] is shard i's core. Empty: the first shard_count cores this process may use.
    std::vector<int> cores;
    /// Pin shard threads (off only for tests that run more shards than cores).
    bool pin_threads = true;
    std::size_t ring_capacity = 4096;  ///< tasks per cross-core ring
    shard_config shard;
    /// How long stop() waits for in-flight cross-core work to drain before it gives up.
    time_ns drain_timeout_ns = 5 * ns_per_s;
};

/// Checks a node config against this machine (cores exist and are allowed, no duplicates,
/// one per shard) and fills in defaults. Control path: errors say what to fix.
result<node_config> resolve_node_config(node_config config);

/// Created and controlled from one control thread (the application's main thread).
class node {
  public:
    /// Runs on each shard's own thread before its loop starts.
    using shard_init_fn = std::function<void(shard&)>;

    static result<std::unique_ptr<node>> create(node_config config);
    ~node();
    node(const node&) = delete;
    node& operator=(const node&) = delete;

    /// Starts one pinned thread per shard and waits until each has run `init`.
    result<void> start(const shard_init_fn& init = {});

    /// Graceful stop: lets queued cross-core work drain (up to drain_timeout_ns), then ends
    /// the loops and joins the threads. Idempotent.
    void stop();

    /// Whether stop() has begun: long-running shard work should wind down when it sees this.
    /// Any thread.
    bool stopping() const noexcept { return stopping_.load(std::memory_order_acquire); }

    std::uint32_t shard_count() const noexcept { return config_.shard_count; }
    const node_config& config() const noexcept { return config_; }
    /// Before start() or after stop() only: a running shard belongs to its thread.
    shard& shard_at(shard_id id) { return *shards_[id]; }
    /// Any thread.
    loop_stats_snapshot stats(shard_id id) const { return shards_[id]->stats().snapshot(); }
    const ring_mesh& mesh() const noexcept { return *mesh_; }

  private:
    explicit node(node_config config);
    void run_shard(shard_id id, const shard_init_fn& init);
    bool wait_for_quiescence();

    node_config config_;
    monotonic_clock clock_;
    std::unique_ptr<ring_mesh> mesh_;
    std::vector<std::unique_ptr<shard>> shards_;
    std::vector<std::thread> threads_;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> exit_loops_{false};
    std::atomic<std::uint32_t> shards_started_{0};
    std::vector<std::optional<error>> start_errors_;
};

}  // namespace ringmesh
