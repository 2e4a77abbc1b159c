#include "engine/membership/swim.h"

#include <algorithm>
#include <cmath>

#include "engine/core/assert.h"

namespace ringmesh::membership {

const char* to_string(member_state state) noexcept {
    switch (state) {
        case member_state::alive:
            return "alive";
        case member_state::suspect:
            return "suspect";
        case member_state::dead:
            return "dead";
        case member_state::left:
            return "left";
    }
    return "?";
}

const char* to_string(gossip_kind kind) noexcept {
    switch (kind) {
        case gossip_kind::ping:
            return "ping";
        case gossip_kind::ping_req:
            return "ping-req";
        case gossip_kind::ack:
            return "ack";
        case gossip_kind::nack:
            return "nack";
        case gossip_kind::push_pull:
            return "push-pull";
        case gossip_kind::push_pull_reply:
            return "push-pull-reply";
    }
    return "?";
}

const char* to_string(member_event::kind kind) noexcept {
    switch (kind) {
        case member_event::kind::joined:
            return "joined";
        case member_event::kind::updated:
            return "updated";
        case member_event::kind::suspect:
            return "suspect";
        case member_event::kind::alive:
            return "alive";
        case member_event::kind::dead:
            return "dead";
        case member_event::kind::left:
            return "left";
    }
    return "?";
}

namespace {
bool live(member_state s) {
    return s == member_state::alive || s == member_state::suspect;
}

// A conservative estimate of an update's encoded size (flatbuffers table, vtable, strings).
std::size_t estimated_bytes(const member_update& u) {
    std::size_t n = 64 + u.name.size() + u.address.size() + u.from.size();
    for (const auto& [k, v] : u.meta.addresses)
        n += 24 + k.size() + v.size();
    for (const auto& [k, v] : u.meta.tags)
        n += 24 + k.size() + v.size();
    return n;
}
}  // namespace

swim::swim(swim_config config) : config_(std::move(config)), rng_(config_.rng_seed) {
    RM_ASSERT(!config_.name.empty() && !config_.address.empty(),
              "a member needs a name and an address");
    member_record self;
    self.name = config_.name;
    self.address = config_.address;
    self.meta = config_.meta;
    self.incarnation = config_.incarnation;
    members_.push_back(std::move(self));
    index_[config_.name] = 0;
}

const member_record* swim::find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &members_[it->second];
}

member_record* swim::lookup(const std::string& name) {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &members_[it->second];
}

void swim::set_state(member_record& m, member_state state, time_ns now) {
    if (live(m.state) != live(state)) live_count_ += live(state) ? 1 : -1;
    if (m.state != state) m.state_since = now;
    m.state = state;
}

void swim::adjust_awareness(int delta) {
    if (!config_.lifeguard) return;
    awareness_ = std::clamp(awareness_ + delta, 0, config_.awareness_max);
}

int swim::retransmit_limit() const {
    const double n = static_cast<double>(alive_count()) + 1;
    return config_.retransmit_mult * static_cast<int>(std::ceil(std::log10(n)));
}

void swim::start(time_ns now) {
    started_ = true;
    members_[0].state_since = now;
    joined_ = std::none_of(config_.seeds.begin(), config_.seeds.end(),
                           [&](const std::string& s) { return s != config_.address; });
    next_join_at_ = now;
    // Spread first probes over one period so a cluster started at once does not probe in step.
    next_probe_at_ =
        now + static_cast<time_ns>(rng_() % static_cast<std::uint64_t>(config_.probe_interval));
    next_push_pull_at_ = now + config_.push_pull_interval;
    next_reap_at_ = now + config_.probe_interval;
    queue_broadcast(update_of(members_[0]));
}

time_ns swim::next_deadline() const {
    if (!started_) return INT64_MAX;
    time_ns next = std::min({next_probe_at_, next_push_pull_at_, next_reap_at_});
    if (!joined_) next = std::min(next, next_join_at_);
    if (probe_.active) {
        next = std::min(next, probe_.period_end);
        if (!probe_.acked && !probe_.indirect_sent) next = std::min(next, probe_.indirect_at);
    }
    for (const auto& [seq, r] : relays_)
        next = std::min(next, r.nack_at);
    for (const auto& [name, s] : suspicions_)
        next = std::min(next, s.deadline);
    return next;
}

