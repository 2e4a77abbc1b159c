// The secured data plane, as real node processes on loopback.
//   authenticated (the keyring): a keyless or wrong-keyed intruder receives nothing and is
//     counted;
//   encrypted (TLS 1.3, certificates made here by ringmesh_certs, argv[2]): a keyless, a
//     keyring-only and another CA's subscriber receive nothing and are counted; a node does
//     not start with a certificate that names another node or comes from another CA;
//     certificates renewed under a new CA on a live pair (SIGHUP) keep the session and let a
//     newcomer with only the new CA in;
//   both: a byte flipped on the wire by a proxy between two nodes closes the connection
//     before anything of it is delivered, and the sessions resend until every message has
//     arrived exactly once, in order; over UDP every datagram is sealed (encrypted or
//     tagged), keyless and wrong-keyed datagram peers get nothing and are counted.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/process_util.h"

namespace {

using namespace ringmesh::it;

const std::string cluster_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const std::string wrong_key = "HxcfHh0cGxoZGBcWFRQTEhEQDw4NDAsKCQgHBgUEAwI=";
const std::vector<std::string> quiet = {"--idle", "block"};

/// The daemon's options for node `id` with DIR/ID.pem and DIR/ID.key and the CA file `ca`.
std::vector<std::string> tls_args(const std::string& dir, const std::string& id,
                                  const std::string& ca) {
    return {"--tls-ca",   ca,
            "--tls-cert", dir + "/" + id + ".pem",
            "--tls-key",  dir + "/" + id + ".key"};
}

/// Certificates made by ringmesh_certs: DIR/ca.pem (a new CA per directory) and, per name,
/// DIR/NAME.pem and DIR/NAME.key.
struct cert_dir {
    std::string dir;
    cert_dir(const std::string& name, const std::vector<std::string>& nodes) {
        dir = temp_dir() + "/" + name;
        issue(nodes);
    }
    void issue(const std::vector<std::string>& nodes) const {
        process p = spawn_program("certs-" + std::filesystem::path(dir).filename().string(),
                                  tool_binary, with({"--dir", dir}, nodes));
        EXPECT_EQ(wait_exit(p), 0) << output_of(p);
    }
    std::string ca() const { return dir + "/ca.pem"; }
    /// The daemon's options for node `id` with this directory's certificate.
    std::vector<std::string> args(const std::string& id, const std::string& ca_file = {}) const {
        return tls_args(dir, id, ca_file.empty() ? ca() : ca_file);
    }
};

bool saw(const process& p, const std::string& text) {
    return output_of(p).find(text) != std::string::npos;
}

TEST(SecurityTest, KeylessAndWrongKeyedIntrudersReceiveNothingAndAreCounted) {
    // The case a security review starts with: a node with a key publishes on secret/x.
    const int port = free_port();
    process node =
        spawn("secret", with({"--id", "secret", "--key", cluster_key, "--listen", addr(port),
                              "--publish", "secret/x", "--rate", "2000", "--seconds", "8"},
                             quiet));
    ASSERT_TRUE(wait_listening(port)) << output_of(node);
    auto subscriber = [&](const std::string& id, std::vector<std::string> security) {
        return spawn(id, with(with({"--id", id, "--listen", addr(free_port()), "--peer", addr(port),
                                    "--subscribe", "**", "--seconds", "3"},
                                   security),
                              quiet));
    };
    process keyless = subscriber("keyless", {"--security", "none"});
    process wrong = subscriber("wrong-key", {"--key", wrong_key});
    process member = subscriber("member", {"--key", cluster_key});
    for (process* p : {&keyless, &wrong, &member})
        EXPECT_EQ(wait_exit(*p), 0) << output_of(*p);
    ::kill(node.pid, SIGTERM);
    EXPECT_EQ(wait_exit(node), 0);

    EXPECT_EQ(number_after(output_of(keyless), "received"), 0u) << output_of(keyless);
    EXPECT_EQ(number_after(output_of(wrong), "received"), 0u) << output_of(wrong);
    EXPECT_GT(number_after(output_of(member), "received"), 0u) << output_of(member);
    const std::string out = output_of(node);
    EXPECT_EQ(number_after(out, "security authenticated:"), 1u) << "only the member: " << out;
    EXPECT_GE(number_after(out, "not-secure"), 1u) << out;
    EXPECT_GE(number_after(out, "unknown-key"), 1u) << out;
    EXPECT_GE(number_after(output_of(wrong), "unknown-key"), 1u) << output_of(wrong);
    EXPECT_NE(out.find("mode authenticated"), std::string::npos) << "said at start-up";
    std::printf("intruders: the node refused keyless %llu, wrong key %llu; they received 0\n",
                static_cast<unsigned long long>(number_after(out, "not-secure")),
                static_cast<unsigned long long>(number_after(out, "unknown-key")));
}

TEST(SecurityTest, UdpPeersGetInOnlyWithTheKeyAndEveryDatagramIsSealed) {
    if (tool_binary.empty()) GTEST_SKIP() << "ringmesh_certs was not given (argv[2])";
    const cert_dir certs("udp", {"secret", "udp-wrong", "udp-member"});
    for (const std::string mode : {"authenticated", "encrypted"}) {
        SCOPED_TRACE(mode);
        const int port = free_port();
        std::vector<std::string> security = {"--key", cluster_key};
        if (mode == "encrypted") security = with(security, certs.args("secret"));
        process node = spawn("udp-secret-" + mode,
                             with(with({"--id", "secret", "--listen", addr(port), "--publish",
                                        "secret/x", "--rate", "2000", "--seconds", "6"},
                                       security),
                                  quiet));
        ASSERT_TRUE(wait_listening(port)) << output_of(node);
        // Datagram sessions prove the keyring; in encrypted mode every node also holds a
        // certificate (the mode is the cluster's).
        auto keyed = [&](const std::string& id, const std::string& key) {
            std::vector<std::string> sec = {"--key", key};
            return mode == "encrypted" ? with(sec, certs.args(id)) : sec;
        };
        auto subscriber = [&](const std::string& id, std::vector<std::string> sec) {
            return spawn(id + "-" + mode,
                         with(with({"--id", id, "--listen", addr(free_port()), "--udp-peer",
                                    addr(port), "--subscribe", "**", "--seconds", "3"},
                                   sec),
                              quiet));
        };
        process keyless = subscriber("udp-keyless", {"--security", "none"});
        process wrong = subscriber("udp-wrong", keyed("udp-wrong", wrong_key));
        process member = subscriber("udp-member", keyed("udp-member", cluster_key));
        for (process* p : {&keyless, &wrong, &member})
            EXPECT_EQ(wait_exit(*p), 0) << output_of(*p);
        ::kill(node.pid, SIGTERM);
        EXPECT_EQ(wait_exit(node), 0);
        EXPECT_EQ(number_after(output_of(keyless), "received"), 0u) << output_of(keyless);
        EXPECT_EQ(number_after(output_of(wrong), "received"), 0u) << output_of(wrong);
        EXPECT_GT(number_after(output_of(member), "received"), 0u) << output_of(member);
        const std::string out = output_of(node);
        EXPECT_EQ(number_after(out, "datagram sessions"), 1u) << "only the member: " << out;
        EXPECT_GT(number_after(out, "datagrams sealed"), 0u) << out;
        EXPECT_GE(number_after(out, "datagrams sealed [0-9]+, opened [0-9]+, refused"), 1u)
            << "the keyless peer's plaintext datagrams: " << out;
        EXPECT_GE(number_after(output_of(wrong), "unknown-key"), 1u) << output_of(wrong);
        std::printf(
            "udp (%s): the node sealed %llu datagrams, refused %llu plaintext ones; the "
            "wrong-keyed peer refused %llu replies; they received 0\n",
            mode.c_str(), static_cast<unsigned long long>(number_after(out, "datagrams sealed")),
            static_cast<unsigned long long>(
                number_after(out, "datagrams sealed [0-9]+, opened [0-9]+, refused")),
            static_cast<unsigned long long>(number_after(output_of(wrong), "unknown-key")));
    }
}

TEST(SecurityTest, ANodeWithoutAKeyStartsOpenOnlyWhenAskedTo) {
    process p = spawn("no-mode", {"--id", "x", "--listen", addr(free_port()), "--security", ""});
    EXPECT_EQ(wait_exit(p), 2);
    process q = spawn("unkeyed",
                      {"--id", "x", "--listen", addr(free_port()), "--security", "authenticated"});
    EXPECT_EQ(wait_exit(q), 2);
    EXPECT_NE(output_of(q).find("needs membership.keyring"), std::string::npos) << output_of(q);
    process r = spawn("open", {"--id", "x", "--listen", addr(free_port()), "--security", "none",
                               "--seconds", "0.2"});
    EXPECT_EQ(wait_exit(r), 0);
    EXPECT_NE(output_of(r).find("mode none (asked for): the data plane is open"), std::string::npos)
        << output_of(r);
}

TEST(SecurityTest, EncryptedNodesLetInOnlyPeersWithACertificateFromTheirCa) {
    if (tool_binary.empty()) GTEST_SKIP() << "ringmesh_certs was not given (argv[2])";
    const cert_dir ours("ours", {"secret", "member"});
    const cert_dir theirs("theirs", {"stranger"});
    const int port = free_port();
    process node =
        spawn("secret-tls", with(with({"--id", "secret", "--listen", addr(port), "--publish",
                                       "secret/x", "--rate", "2000", "--seconds", "8"},
                                      ours.args("secret")),
                                 quiet));
    ASSERT_TRUE(wait_listening(port)) << output_of(node);
    auto subscriber = [&](const std::string& id, std::vector<std::string> security) {
        return spawn(id, with(with({"--id", id, "--listen", addr(free_port()), "--peer", addr(port),
                                    "--subscribe", "**", "--seconds", "3"},
                                   security),
                              quiet));
    };
    process keyless = subscriber("tls-keyless", {"--security", "none"});
    process keyring = subscriber("tls-keyring", {"--key", cluster_key});
    process stranger = subscriber("stranger", theirs.args("stranger"));
    process member = subscriber("member", ours.args("member"));
    for (process* p : {&keyless, &keyring, &stranger, &member})
        EXPECT_EQ(wait_exit(*p), 0) << output_of(*p);
    ::kill(node.pid, SIGTERM);
    EXPECT_EQ(wait_exit(node), 0);

    for (process* p : {&keyless, &keyring, &stranger})
        EXPECT_EQ(number_after(output_of(*p), "received"), 0u) << output_of(*p);
    EXPECT_GT(number_after(output_of(member), "received"), 0u) << output_of(member);
    const std::string out = output_of(node);
    EXPECT_EQ(number_after(out, "security encrypted:"), 1u) << "only the member: " << out;
    EXPECT_GE(number_after(out, "not-secure"), 1u) << out;
    EXPECT_GE(number_after(out, "mode-mismatch"), 1u) << out;
    // The stranger checks the node's certificate first, refuses it and says so in an alert.
    EXPECT_GE(number_after(out, "refused-by-peer"), 1u) << out;
    EXPECT_GE(number_after(output_of(stranger), "untrusted-certificate"), 1u)
        << output_of(stranger);
    EXPECT_GE(number_after(output_of(keyring), "mode-mismatch"), 1u) << output_of(keyring);
    EXPECT_NE(out.find("mode encrypted: TLS 1.3"), std::string::npos) << "said at start-up";
    std::printf(
        "encrypted intruders: the node refused keyless %llu, keyring-only %llu, another CA's "
        "%llu; they received 0\n",
        static_cast<unsigned long long>(number_after(out, "not-secure")),
        static_cast<unsigned long long>(number_after(out, "mode-mismatch")),
        static_cast<unsigned long long>(number_after(out, "refused-by-peer")));
}

TEST(SecurityTest, ANodeDoesNotStartWithACertificateItsPeersWouldRefuse) {
    if (tool_binary.empty()) GTEST_SKIP() << "ringmesh_certs was not given (argv[2])";
    const cert_dir ours("start-ours", {"n1"});
    const cert_dir theirs("start-theirs", {"n1"});
    auto start = [&](const std::string& name, const std::string& id,
                     std::vector<std::string> security) {
        return spawn(
            name, with({"--id", id, "--listen", addr(free_port()), "--seconds", "0.2"}, security));
    };
    process wrong_name = start("wrong-name", "n2", ours.args("n1"));
    EXPECT_EQ(wait_exit(wrong_name), 2);
    EXPECT_TRUE(saw(wrong_name, "the certificate names \"n1\", but this node is \"n2\""))
        << output_of(wrong_name);
    process wrong_ca = start("wrong-ca", "n1", theirs.args("n1", ours.ca()));
    EXPECT_EQ(wait_exit(wrong_ca), 2);
    EXPECT_TRUE(saw(wrong_ca, "does not pass the CA check")) << output_of(wrong_ca);
    process no_files = start("no-files", "n1", {"--security", "encrypted"});
    EXPECT_EQ(wait_exit(no_files), 2);
    EXPECT_TRUE(saw(no_files, "needs certificates")) << output_of(no_files);
    process fine = start("fine", "n1", ours.args("n1"));
    EXPECT_EQ(wait_exit(fine), 0) << output_of(fine);
}

TEST(SecurityTest, CertificatesRenewedUnderANewCaKeepTheSessionAndLetTheNewcomerIn) {
    if (tool_binary.empty()) GTEST_SKIP() << "ringmesh_certs was not given (argv[2])";
    // The files the nodes run with; renewal overwrites them and sends SIGHUP.
    const cert_dir old_ca("renew-old", {"pub", "sub"});
    const cert_dir new_ca("renew-new", {"pub", "sub", "late"});
    const std::string live = temp_dir() + "/renew-live";
    std::filesystem::create_directories(live);
    auto install = [&](const cert_dir& from, const std::vector<std::string>& cas) {
        for (const std::string id : {"pub", "sub"}) {
            for (const std::string ext : {".pem", ".key"})
                std::filesystem::copy_file(from.dir + "/" + id + ext, live + "/" + id + ext,
                                           std::filesystem::copy_options::overwrite_existing);
        }
        std::ofstream bundle(live + "/ca.pem", std::ios::trunc);
        for (const std::string& ca : cas)
            bundle << std::ifstream(ca).rdbuf();
    };
    install(old_ca, {old_ca.ca()});
    auto running = [&](const std::string& id) { return tls_args(live, id, live + "/ca.pem"); };
    const int sub_port = free_port(), pub_port = free_port();
    const std::string log = temp_dir() + "/renewed.log";
    ::unlink(log.c_str());
    const int count = 24000;
    process sub =
        spawn("renew-sub", with(with({"--id", "sub", "--listen", addr(sub_port), "--subscribe",
                                      "it/**", "--delivery-log", log, "--seconds", "40"},
                                     running("sub")),
                                quiet));
    ASSERT_TRUE(wait_listening(sub_port)) << output_of(sub);
    process pub =
        spawn("renew-pub",
              with(with({"--id", "pub", "--listen", addr(pub_port), "--peer", addr(sub_port),
                         "--publish", "it/x", "--rate", "4000", "--count", std::to_string(count),
                         "--wait-subscribers", "1", "--seconds", "30"},
                        running("pub")),
                   quiet));
    ASSERT_TRUE(wait_for_size(log, 8 * 1000, 20)) << output_of(pub);
    // Renew: certificates from the new CA, and a bundle that trusts both while the cluster
    // moves over.
    install(new_ca, {old_ca.ca(), new_ca.ca()});
    for (const process* p : {&pub, &sub})
        ::kill(p->pid, SIGHUP);
    ASSERT_TRUE(eventually(
        [&] { return saw(pub, "certificates reloaded") && saw(sub, "certificates reloaded"); },
        std::chrono::seconds(10)))
        << output_of(pub) << output_of(sub);
    // A newcomer that knows only the new CA gets in: the publisher presents its new certificate.
    process late =
        spawn("renew-late", with(with({"--id", "late", "--listen", addr(free_port()), "--peer",
                                       addr(pub_port), "--subscribe", "it/**", "--seconds", "40"},
                                      new_ca.args("late")),
                                 quiet));
    // (It stays until the publisher is done: a subscriber that leaves mid-stream holds the
    // publisher's window to it until it returns.)
    EXPECT_EQ(wait_exit(pub), 0) << output_of(pub);
    for (process* p : {&late, &sub}) {
        ::kill(p->pid, SIGTERM);
        EXPECT_EQ(wait_exit(*p), 0) << output_of(*p);
    }
    EXPECT_GT(number_after(output_of(late), "received"), 0u) << output_of(late);
    expect_contiguous(read_log(log), 1, count, "the subscriber through the renewal");
    EXPECT_EQ(number_after(output_of(sub), "security encrypted:"), 1u)
        << "the session was never dropped: " << output_of(sub);
    EXPECT_EQ(number_after(output_of(sub), "peers proven,"), 0u) << "none refused";
}

/// A TCP proxy on loopback that forwards both ways and, in the direction towards `target`,
/// flips one bit once `flip_after` bytes have passed on a connection — for the first
/// `flips` connections. Runs on its own thread until stopped (bounded by the test).
class flipping_proxy {
  public:
    flipping_proxy(int target, std::size_t flip_after, int flips)
        : target_(target), flip_after_(flip_after), flips_left_(flips) {
        listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const int one = 1;
        ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        port_ = free_port();
        sockaddr_in a = loopback(port_);
        EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        EXPECT_EQ(::listen(listener_, 16), 0);
        thread_ = std::thread([this] { run(); });
    }
    ~flipping_proxy() {
        stop_ = true;
        thread_.join();
        ::close(listener_);
    }
    int port() const { return port_; }
    int flipped() const { return flipped_; }

