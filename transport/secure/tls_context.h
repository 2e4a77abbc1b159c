// The credentials of `encrypted` mode: this node's certificate and key, and the CA that every
// peer's certificate must chain to, loaded into one OpenSSL context that serves every TLS 1.3
// session of the node (tls_guard.h). A node's name is the one its certificate carries (its
// first DNS subject alternative name, else its common name); loading refuses a certificate
// that names another node, does not chain to the CA, has expired or does not match its key,
// so that a misconfiguration stops the node at start-up (or keeps the old credentials on a
// reload) instead of failing every handshake later.
//
// A tls_context is immutable once loaded and shared by every shard: sessions hold a reference
// to the one they started with. tls_credentials is the node's current one, replaced whole on
// SIGHUP; sessions already up keep theirs, new handshakes take the new one.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "engine/core/result.h"

namespace ringmesh::transport::secure {

/// Where the credentials live (security.ca_file, cert_file, key_file; PEM).
struct tls_files {
    std::string ca_file, cert_file, key_file;
    bool complete() const noexcept {
        return !ca_file.empty() && !cert_file.empty() && !key_file.empty();
    }
};

/// The same credentials as PEM text (tests, the bench, cert_issuer.h).
struct tls_pem {
    std::string ca, cert, key;
};

class tls_context {
  public:
    /// Loads and checks the files for node `node_id`.
    static result<std::shared_ptr<const tls_context>> load(const tls_files& files,
                                                           std::string_view node_id);
    /// The same from PEM text. `check_own = false` skips the checks of this node's own
    /// certificate (and allows none): only to play a peer with a bad certificate in tests.
    static result<std::shared_ptr<const tls_context>> from_pem(const tls_pem& pem,
                                                               std::string_view node_id,
                                                               bool check_own = true);
    ~tls_context();
    tls_context(const tls_context&) = delete;
    tls_context& operator=(const tls_context&) = delete;

    SSL_CTX* raw() const noexcept { return ctx_; }
    /// The name this node's certificate carries (its node id).
    const std::string& identity() const noexcept { return identity_; }
    /// When this node's certificate expires, as the certificate says it (for the log line).
    const std::string& not_after() const noexcept { return not_after_; }

  private:
    tls_context(SSL_CTX* ctx, std::string identity, std::string not_after)
        : ctx_(ctx), identity_(std::move(identity)), not_after_(std::move(not_after)) {}
    static result<std::shared_ptr<const tls_context>> build(SSL_CTX* ctx, std::string_view node_id,
                                                            bool check_own);

    SSL_CTX* ctx_;
    std::string identity_;
    std::string not_after_;
};

/// The node name a certificate carries: its first DNS subject alternative name, else its
/// common name; empty when it carries neither.
std::string certificate_identity(X509* cert);

/// A node's current credentials, shared by its shards; any thread.
class tls_credentials {
  public:
    explicit tls_credentials(std::shared_ptr<const tls_context> current)
        : current_(std::move(current)) {}
    std::shared_ptr<const tls_context> snapshot() const {
        std::lock_guard lock(mutex_);
        return current_;
    }
    void replace(std::shared_ptr<const tls_context> next) {
        std::lock_guard lock(mutex_);
        current_ = std::move(next);
    }

  private:
    mutable std::mutex mutex_;
    std::shared_ptr<const tls_context> current_;
};

/// The key log callback every context installs: hands a session's application traffic
/// secrets to its tls_guard (tls_guard.cc), which protects the records itself from then on.
void tls_keylog_sink(const SSL* ssl, const char* line);

/// OpenSSL's last error on this thread, as text (and the queue cleared).
std::string openssl_error_text();

}  // namespace ringmesh::transport::secure
