// ringmesh_certs: a private CA and node certificates for a cluster in `encrypted` mode.
//
//   ringmesh_certs --dir certs n1 n2 n3
//
// writes certs/ca.pem and certs/ca.key (a new CA, unless the directory holds one already: then
// it issues with that one), and certs/NAME.pem and certs/NAME.key for each node name given.
// Each certificate names its node (DNS subject alternative name and common name), which is
// what peers check a node's id against; keys are ECDSA P-256 and written readable by the
// owner only. Run it again with new names to add nodes, or with the same ones to renew them
// (then SIGHUP the nodes: they reload their certificate files).
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "transport/secure/cert_issuer.h"

namespace {

namespace sec = ringmesh::transport::secure;

bool write_file(const std::filesystem::path& path, const std::string& text, bool secret) {
    std::ofstream out(path, std::ios::trunc);
    out << text;
    out.close();
    if (!out) return false;
    if (secret) ::chmod(path.c_str(), 0600);
    return true;
}

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

int run(int argc, char** argv) {
    CLI::App app{"ringmesh_certs: a private CA and node certificates for security.mode encrypted"};
    std::string dir;
    std::string ca_name = "ringmesh-ca";
    int days = 365;
    std::vector<std::string> names;
    app.add_option("--dir", dir, "where ca.pem, ca.key, NAME.pem and NAME.key go")->required();
    app.add_option("--ca-name", ca_name, "the common name of a new CA");
    app.add_option("--days", days, "how long the node certificates are valid")
        ->check(CLI::Range(1, 36500));
    app.add_option("names", names, "node ids to issue certificates for");
    CLI11_PARSE(app, argc, argv);

    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    const std::filesystem::path root(dir);
    const auto ca_cert = root / "ca.pem", ca_key = root / "ca.key";
    const bool have_ca = std::filesystem::exists(ca_cert) && std::filesystem::exists(ca_key);
    auto issuer = have_ca
                      ? sec::cert_issuer::from_pem(read_file(ca_cert), read_file(ca_key))
                      : sec::cert_issuer::create(ca_name, {-3600, std::int64_t{10} * 365 * 86400});
    if (!issuer) {
        std::fprintf(stderr, "ringmesh_certs: %s\n", issuer.err().message().c_str());
        return 1;
    }
    if (!have_ca) {
        if (!write_file(ca_cert, issuer->cert_pem(), false) ||
            !write_file(ca_key, issuer->key_pem(), true)) {
            std::fprintf(stderr, "ringmesh_certs: cannot write the CA to %s\n", dir.c_str());
            return 1;
        }
        std::printf("ringmesh_certs: new CA %s in %s\n", ca_name.c_str(), ca_cert.c_str());
    }
    for (const std::string& name : names) {
        auto pem = issuer->issue(name, {-3600, std::int64_t{days} * 86400});
        if (!pem) {
            std::fprintf(stderr, "ringmesh_certs: %s\n", pem.err().message().c_str());
            return 1;
        }
        const auto cert = root / (name + ".pem"), key = root / (name + ".key");
        if (!write_file(cert, pem->cert, false) || !write_file(key, pem->key, true)) {
            std::fprintf(stderr, "ringmesh_certs: cannot write %s\n", cert.c_str());
            return 1;
        }
        std::printf("ringmesh_certs: %s: %s, %s (%d days)\n", name.c_str(), cert.c_str(),
                    key.c_str(), days);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ringmesh_certs: %s\n", e.what());
        return 1;
    }
}
