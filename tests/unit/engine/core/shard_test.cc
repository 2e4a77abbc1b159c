// Drives two shards from the test thread, one iteration at a time, with a virtual clock: the
// cross-core and timer paths become deterministic and every step can be checked.
#include "engine/core/shard.h"

#include <gtest/gtest.h>

#include <vector>

namespace ringmesh {
namespace {

class ShardTest : public ::testing::Test {
  protected:
    void build(std::size_t ring_capacity = 64, std::size_t batch = 4) {
        mesh_ = std::make_unique<ring_mesh>(2, ring_capacity);
        shard_config config;
        config.cross_core_batch = batch;
        config.buffer_count = 8;
        config.buffer_size_bytes = 256;
        for (shard_id id = 0; id < 2; ++id) {
            auto s = shard::create(id, *mesh_, clock_, config);
            ASSERT_TRUE(s.has_value()) << s.err().message();
            shards_.push_back(std::move(s).value());
        }
    }
    // One iteration of `s` on this thread, bound to it as its shard thread would be.
    std::size_t step(shard_id id) {
        detail::bind_thread_to_shard(shards_[id].get());
        const std::size_t work = shards_[id]->run_once();
        detail::bind_thread_to_shard(nullptr);
        return work;
    }
    shard& at(shard_id id) { return *shards_[id]; }

