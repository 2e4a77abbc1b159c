// Shared ownership of memory that someone sends from without copying: the holder of a
// shared_bytes_owner keeps the bytes alive (a session's retransmit blocks, while a transport
// sends straight from them).
#pragma once

#include <memory>

namespace ringmesh {

using shared_bytes_owner = std::shared_ptr<const void>;

}  // namespace ringmesh
