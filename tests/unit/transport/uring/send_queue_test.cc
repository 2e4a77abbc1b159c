// A connection's send queue: copied and in-place ranges leave in order, short sends resume
// where they stopped, and an in-place range's owner is held exactly until it is sent.
#include "transport/uring/send_queue.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace ringmesh::transport {
namespace {

std::span<const std::byte> bytes_of(const std::string& s) {
    return std::as_bytes(std::span(s.data(), s.size()));
}

std::string gathered(const send_queue& q) {
    std::vector<iovec> iov;
    q.gather(iov);
    std::string out;
    for (const iovec& v : iov)
        out.append(static_cast<const char*>(v.iov_base), v.iov_len);
    return out;
}

TEST(SendQueueTest, CopiesCoalesceAndLargeRangesStayInPlaceInOrder) {
    const std::string big(send_queue::min_bytes_in_place, 'B');
    auto owner = std::make_shared<std::string>(big);
    send_queue q;
    q.append_copy(bytes_of("ab"));
    q.append_copy(bytes_of("cd"));
    q.append_in_place(bytes_of(*owner), owner);
    q.append_in_place(bytes_of("small"), owner);  // too small to be worth an iovec: copied
    q.append_copy(bytes_of("!"));
    std::vector<iovec> iov;
    EXPECT_EQ(q.gather(iov), 3u);  // "abcd", the big range, "small!"
    EXPECT_EQ(iov[1].iov_base, owner->data());
    EXPECT_EQ(gathered(q), "abcd" + big + "small!");
    EXPECT_EQ(owner.use_count(), 2);
}

TEST(SendQueueTest, ShortSendsResumeMidRangeAndReleaseOwnersOnceSent) {
    const std::string big(send_queue::min_bytes_in_place + 10, 'x');
    auto owner = std::make_shared<std::string>(big);
    send_queue q;
    q.append_copy(bytes_of("head"));
    q.append_in_place(bytes_of(*owner), owner);
    q.append_copy(bytes_of("tail"));
    q.consume(2);
    EXPECT_EQ(gathered(q), "ad" + big + "tail");
    q.consume(2 + 5);
    EXPECT_EQ(gathered(q), big.substr(5) + "tail");
    EXPECT_EQ(owner.use_count(), 2);  // still partly unsent
    q.consume(big.size() - 5);
    EXPECT_EQ(owner.use_count(), 1);  // wholly sent: let go
    EXPECT_EQ(gathered(q), "tail");
    q.consume(4);
    EXPECT_TRUE(q.empty());
}

}  // namespace
}  // namespace ringmesh::transport