void swim::on_tick(time_ns now) {
    if (!started_) return;
    if (!joined_ && now >= next_join_at_) {
        for (const auto& seed : config_.seeds) {
            if (seed == config_.address) continue;
            gossip_message m = make(gossip_kind::push_pull, 0);
            m.join = true;
            for (const auto& rec : members_)
                m.updates.push_back(update_of(rec));
            outbox_.push_back({outgoing::channel::stream, seed, 0, std::move(m)});
            ++stats_.push_pulls;
        }
        next_join_at_ = now + config_.join_retry_interval;
    }
    if (probe_.active) {
        if (!probe_.acked && !probe_.indirect_sent && now >= probe_.indirect_at) {
            send_indirect_probes();
        }
        if (now >= probe_.period_end) finish_probe(now);
    }
    if (!probe_.active && now >= next_probe_at_) start_probe(now);

    // Ping-reqs this node relays: Lifeguard's nack when the target stayed silent.
    for (auto it = relays_.begin(); it != relays_.end();) {
        if (now < it->second.nack_at) {
            ++it;
            continue;
        }
        if (config_.lifeguard) {
            gossip_message m = make(gossip_kind::nack, it->second.origin_seq);
            send(it->second.origin_address, std::move(m));
        }
        it = relays_.erase(it);
    }

    // Suspicion timeouts.
    std::vector<std::string> expired;
    for (const auto& [name, s] : suspicions_) {
        if (now >= s.deadline) expired.push_back(name);
    }
    std::sort(expired.begin(), expired.end());  // map order is not deterministic
    for (const auto& name : expired) {
        suspicions_.erase(name);
        if (const member_record* m = find(name); m && m->state == member_state::suspect) {
            ++stats_.declared_dead;
            apply_dead(now, name, m->incarnation, config_.name, false);
        }
    }

    if (now >= next_push_pull_at_) push_pull_tick(now);
    if (now >= next_reap_at_) reap_dead(now);
}

time_ns swim::detection_bound(const swim_config& config, std::size_t n) {
    const double members = std::max<double>(1.0, static_cast<double>(n));
    const auto interval = static_cast<double>(config.probe_interval);
    const double first_probe = (2 * (members - 1) + 1) * interval;
    const double suspicion = config.suspicion_mult * std::max(1.0, std::log10(members)) * interval *
                             (config.lifeguard ? config.suspicion_max_timeout_mult : 1);
    const double spread = config.retransmit_mult * std::ceil(std::log10(members + 1)) * interval;
    return static_cast<time_ns>(first_probe + suspicion + spread);
}

// ---- probing ----

void swim::start_probe(time_ns now) {
    // Randomised round-robin: walk a shuffled list of live members; reshuffle at the end.
    std::string target;
    for (int pass = 0; pass < 2 && target.empty(); ++pass) {
        while (probe_cursor_ < probe_order_.size()) {
            const std::string& name = probe_order_[probe_cursor_++];
            const member_record* m = find(name);
            if (m != nullptr && live(m->state) && name != config_.name) {
                target = name;
                break;
            }
        }
        if (target.empty()) {
            probe_order_.clear();
            for (const auto& m : members_) {
                if (live(m.state) && m.name != config_.name) probe_order_.push_back(m.name);
            }
            std::shuffle(probe_order_.begin(), probe_order_.end(), rng_);
            probe_cursor_ = 0;
        }
    }
    next_probe_at_ = now + scaled(config_.probe_interval);
    if (target.empty()) return;  // alone

    const member_record& m = *find(target);
    probe_ = {};
    probe_.active = true;
    probe_.target = target;
    probe_.seq = next_seq_++;
    probe_.indirect_at = now + scaled(config_.probe_timeout);
    probe_.period_end = next_probe_at_;
    ++stats_.probes;
    gossip_message ping = make(gossip_kind::ping, probe_.seq);
    ping.target = target;
    // Lifeguard's buddy system: a suspect hears of its suspicion first, from its prober.
    const bool buddy = config_.lifeguard && m.state == member_state::suspect;
    ping.updates = piggyback(buddy ? target : "");
    if (buddy && (ping.updates.empty() || ping.updates.front().name != target)) {
        member_update news = update_of(m);
        news.from = config_.name;
        ping.updates.insert(ping.updates.begin(), std::move(news));
    }
    send(m.address, std::move(ping));
}

