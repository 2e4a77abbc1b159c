// ZeroMQ as a user would reach for it: PUSH/PULL for a one-way stream, REQ/REP for ping-pong,
// over TCP on loopback, default socket options.
#include <zmq.h>

#include <string>
#include <vector>

#include "bench/harness/harness.h"

namespace ringmesh::bench {
namespace {

std::string endpoint_of(int port) {
    return "tcp://127.0.0.1:" + std::to_string(port);
}

/// zmq-curve: CURVE on every socket, the binding side the server. The keys are fixed (both
/// processes derive them from the same bytes): what is measured is the encryption.
struct curve_keys {
    char server_public[41], server_secret[41], client_public[41], client_secret[41];
    curve_keys() {
        std::uint8_t raw[32];
        for (int i = 0; i < 32; ++i)
            raw[i] = static_cast<std::uint8_t>(i * 7 + 1);
        zmq_z85_encode(server_secret, raw, 32);
        for (int i = 0; i < 32; ++i)
            raw[i] = static_cast<std::uint8_t>(i * 11 + 3);
        zmq_z85_encode(client_secret, raw, 32);
        zmq_curve_public(server_public, server_secret);
        zmq_curve_public(client_public, client_secret);
    }
};

void secure_socket(const run_config& c, void* sock, bool server) {
    if (!c.curve) return;
    static const curve_keys k;
    if (server) {
        const int one = 1;
        zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one);
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, k.server_secret, 40);
    } else {
        zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, k.server_public, 40);
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, k.client_public, 40);
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, k.client_secret, 40);
    }
}

// rpc: DEALER/ROUTER, so that the client keeps rpc_window requests outstanding.
run_result rpc_server(const run_config& c) {
    void* ctx = zmq_ctx_new();
    void* sock = zmq_socket(ctx, ZMQ_ROUTER);
    if (zmq_bind(sock, endpoint_of(c.port).c_str()) != 0) return run_result::failed("zmq bind");
    std::vector<std::byte> identity(256), buf(c.payload_bytes);
    for (;;) {
        const int id_len = zmq_recv(sock, identity.data(), identity.size(), 0);
        const int n = zmq_recv(sock, buf.data(), buf.size(), 0);
        if (id_len < 0 || n < 0) break;
        zmq_send(sock, identity.data(), static_cast<std::size_t>(id_len), ZMQ_SNDMORE);
        zmq_send(sock, buf.data(), static_cast<std::size_t>(n), 0);
        if (kind_of(buf.data()) == msg_end) break;
    }
    int linger = 2000;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return {};
}

run_result rpc_client(const run_config& c) {
    void* ctx = zmq_ctx_new();
    void* sock = zmq_socket(ctx, ZMQ_DEALER);
    zmq_connect(sock, endpoint_of(c.port).c_str());
    std::vector<std::byte> msg(c.payload_bytes);
    const run_result r = windowed_round_trips(
        c, rpc_window, msg, [sock](auto& m) { return zmq_send(sock, m.data(), m.size(), 0) >= 0; },
        [sock](auto& m) { return zmq_recv(sock, m.data(), m.size(), 0) >= 0; });
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return r;
}

// fanout: XPUB with ZMQ_XPUB_NODROP, so that a slow subscriber slows the publisher instead of
// losing messages (plain PUB drops at the high-water mark); SUBs connect to it.
run_result fanout_subscriber(const run_config& c) {
    void* ctx = zmq_ctx_new();
    void* sock = zmq_socket(ctx, ZMQ_SUB);
    zmq_setsockopt(sock, ZMQ_SUBSCRIBE, "", 0);
    zmq_connect(sock, endpoint_of(c.port).c_str());
    std::vector<std::byte> buf(c.payload_bytes);
    receive_tally tally;
    while (!tally.done) {
        if (zmq_recv(sock, buf.data(), buf.size(), 0) < 0) break;
        tally.on_message(buf.data(), false);
    }
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return tally.result(false);
}

