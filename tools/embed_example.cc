#include <cstdio>

#include "engine/messaging/endpoint.h"
#include "engine/node.h"
#include "transport/uring/uring_transport.h"

int main() {
    using namespace ringmesh;
    auto node = node::create(node_config{});  // one shard, pinned to the first usable core
    std::unique_ptr<messaging::endpoint> ep;
    auto started = (*node)->start([&](shard& s) {  // runs on the shard's own thread
        messaging::endpoint_config config;
        config.node_id = "quotes";
        config.listen = *transport::address::parse("127.0.0.1:7500");
        auto uring = transport::uring_transport::create(transport::uring_config{}, s.id());
        ep = std::move(*messaging::endpoint::create(s, std::move(*uring), config));
        ep->subscribe("md/**", [](const messaging::message& m) {
            std::printf("%.*s: %zu bytes\n", int(m.topic.size()), m.topic.data(), m.bytes.size());
        });
        ep->serve("echo", [](const messaging::message& m) {
            return messaging::rpc_reply{wire::RpcStatus::Ok, m.bytes, {}};
        });
    });
    if (!started) return std::fprintf(stderr, "%s\n", started.err().message().c_str()), 1;
    (*node)->stop();  // a real service runs until told to stop
}