void swim::send_indirect_probes() {
    probe_.indirect_sent = true;
    const member_record* target = find(probe_.target);
    if (target == nullptr) return;
    std::vector<const member_record*> helpers;
    for (const auto& m : members_) {
        if (m.state == member_state::alive && m.name != config_.name && m.name != probe_.target) {
            helpers.push_back(&m);
        }
    }
    std::shuffle(helpers.begin(), helpers.end(), rng_);
    if (helpers.size() > static_cast<std::size_t>(config_.indirect_checks)) {
        helpers.resize(static_cast<std::size_t>(config_.indirect_checks));
    }
    probe_.expected_nacks = config_.lifeguard ? static_cast<int>(helpers.size()) : 0;
    for (const member_record* h : helpers) {
        gossip_message req = make(gossip_kind::ping_req, probe_.seq);
        req.target = target->name;
        req.target_address = target->address;
        req.updates = piggyback("");
        ++stats_.indirect_probes;
        send(h->address, std::move(req));
    }
}

void swim::finish_probe(time_ns now) {
    probe_.active = false;
    if (probe_.acked) {
        adjust_awareness(-1);
        return;
    }
    ++stats_.probes_failed;
    // Lifeguard: every relay that did not even nack suggests the fault is on this side.
    int missed = 0;
    if (probe_.expected_nacks > 0) missed = probe_.expected_nacks - probe_.nacks;
    adjust_awareness(probe_.expected_nacks > 0 ? missed : 1);
    const member_record* m = find(probe_.target);
    if (m == nullptr) return;
    if (m->state == member_state::alive) {
        ++stats_.suspicions_raised;
    } else if (m->state != member_state::suspect) {
        return;
    }
    // Already suspect: our own failed probe is an independent confirmation (Lifeguard).
    apply_suspect(now, probe_.target, m->incarnation, config_.name);
}

void swim::push_pull_tick(time_ns now) {
    // Anti-entropy with one live member; at larger N less often, as the table grows.
    const double n = static_cast<double>(alive_count());
    const double scale = n <= 32 ? 1.0 : 1.0 + std::ceil(std::log2(n) - std::log2(32.0));
    next_push_pull_at_ =
        now + static_cast<time_ns>(static_cast<double>(config_.push_pull_interval) * scale);
    std::vector<const member_record*> live_members, dead_members;
    for (const auto& m : members_) {
        if (m.name == config_.name) continue;
        if (m.state == member_state::alive) live_members.push_back(&m);
        if (m.state == member_state::dead) dead_members.push_back(&m);
    }
    auto exchange_with = [&](const member_record& m) {
        gossip_message pp = make(gossip_kind::push_pull, 0);
        for (const auto& rec : members_)
            pp.updates.push_back(update_of(rec));
        outbox_.push_back({outgoing::channel::stream, m.address, 0, std::move(pp)});
        ++stats_.push_pulls;
    };
    if (!live_members.empty()) exchange_with(*live_members[rng_() % live_members.size()]);
    // A dead member may be alive behind a healed partition: try one now and then.
    if (!dead_members.empty()) exchange_with(*dead_members[rng_() % dead_members.size()]);
}

void swim::reap_dead(time_ns now) {
    next_reap_at_ = now + config_.probe_interval;
    bool any = false;
    for (std::size_t i = 1; i < members_.size(); ++i) {
        const auto& m = members_[i];
        if (!live(m.state) && now - m.state_since >= config_.dead_retention) any = true;
    }
    if (!any) return;
    std::vector<member_record> kept;
    kept.push_back(std::move(members_[0]));
    for (std::size_t i = 1; i < members_.size(); ++i) {
        auto& m = members_[i];
        if (live(m.state) || now - m.state_since < config_.dead_retention) {
            kept.push_back(std::move(m));
        }
    }
    members_ = std::move(kept);
    index_.clear();
    for (std::size_t i = 0; i < members_.size(); ++i)
        index_[members_[i].name] = i;
}

// ---- receiving ----

