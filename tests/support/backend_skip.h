// The one reason a backend test may skip: the backend said "not supported here"
// (transport_errc::not_supported: no io_uring in this kernel, DPDK without a usable port).
// Any other setup error is a failure of the test, never a skip.
#pragma once

#include <gtest/gtest.h>

#include "transport/address.h"

namespace ringmesh::test_support {

/// Whether a failed backend setup means "unsupported here".
inline bool unsupported(const error& e) {
    return e.code == transport::transport_errc::not_supported;
}

}  // namespace ringmesh::test_support

/// In a void function (SetUp, a test body): skips when `opened` (a failed result) is
/// "unsupported", fails otherwise; does nothing when it succeeded.
#define RM_SKIP_IF_UNSUPPORTED(opened, what)                                                    \
    do {                                                                                        \
        if (!(opened)) {                                                                        \
            if (::ringmesh::test_support::unsupported((opened).err()))                          \
                GTEST_SKIP() << what << " is not supported here: " << (opened).err().message(); \
            FAIL() << what << " failed to start: " << (opened).err().message();                 \
        }                                                                                       \
    } while (false)
