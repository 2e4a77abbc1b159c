#include <cstdio>

#include "engine/cluster/cluster_member.h"
#include "engine/node.h"
#include "transport/uring/uring_transport.h"

int main() {
    using namespace ringmesh;
    auto node = node::create(node_config{});  // one shard, pinned to the first usable core
    std::unique_ptr<cluster::member> member;
    auto started = (*node)->start([&](shard& s) {  // runs on the shard's own thread
        cluster::member_config config;
        config.messaging.node_id = "quotes";
        config.messaging.listen = *transport::address::parse("127.0.0.1:7500");
        config.membership.emplace();  // gossip: join through a seed, members are dialed
        config.membership->listen = *transport::address::parse("127.0.0.1:7946");
        config.membership->swim.seeds = {"127.0.0.1:7946"};
        config.membership->swim.meta.addresses = {{"tcp", "127.0.0.1:7500"}};
        config.keys = {
            *membership::keyring::parse_key("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")};
        auto ring = [&] { return std::move(*transport::uring_transport::create({}, s.id())); };
        member = std::move(*cluster::member::create(s, ring(), ring(), config));
        s.on_stop([&] { member.reset(); });  // torn down on this thread
        auto& ep = member->messaging();
        ep.subscribe("md/**", [](const messaging::message& m) {
            std::printf("%.*s: %zu bytes\n", int(m.topic.size()), m.topic.data(), m.bytes.size());
        });
        ep.serve("echo", [](const messaging::message& m) {
            return messaging::rpc_reply{wire::RpcStatus::Ok, m.bytes, {}};
        });
        ep.on_peer_loss([](const messaging::peer_loss& l) {  // never silent
            std::printf("%llu lost to %.*s\n", static_cast<unsigned long long>(l.not_delivered_to),
                        int(l.peer.size()), l.peer.data());
        });
    });
    if (!started) return std::fprintf(stderr, "%s\n", started.err().message().c_str()), 1;
    (*node)->stop();  // a real service runs until told to stop
}
