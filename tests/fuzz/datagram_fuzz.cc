// Fuzz target: the secure layer's datagram decoders, as a node meets a stranger's datagrams.
// The first input byte picks the path:
//   even: the rest is a handshake datagram for a session with no history, then for one
//         waiting for the initiator's proof (after a real hello): the type byte, the hello's
//         and proof's framing and flatbuffers, replies. A forged proof must never complete a
//         handshake.
//   odd:  the rest is XORed over a datagram sealed under a session's key, then opened: it
//         opens to exactly its payload when untouched, and never when changed.
// Nothing may crash or read out of bounds (the fuzz-smoke suite runs it under ASan+UBSan).
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "transport/secure/datagram_seal.h"
#include "transport/secure/datagram_session.h"

using namespace ringmesh::transport::secure;

namespace {

using bytes = std::vector<std::byte>;

const std::vector<key_bytes> keys = {key_bytes(32, std::byte{0x42})};

nonce fixed(unsigned char fill) {
    nonce n{};
    n.fill(static_cast<std::byte>(fill));
    return n;
}

datagram_settings settings(const char* name) {
    return {{"fuzz", name, security_mode::encrypted}, true, 1000};
}

bytes real_hello() {
    datagram_session a(settings("a"));
    return a.initiate(0, keys, fixed(0xaa));
}

void fuzz_handshake(std::span<const std::byte> input) {
    datagram_session fresh(settings("b"));
    auto step = fresh.take(input, 0, keys, fixed(0xbb));
    if (step.established || fresh.established()) std::abort();  // a hello never completes one
    datagram_session waiting(settings("b"));
    waiting.take(real_hello(), 0, keys, fixed(0xbb));
    step = waiting.take(input, 0, keys, fixed(0xbc));
    // Only the real initiator's proof completes it, and the fuzzer has no key... but it has
    // the seeds: a completed handshake must then be with "a".
    if (waiting.established() && waiting.peer() != "a") std::abort();
}

void fuzz_sealed(std::span<const std::byte> input) {
    record_key key{};
    key.fill(std::byte{7});
    const bool encrypt = !input.empty() && (std::to_integer<int>(input[0]) & 1) != 0;
    datagram_sealer sealer(key, encrypt);
    datagram_opener opener(key, encrypt);
    const bytes payload(input.size() % 97, std::byte{0x33});
    bytes sealed;
    sealer.seal(payload, sealed);
    const bytes original = sealed;
    for (std::size_t i = 1; i < input.size(); ++i)
        sealed[i % sealed.size()] ^= input[i];
    const bool changed = sealed != original;  // (before: it is opened in place)
    std::span<const std::byte> opened;
    const datagram_status s = opener.open(sealed, opened);
    if (!changed) {
        if (s != datagram_status::ok || opened.size() != payload.size()) std::abort();
    } else if (s == datagram_status::ok) {
        std::abort();  // a changed datagram never opens
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
    if ((data[0] & 1) == 0) {
        fuzz_handshake(input);
    } else {
        fuzz_sealed(input);
    }
    return 0;
}

std::vector<std::vector<std::uint8_t>> fuzz_seeds() {
    std::vector<std::uint8_t> hello{0};
    for (std::byte b : real_hello())
        hello.push_back(std::to_integer<std::uint8_t>(b));
    // A reply and a proof from a real exchange, as handshake inputs.
    datagram_session a(settings("a")), b(settings("b"));
    const bytes h = a.initiate(0, keys, fixed(0xaa));
    const auto reply = b.take(h, 0, keys, fixed(0xbb));
    const auto proof = a.take(reply.send, 0, keys, fixed(0xcc));
    std::vector<std::uint8_t> r{0}, p{0};
    for (std::byte x : reply.send)
        r.push_back(std::to_integer<std::uint8_t>(x));
    for (std::byte x : proof.send)
        p.push_back(std::to_integer<std::uint8_t>(x));
    return {hello, r, p, {1, 0, 0, 0}, {1, 1, 0, 5}};
}