void swim::on_message(time_ns now, const gossip_message& msg, std::uint64_t reply_token) {
    if (!started_) return;
    const bool push_pull =
        msg.kind == gossip_kind::push_pull || msg.kind == gossip_kind::push_pull_reply;
    for (const auto& u : msg.updates)
        apply(now, u, push_pull);

    switch (msg.kind) {
        case gossip_kind::ping: {
            if (!msg.target.empty() && msg.target != config_.name) {
                ++stats_.misdirected;  // a restarted node at an old address, say
                return;
            }
            gossip_message ack = make(gossip_kind::ack, msg.seq);
            ack.updates = piggyback("");
            send(msg.sender_address, std::move(ack));
            return;
        }
        case gossip_kind::ping_req: {
            const std::uint32_t seq = next_seq_++;
            // Lifeguard: answer nack a little before the origin's own verdict.
            relays_[seq] = {msg.sender_address, msg.seq,
                            now + scaled(config_.probe_timeout) * 4 / 5};
            ++stats_.relayed_probes;
            gossip_message ping = make(gossip_kind::ping, seq);
            ping.target = msg.target;
            ping.updates = piggyback("");
            send(msg.target_address, std::move(ping));
            return;
        }
        case gossip_kind::ack: {
            if (probe_.active && msg.seq == probe_.seq) {
                probe_.acked = true;
                return;
            }
            if (auto it = relays_.find(msg.seq); it != relays_.end()) {
                gossip_message fwd = make(gossip_kind::ack, it->second.origin_seq);
                send(it->second.origin_address, std::move(fwd));
                relays_.erase(it);
                return;
            }
            ++stats_.misdirected;  // late: the probe already ended
            return;
        }
        case gossip_kind::nack:
            if (probe_.active && msg.seq == probe_.seq) {
                ++probe_.nacks;
                ++stats_.nacks_received;
            }
            return;
        case gossip_kind::push_pull: {
            gossip_message reply = make(gossip_kind::push_pull_reply, 0);
            for (const auto& rec : members_)
                reply.updates.push_back(update_of(rec));
            outbox_.push_back({outgoing::channel::stream_reply, msg.sender_address, reply_token,
                               std::move(reply)});
            return;
        }
        case gossip_kind::push_pull_reply:
            joined_ = true;
            return;
    }
}

void swim::apply(time_ns now, const member_update& u, bool from_push_pull) {
    switch (u.state) {
        case member_state::alive:
            apply_alive(now, u);
            return;
        case member_state::suspect:
            apply_suspect(now, u.name, u.incarnation, u.from);
            return;
        case member_state::dead:
            // A full table's "dead" is an old opinion: suspect instead, so a member that is in
            // fact alive (behind a healed partition) gets the chance to refute.
            if (from_push_pull) {
                if (const member_record* m = find(u.name); m == nullptr) {
                    apply_alive(
                        now, {member_state::alive, u.name, u.address, u.incarnation, {}, u.meta});
                }
                apply_suspect(now, u.name, u.incarnation, u.from);
            } else {
                apply_dead(now, u.name, u.incarnation, u.from, false);
            }
            return;
        case member_state::left:
            apply_dead(now, u.name, u.incarnation, u.from, true);
            return;
    }
}

void swim::apply_alive(time_ns now, const member_update& u) {
    if (u.name == config_.name) {
        // Someone holds a newer (or different) word about us than we do: an earlier life of
        // this node. Refute with a higher incarnation.
        const member_record& self = members_[0];
        if (!leaving_ && (u.incarnation > self.incarnation ||
                          (u.incarnation == self.incarnation &&
                           (u.address != self.address || !(u.meta == self.meta))))) {
            refute(u.incarnation);
        }
        return;
    }
    member_record* m = lookup(u.name);
    if (m == nullptr) {
        member_record rec;
        rec.name = u.name;
        rec.address = u.address;
        rec.meta = u.meta;
        rec.incarnation = u.incarnation;
        rec.state = member_state::alive;
        rec.state_since = now;
        index_[u.name] = members_.size();
        members_.push_back(std::move(rec));
        ++live_count_;
        // A newcomer joins the probe order at a random place, not only after a reshuffle.
        const std::size_t at = probe_cursor_ + rng_() % (probe_order_.size() - probe_cursor_ + 1);
        probe_order_.insert(probe_order_.begin() + static_cast<std::ptrdiff_t>(at), u.name);
        queue_broadcast(u);
        emit(now, member_event::kind::joined, members_.back());
        return;
    }
    if (u.incarnation <= m->incarnation) return;
    const member_state before = m->state;
    const bool changed = m->address != u.address || !(m->meta == u.meta);
    m->incarnation = u.incarnation;
    m->address = u.address;
    m->meta = u.meta;
    set_state(*m, member_state::alive, now);
    suspicions_.erase(u.name);
    queue_broadcast(update_of(*m));
    if (before == member_state::dead || before == member_state::left) {
        emit(now, member_event::kind::joined, *m);
        if (std::find(probe_order_.begin() + static_cast<std::ptrdiff_t>(probe_cursor_),
                      probe_order_.end(), u.name) == probe_order_.end()) {
            probe_order_.push_back(u.name);
        }
    } else if (before == member_state::suspect) {
        emit(now, member_event::kind::alive, *m);
    } else if (changed) {
        emit(now, member_event::kind::updated, *m);
    }
}

