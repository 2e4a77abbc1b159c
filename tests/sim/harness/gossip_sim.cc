#include "tests/sim/harness/gossip_sim.h"

#include <algorithm>

namespace ringmesh::membership {

gossip_sim::gossip_sim(std::uint64_t seed, transport::sim::link_faults faults, swim_config base,
                       std::vector<key_bytes> cluster_keys)
    : net_(seed), base_(std::move(base)), cluster_keys_(std::move(cluster_keys)), seed_(seed) {
    net_.set_faults(faults);
}

gossip_sim::~gossip_sim() = default;

std::string gossip_sim::address_of(int i) {
    // Labels, never sockets: nothing leaves the process.
    return "10." + std::to_string(i / 65536) + "." + std::to_string((i / 256) % 256) + "." +
           std::to_string(i % 256) + ":7946";
}

void gossip_sim::start(int i, sim_node_options options) {
    if (i >= size()) nodes_.resize(static_cast<std::size_t>(i) + 1);
    RM_ASSERT(!nodes_[i].agent, "start() of a running node");
    agent_config config;
    config.cluster_id = "sim";
    config.listen = *transport::address::parse(address_of(i));
    config.swim = base_;
    config.swim.name = name_of(i);
    config.swim.address = address_of(i);
    config.swim.seeds.clear();
    for (int s : options.seeds)
        config.swim.seeds.push_back(address_of(s));
    // One seed, many streams: every node's randomness derives from the run's seed.
    config.swim.rng_seed =
        seed_ * 1'000'003 + static_cast<std::uint64_t>(i) * 7919 + 1 + net_.delivered();
    auto keys = keyring::create(options.plaintext      ? std::vector<key_bytes>{}
                                : options.keys.empty() ? cluster_keys_
                                                       : options.keys);
    RM_ASSERT(keys.has_value(), "sim keys are valid");
    keys->set_nonce_salt(config.swim.rng_seed);
    auto t = net_.make_transport(address_of(i), no_shard, 64);
    auto agent = gossip_agent::create(std::move(t), std::move(config), std::move(keys).value());
    RM_ASSERT(agent.has_value(), "a sim agent starts");
    nodes_[i].agent = std::move(agent).value();
    by_address_[address_of(i)] = i;
    nodes_[i].agent->start(now_);
    poll(i);
}

void gossip_sim::crash(int i) {
    nodes_[i].agent.reset();
}

void gossip_sim::leave(int i) {
    nodes_[i].agent->leave(now_);
    poll(i);
}

void gossip_sim::update_meta(int i, member_meta meta) {
    nodes_[i].agent->update_meta(now_, std::move(meta));
    poll(i);
}

void gossip_sim::poll(int i) {
    gossip_agent& a = *nodes_[i].agent;
    a.poll(now_);
    for (auto& e : a.take_events())
        observations_.push_back({now_, i, std::move(e)});
    timers_.push({a.next_deadline(), i});
}

void gossip_sim::run_until(time_ns until) {
    while (true) {
        time_ns next = net_.next_event_ns();
        while (!timers_.empty() &&
               (!running(timers_.top().second) ||
                agent(timers_.top().second).next_deadline() > timers_.top().first)) {
            // Stale: the node stopped, or its timer moved later (it re-entered the queue).
            const int i = timers_.top().second;
            const time_ns at = timers_.top().first;
            timers_.pop();
            if (running(i) && agent(i).next_deadline() > at)
                timers_.push({agent(i).next_deadline(), i});
        }
        if (!timers_.empty()) next = std::min(next, timers_.top().first);
        if (next > until) break;
        now_ = std::max(now_, next);
        // Network deliveries first, then protocol timers, repeated until nothing is due now.
        for (;;) {
            bool any = false;
            for (const auto& address : net_.take_due(now_)) {
                auto it = by_address_.find(address);
                if (it != by_address_.end() && running(it->second)) {
                    poll(it->second);
                    any = true;
                }
            }
            while (!timers_.empty() && timers_.top().first <= now_) {
                const int i = timers_.top().second;
                timers_.pop();
                if (running(i) && agent(i).next_deadline() <= now_) {
                    poll(i);
                    any = true;
                }
            }
            if (!any) break;
        }
    }
    now_ = std::max(now_, until);
}

bool gossip_sim::run_until(const std::function<bool()>& done, time_ns limit, time_ns check_every) {
    while (!done()) {
        if (now_ >= limit) return false;
        run_until(std::min(limit, now_ + check_every));
    }
    return true;
}

bool gossip_sim::converged() const {
    std::size_t live = 0;
    for (const auto& n : nodes_)
        live += n.agent ? 1 : 0;
    for (int i = 0; i < size(); ++i) {  // the cheap test first
        if (running(i) && agent(i).state().alive_count() != live) return false;
    }
    for (int i = 0; i < size(); ++i) {
        if (!running(i)) continue;
        const swim& s = agent(i).state();
        for (int j = 0; j < size(); ++j) {
            if (!running(j)) continue;
            const member_record* m = s.find(name_of(j));
            if (m == nullptr ||
                (m->state != member_state::alive && m->state != member_state::suspect)) {
                return false;
            }
        }
    }
    return true;
}

bool gossip_sim::all_see_dead(int subject) const {
    for (int i = 0; i < size(); ++i) {
        if (i == subject || !running(i)) continue;
        const member_record* m = agent(i).state().find(name_of(subject));
        if (m == nullptr) continue;  // reaped after dead_retention: dead too
        if (m->state != member_state::dead && m->state != member_state::left) return false;
    }
    return true;
}

}  // namespace ringmesh::membership
