// A shard with several sources of work (two io_uring rings here, as messaging and gossip
// have) sleeps until any of them has work; duty-cycled pollers run when the shard wakes; stop
// hooks run on the shard's own thread. Everything waits for a condition with a deadline.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "engine/core/shard.h"
#include "engine/node.h"
#include "transport/uring/uring_transport.h"

namespace ringmesh {
namespace {

bool wait_for(const std::function<bool()>& done,
              std::chrono::seconds limit = std::chrono::seconds(10)) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));  // paces the polling
    return done();
}

node_config one_blocking_shard() {
    node_config config;
    config.shard_count = 1;
    config.pin_threads = false;
    config.shard.idle.kind = idle_kind::block;
    return config;
}

// Counts the datagrams one ring receives; owned by the shard.
struct datagram_counter final : transport::event_handler {
    std::atomic<int> received{0};
    void on_connected(transport::connection_id, bool) override {}
    void on_received(transport::connection_id, buffer_handle) override {}
    void on_datagram(const transport::address&, std::span<const std::byte>,
                     buffer_handle) override {
        received.fetch_add(1);
    }
    void on_closed(transport::connection_id, transport::close_reason, int) override {}
};

void send_udp(const transport::address& to) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    ASSERT_GE(fd, 0);
    const char byte = 'x';
    ASSERT_EQ(::sendto(fd, &byte, 1, 0, to.sa(), to.length), 1);
    ::close(fd);
}

TEST(ShardWaitTest, AnIdleShardWakesForIoOnAnyOfItsRings) {
    auto n = node::create(one_blocking_shard());
    ASSERT_TRUE(n);
    std::array<std::unique_ptr<transport::uring_transport>, 2> rings;
    std::array<datagram_counter, 2> counters;
    std::array<transport::address, 2> addresses;
    std::string failure;
    ASSERT_TRUE((*n)->start([&](shard& s) {
        for (std::size_t i = 0; i < 2; ++i) {
            auto t = transport::uring_transport::create(transport::uring_config{}, s.id());
            if (!t || !(*t)->listen(*transport::address::parse("127.0.0.1:0"))) {
                failure = "io_uring setup failed";
                return;
            }
            rings[i] = std::move(t).value();
            addresses[i] = rings[i]->listen_address();
            transport::uring_transport* ring = rings[i].get();
            datagram_counter* counter = &counters[i];
            s.add_poller(poll_step::transport,
                         [ring, counter](time_ns now) { return ring->poll(now, *counter); });
            shard::wait_source source;
            if (i == 0) {  // the first ring sleeps for the shard; the second only wakes it
                source.wait = [ring](time_ns timeout, std::span<const int> fds) {
                    ring->wait(timeout, fds);
                };
            }
            source.ready_fd = [ring] { return ring->ready_fd(); };
            s.add_wait_source(std::move(source));
        }
        s.on_stop([&rings] {
            for (auto& r : rings)
                r.reset();
        });
    }));
    ASSERT_TRUE(failure.empty()) << failure;
    const auto parks = [&] { return (*n)->stats(0).parks; };
    // Each round: the shard has parked (nothing to do, no timer: it sleeps until woken), a
    // datagram arrives on one ring, and the shard must wake and take it, whichever ring it
    // was. Had the second ring no way to wake it, the shard would sleep past the deadline.
    ASSERT_TRUE(wait_for([&] { return parks() > 0 && (*n)->shard_at(0).quiescent(); }));
    for (int round = 0; round < 6; ++round) {
        const std::size_t which = round % 2 == 0 ? 1 : 0;
        const std::uint64_t parked_before = parks();
        const int before = counters[which].received.load();
        send_udp(addresses[which]);
        ASSERT_TRUE(wait_for([&] { return counters[which].received.load() == before + 1; }))
            << "ring " << which << " round " << round;
        ASSERT_TRUE(wait_for([&] { return parks() > parked_before; }));  // asleep again
    }
    (*n)->stop();
}

