// The deterministic simulator's network: in-memory transports that really deliver datagrams
// and ordered byte streams between simulated nodes, on a virtual time line, with every fault
// drawn from one seeded RNG — per-link delay (and so reordering of datagrams), drops,
// duplicates, partitions between node sets, and nodes that vanish. The same seed and the same
// inputs give the same sequence of deliveries; trace_hash() fingerprints it so a test can
// assert that a failing seed replays exactly. Fault injection lives here and nowhere in the
// real data path.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "transport/transport.h"

namespace ringmesh::transport::sim {

struct link_faults {
    time_ns min_delay_ns = 20 * ns_per_us;
    time_ns max_delay_ns = 200 * ns_per_us;  ///< datagrams: independent delays reorder them
    double drop = 0;                         ///< datagrams only; streams are reliable
    double duplicate = 0;                    ///< datagrams only
};

class sim_transport;

/// One per simulation; everything runs on one thread.
class sim_network {
  public:
    explicit sim_network(std::uint64_t seed) : rng_(seed) {}

    void set_faults(const link_faults& faults) { faults_ = faults; }
    /// Nothing passes between a node of `side_a` and a node of `side_b` (addresses as
    /// "host:port"); stream connections across are cut.
    void partition(const std::vector<std::string>& side_a, const std::vector<std::string>& side_b);
    /// Asymmetric: what `from` sends to `to` vanishes (datagrams are lost, streams from `from`
    /// are cut: a stream needs both directions); what `to` sends to `from` still arrives.
    void partition_one_way(const std::vector<std::string>& from,
                           const std::vector<std::string>& to);
    void heal() { blocked_.clear(); }
    /// A stopped process (SIGSTOP): deliveries to the node at `address` wait in its queue and
    /// do not count as pending events (the harness does not step it) until it resumes.
    void pause(const std::string& address) { paused_.insert(address); }
    void resume(const std::string& address);

    /// The earliest pending delivery anywhere; INT64_MAX when the network is quiet.
    time_ns next_event_ns() const;
    /// The nodes (addresses) with a delivery due at or before `now`, earliest first; each
    /// must then be polled. Lets a harness of a thousand nodes poll only the busy ones.
    std::vector<std::string> take_due(time_ns now);
    /// FNV-1a over every delivery so far: (time, from, to, kind, bytes).
    std::uint64_t trace_hash() const noexcept { return trace_; }
    std::uint64_t delivered() const noexcept { return delivered_; }
    std::uint64_t dropped() const noexcept { return dropped_; }

    /// A transport for the node at `local` (its listen address), owned by the caller.
    /// `receive_buffers` bounds what the node may hold unprocessed (16 KiB each).
    std::unique_ptr<sim_transport> make_transport(const std::string& local, shard_id owner,
                                                  std::size_t receive_buffers = 1024);

  private:
    friend class sim_transport;
    struct event {
        time_ns at;
        std::uint64_t order;  // ties broken by scheduling order: deterministic
        enum class kind : std::uint8_t { connected, accepted, bytes, datagram, closed } what;
        std::string from, to;  // node addresses
        std::uint32_t pipe;    // stream events: the pipe they belong to
        std::vector<std::byte> payload;
        bool operator>(const event& o) const { return at != o.at ? at > o.at : order > o.order; }
    };
    struct pipe_state {
        std::string a, b;            // a dialed b
        time_ns last_delivery[2]{};  // per direction: streams deliver in order
        bool open = false, closed = false;
    };

    time_ns delay();
    bool chance(double p);
    bool blocked(const std::string& x, const std::string& y) const;
    void schedule(event e);
    void record(const event& e);
    bool stale(const std::pair<time_ns, std::string>& wake) const;

    std::mt19937_64 rng_;
    link_faults faults_;
    std::set<std::pair<std::string, std::string>> blocked_;
    std::set<std::string> paused_;
    std::map<std::string, sim_transport*> nodes_;  // by address
    std::map<std::string, std::priority_queue<event, std::vector<event>, std::greater<>>> inbox_;
    // (time, node) for every scheduled event: the earliest live one is the next event.
    // Entries whose event was consumed already are dropped lazily.
    mutable std::priority_queue<std::pair<time_ns, std::string>,
                                std::vector<std::pair<time_ns, std::string>>, std::greater<>>
        wakes_;
    std::vector<pipe_state> pipes_;
    std::uint64_t order_ = 0;
    std::uint64_t trace_ = 1469598103934665603ull;
    std::uint64_t delivered_ = 0, dropped_ = 0;
};

/// A simulated node's transport: the same seam as io_uring or DPDK, backed by sim_network.
class sim_transport final : public transport {
  public:
    sim_transport(sim_network& net, std::string local, shard_id owner,
                  std::size_t receive_buffers = 1024);
    ~sim_transport() override;

    result<void> listen(const address& local) override;
    result<connection_id> connect(const address& remote) override;
    void close(connection_id conn) override;
    std::size_t poll(time_ns now, event_handler& handler) override;
    using transport::send;  // the in-place overload copies
    std::size_t send(connection_id conn, std::span<const std::byte> bytes) override;
    using transport::send_datagram;  // the in-place overload copies
    std::size_t send_datagram(const address& to, std::span<const std::byte> bytes) override;
    std::size_t flush() override;
    void wait(time_ns, std::span<const int>) override {}  // the harness owns time: nothing blocks
    capabilities caps() const noexcept override { return {true, true, 1472}; }

    buffer_pool& receive_pool() noexcept { return *pool_; }
    const std::string& local() const noexcept { return local_; }

  private:
    friend class sim_network;
    struct conn {
        std::uint32_t pipe = 0;
        std::uint32_t generation = 0;
        bool in_use = false, connected = false, dialer = false;
        std::vector<std::byte> out;
    };
    connection_id id_of(std::uint32_t index) const { return {index, conns_[index].generation}; }
    conn* find(connection_id id);
    std::uint32_t allocate(std::uint32_t pipe, bool dialer);
    void release(std::uint32_t index);
    int side_of(const conn& c) const { return c.dialer ? 0 : 1; }

    sim_network& net_;
    std::string local_;
    std::unique_ptr<buffer_pool> pool_;
    std::vector<conn> conns_;
    std::map<std::uint32_t, std::uint32_t> by_pipe_;  // pipe -> our connection index
    time_ns now_ = 0;
};

}  // namespace ringmesh::transport::sim
