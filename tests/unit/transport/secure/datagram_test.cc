// Sealed datagrams and the keyring handshake over datagrams, sans-I/O: payloads round-trip
// (encrypted or only tagged), any changed byte is refused, the replay window takes reordering
// and refuses repeats and the too old; two sessions complete a handshake through lost,
// repeated and crossing handshake datagrams and after a restart, and a wrong key is refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "transport/secure/datagram_seal.h"
#include "transport/secure/datagram_session.h"

namespace ringmesh::transport::secure {
namespace {

using bytes = std::vector<std::byte>;

record_key key_of(unsigned char fill) {
    record_key k{};
    k.fill(static_cast<std::byte>(fill));
    return k;
}

bytes text(const std::string& s) {
    bytes b(s.size());
    std::transform(s.begin(), s.end(), b.begin(), [](char c) { return static_cast<std::byte>(c); });
    return b;
}

bool contains(const bytes& haystack, const bytes& needle) {
    return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) !=
           haystack.end();
}

TEST(DatagramSealTest, PayloadsRoundTripEncryptedOrTaggedAndAnyChangeIsRefused) {
    for (const bool encrypt : {true, false}) {
        SCOPED_TRACE(encrypt ? "encrypted" : "authenticated");
        datagram_sealer sealer(key_of(1), encrypt);
        datagram_opener opener(key_of(1), encrypt);
        const bytes message = text("the secret order book");
        bytes sealed;
        sealer.seal(message, sealed);
        EXPECT_EQ(sealed.size(), message.size() + sealed_datagram_overhead);
        EXPECT_EQ(contains(sealed, message), !encrypt) << "the payload is hidden when encrypted";
        for (std::size_t i = 0; i < sealed.size(); ++i) {
            bytes changed = sealed;
            changed[i] ^= std::byte{0x20};
            std::span<const std::byte> payload;
            datagram_opener fresh(key_of(1), encrypt);
            EXPECT_NE(fresh.open(changed, payload), datagram_status::ok) << "byte " << i;
        }
        std::span<const std::byte> payload;
        bytes copy = sealed;
        ASSERT_EQ(opener.open(copy, payload), datagram_status::ok);
        EXPECT_TRUE(std::equal(payload.begin(), payload.end(), message.begin(), message.end()));
        copy = sealed;
        EXPECT_EQ(opener.open(copy, payload), datagram_status::replayed);
        datagram_opener other(key_of(2), encrypt);
        copy = sealed;
        EXPECT_EQ(other.open(copy, payload), datagram_status::tampered) << "another key";
        bytes runt(sealed.begin(), sealed.begin() + 10);
        EXPECT_EQ(opener.open(runt, payload), datagram_status::malformed);
    }
}

TEST(DatagramSealTest, TheReplayWindowTakesReorderingAndRefusesRepeatsAndTheTooOld) {
    datagram_sealer sealer(key_of(3), true);
    datagram_opener opener(key_of(3), true);
    std::vector<bytes> sent(3000);
    for (auto& d : sent)
        sealer.seal(text("x"), d);
    // Shuffled within blocks smaller than the window: every one is accepted once.
    std::mt19937 rng(7);
    for (std::size_t at = 0; at < sent.size(); at += 500)
        std::shuffle(sent.begin() + static_cast<long>(at),
                     sent.begin() + static_cast<long>(std::min(at + 500, sent.size())), rng);
    std::vector<bytes> copies = sent;
    std::span<const std::byte> payload;
    for (auto& d : copies)
        ASSERT_EQ(opener.open(d, payload), datagram_status::ok);
    copies = sent;
    for (auto& d : copies)
        EXPECT_EQ(opener.open(d, payload), datagram_status::replayed);
    // Older than the window (it moved on), even when never seen: refused.
    datagram_sealer late(key_of(4), true);
    datagram_opener window(key_of(4), true);
    bytes first, d;
    late.seal(text("first"), first);
    for (std::size_t i = 1; i <= replay_window + 1; ++i) {
        late.seal(text("y"), d);
        ASSERT_EQ(window.open(d, payload), datagram_status::ok);
    }
    EXPECT_EQ(window.open(first, payload), datagram_status::replayed);
}

/// Two sessions and a lossy, duplicating network between them (seeded).
struct pair_net {
    datagram_session a, b;
    std::vector<key_bytes> keys_a{key_bytes(32, std::byte{9})}, keys_b{key_bytes(32, std::byte{9})};
    std::mt19937_64 rng{11};
    double drop = 0, duplicate = 0;
    std::vector<std::pair<bool, bytes>> wire;  // (to_b, datagram)
    time_ns now = 0;
    auth_refusal refused_a = auth_refusal::none, refused_b = auth_refusal::none;

