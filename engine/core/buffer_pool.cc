#include "engine/core/buffer_pool.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "engine/core/errc.h"
#include "engine/core/shard.h"

namespace ringmesh {

// ---- buffer_handle ----

buffer_handle& buffer_handle::operator=(const buffer_handle& other) noexcept {
    if (this != &other) {
        buffer_slot* old = slot_;
        slot_ = other.slot_;
        retain();
        if (old) buffer_handle(old).reset();
    }
    return *this;
}

buffer_handle& buffer_handle::operator=(buffer_handle&& other) noexcept {
    if (this != &other) {
        reset();
        slot_ = other.slot_;
        other.slot_ = nullptr;
    }
    return *this;
}

std::span<std::byte> buffer_handle::storage() const noexcept {
    if (!slot_) return {};
    return {slot_->data, slot_->pool->buffer_size_bytes()};
}

std::span<std::byte> buffer_handle::bytes() const noexcept {
    if (!slot_) return {};
    return {slot_->data, slot_->size_bytes};
}

std::size_t buffer_handle::capacity() const noexcept {
    return slot_ ? slot_->pool->buffer_size_bytes() : 0;
}

void buffer_handle::set_size(std::size_t size_bytes) noexcept {
    RM_ASSERT(slot_ != nullptr, "set_size on an empty buffer_handle");
    RM_ASSERT(size_bytes <= capacity(), "buffer size beyond its capacity");
    slot_->size_bytes = static_cast<std::uint32_t>(size_bytes);
}

void buffer_handle::reset() noexcept {
    if (!slot_) return;
    buffer_slot* slot = slot_;
    slot_ = nullptr;
    RM_ASSERT(slot->refcount > 0, "buffer refcount underflow");
    if (--slot->refcount == 0) slot->pool->release(slot);
}

buffer_slot* buffer_handle::release_raw() noexcept {
    RM_ASSERT(slot_ == nullptr || slot_->refcount == 1,
              "only the sole reference to a buffer may move to another shard");
    buffer_slot* slot = slot_;
    slot_ = nullptr;
    return slot;
}

buffer_handle buffer_handle::adopt_raw(buffer_slot* slot) noexcept {
    return buffer_handle(slot);
}

// ---- buffer_pool ----

result<std::unique_ptr<buffer_pool>> buffer_pool::create(std::size_t buffer_count,
                                                         std::size_t buffer_size_bytes,
                                                         shard_id owner) {
    if (buffer_count == 0 || buffer_size_bytes == 0 || buffer_count > UINT32_MAX ||
        buffer_size_bytes > UINT32_MAX) {
        return make_error(core_errc::bad_config,
                          "buffer pool needs 1..2^32 buffers of 1..2^32 bytes, got " +
                              std::to_string(buffer_count) + " x " +
                              std::to_string(buffer_size_bytes));
    }
    // Cache-line multiples keep neighbouring buffers from sharing a line.
    const std::size_t stride = (buffer_size_bytes + 63) & ~std::size_t{63};
    const std::size_t region_size = stride * buffer_count;
    // mmap: page-aligned and lazily backed, ready for io_uring buffer registration.
    void* region =
        ::mmap(nullptr, region_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED) {
        return make_error(core_errc::resource_exhausted,
                          "mmap of " + std::to_string(region_size) +
                              " bytes for a buffer pool: " + errno_text(errno));
    }
    return std::unique_ptr<buffer_pool>(
        new buffer_pool(static_cast<std::byte*>(region), region_size, buffer_count, stride, owner));
}

buffer_pool::buffer_pool(std::byte* region, std::size_t region_size, std::size_t buffer_count,
                         std::size_t buffer_size, shard_id owner)
    : region_(region), region_size_(region_size), buffer_size_(buffer_size), owner_(owner) {
    slots_.resize(buffer_count);
    free_.reserve(buffer_count);
    for (std::size_t i = 0; i < buffer_count; ++i) {
        slots_[i] =
            buffer_slot{this, region_ + i * buffer_size, 0, 0, static_cast<std::uint32_t>(i)};
    }
    // Hand out low indexes first: they are the ones already touched (warm pages).
    for (std::size_t i = buffer_count; i-- > 0;)
        free_.push_back(static_cast<std::uint32_t>(i));
}

buffer_pool::~buffer_pool() {
    RM_ASSERT(free_.size() == slots_.size(), "buffer pool destroyed while buffers are in use");
    ::munmap(region_, region_size_);
}

buffer_handle buffer_pool::try_get() noexcept {
    if (free_.empty()) {
        exhausted_.store(exhausted_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        return {};
    }
    buffer_slot* slot = &slots_[free_.back()];
    free_.pop_back();
    slot->refcount = 1;
    slot->size_bytes = 0;
    return buffer_handle(slot);
}

void buffer_pool::release(buffer_slot* slot) noexcept {
    const shard_id here = this_shard_id();
    if (here == owner_ || owner_ == no_shard) {
        return_slot(slot);
        return;
    }
    if (shard* releasing = this_shard()) {
        releasing->route_foreign_buffer(slot);  // home through the cross-core rings
        return;
    }
    // A thread that is no shard: single-threaded code (set-up, a test stepping shards
    // itself, teardown after the loops ended) owns everything and returns the buffer. While
    // shard loops run on their threads, the owner may be using its free list right now.
    if (detail::shard_threads_running().load(std::memory_order_relaxed) > 0) {
        char context[200];
        std::snprintf(context, sizeof context,
                      "buffer %u of the pool owned by shard %u was released on a thread that is "
                      "no shard while shard loops run: it cannot be routed home",
                      slot->index, static_cast<unsigned>(owner_));
        detail::assert_failed("released on a shard thread", context, __FILE__, __LINE__, __func__);
    }
    return_slot(slot);
}

void buffer_pool::return_slot(buffer_slot* slot) noexcept {
    RM_ASSERT(slot->pool == this, "buffer returned to a pool that does not own it");
    RM_ASSERT(free_.size() < slots_.size(), "buffer returned twice");
    if (return_hook_) return_hook_(slot);
    free_.push_back(slot->index);
}

}  // namespace ringmesh