    virtual_clock clock_{1'000'000};
    std::unique_ptr<ring_mesh> mesh_;
    std::vector<std::unique_ptr<shard>> shards_;
};

TEST_F(ShardTest, SubmittedTaskRunsOnTheTargetAfterTheSenderFlushes) {
    build();
    std::vector<shard_id> ran_on;
    detail::bind_thread_to_shard(&at(0));
    EXPECT_EQ(at(0).submit_to(1, [&ran_on](shard& s) { ran_on.push_back(s.id()); }),
              submit_outcome::accepted);
    detail::bind_thread_to_shard(nullptr);
    EXPECT_EQ(step(1), 0u);  // staged on shard 0, not yet visible
    EXPECT_EQ(step(0), 1u);  // the flush step pushes it
    EXPECT_EQ(step(1), 1u);
    EXPECT_EQ(ran_on, std::vector<shard_id>{1});
    EXPECT_EQ(at(1).stats().snapshot().tasks_run, 1u);
}

TEST_F(ShardTest, ATimerFiringRunsDutyCycledPollersEvenInTheOffPartOfTheirCycle) {
    // A protocol arms a timer at its deadline and counts on its poller to run then; the poller
    // may have run just before (on other work), so its duty cycle alone would skip it, and a
    // shard with nothing else due would never look again.
    build();
    int polls = 0;
    at(0).add_poller(
        poll_step::protocol,
        [&polls](time_ns) {
            ++polls;
            return std::size_t{0};
        },
        50 * ns_per_us);
    step(0);
    ASSERT_EQ(polls, 1);
    clock_.advance(10 * ns_per_us);
    step(0);
    EXPECT_EQ(polls, 1);  // within its cycle, nothing due: skipped
    at(0).timers().schedule_at(clock_.now_ns() + 5 * ns_per_us, [] {});  // (1 us ticks)
    clock_.advance(10 * ns_per_us);
    step(0);
    EXPECT_EQ(polls, 2);  // still within the cycle, but a timer fired
}

TEST_F(ShardTest, ABufferReleasedOnAnotherShardGoesHomeWithoutAnyoneRoutingIt) {
    build();
    // A pool like a transport's receive pool: owned by shard 0, nobody sets up routing.
    auto pool = buffer_pool::create(4, 64, 0);
    ASSERT_TRUE(pool);
    detail::bind_thread_to_shard(&at(0));
    buffer_handle held = (*pool)->try_get();
    detail::bind_thread_to_shard(nullptr);
    ASSERT_EQ((*pool)->available(), 3u);
    detail::bind_thread_to_shard(&at(1));
    held.reset();  // the last reference dies on shard 1
    detail::bind_thread_to_shard(nullptr);
    EXPECT_EQ((*pool)->available(), 3u);  // not returned from the wrong thread
    for (int i = 0; i < 4 && (*pool)->available() < 4; ++i) {
        step(1);  // shard 1's flush sends it home
        step(0);  // shard 0 takes it back
    }
    EXPECT_EQ((*pool)->available(), 4u);
}

TEST_F(ShardTest, ABufferReleasedOffShardWhileLoopsRunCrashesNamingItsOwner) {
    build();
    auto pool = buffer_pool::create(4, 64, 0);
    ASSERT_TRUE(pool);
    detail::bind_thread_to_shard(&at(0));
    buffer_handle held = (*pool)->try_get();
    detail::bind_thread_to_shard(nullptr);
    EXPECT_DEATH(
        {
            detail::shard_threads_running().fetch_add(1);  // as node::start does
            held.reset();
        },
        "buffer 0 of the pool owned by shard 0 was released on a thread that is no shard while "
        "shard loops run");
    held.reset();  // single-threaded again: returned at once
    EXPECT_EQ((*pool)->available(), 4u);
}

TEST_F(ShardTest, SubmitToItselfRunsAtOnce) {
    build();
    bool ran = false;
    EXPECT_EQ(at(0).submit_to(0, [&ran] { ran = true; }), submit_outcome::accepted);
    EXPECT_TRUE(ran);
}

TEST_F(ShardTest, FullRingIsBackPressureAndNothingAcceptedIsLost) {
    build(/*ring_capacity=*/4, /*batch=*/2);
    std::vector<int> ran;
    int accepted = 0;
    detail::bind_thread_to_shard(&at(0));
    for (int i = 0; i < 20; ++i) {
        auto* out = &ran;
        if (at(0).submit_to(1, [out, i] { out->push_back(i); }) == submit_outcome::accepted) {
            ++accepted;
        }
    }
    detail::bind_thread_to_shard(nullptr);
    EXPECT_EQ(accepted, 6);  // 4 in the ring + 2 staged
    EXPECT_GT(at(0).stats().snapshot().ring_full, 0u);
    for (int i = 0; i < 4; ++i) {
        step(1);
        step(0);
    }
    ASSERT_EQ(ran.size(), 6u);
    for (int i = 0; i < 6; ++i)
        EXPECT_EQ(ran[i], i);  // in submission order
}

TEST_F(ShardTest, HandedOffBufferReachesTheHandlerAndReturnsToItsOwner) {
    build();
    std::vector<std::uint64_t> tags;
    at(1).set_message_handler([&](shard_id from, std::uint64_t tag, buffer_handle payload) {
        EXPECT_EQ(from, 0u);
        EXPECT_EQ(payload.size(), 3u);
        EXPECT_EQ(payload.bytes()[2], std::byte{9});
        tags.push_back(tag);
    });
    buffer_handle buf = at(0).buffers().try_get();
    buf.storage()[2] = std::byte{9};
    buf.set_size(3);
    detail::bind_thread_to_shard(&at(0));
    ASSERT_EQ(at(0).hand_off(1, 77, buf), submit_outcome::accepted);
    detail::bind_thread_to_shard(nullptr);
    EXPECT_FALSE(buf);
    EXPECT_EQ(at(0).buffers().available(), 7u);
    step(0);
    EXPECT_EQ(at(0).buffers().available(), 7u);
    step(1);  // delivers; the handler drops the buffer, and the flush step sends it home
    EXPECT_EQ(tags, std::vector<std::uint64_t>{77});
    EXPECT_EQ(at(0).buffers().available(), 7u);  // not back until its owner runs
    step(0);
    EXPECT_EQ(at(0).buffers().available(), 8u);
}

TEST_F(ShardTest, RefusedHandOffLeavesTheBufferWithTheCaller) {
    build(/*ring_capacity=*/2, /*batch=*/1);
    detail::bind_thread_to_shard(&at(0));
    std::vector<buffer_handle> held;
    for (int i = 0; i < 3; ++i) {
        buffer_handle b = at(0).buffers().try_get();
        ASSERT_EQ(at(0).hand_off(1, i, b), submit_outcome::accepted);
    }
    buffer_handle refused = at(0).buffers().try_get();
    EXPECT_EQ(at(0).hand_off(1, 3, refused), submit_outcome::ring_full);
    EXPECT_TRUE(refused);
    EXPECT_EQ(refused.use_count(), 1u);
    detail::bind_thread_to_shard(nullptr);
    refused.reset();
    int delivered = 0;
    at(1).set_message_handler([&](shard_id, std::uint64_t, buffer_handle) { ++delivered; });
    for (int i = 0; i < 6; ++i) {
        step(0);
        step(1);
    }
    EXPECT_EQ(delivered, 3);
    EXPECT_EQ(at(0).buffers().available(), 8u);
}

TEST_F(ShardTest, TimersFireFromTheLoopWithTheIterationClock) {
    build();
    std::vector<time_ns> fired;
    at(0).timers().schedule_at(clock_.now_ns() + 50 * ns_per_us,
                               [&] { fired.push_back(at(0).now_ns()); });
    clock_.advance(10 * ns_per_us);
    EXPECT_EQ(step(0), 0u);
    clock_.advance(60 * ns_per_us);
    EXPECT_EQ(step(0), 1u);
    ASSERT_EQ(fired.size(), 1u);
    EXPECT_EQ(fired[0], clock_.now_ns());
    EXPECT_EQ(at(0).stats().snapshot().timers_fired, 1u);
}

TEST_F(ShardTest, PollersSeeTheSameNowAndTheirWorkIsCounted) {
    build();
    std::vector<time_ns> seen;
    at(0).add_poller(poll_step::transport, [&](time_ns now) -> std::size_t {
        seen.push_back(now);
        return 2;
    });
    at(0).add_poller(poll_step::protocol, [&](time_ns now) -> std::size_t {
        seen.push_back(now);
        return 1;
    });
    EXPECT_EQ(step(0), 3u);
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen[0], seen[1]);
    const auto stats = at(0).stats().snapshot();
    EXPECT_EQ(stats.transport_work, 2u);
    EXPECT_EQ(stats.protocol_work, 1u);
    EXPECT_EQ(stats.iterations, 1u);
    EXPECT_EQ(stats.busy_iterations, 1u);
}

TEST_F(ShardTest, RemovedPollerIsNeverCalledAgainEvenWhenItRemovesItself) {
    build();
    int calls_a = 0, calls_b = 0;
    shard::poller_id a = 0;
    a = at(0).add_poller(poll_step::protocol, [&](time_ns) -> std::size_t {
        ++calls_a;
        at(0).remove_poller(a);
        return 1;
    });
    const auto b = at(0).add_poller(poll_step::transport, [&](time_ns) -> std::size_t {
        ++calls_b;
        return 0;
    });
    step(0);
    step(0);
    EXPECT_EQ(calls_a, 1);
    EXPECT_EQ(calls_b, 2);
    at(0).remove_poller(b);
    step(0);
    EXPECT_EQ(calls_b, 2);
}

TEST_F(ShardTest, SlowIterationIsCountedAsAStall) {
    build();
    at(0).add_poller(poll_step::protocol, [this](time_ns) -> std::size_t {
        clock_.advance(2 * ns_per_ms);  // this iteration "takes" 2 ms
        return 1;
    });
    step(0);
    step(0);
    const auto stats = at(0).stats().snapshot();
    EXPECT_EQ(stats.stalls, 1u);
    EXPECT_EQ(stats.max_iteration_ns, 2 * ns_per_ms);
}

}  // namespace
}  // namespace ringmesh