void swim::apply_suspect(time_ns now, const std::string& name, std::uint64_t incarnation,
                         const std::string& from) {
    member_record* m = lookup(name);
    if (m == nullptr || incarnation < m->incarnation) return;
    if (m->state == member_state::dead || m->state == member_state::left) return;
    if (name == config_.name) {
        if (!leaving_) {
            adjust_awareness(1);  // Lifeguard: being suspected hints at our own slowness
            refute(incarnation);
        }
        return;
    }
    if (m->state == member_state::suspect) {
        if (incarnation > m->incarnation) m->incarnation = incarnation;
        confirm_suspicion(name, from);
        return;
    }
    m->incarnation = incarnation;
    set_state(*m, member_state::suspect, now);
    start_suspicion(now, name, from);
    member_update u = update_of(*m);
    u.from = from;
    queue_broadcast(std::move(u));
    emit(now, member_event::kind::suspect, *m);
}

void swim::apply_dead(time_ns now, const std::string& name, std::uint64_t incarnation,
                      const std::string& from, bool left) {
    member_record* m = lookup(name);
    if (m == nullptr || incarnation < m->incarnation) return;
    if (m->state == member_state::dead || m->state == member_state::left) return;
    if (name == config_.name) {
        if (!leaving_) {
            adjust_awareness(1);
            refute(incarnation);
        }
        return;
    }
    m->incarnation = incarnation;
    set_state(*m, left ? member_state::left : member_state::dead, now);
    suspicions_.erase(name);
    member_update u = update_of(*m);
    u.from = from;
    queue_broadcast(std::move(u));
    emit(now, left ? member_event::kind::left : member_event::kind::dead, *m);
}

void swim::refute(std::uint64_t heard_incarnation) {
    member_record& self = members_[0];
    self.incarnation = std::max(self.incarnation, heard_incarnation) + 1;
    ++stats_.refutations;
    queue_broadcast(update_of(self));
}

void swim::leave(time_ns now) {
    if (leaving_) return;
    member_record& self = members_[0];
    leaving_ = true;
    set_state(self, member_state::left, now);
    member_update u = update_of(self);
    u.from = config_.name;
    queue_broadcast(std::move(u));
    // Tell a few live members straight away rather than waiting for the next probe.
    std::vector<const member_record*> live_members;
    for (const auto& m : members_) {
        if (m.state == member_state::alive && m.name != config_.name) live_members.push_back(&m);
    }
    std::shuffle(live_members.begin(), live_members.end(), rng_);
    for (std::size_t i = 0; i < live_members.size() && i < 3; ++i) {
        gossip_message ping = make(gossip_kind::ping, next_seq_++);
        ping.target = live_members[i]->name;
        ping.updates = piggyback("");
        send(live_members[i]->address, std::move(ping));
    }
}

void swim::update_meta(time_ns now, member_meta meta) {
    (void)now;
    member_record& self = members_[0];
    self.meta = std::move(meta);
    ++self.incarnation;  // a newer word about ourselves wins everywhere
    queue_broadcast(update_of(self));
}

// ---- suspicion (Lifeguard's dynamic timeout) ----

void swim::start_suspicion(time_ns now, const std::string& name, const std::string& from) {
    const double n = std::max(1.0, static_cast<double>(alive_count()));
    const auto min_timeout =
        static_cast<time_ns>(config_.suspicion_mult * std::max(1.0, std::log10(n)) *
                             static_cast<double>(config_.probe_interval));
    suspicion s;
    s.started = now;
    s.min_timeout = min_timeout;
    if (config_.lifeguard) {
        s.max_timeout = min_timeout * config_.suspicion_max_timeout_mult;
        // k confirmations shrink the timeout to the minimum; fewer possible in tiny clusters.
        s.wanted_confirmations = config_.suspicion_mult - 2;
        if (n - 2 < s.wanted_confirmations) s.wanted_confirmations = 0;
    } else {
        s.max_timeout = min_timeout;
    }
    s.confirmers.push_back(from);
    s.deadline = now + (s.wanted_confirmations == 0 ? s.min_timeout : s.max_timeout);
    suspicions_[name] = std::move(s);
}

