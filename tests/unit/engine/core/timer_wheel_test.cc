#include "engine/core/timer_wheel.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace ringmesh {
namespace {

constexpr time_ns tick = 1024;  // the default tick_shift of 10

TEST(TimerWheelTest, FiresAtItsDeadlineAndNotBefore) {
    timer_wheel wheel(0);
    int fired = 0;
    wheel.schedule_at(100 * ns_per_us, [&] { ++fired; });
    EXPECT_EQ(wheel.advance(100 * ns_per_us - 1), 0u);
    EXPECT_EQ(fired, 0);
    EXPECT_EQ(wheel.advance(100 * ns_per_us + tick), 1u);
    EXPECT_EQ(fired, 1);
    EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimerWheelTest, CancelledTimerNeverFiresAndStaleIdIsIgnored) {
    timer_wheel wheel(0);
    int fired = 0;
    const timer_id id = wheel.schedule_at(5 * ns_per_ms, [&] { ++fired; });
    EXPECT_TRUE(wheel.pending(id));
    EXPECT_TRUE(wheel.cancel(id));
    EXPECT_FALSE(wheel.cancel(id));
    wheel.advance(10 * ns_per_ms);
    EXPECT_EQ(fired, 0);
    // The node is reused by a new timer; the old id must not cancel it.
    const timer_id reused = wheel.schedule_at(20 * ns_per_ms, [&] { ++fired; });
    EXPECT_EQ(reused.index, id.index);
    EXPECT_FALSE(wheel.cancel(id));
    wheel.advance(30 * ns_per_ms);
    EXPECT_EQ(fired, 1);
}

TEST(TimerWheelTest, PastDeadlineFiresOnTheNextTick) {
    timer_wheel wheel(ns_per_s);
    wheel.advance(2 * ns_per_s);
    int fired = 0;
    wheel.schedule_at(ns_per_s, [&] { ++fired; });
    EXPECT_EQ(wheel.advance(2 * ns_per_s), 0u);
    EXPECT_EQ(wheel.advance(2 * ns_per_s + tick), 1u);
}

TEST(TimerWheelTest, FarTimersCascadeAcrossEveryLevelAndFireOnTime) {
    timer_wheel wheel(0);
    std::vector<time_ns> deadlines{3 * ns_per_us,       700 * ns_per_us, 5 * ns_per_ms,
                                   300 * ns_per_ms,     40 * ns_per_s,   3600 * ns_per_s,
                                   30 * 3600 * ns_per_s};  // beyond the wheel's reach
    std::vector<time_ns> fired_at(deadlines.size(), -1);
    time_ns now = 0;
    for (std::size_t i = 0; i < deadlines.size(); ++i) {
        wheel.schedule_at(deadlines[i], [&, i] { fired_at[i] = now; });
    }
    // Walk time forward in uneven steps, as a real loop would.
    std::mt19937_64 rng(7);
    while (wheel.size() > 0) {
        now += static_cast<time_ns>(rng() % (50 * ns_per_ms)) + 1;
        if (now > 10 * ns_per_s) now += static_cast<time_ns>(rng() % (600 * ns_per_s));
        wheel.advance(now);
    }
    for (std::size_t i = 0; i < deadlines.size(); ++i) {
        EXPECT_GE(fired_at[i], deadlines[i]) << "timer " << i << " fired early";
    }
}

TEST(TimerWheelTest, RandomScheduleMatchesAReferenceModel) {
    timer_wheel wheel(0);
    std::mt19937_64 rng(42);
    struct expected_timer {
        time_ns deadline;
        timer_id id;
        bool cancelled = false;
        time_ns fired_at = -1;
    };
    std::vector<expected_timer> timers;
    timers.reserve(20000);
    time_ns now = 0;
    for (int step = 0; step < 20000; ++step) {
        const auto choice = rng() % 10;
        if (choice < 6) {
            const time_ns delay =
                static_cast<time_ns>(rng() % (choice < 3 ? 200'000 : 2'000'000'000));
            const std::size_t i = timers.size();
            timers.push_back({now + delay, {}});
            timers[i].id =
                wheel.schedule_at(now + delay, [&timers, &now, i] { timers[i].fired_at = now; });
        } else if (choice < 8 && !timers.empty()) {
            auto& t = timers[rng() % timers.size()];
            const bool was_pending = wheel.pending(t.id);
            EXPECT_EQ(wheel.cancel(t.id), was_pending);
            if (was_pending) t.cancelled = true;
        } else {
            now += static_cast<time_ns>(rng() % 3'000'000);
            wheel.advance(now);
        }
    }
    now += 3 * ns_per_s;
    wheel.advance(now);
    EXPECT_EQ(wheel.size(), 0u);
    for (const auto& t : timers) {
        if (t.cancelled) {
            EXPECT_EQ(t.fired_at, -1);
        } else {
            ASSERT_GE(t.fired_at, t.deadline);
        }
    }
}

TEST(TimerWheelTest, CallbacksMayScheduleAndCancelTimers) {
    timer_wheel wheel(0);
    int chain = 0;
    timer_id victim = wheel.schedule_at(2 * ns_per_ms, [] { FAIL() << "cancelled timer ran"; });
    std::function<void()> rearm = [&] {
        if (++chain < 5) wheel.schedule_at(chain * ns_per_ms, rearm);
        wheel.cancel(victim);
    };
    wheel.schedule_at(0, rearm);
    for (time_ns t = 0; t <= 10 * ns_per_ms; t += 100 * ns_per_us)
        wheel.advance(t);
    EXPECT_EQ(chain, 5);
    EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimerWheelTest, NextWakeupNeverLiesBeyondTheEarliestTimer) {
    timer_wheel wheel(0);
    EXPECT_EQ(wheel.next_wakeup_ns(), std::numeric_limits<time_ns>::max());
    wheel.schedule_at(7 * ns_per_s, [] {});
    wheel.schedule_at(900 * ns_per_us, [] {});
    EXPECT_LE(wheel.next_wakeup_ns(), 900 * ns_per_us + tick);
}

TEST(TimerWheelTest, HoldsHundredsOfThousandsOfTimers) {
    timer_wheel wheel(0);
    std::size_t fired = 0;
    for (int i = 0; i < 200000; ++i) {
        wheel.schedule_at((i % 5000) * 10 * ns_per_us + ns_per_us, [&] { ++fired; });
    }
    EXPECT_EQ(wheel.size(), 200000u);
    wheel.advance(100 * ns_per_ms);
    EXPECT_EQ(fired, 200000u);
}

}  // namespace
}  // namespace ringmesh