    pair_net(const std::string& name_a = "a", const std::string& name_b = "b")
        : a({{"c", name_a, security_mode::encrypted}, true, 1000}),
          b({{"c", name_b, security_mode::encrypted}, true, 1000}) {}
    nonce fresh() {
        nonce n{};
        for (auto& x : n)
            x = static_cast<std::byte>(rng());
        return n;
    }
    void send(bool to_b, bytes d) {
        if (d.empty()) return;
        std::uniform_real_distribution<double> u(0, 1);
        if (u(rng) < drop) return;
        wire.emplace_back(to_b, d);
        if (u(rng) < duplicate) wire.emplace_back(to_b, std::move(d));
    }
    /// Delivers what is on the wire (in a shuffled order) and lets the initiator(s) retry.
    void round(bool a_wants_to_send, bool b_wants_to_send = false) {
        now += 1000;
        if (a_wants_to_send && !a.established()) send(true, a.initiate(now, keys_a, fresh()));
        if (b_wants_to_send && !b.established()) send(false, b.initiate(now, keys_b, fresh()));
        std::vector<std::pair<bool, bytes>> batch;
        batch.swap(wire);
        std::shuffle(batch.begin(), batch.end(), rng);
        for (auto& [to_b, d] : batch) {
            datagram_session& at = to_b ? b : a;
            auto step = at.take(d, now, to_b ? keys_b : keys_a, fresh());
            if (step.refused != auth_refusal::none) (to_b ? refused_b : refused_a) = step.refused;
            send(!to_b, std::move(step.send));
        }
        // The responder repeats its reply when sealed traffic shows the initiator is done.
        if (a.established() && !b.established()) send(false, b.nudge(now));
        if (b.established() && !a.established()) send(true, a.nudge(now));
    }
    bool carries() {
        bytes d;
        a.sealer().seal(text("ping"), d);
        std::span<const std::byte> p;
        if (b.opener().open(d, p) != datagram_status::ok) return false;
        b.sealer().seal(text("pong"), d);
        return a.opener().open(d, p) == datagram_status::ok;
    }
};

TEST(DatagramSessionTest, AHandshakeCompletesThroughLossDuplicationAndReordering) {
    for (int seed = 1; seed <= 200; ++seed) {
        pair_net n;
        n.rng.seed(static_cast<std::uint64_t>(seed));
        n.drop = 0.3;
        n.duplicate = 0.3;
        for (int i = 0; i < 400 && !(n.a.established() && n.b.established()); ++i)
            n.round(true);
        ASSERT_TRUE(n.a.established() && n.b.established()) << "seed " << seed;
        EXPECT_EQ(n.a.peer(), "b");
        EXPECT_EQ(n.b.peer(), "a");
        EXPECT_TRUE(n.carries()) << "seed " << seed;
        EXPECT_EQ(n.refused_a, auth_refusal::none);
        EXPECT_EQ(n.refused_b, auth_refusal::none);
    }
}

TEST(DatagramSessionTest, TwoSidesThatStartAtOnceCompleteOneHandshake) {
    for (int seed = 1; seed <= 50; ++seed) {
        pair_net n;
        n.rng.seed(static_cast<std::uint64_t>(seed));
        for (int i = 0; i < 50 && !(n.a.established() && n.b.established()); ++i)
            n.round(true, true);
        ASSERT_TRUE(n.a.established() && n.b.established()) << "seed " << seed;
        EXPECT_TRUE(n.carries());
    }
}

TEST(DatagramSessionTest, ARestartedPeerGetsANewSessionAndTheOldOneCarriesUntilThen) {
    pair_net n;
    for (int i = 0; i < 10 && !n.b.established(); ++i)
        n.round(true);
    ASSERT_TRUE(n.a.established() && n.b.established());
    // b restarts: a fresh session with no keys; it initiates, a answers beside its session.
    n.b = datagram_session({{"c", "b", security_mode::encrypted}, true, 1000});
    n.now += 1000;
    n.send(true, n.b.initiate(n.now, n.keys_b, n.fresh()));
    auto step = n.a.take(n.wire.back().second, n.now, n.keys_a, n.fresh());
    n.wire.clear();
    EXPECT_TRUE(n.a.established()) << "the old session stays while the new one runs";
    EXPECT_TRUE(n.a.handshaking());
    auto back = n.b.take(step.send, n.now, n.keys_b, n.fresh());
    ASSERT_TRUE(back.established);
    auto done = n.a.take(back.send, n.now, n.keys_a, n.fresh());
    EXPECT_TRUE(done.established);
    EXPECT_TRUE(n.carries());
}

TEST(DatagramSessionTest, AWrongKeyIsRefusedAndAStaleReplyChangesNothing) {
    pair_net n;
    n.keys_b = {key_bytes(32, std::byte{8})};
    for (int i = 0; i < 10; ++i)
        n.round(true);
    EXPECT_FALSE(n.a.established());
    EXPECT_FALSE(n.b.established());
    EXPECT_EQ(n.refused_a, auth_refusal::unknown_key) << "the reply proves a key a lacks";

    // A recorded reply played to an established initiator that did not ask: nothing happens.
    pair_net m;
    for (int i = 0; i < 10 && !m.b.established(); ++i)
        m.round(true);
    ASSERT_TRUE(m.a.established());
    pair_net other;
    bytes hello = other.a.initiate(0, other.keys_a, other.fresh());
    auto reply = other.b.take(hello, 0, other.keys_b, other.fresh());
    auto step = m.a.take(reply.send, m.now, m.keys_a, m.fresh());
    EXPECT_TRUE(step.send.empty());
    EXPECT_FALSE(step.established);
    EXPECT_TRUE(m.carries());
}

}  // namespace
}  // namespace ringmesh::transport::secure
