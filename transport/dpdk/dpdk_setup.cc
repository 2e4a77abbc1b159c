// DPDK control path: EAL (once per process), port and queue setup, teardown.
#include <arpa/inet.h>
#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_devargs.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string_view>
#include <thread>

#include "engine/core/errc.h"
#include "engine/core/log.h"
#include "transport/dpdk/dpdk_impl.h"

namespace ringmesh::transport {

namespace {

error unavailable(std::string why) {
    return make_error(transport_errc::not_supported, "DPDK: " + std::move(why));
}

// EAL can start once per process. The first caller's arguments win; later callers get the
// same outcome.
struct eal_state {
    std::once_flag once;
    bool up = false;
    std::string failure;
    std::vector<std::string> args;  // EAL keeps pointers into argv for its lifetime
    std::vector<char*> argv;
};
eal_state& eal() {
    static eal_state state;
    return state;
}

port_share& share_of(std::uint16_t port) {
    static std::mutex registry_mutex;
    static std::map<std::uint16_t, std::unique_ptr<port_share>> registry;
    std::lock_guard lock(registry_mutex);
    auto& slot = registry[port];
    if (!slot) slot = std::make_unique<port_share>();
    return *slot;
}

// Replaces `owner`'s entry in the port's owner table with `entry` (nullptr: removes it), as a
// new snapshot: the data path reads the table without a lock. Called under share.mutex.
void publish_owner(port_share& share, const dpdk_transport::impl* owner,
                   const port_share::owner_entry* entry) {
    const auto* current = share.owners.load(std::memory_order_acquire);
    auto next = std::make_unique<std::vector<port_share::owner_entry>>();
    if (current != nullptr) {
        for (const auto& e : *current) {
            if (e.owner != owner) next->push_back(e);
        }
    }
    if (entry != nullptr) next->push_back(*entry);
    share.owners.store(next.get(), std::memory_order_release);
    share.snapshots.push_back(std::move(next));
}

// Whether the port dials its peer: a memif client (memif's default role). It cannot start
// before its server listens, and one that connects while the server is still setting up is
// dropped and does not try again.
bool dials_its_peer(const rte_eth_dev_info& info) {
    if (info.driver_name == nullptr || std::string_view(info.driver_name) != "net_memif") {
        return false;
    }
    const rte_devargs* args = rte_dev_devargs(info.device);
    return args == nullptr || args->args == nullptr ||
           std::strstr(args->args, "role=server") == nullptr;
}

// Starts the port, retrying while it refuses; a port that dials its peer must also see its
// link come up, else it is stopped and started again. Nodes need not be started in order.
// Returns 0 once started (when time runs out the link may still be down), else dev_start's
// error.
int start_port(std::uint16_t port, const std::string& name, bool dials, time_ns timeout_ns) {
    using namespace std::chrono_literals;
    const time_ns deadline = monotonic_clock::read() + timeout_ns;
    bool said = false;
    const auto say = [&](const char* why) {
        if (said) return;
        said = true;
        log::info("dpdk",
                  "{} is not up yet ({}); retrying for up to {:.0f} s (a memif client waits "
                  "for its server)",
                  name, why, static_cast<double>(timeout_ns) / 1e9);
    };
    for (;;) {
        const int rc = rte_eth_dev_start(port);
        if (rc == 0 && !dials) return 0;
        if (rc == 0) {
            const time_ns link_deadline =
                std::min(deadline, monotonic_clock::read() + 1 * ns_per_s);
            for (;;) {
                rte_eth_link link{};
                if (rte_eth_link_get_nowait(port, &link) == 0 &&
                    link.link_status == RTE_ETH_LINK_UP) {
                    return 0;
                }
                if (monotonic_clock::read() >= link_deadline) break;
                std::this_thread::sleep_for(10ms);
            }
            if (monotonic_clock::read() >= deadline) return 0;
            say("its link is down");
            rte_eth_dev_stop(port);
        } else {
            if (monotonic_clock::read() >= deadline) return rc;
            say(rte_strerror(-rc));
        }
        std::this_thread::sleep_for(100ms);
    }
}

int socket_of(std::uint16_t port) {
    return rte_eth_dev_socket_id(port) < 0 ? 0 : rte_eth_dev_socket_id(port);
}

bool start_eal(const std::vector<std::string>& args, std::string& why) {
    eal_state& e = eal();
    std::call_once(e.once, [&] {
        e.args.push_back("ringmesh");
        e.args.insert(e.args.end(), args.begin(), args.end());
        for (auto& a : e.args)
            e.argv.push_back(a.data());
        e.argv.push_back(nullptr);
        const int parsed = rte_eal_init(static_cast<int>(e.args.size()), e.argv.data());
        if (parsed < 0) {
            e.failure = std::string("EAL init failed: ") + rte_strerror(rte_errno);
            return;
        }
        e.up = true;
    });
    why = e.failure;
    return e.up;
}

}  // namespace

result<std::unique_ptr<dpdk_transport>> dpdk_transport::create(const dpdk_config& config,
                                                               shard_id owner, shard* owner_shard) {
    auto p = std::make_unique<impl>();
    p->config = config;
    p->owner = owner;
    p->owner_shard = owner_shard;
    in_addr ip{};
    if (config.ip.empty() || ::inet_pton(AF_INET, config.ip.c_str(), &ip) != 1) {
        return make_error(
            transport_errc::bad_address,
            "DPDK: dpdk.ip must be this node's IPv4 address, not '" + config.ip + "'");
    }
    p->ip_be = ip.s_addr;

    std::string why;
    if (!start_eal(config.eal_args, why)) return unavailable(why);
    // The shard thread is not one of EAL's: register it so mempool caches and per-lcore
    // state work from here.
    if (rte_lcore_id() == LCORE_ID_ANY && rte_thread_register() != 0) {
        return unavailable(std::string("cannot register the shard thread: ") +
                           rte_strerror(rte_errno));
    }
    if (rte_eth_dev_count_avail() == 0) return unavailable("no usable port (no NIC, no --vdev)");
    if (config.port.empty()) {
        p->port = static_cast<std::uint16_t>(rte_eth_find_next(0));
    } else if (rte_eth_dev_get_port_by_name(config.port.c_str(), &p->port) != 0) {
        return unavailable("no port named '" + config.port + "'");
    }
    char name[RTE_ETH_NAME_MAX_LEN] = {};
    rte_eth_dev_get_name_by_port(p->port, name);
    p->port_name = name;

    rte_eth_dev_info info{};
    if (rte_eth_dev_info_get(p->port, &info) != 0) {
        return unavailable("cannot query port " + p->port_name);
    }
    if (config.queues == 0 || config.queue >= config.queues || config.queues > info.max_rx_queues ||
        config.queues > info.max_tx_queues) {
        return unavailable(p->port_name + " offers " + std::to_string(info.max_rx_queues) +
                           " queue(s); asked for queue " + std::to_string(config.queue) + " of " +
                           std::to_string(config.queues));
    }
    p->queue = config.queue;
    port_share& share = share_of(p->port);
    std::unique_lock port_lock(share.mutex);
    if (share.open > 0 && share.queues != config.queues) {
        return unavailable(p->port_name + " is already open with " + std::to_string(share.queues) +
                           " queue(s)");
    }
    rte_eth_conf conf{};
    constexpr std::uint64_t tx_cksum = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
    constexpr std::uint64_t rx_cksum = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
    if ((info.tx_offload_capa & tx_cksum) == tx_cksum) {
        conf.txmode.offloads |= tx_cksum;
        p->stats.checksum_offload_tx = true;
    }
    // External payloads need mbuf chains on transmit, and memory the device can read: a
    // virtual device copies with the CPU; a NIC would DMA from session memory DPDK never
    // mapped, so there every datagram is copied into an mbuf instead.
    const rte_bus* bus = rte_dev_bus(info.device);
    const bool virtual_device = bus != nullptr && std::string_view(rte_bus_name(bus)) == "vdev";
    if ((info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) && virtual_device) {
        conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
        p->external_pool = external_payload_pool(socket_of(p->port));
        p->stats.external_tx = p->external_pool != nullptr;
    }
    if ((info.rx_offload_capa & rx_cksum) == rx_cksum) {
        conf.rxmode.offloads |= rx_cksum;
        p->stats.checksum_offload_rx = true;
    }
    // The first shard to open the port configures it with one queue pair per shard; with
    // several, RSS spreads IPv4/UDP flows over them where the port can hash.
    if (share.open == 0) {
        if (config.queues > 1 && info.flow_type_rss_offloads != 0) {
            conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf =
                info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP);
        }
        if (int rc = rte_eth_dev_configure(p->port, config.queues, config.queues, &conf); rc != 0) {
            return unavailable("cannot configure " + p->port_name + ": " + rte_strerror(-rc));
        }
        share.queues = config.queues;
        share.set_up = 0;
    }
    std::uint16_t rxd = static_cast<std::uint16_t>(config.rx_descriptors);
    std::uint16_t txd = static_cast<std::uint16_t>(config.tx_descriptors);
    rte_eth_dev_adjust_nb_rx_tx_desc(p->port, &rxd, &txd);
    const int socket = socket_of(p->port);
    const std::string pool_name =
        "rm_mbufs_" + std::to_string(p->port) + "_" + std::to_string(owner);
    p->pool = rte_mempool_lookup(pool_name.c_str());  // this shard's, from an earlier start
    if (p->pool == nullptr) {
        p->pool = rte_pktmbuf_pool_create(pool_name.c_str(), config.mbufs, 256, 0,
                                          RTE_MBUF_DEFAULT_BUF_SIZE, socket);
    }
    if (p->pool == nullptr) {
        return unavailable("cannot create the mbuf pool (" + std::string(rte_strerror(rte_errno)) +
                           "): too little memory for EAL? (-m)");
    }
    if (int rc = rte_eth_rx_queue_setup(p->port, p->queue, rxd, socket, nullptr, p->pool);
        rc != 0) {
        return unavailable("RX queue setup failed: " + std::string(rte_strerror(-rc)));
    }
    if (int rc = rte_eth_tx_queue_setup(p->port, p->queue, txd, socket, nullptr); rc != 0) {
        return unavailable("TX queue setup failed: " + std::string(rte_strerror(-rc)));
    }
    if (rte_eth_dev_set_mtu(p->port, config.mtu) != 0) {
        // Virtual devices often keep their own MTU; use whatever the port has.
        std::uint16_t mtu = 0;
        if (rte_eth_dev_get_mtu(p->port, &mtu) == 0 && mtu >= 576) p->mtu = mtu;
    } else {
        p->mtu = config.mtu;
    }
    ++share.open;
    p->share = &share;
    // The last queue to be set up starts the port; until then the others see no traffic.
    if (++share.set_up == share.queues) {
        if (int rc =
                start_port(p->port, p->port_name, dials_its_peer(info), config.start_timeout_ns);
            rc != 0) {
            --share.open;
            p->share = nullptr;
            return unavailable("cannot start " + p->port_name + ": " + rte_strerror(-rc));
        }
        share.started.store(true, std::memory_order_release);
    }
    port_lock.unlock();
    p->started = true;
    rte_eth_macaddr_get(p->port, &p->mac);

