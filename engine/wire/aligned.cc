#include "engine/wire/aligned.h"

#include <cstring>

namespace ringmesh::wire {

std::span<const std::byte> aligned_for_flatbuffers(std::span<const std::byte> bytes,
                                                   std::vector<std::uint64_t>& storage) {
    if (reinterpret_cast<std::uintptr_t>(bytes.data()) % alignof(std::uint64_t) == 0) return bytes;
    storage.resize((bytes.size() + 7) / 8);
    if (!bytes.empty()) std::memcpy(storage.data(), bytes.data(), bytes.size());
    return {reinterpret_cast<const std::byte*>(storage.data()), bytes.size()};
}

}  // namespace ringmesh::wire
