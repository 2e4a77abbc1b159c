// Fuzz target: the gossip envelope and body decoders. Arbitrary bytes go through the keyring
// (plaintext and keyed) and the flatbuffers decoder; whatever decodes must re-encode and
// decode to the same message, and nothing may crash or read out of bounds.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "engine/membership/gossip_codec.h"
#include "engine/membership/keyring.h"

using namespace ringmesh::membership;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static keyring open_ring = std::move(keyring::create({})).value();
    static keyring keyed = std::move(keyring::create({key_bytes(32, std::byte{1})})).value();
    const std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data), size);
    std::vector<std::byte> plain;
    (void)keyed.open(input, plain);  // must refuse or open, never misbehave
    gossip_message m;
    if (decode(input, "fuzz", m) != gossip_error::none) return 0;
    std::vector<std::byte> again;
    encode(m, "fuzz", again);
    gossip_message back;
    if (decode(again, "fuzz", back) != gossip_error::none) std::abort();
    if (back.updates.size() != m.updates.size() || back.sender != m.sender) std::abort();
    std::vector<std::byte> sealed, opened;
    open_ring.seal(again, sealed);
    if (open_ring.open(sealed, opened) != open_status::ok || opened != again) std::abort();
    return 0;
}

std::vector<std::vector<std::uint8_t>> fuzz_seeds() {
    gossip_message m;
    m.kind = gossip_kind::ping;
    m.seq = 3;
    m.sender = "a";
    m.sender_address = "10.0.0.1:7946";
    member_update u;
    u.name = "b";
    u.address = "10.0.0.2:7946";
    u.meta.tags = {{"k", "v"}};
    m.updates = {u};
    std::vector<std::byte> bytes;
    encode(m, "fuzz", bytes);
    const auto* p = reinterpret_cast<const std::uint8_t*>(bytes.data());
    return {std::vector<std::uint8_t>(p, p + bytes.size()), {1, 0, 0, 0}};
}
