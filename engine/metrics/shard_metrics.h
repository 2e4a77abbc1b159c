// A shard's metrics, collected only when read: sources (functions that read a component's
// counters) are registered on the owner shard; a reader on any thread asks for a snapshot,
// and the shard builds it between two iterations of its loop and hands it over. The data path
// pays one relaxed atomic load per iteration (is a snapshot wanted?) and nothing else: the
// counters themselves stay plain fields written by their shard alone, read only by it.
//
// A reader waits (bounded) for the snapshot, waking the shard if it sleeps; a shard that does
// not answer in time (stuck in a long step) leaves the reader the previous snapshot, marked
// stale.
//
// Owned by the shard it serves: created, given sources and destroyed on that shard's thread
// (the poller it registers goes with it); collect() from any thread while it exists.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <vector>

#include "engine/core/shard.h"
#include "engine/metrics/metric_sink.h"

namespace ringmesh::metrics {

class shard_metrics {
  public:
    using source = std::function<void(metric_sink& sink)>;
    using source_id = std::uint64_t;

    /// Adds the shard's own loop figures (iterations, busy share, stalls, parks, cross-core
    /// tasks) as the first source; every sample carries shard="N".
    explicit shard_metrics(shard& owner);
    ~shard_metrics();
    shard_metrics(const shard_metrics&) = delete;
    shard_metrics& operator=(const shard_metrics&) = delete;

    /// Owner shard only.
    source_id add_source(source fn);
    void remove_source(source_id id);

    /// Any thread: a fresh snapshot, waiting up to `wait` for the shard to make it. `fresh`
    /// (if given) says whether it is (false: the previous one, the shard did not answer).
    std::vector<family> collect(std::chrono::milliseconds wait, bool* fresh = nullptr);

    shard_id owner_id() const noexcept { return id_; }

  private:
    std::size_t answer();

    shard& shard_;
    shard_id id_;
    shard::poller_id poller_ = 0;
    std::map<source_id, source> sources_;
    source_id next_id_ = 1;

    std::atomic<std::uint64_t> requested_{0};  // readers bump it
    std::uint64_t answered_ = 0;               // the owner's own copy of served_
    std::mutex mutex_;                         // guards latest_, served_ waits
    std::condition_variable served_cv_;
    std::atomic<std::uint64_t> served_{0};
    std::vector<family> latest_;
};

}  // namespace ringmesh::metrics
