// NATS core as a user would reach for it: plain subjects through one nats-server (the harness
// starts it for the run; run_config::broker_port), NATS's C client (libnats), default
// options but for SendAsap in ping-pong. stream and fanout: natsConnection_Publish to a subject the
// receivers subscribe to (synchronous subscriptions, pending limits lifted so that the client
// library never drops); pingpong: natsConnection_Request against a responder. Unlike the brokerless
// systems, every message crosses a third process, the server, which shares the machine's cores.
//
// NATS delivers to the subscriptions that exist when a message reaches the server, so the
// receivers announce themselves on a "ready" subject (again and again until data arrives:
// the sender may subscribe after their first announcement) and the sender starts once it has
// heard from all of them.
#include <nats/nats.h>

#include <set>
#include <string>
#include <vector>

#include "bench/harness/harness.h"

namespace ringmesh::bench {
namespace {

std::string subject(const run_config& c, const char* what) {
    return "rmbench." + std::to_string(c.port) + "." + what;
}

/// A connection to the run's nats-server, closed on destruction.
struct nats_connection {
    natsConnection* nc = nullptr;
    natsStatus status = NATS_ERR;
    explicit nats_connection(const run_config& c) {
        const std::string url = "nats://127.0.0.1:" + std::to_string(c.broker_port);
        natsOptions* opts = nullptr;
        if (natsOptions_Create(&opts) != NATS_OK) return;
        natsOptions_SetURL(opts, url.c_str());
        // Latency runs write each message at once; otherwise the client's flusher thread
        // batches writes (its throughput path).
        natsOptions_SetSendAsap(opts, c.what == scenario::pingpong);
        status = natsConnection_Connect(&nc, opts);
        natsOptions_Destroy(opts);
    }
    ~nats_connection() {
        if (nc != nullptr) {
            natsConnection_FlushTimeout(nc, 5000);
            natsConnection_Destroy(nc);
        }
    }
    nats_connection(const nats_connection&) = delete;
    nats_connection& operator=(const nats_connection&) = delete;
    bool ok() const { return status == NATS_OK; }
    std::string error(const char* what) const {
        return std::string(what) + ": " + natsStatus_GetText(status);
    }
};

/// A synchronous subscription, destroyed with it.
struct nats_subscription {
    natsSubscription* sub = nullptr;
    natsStatus status = NATS_ERR;
    nats_subscription(natsConnection* nc, const std::string& subject) {
        status = natsConnection_SubscribeSync(&sub, nc, subject.c_str());
        if (status == NATS_OK) natsSubscription_SetPendingLimits(sub, -1, -1);
    }
    ~nats_subscription() {
        if (sub != nullptr) natsSubscription_Destroy(sub);
    }
    nats_subscription(const nats_subscription&) = delete;
    nats_subscription& operator=(const nats_subscription&) = delete;
};

/// The receiving side of stream, rate and fanout (and the pingpong responder): subscribes,
/// announces itself until the first message comes, then takes messages until the end marker.
run_result receiver(const run_config& c) {
    nats_connection conn(c);
    if (!conn.ok()) return run_result::failed(conn.error("connect"));
    const bool ping = c.what == scenario::pingpong;
    nats_subscription data(conn.nc, subject(c, ping ? "ping" : "data"));
    if (data.status != NATS_OK) return run_result::failed("subscribe failed");
    natsConnection_Flush(conn.nc);  // the server has the subscription from here on
    const std::string ready = subject(c, "ready");
    const std::string me = std::to_string(c.receiver_index);
    receive_tally tally;
    natsMsg* msg = nullptr;
    // Announce every 50 ms until something arrives (bounded: 10 s).
    natsStatus s = NATS_TIMEOUT;
    for (int i = 0; i < 200 && s == NATS_TIMEOUT; ++i) {
        natsConnection_PublishString(conn.nc, ready.c_str(), me.c_str());
        natsConnection_Flush(conn.nc);
        s = natsSubscription_NextMsg(&msg, data.sub, 50);
    }
    while (s == NATS_OK) {
        const auto* p = reinterpret_cast<const std::byte*>(natsMsg_GetData(msg));
        if (ping) {
            natsConnection_Publish(conn.nc, natsMsg_GetReply(msg), natsMsg_GetData(msg),
                                   natsMsg_GetDataLength(msg));
            tally.done = kind_of(p) == msg_end;
        } else {
            tally.on_message(p, c.what == scenario::rate);
        }
        natsMsg_Destroy(msg);
        msg = nullptr;
        if (tally.done) break;
        s = natsSubscription_NextMsg(&msg, data.sub, 10'000);
    }
    if (ping) return {};
    if (!tally.done && tally.messages > 0)
        return run_result::failed("the end marker never came (a slow consumer cut off?)");
    return tally.result(c.what == scenario::rate);
}

/// Waits (bounded) until every receiver announced itself.
bool wait_for_receivers(const run_config& c, natsConnection* nc) {
    nats_subscription ready(nc, subject(c, "ready"));
    if (ready.status != NATS_OK) return false;
    natsConnection_Flush(nc);
    std::set<std::string> heard;
    for (int i = 0; i < 400 && static_cast<int>(heard.size()) < receiver_count(c); ++i) {
        natsMsg* msg = nullptr;
        if (natsSubscription_NextMsg(&msg, ready.sub, 50) != NATS_OK) continue;
        heard.insert(std::string(natsMsg_GetData(msg),
                                 static_cast<std::size_t>(natsMsg_GetDataLength(msg))));
        natsMsg_Destroy(msg);
    }
    return static_cast<int>(heard.size()) == receiver_count(c);
}

run_result sender(const run_config& c) {
    nats_connection conn(c);
    if (!conn.ok()) return run_result::failed(conn.error("connect"));
    if (!wait_for_receivers(c, conn.nc)) return run_result::failed("receivers never subscribed");
    std::vector<std::byte> msg(c.payload_bytes);
    const int len = static_cast<int>(msg.size());
    if (c.what == scenario::pingpong) {
        const std::string ping = subject(c, "ping");
        natsMsg* reply = nullptr;
        auto send = [&](std::vector<std::byte>& m) {
            return natsConnection_Request(&reply, conn.nc, ping.c_str(), m.data(), len, 5000) ==
                   NATS_OK;
        };
        auto receive = [&](std::vector<std::byte>& m) {
            if (reply == nullptr) return false;
            std::memcpy(m.data(), natsMsg_GetData(reply),
                        std::min<std::size_t>(
                            m.size(), static_cast<std::size_t>(natsMsg_GetDataLength(reply))));
            natsMsg_Destroy(reply);
            reply = nullptr;
            return true;
        };
        return windowed_round_trips(c, 1, msg, send, receive);
    }
    const std::string data = subject(c, "data");
    if (!send_stream(c, msg, [&](std::vector<std::byte>& m) {
            return natsConnection_Publish(conn.nc, data.c_str(), m.data(), len) == NATS_OK;
        }))
        return run_result::failed("publish failed");
    natsConnection_FlushTimeout(conn.nc, 10'000);
    run_result r;
    r.ok = true;
    return r;
}

bool supports(const run_config& c, std::string* why) {
    if (c.broker_port == 0) {
        *why = "no nats-server (install Debian's nats-server)";
        return false;
    }
    if (c.what == scenario::rpc || c.what == scenario::idle) {
        *why = "NATS core runs stream, pingpong, rate and fanout here";
        return false;
    }
    return true;
}

}  // namespace

const system_roles nats_roles{"nats", receiver, sender, supports};

}  // namespace ringmesh::bench
