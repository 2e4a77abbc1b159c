// A private certificate authority for `encrypted` clusters: makes a CA and node certificates
// (ECDSA P-256, SHA-256) whose name is the node id, as tls_context.h expects: the first DNS
// subject alternative name and the common name, usable as client and as server. The tests,
// the bench and `ringmesh_node certs` issue with it; a production cluster may use any CA
// that issues such certificates instead.
//
// A value type; not thread-safe (issue from one thread).
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "engine/core/result.h"
#include "transport/secure/tls_context.h"

namespace ringmesh::transport::secure {

/// A certificate's validity, in seconds from now (negative: in the past, to make an expired
/// certificate on purpose).
struct cert_validity {
    std::int64_t not_before_s = -3600;
    std::int64_t not_after_s = std::int64_t{365} * 24 * 3600;
};

class cert_issuer {
  public:
    /// A new CA named `name` with a fresh key.
    static result<cert_issuer> create(std::string_view name, cert_validity validity = {});
    /// A CA saved earlier (its certificate and key, PEM).
    static result<cert_issuer> from_pem(const std::string& cert_pem, const std::string& key_pem);

    /// A certificate and key for node `node_id`, signed by this CA; `ca` is this CA's
    /// certificate, so the result loads as one node's credentials.
    result<tls_pem> issue(std::string_view node_id, cert_validity validity = {}) const;

    const std::string& cert_pem() const noexcept { return cert_pem_; }
    std::string key_pem() const;

  private:
    cert_issuer(std::shared_ptr<X509> cert, std::shared_ptr<EVP_PKEY> key);
    std::shared_ptr<X509> cert_;
    std::shared_ptr<EVP_PKEY> key_;
    std::string cert_pem_;
};

}  // namespace ringmesh::transport::secure
