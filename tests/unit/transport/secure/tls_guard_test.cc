// `encrypted` mode on one connection, sans-I/O: two nodes with certificates from one CA prove
// each other's names in a TLS 1.3 handshake and exchange records, one per flushed batch;
// ringmesh's own record layer and OpenSSL's read each other's records and key updates;
// every refusal has its reason — another CA, an expired certificate, none at all, our own
// name, a keyring or plaintext peer — and a changed or replayed record never yields its
// payload. Loading credentials refuses a certificate that would fail its peers' checks.
#include "transport/secure/tls_guard.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "transport/secure/cert_issuer.h"

namespace ringmesh::transport::secure {
namespace {

using bytes = std::vector<std::byte>;

bytes payload_of(std::size_t n, unsigned seed = 3) {
    bytes p(n);
    for (std::size_t i = 0; i < n; ++i)
        p[i] = static_cast<std::byte>(i * 7 + seed);
    return p;
}

cert_issuer& ca() {
    static cert_issuer issuer = cert_issuer::create("test-ca").value();
    return issuer;
}

std::shared_ptr<const tls_context> credentials(const cert_issuer& issuer, const std::string& name,
                                               cert_validity validity = {}) {
    auto pem = issuer.issue(name, validity);
    EXPECT_TRUE(pem) << pem.err().message();
    auto ctx = tls_context::from_pem(*pem, name, /*check_own=*/false);
    EXPECT_TRUE(ctx) << ctx.err().message();
    return *ctx;
}

/// A dialer and a listener, and the bytes on the way between them.
struct link {
    tls_guard dialer, listener;
    bytes to_listener, to_dialer;
    bytes listener_leftover;  // what the listener's handshake did not consume: records

    /// `openssl_*`: that side leaves its records to OpenSSL (the other's own layer must agree).
    link(std::shared_ptr<const tls_context> d, std::shared_ptr<const tls_context> l,
         bool openssl_dialer = false, bool openssl_listener = false)
        : dialer(d, d->identity(), true, openssl_dialer),
          listener(l, l->identity(), false, openssl_listener) {}

    /// Runs the handshake, feeding `piece` bytes at a time, until neither side says more.
    void converse(std::size_t piece = SIZE_MAX) {
        dialer.start(to_listener);
        for (int round = 0; round < 10 && (!to_listener.empty() || !to_dialer.empty()); ++round) {
            bytes next_to_dialer, next_to_listener;
            feed_all(listener, to_listener, next_to_dialer, piece, &listener_leftover);
            feed_all(dialer, to_dialer, next_to_listener, piece, nullptr);
            to_dialer = std::move(next_to_dialer);
            to_listener = std::move(next_to_listener);
        }
    }

