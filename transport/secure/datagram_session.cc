#include "transport/secure/datagram_session.h"

#include <algorithm>

namespace ringmesh::transport::secure {

namespace {

bool same(std::span<const std::byte> a, std::span<const std::byte> b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

// Feeds a handshake datagram's whole body: anything but a completed handshake that took every
// byte is a refusal (its reason, or malformed).
auth_refusal feed_whole(auth_handshake& h, std::span<const std::byte> body,
                        std::vector<std::byte>& out) {
    const std::size_t used = h.feed(body, out);
    if (h.failed()) return h.refusal();
    return h.done() && used == body.size() ? auth_refusal::none : auth_refusal::malformed;
}

}  // namespace

datagram_session::bytes datagram_session::initiate(time_ns now, const std::vector<key_bytes>& keys,
                                                   const nonce& fresh) {
    if (pending_ && pending_role_ == role::responder) return {};  // ours completes it
    if (!pending_ && !would_start(now)) return {};                // quiet after a refusal
    if (!pending_) {
        pending_ = std::make_unique<auth_handshake>(settings_.identity, keys, true, fresh);
        pending_role_ = role::initiator;
        my_hello_.assign(1, datagram_hello);
        pending_->start(my_hello_);
        started_ = last_sent_ = now;
        return my_hello_;
    }
    if (now - last_sent_ < settings_.retry_ns) return {};
    last_sent_ = now;
    return my_hello_;
}

datagram_session::outcome datagram_session::respond(std::span<const std::byte> hello, time_ns now,
                                                    const std::vector<key_bytes>& keys,
                                                    const nonce& fresh) {
    auto handshake = std::make_unique<auth_handshake>(settings_.identity, keys, false, fresh);
    bytes reply(1, datagram_reply);
    handshake->start(reply);
    const std::size_t used = handshake->feed(hello, reply);
    if (handshake->failed() || used != hello.size() || handshake->done()) {
        // (A refused hello leaves any established session and our own attempt as they were.)
        quiet_until_ = now + 10 * settings_.retry_ns;
        return {{}, handshake->failed() ? handshake->refusal() : auth_refusal::malformed, false};
    }
    pending_ = std::move(handshake);
    pending_role_ = role::responder;
    their_hello_.assign(hello.begin(), hello.end());
    reply_ = std::move(reply);
    started_ = last_sent_ = now;
    return {reply_, auth_refusal::none, false};
}

datagram_session::outcome datagram_session::take(std::span<const std::byte> datagram, time_ns now,
                                                 const std::vector<key_bytes>& keys,
                                                 const nonce& fresh) {
    if (!is_handshake_datagram(datagram)) return {{}, auth_refusal::malformed, false};
    const std::byte type = datagram[0];
    const std::span<const std::byte> body = datagram.subspan(1);
    if (type == datagram_hello) {
        if (pending_ && pending_role_ == role::responder && same(body, their_hello_)) {
            last_sent_ = now;
            return {reply_, auth_refusal::none, false};  // our reply was lost: again
        }
        if (pending_ && pending_role_ == role::initiator) {
            // Both sides started: the hello that sorts lower is the one both complete.
            const std::span<const std::byte> mine =
                std::span<const std::byte>(my_hello_).subspan(1);
            if (std::lexicographical_compare(mine.begin(), mine.end(), body.begin(), body.end()))
                return {};
        }
        if (!pending_ && established() && same(body, their_hello_)) return {};  // stale repeat
        return respond(body, now, keys, fresh);
    }
    if (type == datagram_reply) {
        if (pending_ && pending_role_ == role::initiator) {
            bytes proof(1, datagram_proof);
            if (const auth_refusal why = feed_whole(*pending_, body, proof);
                why != auth_refusal::none) {
                return refused(why, now);
            }
            install(*pending_);
            pending_.reset();
            their_hello_.clear();
            established_reply_.assign(body.begin(), body.end());
            established_proof_ = proof;
            return {std::move(proof), auth_refusal::none, true};
        }
        if (established() && same(body, established_reply_)) {
            return {established_proof_, auth_refusal::none, false};  // our proof was lost
        }
        return {};  // stale
    }
    // The initiator's proof.
    if (!pending_ || pending_role_ != role::responder) return {};
    bytes nothing;
    if (const auth_refusal why = feed_whole(*pending_, body, nothing); why != auth_refusal::none) {
        return refused(why, now);
    }
    install(*pending_);
    pending_.reset();
    established_reply_.clear();
    established_proof_.clear();
    return {{}, auth_refusal::none, true};
}

datagram_session::bytes datagram_session::nudge(time_ns now) {
    if (!pending_ || pending_role_ != role::responder || now - last_sent_ < settings_.retry_ns)
        return {};
    last_sent_ = now;
    return reply_;
}

bool datagram_session::expire(time_ns deadline) {
    if (!pending_ || pending_role_ != role::responder || started_ > deadline) return false;
    pending_.reset();
    return true;
}

datagram_session::outcome datagram_session::refused(auth_refusal why, time_ns now) {
    pending_.reset();
    quiet_until_ = now + 10 * settings_.retry_ns;
    return {{}, why, false};
}

void datagram_session::install(const auth_handshake& done) {
    sealer_.emplace(done.keys().send, settings_.encrypt);
    opener_.emplace(done.keys().receive, settings_.encrypt);
    peer_ = done.peer();
}

}  // namespace ringmesh::transport::secure
