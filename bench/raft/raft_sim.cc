// ringmesh_raft_sim: a long search for Raft safety bugs on the simulator. Runs seeds in order
// for one configuration and prints a progress line; stops at the first violation with its
// seed, which replays exactly (--seed S --trace prints every event of that run).
//
//   ringmesh_raft_sim --seeds 10000 --nodes 5
//   ringmesh_raft_sim --seeds 10000 --nodes 3 --spares 2     (membership changes too)
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <exception>

#include "tests/sim/harness/raft_sim.h"

namespace {

int run(int argc, char** argv) {
    CLI::App app{"Raft safety search on the deterministic simulator"};
    std::uint64_t seeds = 1000;
    std::uint64_t first = 1;
    int nodes = 3;
    int spares = 0;
    double seconds = 8;
    bool trace = false;
    app.add_option("--seeds", seeds, "how many seeds to run");
    app.add_option("--first", first, "the first seed");
    app.add_option("--seed", first, "run this one seed (with --seeds 1)");
    app.add_option("--nodes", nodes, "voters in the group")->check(CLI::Range(1, 9));
    app.add_option("--spares", spares, "replicas that membership changes add and remove")
        ->check(CLI::Range(0, 4));
    app.add_option("--seconds", seconds, "virtual seconds of faults per seed");
    app.add_flag("--trace", trace, "print every event of each run");
    CLI11_PARSE(app, argc, argv);

    const auto started = std::chrono::steady_clock::now();
    ringmesh::sim::raft_sim_totals total;
    for (std::uint64_t s = first; s < first + seeds; ++s) {
        ringmesh::sim::raft_sim_options o;
        o.seed = s;
        o.voters = nodes;
        o.spares = spares;
        o.run_for = static_cast<ringmesh::time_ns>(seconds * 1e9);
        o.record_trace = trace;
        ringmesh::sim::raft_sim_result r = ringmesh::sim::run_raft_sim(o);
        for (const std::string& line : r.trace)
            std::printf("%s\n", line.c_str());
        total.add(r);
        if (!r.ok) {
            std::printf(
                "\nVIOLATION %s\n  trace hash %016llx; replay: --seed %llu --seeds 1 "
                "--nodes %d --spares %d --trace\n",
                r.violation.c_str(), static_cast<unsigned long long>(r.trace_hash),
                static_cast<unsigned long long>(s), nodes, spares);
            return 1;
        }
        const std::uint64_t done = s - first + 1;
        if (done % 100 == 0 || done == seeds) {
            const double wall =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
            std::printf(
                "\rseeds %llu/%llu  events %llu  acked %llu  elections %llu  crashes "
                "%llu  snapshot installs %llu  reads %llu  member changes %llu  transfers %llu  "
                "bit flips refused %llu  violations 0  %.0f s",
                static_cast<unsigned long long>(done), static_cast<unsigned long long>(seeds),
                static_cast<unsigned long long>(total.events),
                static_cast<unsigned long long>(total.acknowledged),
                static_cast<unsigned long long>(total.elections),
                static_cast<unsigned long long>(total.crashes),
                static_cast<unsigned long long>(total.snapshots_installed),
                static_cast<unsigned long long>(total.reads),
                static_cast<unsigned long long>(total.member_changes),
                static_cast<unsigned long long>(total.transfers),
                static_cast<unsigned long long>(total.bit_flips_detected), wall);
            std::fflush(stdout);
        }
    }
    std::printf("\n");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ringmesh_raft_sim: %s\n", e.what());
        return 2;
    }
}
