// Two real threads hammer the ring with bulk operations of varying sizes; the consumer
// checks that the sequence arrives complete, in order and unduplicated. Built also under
// -Db_sanitize=thread, where TSan checks the ring's acquire/release pairs.
#include <gtest/gtest.h>

#include <array>
#include <random>
#include <thread>

#include "engine/core/spsc_ring.h"
#include "engine/node.h"

namespace ringmesh {
namespace {

#if defined(__SANITIZE_THREAD__)
constexpr std::uint64_t item_count = 2'000'000;
#else
constexpr std::uint64_t item_count = 20'000'000;
#endif

TEST(SpscRingStressTest, BulkTrafficArrivesCompleteAndInOrder) {
    spsc_ring<std::uint64_t> ring(1024);
    std::thread producer([&ring] {
        std::mt19937 rng(1);
        std::array<std::uint64_t, 64> batch{};
        std::uint64_t next = 0;
        while (next < item_count) {
            const std::size_t want =
                std::min<std::uint64_t>(1 + rng() % batch.size(), item_count - next);
            for (std::size_t i = 0; i < want; ++i)
                batch[i] = next + i;
            next += ring.push_bulk(std::span<const std::uint64_t>(batch.data(), want));
        }
    });
    std::uint64_t expected = 0, errors = 0;
    std::array<std::uint64_t, 48> out{};
    bool use_consume_all = false;
    while (expected < item_count) {
        use_consume_all = !use_consume_all;
        if (use_consume_all) {
            ring.consume_all([&](std::uint64_t v) { errors += (v != expected++); });
        } else {
            const std::size_t n = ring.pop_bulk(out);
            for (std::size_t i = 0; i < n; ++i)
                errors += (out[i] != expected++);
        }
    }
    producer.join();
    EXPECT_EQ(errors, 0u);
    EXPECT_EQ(ring.pushed(), item_count);
    EXPECT_EQ(ring.popped(), item_count);
}

TEST(SpscRingStressTest, ShardsExchangeBuffersBothWaysWithoutLossOrReorder) {
    node_config config;
    config.shard_count = 2;
    config.pin_threads = false;
    config.ring_capacity = 128;
    config.shard.buffer_count = 256;
    auto n = node::create(config);
    ASSERT_TRUE(n) << n.err().message();
    constexpr std::uint64_t per_direction = item_count / 40;
    struct side {
        std::uint64_t sent = 0;
        std::uint64_t received = 0;
        std::uint64_t errors = 0;
        std::atomic<bool> finished{false};
    };
    std::array<side, 2> sides;
    auto* sp = &sides;
    ASSERT_TRUE((*n)->start([sp](shard& s) {
        side& me = (*sp)[s.id()];
        s.set_message_handler([&me](shard_id, std::uint64_t tag, buffer_handle payload) {
            std::uint64_t body = 0;
            std::memcpy(&body, payload.bytes().data(), sizeof body);
            me.errors += (tag != me.received) + (body != ~tag);
            ++me.received;
            if (me.received == per_direction) me.finished.store(true);
        });
        s.add_poller(poll_step::protocol, [&s, &me](time_ns) -> std::size_t {
            std::size_t work = 0;
            for (; work < 32 && me.sent < per_direction; ++work) {
                buffer_handle b = s.buffers().try_get();
                if (!b) break;
                const std::uint64_t body = ~me.sent;
                std::memcpy(b.storage().data(), &body, sizeof body);
                b.set_size(sizeof body);
                if (s.hand_off(1 - s.id(), me.sent, b) != submit_outcome::accepted) break;
                ++me.sent;
            }
            return work;
        });
    }));
    while (!sides[0].finished.load() || !sides[1].finished.load())
        std::this_thread::yield();
    (*n)->stop();
    for (const side& s : sides) {
        EXPECT_EQ(s.received, per_direction);
        EXPECT_EQ(s.errors, 0u);
    }
    EXPECT_EQ((*n)->shard_at(0).buffers().available(), 256u);  // every buffer came home
    EXPECT_EQ((*n)->shard_at(1).buffers().available(), 256u);
}

}  // namespace
}  // namespace ringmesh
