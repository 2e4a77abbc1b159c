// Dissemination and failure detection versus cluster size, on the deterministic simulator:
// SWIM claims O(log N) dissemination and detection with constant per-member load, and this
// tool makes that visible. For each N it joins a cluster, converges it, changes one member's
// metadata (dissemination: until every member has it), then crashes one member (detection:
// first suspicion, first and last "dead"). A second table counts false positives under
// uniform loss with Lifeguard on and off. Prints tables, writes JSON and an SVG chart.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "tests/sim/harness/gossip_sim.h"

namespace {

using namespace ringmesh;
using namespace ringmesh::membership;

struct scale_row {
    int n = 0;
    bool converged = false;
    double join_s = 0;
    double disseminate_s = 0;          // metadata change reaches every member
    double first_suspect_s = 0;        // crash -> first suspicion anywhere
    double first_dead_s = 0;           // crash -> first member declares it dead
    double all_dead_s = 0;             // crash -> every member holds it dead
    double messages_per_member_s = 0;  // gossip datagrams sent per member per second
};

struct loss_row {
    double loss = 0;
    bool lifeguard = false;
    std::uint64_t suspicions = 0, false_deaths = 0;
};

swim_config timings(time_ns probe_interval, bool lifeguard) {
    swim_config c;
    c.probe_interval = probe_interval;
    c.probe_timeout = probe_interval * 2 / 5;
    c.lifeguard = lifeguard;
    return c;
}

transport::sim::link_faults lan(double loss) {
    transport::sim::link_faults f;
    f.min_delay_ns = 100 * ns_per_us;
    f.max_delay_ns = 1 * ns_per_ms;
    f.drop = loss;
    return f;
}

double seconds(time_ns t) {
    return static_cast<double>(t) / ns_per_s;
}

bool join_all(gossip_sim& sim, int n, time_ns limit) {
    for (int i = 0; i < n; ++i) {
        sim.start(i);
        sim.run_for(5 * ns_per_ms);
    }
    return sim.run_until([&] { return sim.converged(); }, limit, 100 * ns_per_ms);
}

scale_row measure_scale(int n, std::uint64_t seed, time_ns interval) {
    scale_row row;
    row.n = n;
    gossip_sim sim(seed, lan(0), timings(interval, true), {key_bytes(32, std::byte{7})});
    row.converged = join_all(sim, n, 600 * ns_per_s);
    row.join_s = seconds(sim.now());
    if (!row.converged) return row;
    sim.run_for(20 * interval);  // let the join traffic settle

    // Dissemination: one member's metadata change, until every other member has it.
    std::uint64_t sent_before = 0;
    for (int i = 0; i < n; ++i)
        sent_before += sim.agent(i).stats().datagrams_out;
    const time_ns quiet_from = sim.now();
    sim.clear_observations();
    member_meta meta;
    meta.tags = {{"role", "changed"}};
    const int changer = n / 2;
    sim.update_meta(changer, meta);
    const time_ns changed_at = sim.now();
    auto everyone_has_it = [&] {
        for (int i = 0; i < n; ++i) {
            const member_record* m = sim.agent(i).state().find(gossip_sim::name_of(changer));
            if (m == nullptr || !(m->meta == meta)) return false;
        }
        return true;
    };
    sim.run_until(everyone_has_it, changed_at + 600 * ns_per_s, interval / 10);
    row.disseminate_s = seconds(sim.now() - changed_at);
    std::uint64_t sent_after = 0;
    for (int i = 0; i < n; ++i)
        sent_after += sim.agent(i).stats().datagrams_out;
    row.messages_per_member_s = static_cast<double>(sent_after - sent_before) / n /
                                std::max(1e-9, seconds(sim.now() - quiet_from));

    // Detection: crash one member.
    const int victim = 1;
    sim.clear_observations();
    sim.crash(victim);
    const time_ns crashed_at = sim.now();
    sim.run_until([&] { return sim.all_see_dead(victim); }, crashed_at + 1200 * ns_per_s,
                  interval / 10);
    row.all_dead_s = seconds(sim.now() - crashed_at);
    for (const auto& o : sim.observations()) {
        if (o.event.name != gossip_sim::name_of(victim)) continue;
        const double t = seconds(o.at - crashed_at);
        if (o.event.what == member_event::kind::suspect && row.first_suspect_s == 0) {
            row.first_suspect_s = t;
        }
        if (o.event.what == member_event::kind::dead && row.first_dead_s == 0) {
            row.first_dead_s = t;
        }
    }
    return row;
}

loss_row measure_loss(int n, double loss, bool lifeguard, std::uint64_t seed, time_ns interval,
                      time_ns span) {
    loss_row row{loss, lifeguard, 0, 0};
    gossip_sim sim(seed, lan(0), timings(interval, lifeguard), {key_bytes(32, std::byte{7})});
    if (!join_all(sim, n, 300 * ns_per_s)) return row;
    sim.clear_observations();
    sim.net().set_faults(lan(loss));
    sim.run_for(span);
    for (const auto& o : sim.observations()) {
        row.suspicions += o.event.what == member_event::kind::suspect;
        row.false_deaths += o.event.what == member_event::kind::dead;
    }
    return row;
}

void write_svg(const std::string& path, const std::vector<scale_row>& rows) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr) return;
    double top = 1;
    for (const auto& r : rows)
        top = std::max({top, r.disseminate_s, r.all_dead_s});
    top = std::ceil(top);
    const double x0 = 70, x1 = 760, y0 = 380, y1 = 50;
    const double lmin = std::log10(std::max(1, rows.empty() ? 10 : rows.front().n));
    const double lmax = std::log10(std::max(2, rows.empty() ? 1000 : rows.back().n));
    auto x = [&](int n) {
        return x0 + (x1 - x0) * (std::log10(n) - lmin) / std::max(1e-9, lmax - lmin);
    };
    auto y = [&](double s) { return y0 - (y0 - y1) * s / top; };
    std::fprintf(f,
                 "<svg xmlns='http://www.w3.org/2000/svg' width='820' height='460' "
                 "font-family='sans-serif' font-size='12'>\n<rect width='820' height='460' "
                 "fill='white'/>\n<text x='20' y='28' font-size='15'>SWIM/Lifeguard on the "
                 "simulator: seconds versus cluster size (log scale)</text>\n");
    for (int t = 0; t <= 5; ++t) {
        const double v = top * t / 5;
        std::fprintf(f,
                     "<line x1='%.0f' y1='%.1f' x2='%.0f' y2='%.1f' stroke='#ddd'/><text x='30' "
                     "y='%.1f'>%.1f s</text>\n",
                     x0, y(v), x1, y(v), y(v) + 4, v);
    }
    for (const auto& r : rows)
        std::fprintf(f, "<text x='%.1f' y='400'>%d</text>\n", x(r.n) - 10, r.n);
    struct series {
        const char* name;
        const char* color;
        double scale_row::*field;
    };
    const series all[] = {{"dissemination (all have it)", "#1f77b4", &scale_row::disseminate_s},
                          {"detection (first suspicion)", "#2ca02c", &scale_row::first_suspect_s},
                          {"detection (all hold it dead)", "#d62728", &scale_row::all_dead_s}};
    int legend = 0;
    for (const auto& s : all) {
        std::string points;
        for (const auto& r : rows) {
            if (!r.converged) continue;
            char pt[48];
            std::snprintf(pt, sizeof pt, "%.1f,%.1f ", x(r.n), y(r.*(s.field)));
            points += pt;
        }
        std::fprintf(f, "<polyline points='%s' fill='none' stroke='%s' stroke-width='2'/>\n",
                     points.c_str(), s.color);
        std::fprintf(f,
                     "<rect x='%d' y='425' width='12' height='12' fill='%s'/><text x='%d' "
                     "y='436'>%s</text>\n",
                     70 + legend * 240, s.color, 86 + legend * 240, s.name);
        ++legend;
    }
    std::fprintf(f, "</svg>\n");
    std::fclose(f);
}