TEST(ShardWaitTest, AWaitSourceThatTakesTheFdNumberOfARemovedOneStillWakesTheShard) {
    // A source leaves the shard and closes its fd; a new source gets the same fd number. The
    // sleeping ring must poll the new file, not believe the number is armed already.
    // Declared before the node: a failing test still stops the node (and so closes the
    // ring on its shard) before these go.
    std::unique_ptr<transport::uring_transport> ring_holder;
    datagram_counter counter;  // the ring's events are reaped, so that it really sleeps
    auto n = node::create(one_blocking_shard());
    ASSERT_TRUE(n);
    std::atomic<bool> swap_now{false};
    std::atomic<int> old_fd{-1}, new_fd{-1};
    shard::wait_source_id extra = 0;
    std::string failure;
    ASSERT_TRUE((*n)->start([&](shard& s) {
        auto t = transport::uring_transport::create(transport::uring_config{}, s.id());
        if (!t) {
            failure = t.err().message();
            return;
        }
        ring_holder = std::move(t).value();
        transport::uring_transport* ring = ring_holder.get();
        s.add_poller(poll_step::transport,
                     [ring, &counter](time_ns now) { return ring->poll(now, counter); });
        s.add_wait_source(
            {[ring](time_ns timeout, std::span<const int> fds) { ring->wait(timeout, fds); },
             [ring] { return ring->ready_fd(); }, [ring](int fd) { ring->forget_wake_fd(fd); }});
        old_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        extra = s.add_wait_source({{}, [&old_fd] { return old_fd.load(); }, {}});
        s.add_poller(poll_step::protocol, [&, self = &s](time_ns) {
            if (!swap_now.exchange(false)) return std::size_t{0};
            self->remove_wait_source(extra);
            ::close(old_fd.load());
            const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
            extra = self->add_wait_source({{}, [fd] { return fd; }, {}});
            new_fd = fd;
            return std::size_t{1};
        });
        s.on_stop([&] { ring_holder.reset(); });
    }));
    ASSERT_TRUE(failure.empty()) << failure;
    const auto parks = [&] { return (*n)->stats(0).parks; };
    ASSERT_TRUE(wait_for([&] { return parks() > 0 && (*n)->shard_at(0).quiescent(); }));
    swap_now = true;
    (*n)->shard_at(0).wake();
    ASSERT_TRUE(wait_for([&] { return new_fd.load() >= 0; }));
    EXPECT_EQ(new_fd.load(), old_fd.load()) << "(the kernel reuses the lowest free number)";
    for (int round = 0; round < 3; ++round) {
        const std::uint64_t parked_before = parks();
        ASSERT_TRUE(wait_for([&] { return (*n)->shard_at(0).quiescent(); }));
        const std::uint64_t one = 1;
        ASSERT_EQ(::write(new_fd.load(), &one, sizeof one), static_cast<ssize_t>(sizeof one));
        ASSERT_TRUE(wait_for([&] { return parks() > parked_before; })) << "round " << round;
    }
    (*n)->stop();
    ::close(new_fd.load());
}

TEST(ShardWaitTest, ADutyCycledPollerRunsWhenTheShardWakesAndBeforeItParks) {
    auto n = node::create(one_blocking_shard());
    ASSERT_TRUE(n);
    std::atomic<int> runs{0};
    ASSERT_TRUE((*n)->start([&](shard& s) {
        s.add_poller(
            poll_step::protocol,
            [&runs](time_ns) {
                runs.fetch_add(1);
                return std::size_t{0};
            },
            3600 * ns_per_s);  // on its own schedule, once an hour
    }));
    ASSERT_TRUE(wait_for([&] { return (*n)->stats(0).parks > 0; }));
    const int after_first_park = runs.load();
    EXPECT_GE(after_first_park, 2);  // the first iteration, then the look before parking
    for (int i = 0; i < 3; ++i) {
        const int before = runs.load();
        (*n)->shard_at(0).wake();
        ASSERT_TRUE(wait_for([&] { return runs.load() > before; })) << "wake " << i;
    }
    (*n)->stop();
}

TEST(ShardWaitTest, StopHooksRunOnTheShardsOwnThreadInReverseOrder) {
    node_config config = one_blocking_shard();
    config.shard_count = 2;
    auto n = node::create(config);
    ASSERT_TRUE(n);
    std::vector<int> order[2];
    std::atomic<int> on_own_thread{0};
    ASSERT_TRUE((*n)->start([&](shard& s) {
        for (int i = 0; i < 3; ++i) {
            s.on_stop([&, i, self = &s] {
                order[self->id()].push_back(i);
                if (this_shard() == self) on_own_thread.fetch_add(1);
            });
        }
    }));
    (*n)->stop();
    for (const auto& o : order)
        EXPECT_EQ(o, (std::vector<int>{2, 1, 0}));
    EXPECT_EQ(on_own_thread.load(), 6);
}

}  // namespace
}  // namespace ringmesh
