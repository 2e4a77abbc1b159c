#include "engine/replication/raft_log.h"

#include <algorithm>

#include "engine/core/assert.h"

namespace ringmesh::replication {

void raft_log::reset(log_index index, term_t term) {
    entries_.clear();
    base_index_ = index;
    base_term_ = term;
}

std::optional<term_t> raft_log::term_at(log_index index) const noexcept {
    if (index == base_index_) return base_term_;
    if (index < base_index_ || index > last_index()) return std::nullopt;
    return entries_[index - base_index_ - 1].term;
}

const log_entry& raft_log::at(log_index index) const {
    RM_ASSERT(index > base_index_ && index <= last_index(), "log index out of range");
    return entries_[index - base_index_ - 1];
}

void raft_log::append(log_entry entry) {
    RM_ASSERT(entry.index == last_index() + 1, "appended entry leaves a gap");
    entries_.push_back(std::move(entry));
}

void raft_log::truncate_from(log_index index) {
    RM_ASSERT(index > base_index_, "truncating into the snapshot");
    if (index > last_index()) return;
    entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(index - base_index_ - 1),
                   entries_.end());
}

void raft_log::compact_through(log_index index) {
    if (index <= base_index_) return;
    RM_ASSERT(index <= last_index(), "compacting past the end");
    base_term_ = at(index).term;
    entries_.erase(entries_.begin(),
                   entries_.begin() + static_cast<std::ptrdiff_t>(index - base_index_));
    base_index_ = index;
}

std::vector<log_entry> raft_log::slice(log_index from, std::size_t max_entries,
                                       std::size_t max_bytes) const {
    std::vector<log_entry> out;
    if (from <= base_index_) return out;
    std::size_t bytes = 0;
    for (log_index i = from; i <= last_index() && out.size() < max_entries; ++i) {
        const log_entry& e = at(i);
        if (!out.empty() && bytes + e.data.size() > max_bytes) break;
        bytes += e.data.size();
        out.push_back(e);
    }
    return out;
}

log_index raft_log::first_index_of_term_at(log_index index) const {
    const term_t term = at(index).term;
    while (index > first_index() && at(index - 1).term == term)
        --index;
    return index;
}

log_index raft_log::last_index_with_term_at_most(term_t term, log_index at_most) const {
    log_index i = std::min(at_most, last_index());
    while (i > base_index_ && at(i).term > term)
        --i;
    return i;
}

}  // namespace ringmesh::replication
