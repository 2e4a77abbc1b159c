// Fuzz target: `encrypted` mode's decoders, as a listener meets them. The first input byte
// picks the path:
//   even: arbitrary bytes reach a TLS listener's handshake (split at an input-chosen point):
//         the mode check on the first bytes, the record framing and OpenSSL's ClientHello
//         parsing. No input may complete a handshake: a Finished needs the listener's fresh
//         key share, which no recorded or forged transcript holds.
//   odd:  a proven dialer seals a record of input bytes and the rest of the input is XORed
//         over it before the listener's record layer (framing, then SSL_read) sees it. The
//         record must open to exactly its payload when nothing changed, and must never open
//         when anything did.
// Seeds: a real dialer's ClientHello, and record-path inputs. Nothing may crash or read out
// of bounds (the fuzz-smoke suite runs it under ASan+UBSan too).
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "transport/secure/cert_issuer.h"
#include "transport/secure/tls_guard.h"

using namespace ringmesh::transport::secure;

namespace {

using bytes = std::vector<std::byte>;

const cert_issuer& issuer() {
    static const cert_issuer ca = cert_issuer::create("fuzz-ca").value();
    return ca;
}

std::shared_ptr<const tls_context> credentials(const char* name) {
    return tls_context::from_pem(issuer().issue(name).value(), name).value();
}

const std::shared_ptr<const tls_context>& dialer_credentials() {
    static const auto ctx = credentials("a");
    return ctx;
}

const std::shared_ptr<const tls_context>& listener_credentials() {
    static const auto ctx = credentials("b");
    return ctx;
}

/// A proven pair, kept across inputs until a refusal ends its session.
struct proven_link {
    tls_guard dialer{dialer_credentials(), "a", true};
    tls_guard listener{listener_credentials(), "b", false};
    bool broken = false;
    proven_link() {
        bytes to_b, to_a;
        dialer.start(to_b);
        for (int round = 0; round < 4 && !(dialer.done() && listener.done()); ++round) {
            bytes next_to_a, next_to_b;
            listener.feed(to_b, next_to_a);
            dialer.feed(to_a, next_to_b);
            dialer.feed(next_to_a, next_to_b);
            to_b = std::move(next_to_b);
            to_a.clear();
        }
        if (!dialer.done() || !listener.done()) std::abort();
    }
};

void fuzz_handshake(std::span<const std::byte> input) {
    tls_guard listener(listener_credentials(), "b", false);
    bytes out;
    const std::size_t cut =
        input.empty() ? 0 : std::to_integer<std::size_t>(input[0]) % (input.size() + 1);
    std::size_t used = listener.feed(input.first(cut), out);
    if (!listener.done() && listener.refusal() == auth_refusal::none)
        used += listener.feed(input.subspan(cut), out);
    if (used > input.size()) std::abort();
    if (listener.done()) std::abort();  // nobody finished a handshake with us
}

void fuzz_records(std::span<const std::byte> input) {
    static std::unique_ptr<proven_link> link;
    if (!link || link->broken) link = std::make_unique<proven_link>();
    const std::size_t payload_size =
        input.empty() ? 0 : std::to_integer<std::size_t>(input[0]) % 65;
    const std::span<const std::byte> payload = input.first(std::min(payload_size, input.size()));
    const std::span<const std::byte> mask = input.subspan(payload.size());
    bytes record;
    link->dialer.append(payload, record);
    link->dialer.close(record);
    if (record.empty()) return;  // an empty payload makes no record
    const bytes sealed = record;
    for (std::size_t i = 0; i < mask.size(); ++i)
        record[i % record.size()] ^= mask[i];
    const bool changed = record != sealed;

    bytes got, replies;
    bytes dest(max_record_payload);
    std::span<const std::byte> rest(record);
    record_status status = record_status::ok;
    while (!rest.empty() && status == record_status::ok) {
        std::size_t size = 0;
        status = link->listener.next(rest, size);
        if (status != record_status::ok) break;
        std::size_t written = 0;
        status = link->listener.open(rest.first(size), dest, written, replies);
        if (written > max_record_payload) std::abort();
        got.insert(got.end(), dest.begin(), dest.begin() + static_cast<std::ptrdiff_t>(written));
        rest = rest.subspan(size);
    }
    if (!changed && (status != record_status::ok ||
                     !std::equal(got.begin(), got.end(), payload.begin(), payload.end())))
        std::abort();  // an untouched record must open to its payload
    if (changed && status == record_status::ok) std::abort();  // a changed one never opens
    if (status != record_status::ok) link->broken = true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
    if ((data[0] & 1) == 0) {
        fuzz_handshake(input);
    } else {
        fuzz_records(input);
    }
    return 0;
}

std::vector<std::vector<std::uint8_t>> fuzz_seeds() {
    tls_guard dialer(dialer_credentials(), "a", true);
    bytes hello;
    dialer.start(hello);
    std::vector<std::uint8_t> handshake{0};
    for (std::byte b : hello)
        handshake.push_back(std::to_integer<std::uint8_t>(b));
    std::vector<std::uint8_t> untouched{1, 40};
    untouched.resize(42, 0x61);
    std::vector<std::uint8_t> flipped = untouched;
    flipped.push_back(0x01);  // XORed onto the record's first byte
    return {handshake, untouched, flipped, {1, 0}};
}