  private:
    struct link {
        int from = -1, to = -1;  // from: the dialer; to: the target
        std::size_t forwarded = 0;
        bool flip = false;
    };
    static sockaddr_in loopback(int port) {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<std::uint16_t>(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return a;
    }
    void run() {
        std::vector<link> links;
        char buf[16384];
        while (!stop_) {
            std::vector<pollfd> fds = {{listener_, POLLIN, 0}};
            for (const link& l : links) {
                fds.push_back({l.from, POLLIN, 0});
                fds.push_back({l.to, POLLIN, 0});
            }
            if (::poll(fds.data(), fds.size(), 50) <= 0) continue;
            if (fds[0].revents & POLLIN) {
                link l;
                l.from = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
                l.to = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                sockaddr_in a = loopback(target_);
                if (::connect(l.to, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
                    l.flip = flips_left_-- > 0;
                    links.push_back(l);
                } else {
                    ::close(l.from);
                    ::close(l.to);
                }
            }
            for (std::size_t i = 0; i < links.size(); ++i) {
                link& l = links[i];
                bool closed = false;
                for (int side = 0; side < 2 && !closed; ++side) {
                    if (!(fds[1 + 2 * i + side].revents & (POLLIN | POLLHUP | POLLERR))) continue;
                    const int in = side == 0 ? l.from : l.to, out = side == 0 ? l.to : l.from;
                    const ssize_t n = ::read(in, buf, sizeof buf);
                    if (n <= 0) {
                        closed = true;
                        break;
                    }
                    if (side == 0 && l.flip && l.forwarded + n > flip_after_) {
                        buf[n / 2] ^= 0x04;  // one bit, inside a record by now
                        l.flip = false;
                        ++flipped_;
                    }
                    if (side == 0) l.forwarded += static_cast<std::size_t>(n);
                    for (ssize_t sent = 0; sent < n;) {
                        const ssize_t w =
                            ::write(out, buf + sent, static_cast<std::size_t>(n - sent));
                        if (w <= 0) {
                            closed = true;
                            break;
                        }
                        sent += w;
                    }
                }
                if (closed) {
                    ::close(l.from);
                    ::close(l.to);
                    l.from = l.to = -1;
                }
            }
            std::erase_if(links, [](const link& l) { return l.from < 0; });
        }
        for (const link& l : links) {
            ::close(l.from);
            ::close(l.to);
        }
    }

    int target_;
    std::size_t flip_after_;
    int flips_left_;
    int listener_ = -1, port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> flipped_{0};
    std::thread thread_;
};

/// Two connections in turn get a bit flipped once 200 KB have passed through them, between a
/// publisher and a subscriber running `mode` with the given options each.
void flip_and_count(const std::string& mode, const std::vector<std::string>& pub_security,
                    const std::vector<std::string>& sub_security) {
    const int sub_port = free_port();
    const std::string log = temp_dir() + "/flipped-" + mode + ".log";
    ::unlink(log.c_str());
    process sub = spawn("flip-sub-" + mode,
                        with(with({"--id", "sub", "--listen", addr(sub_port), "--subscribe",
                                   "it/**", "--delivery-log", log, "--seconds", "40"},
                                  sub_security),
                             quiet));
    ASSERT_TRUE(wait_listening(sub_port)) << output_of(sub);
    flipping_proxy proxy(sub_port, 200'000, 2);
    const int count = 40000;
    process pub =
        spawn("flip-pub-" + mode,
              with(with({"--id", "pub", "--listen", addr(free_port()), "--peer", addr(proxy.port()),
                         "--publish", "it/x", "--rate", "20000", "--count", std::to_string(count),
                         "--wait-subscribers", "1", "--seconds", "30"},
                        pub_security),
                   quiet));
    EXPECT_EQ(wait_exit(pub), 0) << output_of(pub);
    ::kill(sub.pid, SIGTERM);
    EXPECT_EQ(wait_exit(sub), 0);
    const std::string sub_out = output_of(sub);
    EXPECT_EQ(proxy.flipped(), 2);
    EXPECT_EQ(number_after(sub_out, "opened [0-9]+, refused"), 2u) << sub_out;
    expect_contiguous(read_log(log), 1, count, "the subscriber behind the proxy");
    EXPECT_EQ(number_after(output_of(pub), "published"), static_cast<std::uint64_t>(count));
    std::printf(
        "flipping proxy (%s): %d bits flipped, %llu records refused, %d messages delivered "
        "once each, in order; %llu peers proven (reconnections + 1)\n",
        mode.c_str(), proxy.flipped(),
        static_cast<unsigned long long>(number_after(sub_out, "opened [0-9]+, refused")), count,
        static_cast<unsigned long long>(number_after(sub_out, "security " + mode + ":")));
}

TEST(SecurityTest, AByteFlippingProxyCausesRefusalsAndRecoveryNeverACorruptDelivery) {
    flip_and_count("authenticated", {"--key", cluster_key}, {"--key", cluster_key});
}

TEST(SecurityTest, AByteFlippingProxyBetweenTlsNodesCausesRefusalsAndRecovery) {
    if (tool_binary.empty()) GTEST_SKIP() << "ringmesh_certs was not given (argv[2])";
    const cert_dir certs("flip", {"pub", "sub"});
    flip_and_count("encrypted", certs.args("pub"), certs.args("sub"));
}

}  // namespace

int main(int argc, char** argv) {
    return ringmesh::it::run_with_node_binary(argc, argv);
}