void write_json(const std::string& path, const std::vector<scale_row>& rows,
                const std::vector<loss_row>& losses) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr) return;
    std::fprintf(f, "{\n  \"scale\": [\n");
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto& r = rows[i];
        std::fprintf(f,
                     "    {\"n\": %d, \"converged\": %s, \"join_s\": %.3f, \"disseminate_s\": "
                     "%.3f, \"first_suspect_s\": %.3f, \"first_dead_s\": %.3f, \"all_dead_s\": "
                     "%.3f, \"datagrams_per_member_s\": %.2f}%s\n",
                     r.n, r.converged ? "true" : "false", r.join_s, r.disseminate_s,
                     r.first_suspect_s, r.first_dead_s, r.all_dead_s, r.messages_per_member_s,
                     i + 1 < rows.size() ? "," : "");
    }
    std::fprintf(f, "  ],\n  \"false_positives\": [\n");
    for (std::size_t i = 0; i < losses.size(); ++i) {
        const auto& l = losses[i];
        std::fprintf(
            f,
            "    {\"loss\": %.2f, \"lifeguard\": %s, \"suspicions\": %llu, "
            "\"false_deaths\": %llu}%s\n",
            l.loss, l.lifeguard ? "true" : "false", static_cast<unsigned long long>(l.suspicions),
            static_cast<unsigned long long>(l.false_deaths), i + 1 < losses.size() ? "," : "");
    }
    std::fprintf(f, "  ]\n}\n");
    std::fclose(f);
}

}  // namespace