void swim::confirm_suspicion(const std::string& name, const std::string& from) {
    auto it = suspicions_.find(name);
    if (it == suspicions_.end() || !config_.lifeguard) return;
    suspicion& s = it->second;
    if (s.wanted_confirmations == 0 ||
        std::find(s.confirmers.begin(), s.confirmers.end(), from) != s.confirmers.end()) {
        return;
    }
    s.confirmers.push_back(from);
    const auto confirmations = static_cast<double>(s.confirmers.size() - 1);
    const double fraction =
        std::log(confirmations + 1) / std::log(static_cast<double>(s.wanted_confirmations) + 1);
    const auto span = static_cast<double>(s.max_timeout - s.min_timeout);
    const time_ns timeout =
        std::max(s.min_timeout, s.max_timeout - static_cast<time_ns>(span * fraction));
    s.deadline = s.started + timeout;
    // Pass the confirmation on: others count independent suspicions too.
    if (const member_record* m = find(name)) {
        member_update u = update_of(*m);
        u.from = from;
        queue_broadcast(std::move(u));
    }
}

// ---- dissemination ----

member_update swim::update_of(const member_record& m) const {
    member_update u;
    u.state = m.state;
    u.name = m.name;
    u.address = m.address;
    u.incarnation = m.incarnation;
    u.meta = m.meta;
    u.from = m.name == config_.name ? config_.name : std::string{};
    return u;
}

void swim::queue_broadcast(member_update update) {
    // One pending update per member: a newer one replaces what was queued.
    for (auto& b : broadcasts_) {
        if (b.update.name == update.name) {
            b = {std::move(update), 0, broadcast_order_++};
            return;
        }
    }
    broadcasts_.push_back({std::move(update), 0, broadcast_order_++});
}

std::vector<member_update> swim::piggyback(const std::string& priority_name) {
    std::vector<member_update> out;
    if (broadcasts_.empty()) return out;
    // Least-sent first, newest first among equals: new news travels fastest.
    // Only the head matters: a datagram holds a few dozen updates at most. Sorting indexes
    // keeps the (string-laden) updates in place.
    order_scratch_.resize(broadcasts_.size());
    for (std::uint32_t i = 0; i < order_scratch_.size(); ++i)
        order_scratch_[i] = i;
    const std::size_t head = std::min<std::size_t>(broadcasts_.size(), 64);
    const bool any_priority = !priority_name.empty();
    std::partial_sort(order_scratch_.begin(),
                      order_scratch_.begin() + static_cast<std::ptrdiff_t>(head),
                      order_scratch_.end(), [&](std::uint32_t x, std::uint32_t y) {
                          const broadcast& a = broadcasts_[x];
                          const broadcast& b = broadcasts_[y];
                          if (any_priority) {
                              const bool pa = a.update.name == priority_name;
                              const bool pb = b.update.name == priority_name;
                              if (pa != pb) return pa;
                          }
                          if (a.transmits != b.transmits) return a.transmits < b.transmits;
                          return a.order > b.order;
                      });
    const int limit = retransmit_limit();
    std::size_t budget = config_.piggyback_budget_bytes;
    for (std::size_t i = 0; i < head; ++i) {
        broadcast& b = broadcasts_[order_scratch_[i]];
        const std::size_t bytes = estimated_bytes(b.update);
        if (bytes > budget) break;
        budget -= bytes;
        out.push_back(b.update);
        ++b.transmits;
    }
    std::erase_if(broadcasts_, [&](const broadcast& b) { return b.transmits >= limit; });
    stats_.updates_sent += out.size();
    return out;
}

gossip_message swim::make(gossip_kind kind, std::uint32_t seq) const {
    gossip_message m;
    m.kind = kind;
    m.seq = seq;
    m.sender = config_.name;
    m.sender_address = config_.address;
    return m;
}

void swim::send(std::string to, gossip_message message) {
    outbox_.push_back({outgoing::channel::datagram, std::move(to), 0, std::move(message)});
}

void swim::emit(time_ns now, member_event::kind what, const member_record& m) {
    events_.push_back({what, m.name, m.address, m.incarnation, m.meta, now});
}

}  // namespace ringmesh::membership