run_result fanout_publisher(const run_config& c) {
    void* ctx = zmq_ctx_new();
    void* sock = zmq_socket(ctx, ZMQ_XPUB);
    const int one = 1;
    zmq_setsockopt(sock, ZMQ_XPUB_NODROP, &one, sizeof one);
    if (zmq_bind(sock, endpoint_of(c.port).c_str()) != 0) return run_result::failed("zmq bind");
    // Wait (bounded) until every subscriber's subscription arrived: earlier messages would go
    // to nobody (the "slow joiner").
    int subscribed = 0;
    zmq_pollitem_t item{sock, 0, ZMQ_POLLIN, 0};
    for (int waited_ms = 0; subscribed < c.fanout && waited_ms < 10000; waited_ms += 10) {
        if (zmq_poll(&item, 1, 10) > 0) {
            char sub[64];
            if (zmq_recv(sock, sub, sizeof sub, 0) > 0 && sub[0] == 1) ++subscribed;
        }
    }
    std::vector<std::byte> msg(c.payload_bytes);
    auto send = [&] {
        while (zmq_send(sock, msg.data(), msg.size(), ZMQ_DONTWAIT) < 0) {
            if (zmq_errno() != EAGAIN) return false;  // EAGAIN: a subscriber is full, retry
        }
        return true;
    };
    const time_ns end = monotonic_clock::read() + static_cast<time_ns>(c.seconds * 1e9);
    std::uint64_t seq = 0;
    for (time_ns now = monotonic_clock::read(); now < end; now = monotonic_clock::read()) {
        stamp(msg.data(), msg_data, seq++, now);
        if (!send()) break;
    }
    stamp(msg.data(), msg_end, seq, 0);
    send();
    int linger = 5000;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return {};
}

run_result receiver(const run_config& c) {
    if (c.what == scenario::rpc) return rpc_server(c);
    if (c.what == scenario::fanout) return fanout_subscriber(c);
    void* ctx = zmq_ctx_new();
    void* sock = zmq_socket(ctx, c.what == scenario::pingpong ? ZMQ_REP : ZMQ_PULL);
    secure_socket(c, sock, true);
    if (zmq_bind(sock, endpoint_of(c.port).c_str()) != 0) {
        return run_result::failed(std::string("zmq bind: ") + zmq_strerror(zmq_errno()));
    }
    std::vector<std::byte> buf(c.payload_bytes);
    receive_tally tally;
    while (!tally.done) {
        const int n = zmq_recv(sock, buf.data(), buf.size(), 0);
        if (n < 0) break;
        if (c.what == scenario::pingpong) {
            zmq_send(sock, buf.data(), static_cast<std::size_t>(n), 0);
            tally.done = kind_of(buf.data()) == msg_end;
        } else {
            tally.on_message(buf.data(), c.what == scenario::rate);
        }
    }
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return c.what == scenario::pingpong ? run_result{} : tally.result(c.what == scenario::rate);
}

run_result sender(const run_config& c) {
    if (c.what == scenario::rpc) return rpc_client(c);
    if (c.what == scenario::fanout) return fanout_publisher(c);
    void* ctx = zmq_ctx_new();
    void* sock = zmq_socket(ctx, c.what == scenario::pingpong ? ZMQ_REQ : ZMQ_PUSH);
    secure_socket(c, sock, false);
    zmq_connect(sock, endpoint_of(c.port).c_str());  // connects (and reconnects) in background
    std::vector<std::byte> msg(c.payload_bytes);
    run_result r;
    r.ok = true;
    if (c.what == scenario::pingpong) {
        r = windowed_round_trips(
            c, 1, msg, [sock](auto& m) { return zmq_send(sock, m.data(), m.size(), 0) >= 0; },
            [sock](auto& m) { return zmq_recv(sock, m.data(), m.size(), 0) >= 0; });
    } else {
        send_stream(c, msg, [sock](auto& m) {
            zmq_send(sock, m.data(), m.size(), 0);
            return true;
        });
    }
    int linger = 5000;  // deliver what is queued before closing
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return r;
}

bool supports(const run_config& c, std::string* why) {
    if (c.what == scenario::idle) {
        *why = "idle CPU is measured for ringmesh only";
        return false;
    }
    return true;
}

}  // namespace

bool supports_curve(const run_config& c, std::string* why) {
    if (c.what != scenario::stream && c.what != scenario::pingpong) {
        *why = "CURVE is measured on the stream and the ping-pong";
        return false;
    }
    return true;
}

const system_roles zmq_roles{"zmq", receiver, sender, supports};
const system_roles zmq_curve_roles{"zmq-curve", receiver, sender, supports_curve};

}  // namespace ringmesh::bench