int run_gossip_scale(int argc, char** argv) {
    CLI::App app{"ringmesh gossip scale: dissemination and detection versus N, simulated"};
    std::vector<int> sizes{10, 20, 50, 100, 200, 500, 1000};
    std::uint64_t seed = 1;
    int probe_ms = 500;
    int loss_nodes = 16;
    int loss_minutes = 10;
    std::string json = "gossip-scale.json", svg = "gossip-scale.svg";
    app.add_option("--sizes", sizes, "cluster sizes")->delimiter(',');
    app.add_option("--seed", seed, "simulation seed (the same seed replays the same run)");
    app.add_option("--probe-ms", probe_ms, "probe interval, ms");
    app.add_option("--loss-nodes", loss_nodes, "cluster size of the false-positive runs (0: skip)");
    app.add_option("--loss-minutes", loss_minutes, "simulated minutes per false-positive run");
    app.add_option("--json", json, "results file");
    app.add_option("--svg", svg, "chart file");
    CLI11_PARSE(app, argc, argv);
    const time_ns interval = probe_ms * ns_per_ms;
    std::sort(sizes.begin(), sizes.end());

    std::printf("seed %llu, probe interval %d ms, Lifeguard on, 0.1-1 ms links, no loss\n\n",
                static_cast<unsigned long long>(seed), probe_ms);
    std::printf("%6s %9s %13s %14s %12s %12s %14s\n", "N", "join s", "disseminate s",
                "1st suspect s", "1st dead s", "all dead s", "datagrams/s/m");
    std::vector<scale_row> rows;
    for (int n : sizes) {
        rows.push_back(measure_scale(n, seed, interval));
        const auto& r = rows.back();
        if (!r.converged) {
            std::printf("%6d  did not converge within 600 s simulated\n", n);
            continue;
        }
        std::printf("%6d %9.1f %13.2f %14.2f %12.2f %12.2f %14.2f\n", n, r.join_s, r.disseminate_s,
                    r.first_suspect_s, r.first_dead_s, r.all_dead_s, r.messages_per_member_s);
        std::fflush(stdout);
    }

    std::vector<loss_row> losses;
    if (loss_nodes > 0) {
        std::printf("\nfalse positives: %d healthy nodes, %d simulated minutes of uniform loss\n",
                    loss_nodes, loss_minutes);
        std::printf("%6s %10s %12s %13s\n", "loss", "lifeguard", "suspicions", "false deaths");
        for (double loss : {0.05, 0.10}) {
            for (bool lifeguard : {true, false}) {
                losses.push_back(measure_loss(loss_nodes, loss, lifeguard, seed, interval,
                                              loss_minutes * time_ns{60} * ns_per_s));
                const auto& l = losses.back();
                std::printf("%5.0f%% %10s %12llu %13llu\n", loss * 100, lifeguard ? "on" : "off",
                            static_cast<unsigned long long>(l.suspicions),
                            static_cast<unsigned long long>(l.false_deaths));
                std::fflush(stdout);
            }
        }
    }
    write_json(json, rows, losses);
    write_svg(svg, rows);
    std::printf("\nwrote %s and %s\n", json.c_str(), svg.c_str());
    return 0;
}

int main(int argc, char** argv) {
    try {
        return run_gossip_scale(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ringmesh_gossip_scale: fatal: %s\n", e.what());
        return 1;
    }
}
