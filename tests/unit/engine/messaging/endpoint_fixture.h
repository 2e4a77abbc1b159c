// The endpoint tests' fixture: endpoints, each on its own shard, all stepped from the test
// thread, on the simulated network (virtual clock) or on io_uring loopback sockets. Shared by
// the endpoint's own tests and by the secure layer's (which wraps each endpoint's transport:
// wrap_transport).
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/messaging/endpoint.h"
#include "tests/support/bytes.h"
#include "transport/sim/sim_network.h"
#include "transport/uring/uring_transport.h"

namespace ringmesh::messaging::test {

using test_support::bytes_of;
using test_support::text_of;

class EndpointTest : public ::testing::Test {
  protected:
    static constexpr std::uint32_t node_count = 4;

    explicit EndpointTest(bool simulated = true) : simulated_(simulated) {}

    void SetUp() override {
        mesh_ = std::make_unique<ring_mesh>(node_count, 64);
        shard_config sc;
        sc.buffer_count = 64;
        for (shard_id id = 0; id < node_count; ++id) {
            shards_.push_back(std::move(shard::create(id, *mesh_, clock(), sc)).value());
        }
        endpoints_.resize(node_count);
    }
    void TearDown() override {
        for (shard_id id = 0; id < endpoints_.size(); ++id) {
            detail::bind_thread_to_shard(shards_[id].get());
            endpoints_[id].reset();
            detail::bind_thread_to_shard(nullptr);
        }
    }

    clock_source& clock() {
        return simulated_ ? static_cast<clock_source&>(virtual_clock_) : monotonic_clock_;
    }
    // A simulated node's address: a label, never a socket.
    static std::string sim_address(shard_id id) {
        return "127.0.0." + std::to_string(id + 1) + ":7000";
    }

    std::unique_ptr<transport::transport> make_transport(shard_id id, std::string& listen) {
        if (simulated_) {
            if (listen.ends_with(":0")) listen = sim_address(id);
            auto t = net_.make_transport(listen, id);
            return t;
        }
        auto t = transport::uring_transport::create(uring_, id);
        if (!t) {
            ADD_FAILURE() << "io_uring: " << t.err().message();
            std::abort();
        }
        return std::move(t).value();
    }

