// Fuzz target: the secure layer's decoders, as a listener meets them. Arbitrary bytes reach a
// listener's handshake (AuthHello, then AuthProof), and whatever follows a completed handshake
// reaches its record opener. The seeds are a real dialer's transcript made with the
// listener's (fixed) nonce and the same key, then sealed records, so mutations explore past
// the handshake too. Nothing may crash or read out of bounds; a record that opens must have
// been sealed with the key (any change is refused).
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "transport/secure/auth_handshake.h"
#include "transport/secure/record_seal.h"

using namespace ringmesh::transport::secure;

namespace {

const key_bytes fuzz_key(32, std::byte{0x42});

nonce fixed(unsigned char fill) {
    nonce n{};
    n.fill(static_cast<std::byte>(fill));
    return n;
}

auth_handshake listener() {
    return auth_handshake({"fuzz", "b", security_mode::authenticated}, {fuzz_key}, false,
                          fixed(0xbb));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data), size);
    auth_handshake b = listener();
    std::vector<std::byte> out;
    b.start(out);
    // Split the input at an input-chosen point: the handshake must not care where bytes break.
    const std::size_t cut = size > 0 ? data[0] % (size + 1) : 0;
    std::size_t used = b.feed(input.first(cut), out);
    if (!b.done() && !b.failed()) used += b.feed(input.subspan(cut), out);
    if (used > size) std::abort();
    if (b.done()) {
        if (b.peer() != "a") std::abort();  // only the seed's dialer can prove itself
        record_opener opener(b.keys().receive);
        std::span<const std::byte> rest = input.subspan(used);
        while (!rest.empty()) {
            std::size_t record = 0;
            if (record_opener::next(rest, record) != record_status::ok) break;
            std::span<const std::byte> payload;
            if (opener.open(rest.first(record), payload) != record_status::ok) break;
            if (payload.size() + record_overhead != record) std::abort();
            rest = rest.subspan(record);
        }
    }
    return 0;
}

std::vector<std::vector<std::uint8_t>> fuzz_seeds() {
    // The dialer's side of a real handshake with the listener above, then two records.
    auth_handshake a({"fuzz", "a", security_mode::authenticated}, {fuzz_key}, true, fixed(0xaa));
    auth_handshake b = listener();
    std::vector<std::byte> from_a, from_b;
    a.start(from_a);
    b.start(from_b);
    b.feed(from_a, from_b);
    a.feed(from_b, from_a);
    record_sealer sealer(a.keys().send);
    const std::vector<std::byte> payload(100, std::byte{7});
    std::vector<std::byte> transcript = from_a;
    sealer.seal(payload, transcript);
    sealer.seal(payload, transcript);
    const auto* p = reinterpret_cast<const std::uint8_t*>(transcript.data());
    const auto* h = reinterpret_cast<const std::uint8_t*>(from_a.data());
    return {std::vector<std::uint8_t>(p, p + transcript.size()),
            std::vector<std::uint8_t>(h, h + from_a.size()),
            {'R', 'M', 'S', 'H', 8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}};
}
