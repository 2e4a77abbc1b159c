// The vocabulary of the Raft core: ids, log entries, configurations, snapshots and the
// messages replicas exchange. Plain values; the codec (raft_codec.h) turns messages into
// their wire form (schemas/raft.fbs) and back.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace ringmesh::replication {

/// A replica's id within the cluster; 0 means "none".
using node_id = std::uint64_t;
/// A Raft group's id on a node; several groups share a node's transport.
using group_id = std::uint32_t;
using term_t = std::uint64_t;
using log_index = std::uint64_t;

inline constexpr node_id no_node = 0;

enum class entry_kind : std::uint8_t {
    command = 0,  ///< application data
    no_op = 1,    ///< appended by a new leader so that it commits an entry of its own term
    config = 2,   ///< a membership change; `data` holds the encoded group_members
};

struct log_entry {
    term_t term = 0;
    log_index index = 0;
    entry_kind kind = entry_kind::command;
    std::vector<std::byte> data;
    friend bool operator==(const log_entry&, const log_entry&) = default;
};

/// Who is in a group: voters decide elections and commits; learners receive the log and
/// catch up before promotion, but neither vote nor count towards a quorum.
struct group_members {
    std::vector<node_id> voters;
    std::vector<node_id> learners;

    bool is_voter(node_id id) const {
        return std::find(voters.begin(), voters.end(), id) != voters.end();
    }
    bool is_learner(node_id id) const {
        return std::find(learners.begin(), learners.end(), id) != learners.end();
    }
    bool contains(node_id id) const { return is_voter(id) || is_learner(id); }
    std::size_t quorum() const { return voters.size() / 2 + 1; }
    friend bool operator==(const group_members&, const group_members&) = default;
};

/// The body of a config entry: voter count, voters, learner count, learners, little-endian.
std::vector<std::byte> encode_members(const group_members& members);
/// Nothing when the bytes are not a well-formed list (or hold over max_group_members ids, a
/// zero id or a repeated one).
std::optional<group_members> decode_members(std::span<const std::byte> bytes);
inline constexpr std::size_t max_group_members = 1024;

/// One membership change at a time: the Raft dissertation's single-server changes.
struct member_change {
    enum class kind : std::uint8_t {
        add_learner = 0,  ///< a new replica joins as a non-voter and starts catching up
        promote = 1,      ///< a learner that has caught up becomes a voter
        remove = 2,       ///< a voter or learner leaves the group
    };
    kind what = kind::add_learner;
    node_id node = no_node;
};

/// What a snapshot covers: the state after applying every entry up to `index`.
struct snapshot_meta {
    log_index index = 0;
    term_t term = 0;
    group_members members;  ///< the configuration in force at `index`
    std::uint64_t size_bytes = 0;
    friend bool operator==(const snapshot_meta&, const snapshot_meta&) = default;
};

/// What must survive a crash besides the log: persisted before any message that depends on it
/// leaves the node (a vote, an append acknowledgement).
struct hard_state {
    term_t term = 0;
    node_id voted_for = no_node;
    log_index commit = 0;
    friend bool operator==(const hard_state&, const hard_state&) = default;
};

enum class message_kind : std::uint8_t {
    vote_request = 1,     ///< pre-vote or vote
    vote_reply = 2,       ///< `reject` false: granted
    append = 3,           ///< entries after (prev_index, prev_term), and the leader's commit
    append_reply = 4,     ///< success: `index` is the highest index now matching the leader
    heartbeat = 5,        ///< the leader's commit and a read-index round (`context`)
    heartbeat_reply = 6,  ///< echoes `context`
    snapshot = 7,         ///< one chunk of a snapshot install
    snapshot_reply = 8,   ///< the next offset the follower wants (or a restart at 0)
    timeout_now = 9,      ///< leadership transfer: campaign at once, bypassing pre-vote
};
const char* to_string(message_kind kind) noexcept;

/// One message between two replicas of a group. Fields beyond the common ones are meaningful
/// only for the kinds named beside them.
struct raft_message {
    message_kind kind = message_kind::heartbeat;
    group_id group = 0;
    node_id from = no_node;
    node_id to = no_node;
    term_t term = 0;

    // vote_request / vote_reply
    bool pre_vote = false;
    bool transfer = false;  ///< a campaign asked for by the leader: bypasses leader stickiness
    log_index last_log_index = 0;
    term_t last_log_term = 0;

    // append: entries follow (prev_index, prev_term)
    log_index prev_index = 0;
    term_t prev_term = 0;
    log_index commit = 0;  ///< also heartbeat
    std::vector<log_entry> entries;

    // replies
    bool reject = false;
    log_index index = 0;  ///< append_reply: matched through; snapshot_reply: next offset's index
    log_index hint_index = 0;  ///< append_reply reject: where the follower's log diverges
    term_t hint_term = 0;      ///< append_reply reject: the term of the follower's entry there

    std::uint64_t context = 0;  ///< heartbeat(_reply): the read-index round it belongs to

    // snapshot
    snapshot_meta snapshot;
    std::uint64_t offset = 0;  ///< snapshot: this chunk's offset; snapshot_reply: next wanted
    bool last_chunk = false;
    /// The chunk's bytes. The core names a chunk by offset and `chunk_bytes` and leaves
    /// `chunk` empty; whoever holds the snapshot file fills it in before the message is sent,
    /// so the core never reads a file.
    std::uint32_t chunk_bytes = 0;
    std::vector<std::byte> chunk;
};

}  // namespace ringmesh::replication
