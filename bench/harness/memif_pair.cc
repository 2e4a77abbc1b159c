// The net_memif pair the DPDK systems run over: names and files, one set per run and side.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "bench/harness/harness.h"

namespace ringmesh::bench {

namespace {
std::string file_prefix(const run_config& c, bool receiving) {
    return std::string("rmbench") + (receiving ? "r" : "s") + std::to_string(c.port) + "-" +
           std::to_string(::getpid());
}
}  // namespace

std::string memif_socket(const run_config& c) {
    return "/tmp/ringmesh-bench-memif-" + std::to_string(c.port) + ".sock";
}

std::vector<std::string> memif_eal_args(const run_config& c, bool receiving) {
    return {"--no-huge",
            "-m",
            "512",
            "--no-pci",
            "--file-prefix",
            file_prefix(c, receiving),
            "--log-level",
            "*:error",
            "--vdev",
            std::string("net_memif0,role=") + (receiving ? "server" : "client") +
                ",socket-abstract=no,socket=" + memif_socket(c)};
}

bool wait_for_memif_server(const run_config& c) {
    for (int i = 0; i < 1000; ++i) {
        if (std::filesystem::exists(memif_socket(c))) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
}

void remove_memif_files(const run_config& c, bool receiving) {
    std::error_code ignored;
    std::filesystem::remove_all("/var/run/dpdk/" + file_prefix(c, receiving), ignored);
    if (receiving) std::filesystem::remove(memif_socket(c), ignored);
}

}  // namespace ringmesh::bench