    auto holders = buffer_pool::create(config.receive_holders, 64, owner);
    if (!holders) return holders.err();
    p->holders = std::move(holders).value();
    p->held.assign(config.receive_holders, nullptr);
    impl* raw = p.get();
    p->holders->set_return_hook([raw](buffer_slot* slot) { raw->release_held(slot); });
    p->tx.reserve(512);
    return std::unique_ptr<dpdk_transport>(new dpdk_transport(std::move(p)));
}

dpdk_transport::dpdk_transport(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

rte_mempool* external_payload_pool(int socket) {
    static std::mutex mutex;
    std::lock_guard lock(mutex);
    constexpr const char* name = "rm_external_payloads";
    if (rte_mempool* pool = rte_mempool_lookup(name)) return pool;
    return rte_mempool_create(name, 8191, sizeof(external_payload), 256, 0, nullptr, nullptr,
                              nullptr, nullptr, socket, 0);
}

dpdk_transport::~dpdk_transport() {
    impl& p = *impl_;
    for (rte_mbuf* m : p.tx)
        rte_pktmbuf_free(m);
    for (auto& [ip, wait] : p.arp_waiting) {
        for (rte_mbuf* m : wait.packets)
            rte_pktmbuf_free(m);
    }
    for (rte_mbuf* m : p.handed_in)
        rte_pktmbuf_free(m);
    if (p.share != nullptr) {
        std::lock_guard lock(p.share->mutex);
        // Forget our UDP port; the last transport on the port stops it.
        publish_owner(*p.share, &p, nullptr);
        if (--p.share->open == 0) {
            rte_eth_dev_stop(p.port);
            p.share->started.store(false, std::memory_order_release);
            p.share->set_up = 0;
        }
    }
    // Held mbufs come back with their handles (the pool asserts that all did).
}

result<void> dpdk_transport::listen(const address& local) {
    if (local.family() != AF_INET) {
        return make_error(transport_errc::bad_address, "DPDK: IPv4 only");
    }
    const auto* sin = reinterpret_cast<const sockaddr_in*>(local.sa());
    if (sin->sin_addr.s_addr != 0 && sin->sin_addr.s_addr != impl_->ip_be) {
        return make_error(transport_errc::bad_address, "DPDK: listen on " + local.to_string() +
                                                           " but dpdk.ip is " + impl_->config.ip);
    }
    impl_->udp_port_be = sin->sin_port;
    if (port_share* share = impl_->share) {
        // Siblings on other queues hand us what is ours (copy-on-write: readers never lock).
        std::lock_guard lock(share->mutex);
        const port_share::owner_entry mine{sin->sin_port, impl_.get()};
        publish_owner(*share, impl_.get(), &mine);
    }
    auto a = address::parse(impl_->config.ip + ":" + std::to_string(ntohs(sin->sin_port)));
    if (!a) return a.err();
    impl_->listen_address = *a;
    return ok();
}

result<connection_id> dpdk_transport::connect(const address&) {
    return make_error(transport_errc::not_supported, "DPDK transport: datagrams only");
}

void dpdk_transport::close(connection_id) {}

std::size_t dpdk_transport::send(connection_id, std::span<const std::byte>) {
    return 0;
}

capabilities dpdk_transport::caps() const noexcept {
    // IPv4 (20) and UDP (8) headers inside the MTU.
    return {false, true, static_cast<std::size_t>(impl_->mtu) - 28};
}

const dpdk_stats& dpdk_transport::stats() const noexcept {
    return impl_->stats;
}
const address& dpdk_transport::listen_address() const noexcept {
    return impl_->listen_address;
}
std::string dpdk_transport::port_name() const {
    return impl_->port_name;
}
buffer_pool& dpdk_transport::receive_pool() noexcept {
    return *impl_->holders;
}

}  // namespace ringmesh::transport
