// Raft groups under a deterministic simulator that hunts for safety bugs: seeded message
// loss, duplication, reordering and delay; symmetric and asymmetric partitions; crashes and
// restarts whose disks keep only what was synced (and a torn prefix of what was not), and
// flipped bits in synced logs that recovery must refuse;
// snapshots, membership changes, leadership transfers and reads, all at random. After every
// event it checks Raft's guarantees; a violation stops the run with its seed and event
// number, and the same seed replays to the same trace hash.
//
// Checked: one leader per term; log matching (sampled over every pair of replicas); leader
// completeness (a new leader holds every entry known committed); state machine safety (no two
// replicas apply different entries at one index); no acknowledged proposal ever lost (every
// acknowledged command is applied at its index everywhere it is applied, and is in the final
// state); linearizable reads (a read never returns an index below a write acknowledged
// before it began); and liveness: once faults stop, a leader commits a new proposal within
// a bound.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "engine/replication/raft.h"

namespace ringmesh::sim {

struct raft_sim_options {
    std::uint64_t seed = 1;
    int voters = 3;                       ///< the group's initial voters
    int spares = 0;                       ///< extra replicas that membership changes may add
    time_ns run_for = 8 * ns_per_s;       ///< virtual time with faults
    time_ns settle_bound = 6 * ns_per_s;  ///< faults off: progress must resume within this

    // Faults, per message or per second of virtual time.
    double loss = 0.02;
    double duplicate = 0.01;
    time_ns delay_min = 50 * ns_per_us;
    time_ns delay_max = 3 * ns_per_ms;  ///< random delays also reorder
    double crashes_per_s = 0.4;
    double partitions_per_s = 0.3;
    double torn_write = 0.5;  ///< a crash keeps a random prefix of the unsynced writes
    /// Per crash: a bit of the crashed replica's synced log flips while it is down (at most
    /// one replica per run). Its log is rebuilt as log_store writes it and recovered with
    /// log_store's own decoder, which must find the damage: the replica then refuses to
    /// start, as a node does, and stays down (a minority, so the group goes on without it).
    double bit_flip = 0.1;
    time_ns disk_latency_min = 100 * ns_per_us;
    time_ns disk_latency_max = 2 * ns_per_ms;

    // The workload.
    double proposals_per_s = 400;
    double reads_per_s = 50;
    double transfers_per_s = 0.2;
    double member_changes_per_s = 0.5;            ///< only with spares
    replication::log_index snapshot_every = 200;  ///< applied entries between a replica's snapshots
    replication::log_index trailing_entries = 50;

    /// Draw the fault rates, latencies and workload above from the seed, within wide ranges
    /// (slow disks against fast networks, storms of crashes, heavy loss), so that a long
    /// search covers the corners one fixed setting misses.
    bool vary_by_seed = true;

    bool record_trace = false;  ///< keep a readable line per event (for a failing seed)
};

struct raft_sim_result {
    bool ok = true;
    std::string violation;  ///< what broke, when and where
    std::uint64_t trace_hash = 0;
    std::uint64_t events = 0;
    std::uint64_t acknowledged = 0;  ///< proposals acknowledged to their client
    std::uint64_t committed = 0;     ///< highest index known committed
    std::uint64_t elections = 0;
    std::uint64_t crashes = 0;
    std::uint64_t snapshots_installed = 0;
    std::uint64_t reads = 0;
    std::uint64_t member_changes = 0;
    std::uint64_t transfers = 0;
    std::uint64_t bit_flips_detected = 0;  ///< replicas that refused to start on a damaged log
    std::vector<std::string> trace;
};

/// What a search over many seeds exercised, summed.
struct raft_sim_totals {
    std::uint64_t events = 0;
    std::uint64_t acknowledged = 0;
    std::uint64_t elections = 0;
    std::uint64_t crashes = 0;
    std::uint64_t snapshots_installed = 0;
    std::uint64_t reads = 0;
    std::uint64_t member_changes = 0;
    std::uint64_t transfers = 0;
    std::uint64_t bit_flips_detected = 0;

    void add(const raft_sim_result& r) {
        events += r.events;
        acknowledged += r.acknowledged;
        elections += r.elections;
        crashes += r.crashes;
        snapshots_installed += r.snapshots_installed;
        reads += r.reads;
        member_changes += r.member_changes;
        transfers += r.transfers;
        bit_flips_detected += r.bit_flips_detected;
    }
};

/// Runs one seed to the end or to the first violation.
raft_sim_result run_raft_sim(const raft_sim_options& options);

}  // namespace ringmesh::sim
