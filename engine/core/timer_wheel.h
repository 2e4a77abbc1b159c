// A hierarchical timing wheel: schedule and cancel in O(1), expiry in O(timers due), and
// idle gaps skipped in O(levels) by jumping straight to the next occupied slot, so a shard
// can hold hundreds of thousands of retransmit/probe/election timers.
//
// Layout: `level_count` wheels of 64 slots; level l holds timers due between 64^l and
// 64^(l+1) ticks from now and is cascaded one level down when the time line crosses its slot.
// A tick is 2^tick_shift ns (default 1.024 us). Timers never fire early; they fire at most
// one tick late relative to the `now` passed to advance().
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "engine/core/clock.h"

namespace ringmesh {

/// Names a scheduled timer. Stale ids (fired or cancelled) are recognised and ignored.
struct timer_id {
    std::uint32_t index = UINT32_MAX;
    std::uint32_t generation = 0;
    bool valid() const noexcept { return index != UINT32_MAX; }
};

/// Owned by one shard; every call comes from that shard's thread.
class timer_wheel {
  public:
    using callback = std::function<void()>;

    static constexpr unsigned slot_bits = 6;
    static constexpr unsigned slots_per_level = 1u << slot_bits;
    static constexpr unsigned level_count = 6;  // 2^36 ticks: ~19.5 h at 1 us ticks

    /// `start_ns`: the clock's now; `tick_shift`: log2 of the tick in ns.
    explicit timer_wheel(time_ns start_ns, unsigned tick_shift = 10);

    /// Schedules `fn` to run at the first advance() whose now >= deadline_ns. A deadline in
    /// the past fires on the next tick.
    timer_id schedule_at(time_ns deadline_ns, callback fn);

    /// Cancels a pending timer; false when it already fired or was cancelled.
    bool cancel(timer_id id);

    /// Moves the wheel to `now_ns` and runs every timer that became due; returns how many
    /// ran. Callbacks may schedule and cancel timers, including themselves.
    std::size_t advance(time_ns now_ns);

    /// The earliest time at which advance() could have work to do (a timer due or a level to
    /// cascade); INT64_MAX when empty. A blocking idle strategy sleeps until then.
    time_ns next_wakeup_ns() const;

    std::size_t size() const noexcept { return active_count_; }
    bool pending(timer_id id) const noexcept;
    time_ns tick_ns() const noexcept { return time_ns{1} << tick_shift_; }

  private:
    static constexpr std::uint32_t nil = UINT32_MAX;

    struct node {
        std::uint64_t deadline_tick = 0;  // the real deadline; placement may be clamped
        std::uint32_t prev = nil;
        std::uint32_t next = nil;
        std::uint32_t generation = 0;
        std::uint8_t level = 0;
        std::uint8_t slot = 0;
        bool active = false;
        callback fn;
    };

    std::uint64_t tick_of_deadline(time_ns t) const noexcept;  // rounds up
    std::uint64_t tick_of_now(time_ns t) const noexcept;       // rounds down
    std::uint64_t next_event_tick() const noexcept;
    void place(std::uint32_t index, std::uint64_t earliest_tick);
    void link(std::uint32_t index, unsigned level, unsigned slot);
    void unlink(std::uint32_t index);
    void cascade(unsigned level, unsigned slot);
    std::size_t expire_slot(unsigned slot);
    std::uint32_t allocate_node();
    void free_node(std::uint32_t index);

    time_ns origin_ns_;
    unsigned tick_shift_;
    std::uint64_t now_tick_ = 0;
    std::size_t active_count_ = 0;
    std::vector<node> nodes_;
    std::vector<std::uint32_t> free_nodes_;
    std::array<std::array<std::uint32_t, slots_per_level>, level_count> heads_;
    std::array<std::uint64_t, level_count> occupied_{};  // bit s: slot s non-empty
};

/// One timer kept at the earliest of the deadlines a protocol reports (session acks and
/// retransmissions, gossip probes), so that a shard asleep in the kernel still wakes for
/// them. The timer does nothing itself: waking the loop is the point. Lives at a fixed
/// address (its timer refers to it); its owner cancels it before going away.
class wake_deadline {
  public:
    /// Moves the timer earlier when `at` comes before the one armed; INT64_MAX: none.
    void arm(timer_wheel& timers, time_ns at) {
        if (at == INT64_MAX || at >= armed_at_) return;
        timers.cancel(timer_);
        armed_at_ = at;
        timer_ = timers.schedule_at(at, [this] { armed_at_ = INT64_MAX; });
    }
    void cancel(timer_wheel& timers) {
        timers.cancel(timer_);
        armed_at_ = INT64_MAX;
    }

  private:
    timer_id timer_;
    time_ns armed_at_ = INT64_MAX;
};

}  // namespace ringmesh
