#include "engine/cluster/cluster_member.h"

#include "engine/core/errc.h"
#include "engine/core/random.h"

namespace ringmesh::cluster {

result<std::unique_ptr<member>> member::create(
    shard& owner, std::unique_ptr<transport::transport> messaging_transport,
    std::unique_ptr<transport::transport> gossip_transport, member_config config) {
    if (config.membership && !gossip_transport) {
        return make_error(core_errc::bad_config, "membership needs a gossip transport");
    }
    random_source random(random_source::seed_or_os(config.random_seed));
    if (config.messaging.random_seed == 0) config.messaging.random_seed = random.next_nonzero();
    if (config.membership) config.membership->swim.rng_seed = random.next_nonzero();
    const std::uint64_t nonce_salt = random.next_nonzero();
    std::unique_ptr<member> m(new member(owner, std::move(config)));
    // The endpoint registers its wait source first: its transport sleeps for the shard.
    auto ep =
        messaging::endpoint::create(owner, std::move(messaging_transport), m->config_.messaging);
    if (!ep) return ep.err();
    m->endpoint_ = std::move(ep).value();
    if (m->config_.membership) {
        if (auto started = m->start_membership(std::move(gossip_transport), nonce_salt); !started) {
            return started.err();
        }
    }
    return m;
}

member::member(shard& owner, member_config config) : shard_(owner), config_(std::move(config)) {}

member::~member() {
    if (poller_ != 0) shard_.remove_poller(poller_);
    if (wait_source_ != 0) shard_.remove_wait_source(wait_source_);
    membership_deadline_.cancel(shard_.timers());
}

result<void> member::start_membership(std::unique_ptr<transport::transport> gossip_transport,
                                      std::uint64_t nonce_salt) {
    membership::agent_config ac = *config_.membership;
    if (ac.swim.name.empty()) ac.swim.name = config_.messaging.node_id;
    if (ac.cluster_id.empty()) ac.cluster_id = config_.messaging.cluster_id;
    auto keys = membership::keyring::create(config_.keys);
    if (!keys) return keys.err();
    keys->set_nonce_salt(nonce_salt);
    transport::transport* ring = gossip_transport.get();
    auto agent = membership::gossip_agent::create(std::move(gossip_transport), std::move(ac),
                                                  std::move(keys).value());
    if (!agent) return agent.err();
    agent_ = std::move(agent).value();
    // The gossip ring never sleeps for the shard: its eventfd wakes whoever does.
    wait_source_ = shard_.add_wait_source({{}, [ring] { return ring->ready_fd(); }, {}});
    poller_ = shard_.add_poller(
        poll_step::protocol, [this](time_ns now) { return poll_membership(now); },
        config_.membership_poll_every_ns);
    agent_->start(shard_.now_ns());
    arm_membership_deadline();
    return ok();
}

std::size_t member::poll_membership(time_ns now) {
    std::size_t work = agent_->poll(now);
    for (const membership::member_event& e : agent_->take_events()) {
        apply(e);
        ++work;
    }
    arm_membership_deadline();
    return work;
}

void member::arm_membership_deadline() {
    // A shard asleep must still wake for the protocol's next probe or timeout: one timer at
    // that deadline (gossip arriving wakes it through the ring's eventfd instead).
    membership_deadline_.arm(shard_.timers(), agent_->next_deadline());
}

void member::apply(const membership::member_event& e) {
    using kind = membership::member_event::kind;
    const std::string& self = agent_->state().self().name;
    switch (e.what) {
        case kind::dead:
        case kind::left:
            endpoint_->member_gone(e.name, e.what == kind::left);
            break;
        case kind::joined:
        case kind::alive:
        case kind::updated:
            endpoint_->member_alive(e.name);
            if (config_.dial_discovered_members && e.name > self) {
                for (const auto& [name, text] : e.meta.addresses) {
                    if (name != "tcp") continue;
                    if (auto address = transport::address::parse(text)) endpoint_->dial(*address);
                }
            }
            break;
        case kind::suspect:
            break;  // an opinion in progress: nothing changes for messaging
    }
    if (event_handler_) event_handler_(e);
}

void member::leave() {
    if (agent_) agent_->leave(shard_.now_ns());
}

}  // namespace ringmesh::cluster