    static void feed_all(stream_guard& g, const bytes& in, bytes& out, std::size_t piece,
                         bytes* leftover) {
        for (std::size_t at = 0; at < in.size();) {
            const std::size_t n = std::min(piece, in.size() - at);
            const auto chunk = std::span<const std::byte>(in).subspan(at, n);
            const std::size_t used = g.feed(chunk, out);
            at += used;
            if (used < n) {
                if (leftover != nullptr && g.done()) leftover->assign(in.begin() + at, in.end());
                return;
            }
        }
    }
};

/// Opens every record in `stream`; the payloads, concatenated, or the first failure.
record_status open_all(tls_guard& g, std::span<const std::byte> stream, bytes& got,
                       std::size_t* records = nullptr) {
    bytes replies;
    std::vector<std::byte> dest(max_tls_ciphertext);
    while (!stream.empty()) {
        std::size_t size = 0;
        const record_status next = g.next(stream, size);
        if (next != record_status::ok) return next;
        EXPECT_LE(size, tls_header_bytes + max_tls_ciphertext);
        std::size_t written = 0;
        const record_status opened = g.open(stream.first(size), dest, written, replies);
        if (opened != record_status::ok) return opened;
        got.insert(got.end(), dest.begin(), dest.begin() + static_cast<std::ptrdiff_t>(written));
        stream = stream.subspan(size);
        if (records != nullptr) ++*records;
    }
    return record_status::ok;
}

TEST(TlsGuardTest, MutualCertificatesProveBothNamesAndBatchesTravelAsOneRecordEach) {
    link l(credentials(ca(), "a"), credentials(ca(), "b"));
    l.converse();
    ASSERT_TRUE(l.dialer.done()) << l.dialer.refusal_detail();
    ASSERT_TRUE(l.listener.done()) << l.listener.refusal_detail();
    EXPECT_EQ(l.dialer.peer(), "b");
    EXPECT_EQ(l.listener.peer(), "a");

    // Three small messages in one iteration: one record at the flush.
    bytes stream;
    const bytes m1 = payload_of(64, 1), m2 = payload_of(64, 2), m3 = payload_of(100, 3);
    for (const bytes* m : {&m1, &m2, &m3})
        l.dialer.append(*m, stream);
    EXPECT_EQ(l.dialer.records_sealed(), 0u) << "open until the flush";
    l.dialer.close(stream);
    EXPECT_EQ(l.dialer.records_sealed(), 1u);
    bytes got;
    std::size_t records = 0;
    ASSERT_EQ(open_all(l.listener, stream, got, &records), record_status::ok);
    EXPECT_EQ(records, 1u);
    bytes want;
    for (const bytes* m : {&m1, &m2, &m3})
        want.insert(want.end(), m->begin(), m->end());
    EXPECT_EQ(got, want);

    // A large message: full records as it is appended, the rest at the flush.
    const bytes big = payload_of(40000, 9);
    stream.clear();
    l.listener.append(payload_of(10, 5), stream);  // something staged first
    l.listener.append(big, stream);
    l.listener.close(stream);
    got.clear();
    records = 0;
    ASSERT_EQ(open_all(l.dialer, stream, got, &records), record_status::ok);
    EXPECT_EQ(records, 3u);  // 16384 + 16384 + 7242
    want = payload_of(10, 5);
    want.insert(want.end(), big.begin(), big.end());
    EXPECT_EQ(got, want);
}

/// Sends `payload` from one side to the other in one flush; what arrives, and the replies the
/// receiver wants sent back (a key update's answer) go back the same way.
bytes carry(tls_guard& from, tls_guard& to, const bytes& payload) {
    bytes stream;
    from.append(payload, stream);
    from.close(stream);
    bytes got, replies;
    std::vector<std::byte> dest(max_tls_ciphertext);
    std::span<const std::byte> rest(stream);
    while (!rest.empty()) {
        std::size_t size = 0;
        EXPECT_EQ(to.next(rest, size), record_status::ok);
        std::size_t written = 0;
        EXPECT_EQ(to.open(rest.first(size), dest, written, replies), record_status::ok);
        got.insert(got.end(), dest.begin(), dest.begin() + static_cast<std::ptrdiff_t>(written));
        rest = rest.subspan(size);
    }
    to.close(replies);  // an answer due goes out with the next flush
    std::span<const std::byte> back(replies);
    std::vector<std::byte> scratch(max_tls_ciphertext);
    while (!back.empty()) {
        std::size_t size = 0;
        EXPECT_EQ(from.next(back, size), record_status::ok);
        std::size_t written = 0;
        bytes none;
        EXPECT_EQ(from.open(back.first(size), scratch, written, none), record_status::ok);
        EXPECT_EQ(written, 0u) << "only a key update comes back";
        back = back.subspan(size);
    }
    return got;
}

TEST(TlsGuardTest, OwnRecordsAndOpenSslsReadEachOtherIncludingKeyUpdates) {
    for (const auto& [openssl_dialer, openssl_listener] :
         {std::pair{false, true}, std::pair{true, false}, std::pair{false, false}}) {
        SCOPED_TRACE(testing::Message() << "OpenSSL records: dialer " << openssl_dialer
                                        << ", listener " << openssl_listener);
        link l(credentials(ca(), "a"), credentials(ca(), "b"), openssl_dialer, openssl_listener);
        l.converse();
        ASSERT_TRUE(l.dialer.done() && l.listener.done());
        EXPECT_EQ(l.dialer.own_records(), !openssl_dialer);
        EXPECT_EQ(l.listener.own_records(), !openssl_listener);
        for (std::size_t size :
             {std::size_t{1}, std::size_t{64}, std::size_t{16384}, std::size_t{40000}}) {
            EXPECT_EQ(carry(l.dialer, l.listener, payload_of(size, 1)), payload_of(size, 1));
            EXPECT_EQ(carry(l.listener, l.dialer, payload_of(size, 2)), payload_of(size, 2));
        }
        // Key updates both ways, each asking the other to update too; traffic goes on.
        l.dialer.request_key_update();
        EXPECT_EQ(carry(l.dialer, l.listener, payload_of(100, 3)), payload_of(100, 3));
        l.listener.request_key_update();
        EXPECT_EQ(carry(l.listener, l.dialer, payload_of(100, 4)), payload_of(100, 4));
        EXPECT_EQ(carry(l.dialer, l.listener, payload_of(5000, 5)), payload_of(5000, 5));
        EXPECT_EQ(carry(l.listener, l.dialer, payload_of(5000, 6)), payload_of(5000, 6));
        // Each received the other's request and the answer to its own (OpenSSL folds its
        // pending answer into the request it sends next: one update, both purposes).
        const std::uint64_t least = openssl_dialer || openssl_listener ? 1 : 2;
        EXPECT_GE(l.dialer.key_updates_received(), least);
        EXPECT_GE(l.listener.key_updates_received(), least);
        if (least == 2) {
            EXPECT_EQ(l.dialer.key_updates_sent(), 2u);
        }
    }
}

TEST(TlsGuardTest, AHandshakeFedOneByteAtATimeEndsTheSameAndLeavesRecordsAfterIt) {
    link l(credentials(ca(), "a"), credentials(ca(), "b"));
    l.dialer.start(l.to_listener);
    // Dribble: the listener gets the ClientHello byte by byte.
    bytes to_dialer;
    for (std::size_t i = 0; i < l.to_listener.size(); ++i)
        EXPECT_EQ(
            l.listener.feed(std::span<const std::byte>(l.to_listener).subspan(i, 1), to_dialer),
            1u);
    bytes to_listener;
    EXPECT_EQ(l.dialer.feed(to_dialer, to_listener), to_dialer.size());
    ASSERT_TRUE(l.dialer.done());
    // The dialer's first record rides with its Finished, in the same chunk.
    const std::size_t finished_bytes = to_listener.size();
    l.dialer.append(payload_of(30), to_listener);
    l.dialer.close(to_listener);
    bytes replies;
    const std::size_t used = l.listener.feed(to_listener, replies);
    ASSERT_TRUE(l.listener.done()) << l.listener.refusal_detail();
    EXPECT_EQ(used, finished_bytes);
    bytes got;
    ASSERT_EQ(open_all(l.listener, std::span<const std::byte>(to_listener).subspan(used), got),
              record_status::ok);
    EXPECT_EQ(got, payload_of(30));
}

TEST(TlsGuardTest, AnyChangedByteOfARecordAndAReplayedRecordNeverYieldTheirPayload) {
    link l(credentials(ca(), "a"), credentials(ca(), "b"));
    l.converse();
    ASSERT_TRUE(l.dialer.done() && l.listener.done());
    bytes record;
    l.dialer.append(payload_of(48), record);
    l.dialer.close(record);
    bytes got;
    ASSERT_EQ(open_all(l.listener, record, got), record_status::ok);
    EXPECT_NE(open_all(l.listener, record, got), record_status::ok) << "a replay";

    for (std::size_t i = 0; i < record.size(); ++i) {
        link fresh(credentials(ca(), "a"), credentials(ca(), "b"));
        fresh.converse();
        ASSERT_TRUE(fresh.dialer.done() && fresh.listener.done());
        bytes r;
        fresh.dialer.append(payload_of(48), r);
        fresh.dialer.close(r);
        r[i] ^= std::byte{0x01};
        bytes out;
        const record_status s = open_all(fresh.listener, r, out);
        EXPECT_NE(s, record_status::ok) << "byte " << i;
        EXPECT_TRUE(out.empty()) << "byte " << i;
    }
}

TEST(TlsGuardTest, ACertificateFromAnotherCaIsRefusedAndThePeerLearnsIt) {
    auto other = cert_issuer::create("other-ca").value();
    link l(credentials(ca(), "a"), credentials(other, "b"));
    l.converse();
    EXPECT_FALSE(l.dialer.done());
    EXPECT_FALSE(l.listener.done());
    EXPECT_EQ(l.dialer.refusal(), auth_refusal::untrusted_certificate);
    EXPECT_EQ(l.dialer.claimed_peer(), "b") << "what the certificate claimed, for the log";
    EXPECT_EQ(l.listener.refusal(), auth_refusal::refused_by_peer) << l.listener.refusal_detail();
}

TEST(TlsGuardTest, AnExpiredCertificateIsRefused) {
    const cert_validity expired{-2 * 86400, -86400};
    link l(credentials(ca(), "a"), credentials(ca(), "b", expired));
    l.converse();
    EXPECT_EQ(l.dialer.refusal(), auth_refusal::expired_certificate);
    EXPECT_FALSE(l.listener.done());
}

TEST(TlsGuardTest, ADialerWithoutACertificateIsRefused) {
    auto anonymous = tls_context::from_pem({ca().cert_pem(), "", ""}, "anonymous", false).value();
    link l(anonymous, credentials(ca(), "b"));
    l.converse();
    EXPECT_EQ(l.listener.refusal(), auth_refusal::no_certificate) << l.listener.refusal_detail();
    EXPECT_FALSE(l.listener.done());
}

TEST(TlsGuardTest, APeerWithThisNodesOwnNameIsRefused) {
    link l(credentials(ca(), "a"), credentials(ca(), "a"));
    l.converse();
    EXPECT_EQ(l.dialer.refusal(), auth_refusal::ourselves);
}

TEST(TlsGuardTest, KeyringAndPlaintextPeersAreRefusedWithTheirReason) {
    // A keyring peer (mode authenticated) dials a TLS listener...
    auth_handshake keyring({"c", "k", security_mode::authenticated}, {key_bytes(32, std::byte{1})},
                           true, auth_handshake::random_nonce());
    bytes hello, out;
    keyring.start(hello);
    tls_guard listener(credentials(ca(), "b"), "b", false);
    EXPECT_EQ(listener.feed(hello, out), 0u);
    EXPECT_EQ(listener.refusal(), auth_refusal::mode_mismatch);
    // ...and a TLS dialer reaches a keyring listener.
    tls_guard dialer(credentials(ca(), "a"), "a", true);
    bytes client_hello;
    dialer.start(client_hello);
    auth_handshake keyring_listener({"c", "k", security_mode::authenticated},
                                    {key_bytes(32, std::byte{1})}, false,
                                    auth_handshake::random_nonce());
    keyring_listener.feed(client_hello, out);
    EXPECT_EQ(keyring_listener.refusal(), auth_refusal::mode_mismatch);
    // A plaintext stranger.
    tls_guard plain_listener(credentials(ca(), "b"), "b", false);
    const bytes text = {std::byte{'G'}, std::byte{'E'}, std::byte{'T'}, std::byte{' '}};
    EXPECT_EQ(plain_listener.feed(text, out), 0u);
    EXPECT_EQ(plain_listener.refusal(), auth_refusal::not_secure);
}

TEST(TlsGuardTest, LoadingRefusesCredentialsThatWouldFailThePeersChecks) {
    auto pem = ca().issue("n1").value();
    EXPECT_TRUE(tls_context::from_pem(pem, "n1"));
    auto wrong_name = tls_context::from_pem(pem, "n2");
    ASSERT_FALSE(wrong_name);
    EXPECT_NE(wrong_name.err().message().find("names \"n1\""), std::string::npos)
        << wrong_name.err().message();

    auto other = cert_issuer::create("other-ca").value();
    tls_pem foreign = other.issue("n1").value();
    foreign.ca = ca().cert_pem();  // a certificate the configured CA did not sign
    auto untrusted = tls_context::from_pem(foreign, "n1");
    ASSERT_FALSE(untrusted);
    EXPECT_NE(untrusted.err().message().find("CA check"), std::string::npos);

    auto expired = ca().issue("n1", {-2 * 86400, -86400}).value();
    auto late = tls_context::from_pem(expired, "n1");
    ASSERT_FALSE(late);
    EXPECT_NE(late.err().message().find("expired"), std::string::npos) << late.err().message();

    tls_pem mismatched = pem;
    mismatched.key = ca().issue("n1").value().key;
    EXPECT_FALSE(tls_context::from_pem(mismatched, "n1"));

    // A CA saved and loaded again issues certificates its peers accept.
    auto again = cert_issuer::from_pem(ca().cert_pem(), ca().key_pem()).value();
    auto reissued = again.issue("n2").value();
    EXPECT_TRUE(tls_context::from_pem(reissued, "n2"));
}

}  // namespace
}  // namespace ringmesh::transport::secure
