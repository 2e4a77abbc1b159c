// The replicate scenario's run and report: the storage floor, then each system's cluster in
// turn (ringmesh, JetStream, etcd), the table, the ratios against the targets and a JSON file.
#include "bench/replicate/replicate.h"

#include <linux/magic.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "bench/replicate/child_process.h"

namespace ringmesh::bench {
namespace {

double median_of(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

std::string rate(double v) {
    char buf[32];
    if (v >= 1e3) {
        std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
    } else {
        std::snprintf(buf, sizeof buf, "%.0f", v);
    }
    return buf;
}

/// "p50 / p99 / p99.9" in microseconds, or why there is no figure.
std::string latency_cell(const measured& m) {
    if (!m.ok) return m.error.empty() ? "-" : "n/a";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.0f / %.0f / %.0f", m.p50_us, m.p99_us, m.p999_us);
    return buf;
}

const replicate_figures* find(const std::vector<replicate_figures>& all, const char* system) {
    for (const replicate_figures& f : all) {
        if (f.system == system && f.error.rfind("failover", 0) != 0 && !f.error.empty())
            return nullptr;
        if (f.system == system) return &f;
    }
    return nullptr;
}

void print_errors(const replicate_figures& f) {
    if (!f.error.empty()) std::printf("  %s: %s\n", f.system.c_str(), f.error.c_str());
    for (const measured* m : {&f.publish_one, &f.publish_window, &f.put_one, &f.put_many}) {
        if (!m->error.empty()) std::printf("  %s: %s\n", f.system.c_str(), m->error.c_str());
    }
}

void print_table(const replicate_options& o, const measured& floor, const measured& shared_floor,
                 const std::vector<replicate_figures>& all, bool tmpfs) {
    std::printf(
        "\nreplicate: 3 replicas of each system on loopback, %zu B, %.1f s per figure, one run\n",
        o.payload_bytes, o.seconds);
    if (floor.ok) {
        std::printf("storage floor: 4 KiB append + fdatasync p50 %.0f us, p99 %.0f us (%llu)%s\n",
                    floor.p50_us, floor.p99_us, static_cast<unsigned long long>(floor.count),
                    tmpfs ? "  -- tmpfs: not a disk, use --work-dir" : "");
    } else {
        std::printf("storage floor: %s\n", floor.error.c_str());
    }
    if (shared_floor.ok) {
        std::printf(
            "  the same with 3 writers at once (3 replicas sharing this disk): p50 %.0f us, "
            "p99 %.0f us\n",
            shared_floor.p50_us, shared_floor.p99_us);
    }
    std::printf("\npublish to a replicated topic/stream   (us: p50 / p99 / p99.9)\n");
    std::printf("%-10s %24s %12s %14s %10s   %s\n", "system", "one outstanding", "publishes/s",
                "window entries/s", "per fsync", "an acknowledgement means");
    for (const replicate_figures& f : all) {
        if (f.system == "etcd") continue;
        char per_fsync[16] = "-";
        if (f.entries_per_fsync > 0)
            std::snprintf(per_fsync, sizeof per_fsync, "%.1f", f.entries_per_fsync);
        std::printf("%-10s %24s %12s %14s %10s   %s\n", f.system.c_str(),
                    latency_cell(f.publish_one).c_str(),
                    f.publish_one.ok ? rate(f.publish_one.per_second()).c_str() : "-",
                    f.publish_window.ok ? rate(f.publish_window.per_second()).c_str() : "-",
                    per_fsync, f.acknowledgement.c_str());
    }
    std::printf("(window: %d publishes outstanding)\n", o.window);
    std::printf("\nkey-value put, %zu B values   (us: p50 / p99 / p99.9)\n", o.payload_bytes);
    std::printf("%-10s %24s %12s %24s %12s\n", "system", "one client", "puts/s",
                (std::to_string(o.kv_clients) + " clients").c_str(), "puts/s");
    for (const replicate_figures& f : all) {
        if (f.system == "jetstream") continue;
        std::printf("%-10s %24s %12s %24s %12s\n", f.system.c_str(),
                    latency_cell(f.put_one).c_str(),
                    f.put_one.ok ? rate(f.put_one.per_second()).c_str() : "-",
                    latency_cell(f.put_many).c_str(),
                    f.put_many.ok ? rate(f.put_many.per_second()).c_str() : "-");
    }
    for (const replicate_figures& f : all) {
        if (f.failover_ms.empty()) continue;
        std::vector<double> sorted = f.failover_ms;
        std::sort(sorted.begin(), sorted.end());
        std::printf(
            "\nfailover (%s): kill -9 of the topic group's leader to the first acknowledged "
            "publish begun after it\n  %zu kills: median %.0f ms, min %.0f, max %.0f "
            "(election timeout %d-%d ms, heartbeat %d ms):",
            f.system.c_str(), sorted.size(), median_of(sorted), sorted.front(), sorted.back(),
            o.election_min_ms, o.election_max_ms, o.heartbeat_ms);
        for (double ms : f.failover_ms)
            std::printf(" %.0f", ms);
        std::printf("\n");
    }
    for (const replicate_figures& f : all)
        print_errors(f);

    const replicate_figures* rm = find(all, "ringmesh");
    const replicate_figures* js = find(all, "jetstream");
    const replicate_figures* etcd = find(all, "etcd");
    if (rm == nullptr) return;
    std::printf("\nagainst the targets:\n");
    if (rm->publish_one.ok && floor.ok)
        std::printf("  commit p50 / storage floor p50   %.2fx   (target <= 2x)\n",
                    rm->publish_one.p50_us / floor.p50_us);
    if (rm->publish_one.ok && js && js->publish_one.ok)
        std::printf("  commit p50 / JetStream ack p50   %.2fx   (target <= 1x)\n",
                    rm->publish_one.p50_us / js->publish_one.p50_us);
    if (rm->publish_window.ok) {
        std::printf("  committed entries/s             %s   (target >= 100k)",
                    rate(rm->publish_window.per_second()).c_str());
        if (js && js->publish_window.ok)
            std::printf("; %.2fx JetStream windowed (target >= 4x)",
                        rm->publish_window.per_second() / js->publish_window.per_second());
        std::printf("\n");
    }
    if (rm->put_one.ok && etcd && etcd->put_one.ok)
        std::printf("  KV put p50 / etcd put p50        %.2fx   (target <= 0.25x)\n",
                    rm->put_one.p50_us / etcd->put_one.p50_us);
    if (rm->put_many.ok && etcd && etcd->put_many.ok)
        std::printf("  KV puts/s / etcd puts/s          %.2fx\n",
                    rm->put_many.per_second() / etcd->put_many.per_second());
    if (!rm->failover_ms.empty())
        std::printf("  failover median                  %.0f ms   (target <= 300 ms)\n",
                    median_of(rm->failover_ms));
}

void json_measured(std::FILE* f, const char* name, const measured& m, bool last = false) {
    std::fprintf(f,
                 "\"%s\": {\"ok\": %s, \"count\": %llu, \"seconds\": %.4f, \"per_s\": %.0f, "
                 "\"p50_us\": %.1f, \"p99_us\": %.1f, \"p999_us\": %.1f}%s",
                 name, m.ok ? "true" : "false", static_cast<unsigned long long>(m.count), m.seconds,
                 m.per_second(), m.p50_us, m.p99_us, m.p999_us, last ? "" : ", ");
}

void write_json(const std::string& path, const measured& floor,
                const std::vector<replicate_figures>& all) {
    std::FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr) return;
    std::fprintf(f, "{");
    json_measured(f, "storage_floor", floor);
    std::fprintf(f, "\"systems\": [\n");
    for (std::size_t i = 0; i < all.size(); ++i) {
        const replicate_figures& s = all[i];
        std::fprintf(f, "  {\"system\": \"%s\", ", s.system.c_str());
        json_measured(f, "publish_one", s.publish_one);
        json_measured(f, "publish_window", s.publish_window);
        json_measured(f, "put_one", s.put_one);
        json_measured(f, "put_many", s.put_many);
        std::fprintf(f, "\"entries_per_fsync\": %.2f, \"failover_ms\": [", s.entries_per_fsync);
        for (std::size_t k = 0; k < s.failover_ms.size(); ++k)
            std::fprintf(f, "%s%.1f", k ? ", " : "", s.failover_ms[k]);
        std::fprintf(f, "]}%s\n", i + 1 < all.size() ? "," : "");
    }
    std::fprintf(f, "]}\n");
    std::fclose(f);
}

}  // namespace

int run_replicate(const replicate_options& o) {
    namespace fs = std::filesystem;
    const std::string dir =
        o.work_dir.empty() ? "ringmesh-replicate." + std::to_string(::getpid()) : o.work_dir;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
        std::fprintf(stderr, "ringmesh_bench: %s: %s\n", dir.c_str(), ec.message().c_str());
        return 1;
    }
    struct statfs st {};
    const bool tmpfs = ::statfs(dir.c_str(), &st) == 0 && st.f_type == TMPFS_MAGIC;
    std::fprintf(stderr, "replicate: storage floor ...\n");
    const measured floor = storage_floor(dir, std::min(o.seconds, 3.0));
    const measured shared_floor = storage_floor(dir, std::min(o.seconds, 3.0), 3);
    std::vector<replicate_figures> all;
    bool failed = !floor.ok;
    for (const std::string& system : o.systems) {
        std::fprintf(stderr, "replicate: %s ...\n", system.c_str());
        const std::string sub = in_dir(dir, system);
        fs::create_directories(sub, ec);
        if (system == "ringmesh") {
            all.push_back(run_ringmesh_replicated(o, sub));
        } else if (system == "jetstream") {
            all.push_back(run_jetstream(o, sub));
        } else if (system == "etcd") {
            all.push_back(run_etcd(o, sub));
        } else {
            std::fprintf(stderr, "ringmesh_bench: unknown replicate system '%s'\n", system.c_str());
            return 2;
        }
        failed |= !all.back().error.empty();
    }
    print_table(o, floor, shared_floor, all, tmpfs);
    if (!o.json.empty()) {
        write_json(o.json, floor, all);
        std::printf("\nwrote %s\n", o.json.c_str());
    }
    if (failed) {
        std::printf("logs kept in %s\n", dir.c_str());
    } else if (o.work_dir.empty()) {
        fs::remove_all(dir, ec);
    }
    return 0;
}

}  // namespace ringmesh::bench
