#include "engine/core/timer_wheel.h"

#include <algorithm>
#include <bit>
#include <limits>
#include <utility>

#include "engine/core/assert.h"

namespace ringmesh {

namespace {
constexpr std::uint64_t slot_mask = timer_wheel::slots_per_level - 1;
constexpr std::uint64_t max_placement_ticks =
    (std::uint64_t{1} << (timer_wheel::slot_bits * timer_wheel::level_count)) - 1;
}  // namespace

timer_wheel::timer_wheel(time_ns start_ns, unsigned tick_shift)
    : origin_ns_(start_ns), tick_shift_(tick_shift) {
    RM_ASSERT(tick_shift < 40, "timer_wheel tick too coarse");
    for (auto& level : heads_)
        level.fill(nil);
}

std::uint64_t timer_wheel::tick_of_deadline(time_ns t) const noexcept {
    if (t <= origin_ns_) return 0;
    const auto delta = static_cast<std::uint64_t>(t - origin_ns_);
    return (delta + (std::uint64_t{1} << tick_shift_) - 1) >> tick_shift_;
}

std::uint64_t timer_wheel::tick_of_now(time_ns t) const noexcept {
    if (t <= origin_ns_) return 0;
    return static_cast<std::uint64_t>(t - origin_ns_) >> tick_shift_;
}

timer_id timer_wheel::schedule_at(time_ns deadline_ns, callback fn) {
    const std::uint32_t index = allocate_node();
    node& n = nodes_[index];
    n.deadline_tick = tick_of_deadline(deadline_ns);
    n.fn = std::move(fn);
    n.active = true;
    ++active_count_;
    // The current tick's slot was already expired: the earliest a new timer can run is next.
    place(index, now_tick_ + 1);
    return {index, n.generation};
}

bool timer_wheel::pending(timer_id id) const noexcept {
    return id.index < nodes_.size() && nodes_[id.index].active &&
           nodes_[id.index].generation == id.generation;
}

bool timer_wheel::cancel(timer_id id) {
    if (!pending(id)) return false;
    unlink(id.index);
    free_node(id.index);
    return true;
}

void timer_wheel::place(std::uint32_t index, std::uint64_t earliest_tick) {
    node& n = nodes_[index];
    std::uint64_t tick = std::max(n.deadline_tick, earliest_tick);
    // Beyond the wheel's reach: park at its far edge; cascading re-places it with the real
    // deadline, and expiry re-checks it, so it never fires early.
    tick = std::min(tick, now_tick_ + max_placement_ticks);
    const std::uint64_t delta = tick - now_tick_;
    unsigned level = 0;
    while (level + 1 < level_count && delta >= (std::uint64_t{1} << (slot_bits * (level + 1)))) {
        ++level;
    }
    link(index, level, static_cast<unsigned>((tick >> (slot_bits * level)) & slot_mask));
}

void timer_wheel::link(std::uint32_t index, unsigned level, unsigned slot) {
    node& n = nodes_[index];
    n.level = static_cast<std::uint8_t>(level);
    n.slot = static_cast<std::uint8_t>(slot);
    n.prev = nil;
    n.next = heads_[level][slot];
    if (n.next != nil) nodes_[n.next].prev = index;
    heads_[level][slot] = index;
    occupied_[level] |= std::uint64_t{1} << slot;
}

void timer_wheel::unlink(std::uint32_t index) {
    node& n = nodes_[index];
    if (n.prev != nil) {
        nodes_[n.prev].next = n.next;
    } else {
        heads_[n.level][n.slot] = n.next;
        if (n.next == nil) occupied_[n.level] &= ~(std::uint64_t{1} << n.slot);
    }
    if (n.next != nil) nodes_[n.next].prev = n.prev;
    n.prev = n.next = nil;
}

std::uint64_t timer_wheel::next_event_tick() const noexcept {
    std::uint64_t best = std::numeric_limits<std::uint64_t>::max();
    for (unsigned level = 0; level < level_count; ++level) {
        if (occupied_[level] == 0) continue;
        const unsigned shift = slot_bits * level;
        // The next block at this level (after the current one) whose slot is occupied: each
        // occupied slot stands for exactly one block in (current, current + 64].
        const std::uint64_t current_block = now_tick_ >> shift;
        const unsigned first_slot = static_cast<unsigned>((current_block + 1) & slot_mask);
        const unsigned offset = static_cast<unsigned>(
            std::countr_zero(std::rotr(occupied_[level], static_cast<int>(first_slot))));
        best = std::min(best, (current_block + 1 + offset) << shift);
    }
    return best;
}

time_ns timer_wheel::next_wakeup_ns() const {
    if (active_count_ == 0) return std::numeric_limits<time_ns>::max();
    return origin_ns_ + static_cast<time_ns>(next_event_tick() << tick_shift_);
}

std::size_t timer_wheel::advance(time_ns now_ns) {
    const std::uint64_t target = tick_of_now(now_ns);
    std::size_t fired = 0;
    while (now_tick_ < target) {
        const std::uint64_t next = active_count_ == 0 ? target : next_event_tick();
        if (next > target) {
            now_tick_ = target;  // nothing happens in between: skip the gap
            break;
        }
        now_tick_ = next;
        // Higher levels first: what they cascade may land in a lower slot due this very tick.
        for (unsigned level = level_count - 1; level > 0; --level) {
            const unsigned shift = slot_bits * level;
            if ((now_tick_ & ((std::uint64_t{1} << shift) - 1)) == 0) {
                cascade(level, static_cast<unsigned>((now_tick_ >> shift) & slot_mask));
            }
        }
        fired += expire_slot(static_cast<unsigned>(now_tick_ & slot_mask));
    }
    return fired;
}

void timer_wheel::cascade(unsigned level, unsigned slot) {
    std::uint32_t index = heads_[level][slot];
    heads_[level][slot] = nil;
    occupied_[level] &= ~(std::uint64_t{1} << slot);
    while (index != nil) {
        const std::uint32_t next = nodes_[index].next;
        place(index, now_tick_);  // due now lands in this tick's level-0 slot, expired next
        index = next;
    }
}

std::size_t timer_wheel::expire_slot(unsigned slot) {
    std::size_t fired = 0;
    // Re-read the head each time: a callback may cancel other timers of this slot.
    while (heads_[0][slot] != nil) {
        const std::uint32_t index = heads_[0][slot];
        unlink(index);
        if (nodes_[index].deadline_tick > now_tick_) {  // clamped far timer: not yet
            place(index, now_tick_ + 1);
            continue;
        }
        callback fn = std::move(nodes_[index].fn);
        free_node(index);  // before running: fn may schedule into the freed node
        fn();
        ++fired;
    }
    return fired;
}

std::uint32_t timer_wheel::allocate_node() {
    if (!free_nodes_.empty()) {
        const std::uint32_t index = free_nodes_.back();
        free_nodes_.pop_back();
        return index;
    }
    RM_ASSERT(nodes_.size() < nil, "timer_wheel: too many timers");
    nodes_.emplace_back();
    return static_cast<std::uint32_t>(nodes_.size() - 1);
}

void timer_wheel::free_node(std::uint32_t index) {
    node& n = nodes_[index];
    n.active = false;
    n.fn = nullptr;
    ++n.generation;
    --active_count_;
    free_nodes_.push_back(index);
}

}  // namespace ringmesh