    // Starts node `id` named `name`, listening on an ephemeral port, dialing `dial`.
    endpoint& start(shard_id id, std::string name, std::vector<shard_id> dial = {},
                    std::string cluster = "test", session_config session = {},
                    std::string listen = "127.0.0.1:0", std::vector<shard_id> datagram_dial = {}) {
        auto t = make_transport(id, listen);
        if (wrap_transport) t = wrap_transport(id, name, std::move(t));
        endpoint_config config;
        config.cluster_id = std::move(cluster);
        config.node_id = std::move(name);
        config.listen = *transport::address::parse(listen);
        config.session = session;
        config.peer_retention_ns = endpoint_config_.peer_retention_ns;
        config.max_datagram_addresses = endpoint_config_.max_datagram_addresses;
        config.random_seed = ++starts_;  // replayable jitter and incarnations
        for (shard_id peer : dial)
            config.peers.push_back(address_of(peer));
        for (shard_id peer : datagram_dial)
            config.datagram_peers.push_back(address_of(peer));
        detail::bind_thread_to_shard(shards_[id].get());
        auto e = endpoint::create(*shards_[id], std::move(t), std::move(config));
        detail::bind_thread_to_shard(nullptr);
        EXPECT_TRUE(e) << e.err().message();
        endpoints_[id] = std::move(e).value();
        return *endpoints_[id];
    }
    endpoint& start_datagram(shard_id id, std::string name, std::vector<shard_id> dial,
                             std::string listen = "127.0.0.1:0") {
        return start(id, std::move(name), {}, "test", {}, std::move(listen), std::move(dial));
    }
    transport::address address_of(shard_id id) {
        if (simulated_) return *transport::address::parse(sim_address(id));
        return static_cast<transport::uring_transport&>(endpoints_[id]->transport())
            .listen_address();
    }
    void step() { step_only({0, 1, 2, 3}); }
    // One iteration of each listed shard that runs an endpoint (the others stand still, like
    // a paused process). Simulated time jumps to the next delivery or timer when nothing
    // moved: the harness owns the clock.
    void step_only(const std::vector<shard_id>& only) {
        std::size_t work = 0;
        for (shard_id id : only) {
            if (!endpoints_[id]) continue;
            detail::bind_thread_to_shard(shards_[id].get());
            work += shards_[id]->run_once();
            detail::bind_thread_to_shard(nullptr);
        }
        if (!simulated_ || work > 0) return;
        const time_ns now = virtual_clock_.now_ns();
        time_ns next = net_.next_event_ns();
        for (shard_id id : only) {
            if (endpoints_[id]) next = std::min(next, shards_[id]->timers().next_wakeup_ns());
        }
        // A delivery due to a node that stands still does not move time: step past it.
        virtual_clock_.set(next > now && next != INT64_MAX ? next : now + 100 * ns_per_us);
    }
    bool pump_until(const std::function<bool()>& done, int max_rounds = 400000) {
        for (int i = 0; i < max_rounds && !done(); ++i)
            step();
        return done();
    }
    // Steps only the listed shards until `done()`, with a deadline.
    bool pump_until_on(std::vector<shard_id> only, const std::function<bool()>& done,
                       time_ns deadline_ns = 10 * ns_per_s) {
        const time_ns until = clock().now_ns() + deadline_ns;
        while (!done() && clock().now_ns() < until)
            step_only(only);
        return done();
    }
    // Runs `fn` as code on shard `id` (handlers and API calls belong to their shard).
    template <typename Fn>
    auto on(shard_id id, Fn&& fn) {
        detail::bind_thread_to_shard(shards_[id].get());
        struct unbind {
            ~unbind() { detail::bind_thread_to_shard(nullptr); }
        } guard;
        return fn(*endpoints_[id]);
    }
    // From node `from`, sends "next", "next+1", ... on `stream` to `peer`, `n` of them, each
    // accepted (the window must have room); `next` moves past them.
    void send_numbered(shard_id from, const std::string& peer, std::uint32_t stream, int& next,
                       int n) {
        for (int i = 0; i < n; ++i, ++next) {
            ASSERT_EQ(on(from,
                         [&](endpoint& e) {
                             return e.send(peer, stream, bytes_of(std::to_string(next)));
                         }),
                      outcome::accepted);
        }
    }
    // From node `from`, publishes "0", "1", ... (each followed by `suffix`) on `topic` whenever
    // every subscriber's window has room, `count` in all, stepping until `done()`.
    bool publish_numbered_until(shard_id from, const std::string& topic, int count,
                                const std::string& suffix, const std::function<bool()>& done) {
        int next = 0;
        return pump_until([&] {
            while (next < count && on(from, [&](endpoint& e) { return e.publish_ready(topic); })) {
                on(from, [&](endpoint& e) {
                    return e.publish(topic, bytes_of(std::to_string(next) + suffix));
                });
                ++next;
            }
            return done();
        });
    }

    bool simulated_;
    monotonic_clock monotonic_clock_;
    virtual_clock virtual_clock_{ns_per_s};
    transport::sim::sim_network net_{1};
    std::uint64_t starts_ = 0;
    transport::uring_config uring_;    // for the io_uring endpoints started next
    endpoint_config endpoint_config_;  // likewise (the settings start() does not set)
    /// When set, each started endpoint's transport goes through it (a secure layer, say).
    std::function<std::unique_ptr<transport::transport>(shard_id, const std::string& name,
                                                        std::unique_ptr<transport::transport>)>
        wrap_transport;
    std::unique_ptr<ring_mesh> mesh_;
    std::vector<std::unique_ptr<shard>> shards_;
    std::vector<std::unique_ptr<endpoint>> endpoints_;
};

class EndpointUringTest : public EndpointTest {
  protected:
    EndpointUringTest() : EndpointTest(false) {}
};

}  // namespace ringmesh::messaging::test
