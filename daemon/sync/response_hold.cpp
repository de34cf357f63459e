#include "sync/response_hold.hpp"

#include <algorithm>
#include <utility>

namespace comeback {

namespace {

// A buffer smaller than this comes from the allocator's own free lists
// cheaply: not worth keeping.
constexpr std::size_t smallest_spare = 64 * 1024;

}  // namespace

held_response::held_response(response_hold* hold, std::size_t expected)
    : hold_(hold), holding_(hold != nullptr), expected_(expected) {
    if (hold_) ++hold_->holders;
}

held_response::~held_response() {
    release();
    if (hold_ && --hold_->holders == 0) {
        hold_->spare = {};
        hold_->spare_bytes = 0;
    }
}

bool held_response::keep(std::string_view chunk) {
    if (!holding_) return false;
    if (bytes_.size() + chunk.size() > hold_->per_response ||
        hold_->held + chunk.size() > hold_->total) {
        holding_ = false;
        return false;
    }
    if (bytes_.empty()) {
        const std::size_t want = std::max(chunk.size(), std::min(expected_, hold_->per_response));
        // The smallest spare that takes `want` whole.
        auto& spare = hold_->spare;
        auto best = spare.end();
        for (auto it = spare.begin(); it != spare.end(); ++it) {
            if (it->capacity() >= want && (best == spare.end() || it->capacity() < best->capacity())) best = it;
        }
        if (best != spare.end()) {
            hold_->spare_bytes -= best->capacity();
            bytes_.swap(*best);
            std::swap(*best, spare.back());
            spare.pop_back();
        } else {
            // A quarter more than asked: the next window's response, a little
            // larger than this one, still fits once this buffer is a spare.
            bytes_.reserve(std::min(want + want / 4, std::max(want, hold_->per_response)));
        }
    }
    bytes_.append(chunk);
    hold_->held += chunk.size();
    hold_->peak = std::max(hold_->peak, hold_->held);
    drop_spares_beyond(hold_->total - hold_->held);
    return true;
}

std::string held_response::take() {
    if (hold_) hold_->held -= bytes_.size();
    std::string bytes;
    bytes.swap(bytes_);
    holding_ = false;
    return bytes;
}

void held_response::release() {
    if (hold_) {
        hold_->held -= bytes_.size();
        const std::size_t room = hold_->total - hold_->held;
        if (bytes_.capacity() >= smallest_spare && hold_->spare_bytes + bytes_.capacity() <= room) {
            bytes_.clear();
            hold_->spare_bytes += bytes_.capacity();
            hold_->spare.push_back(std::exchange(bytes_, std::string()));
        }
    }
    std::string().swap(bytes_);
    holding_ = false;
}

void held_response::drop_spares_beyond(std::size_t room) {
    auto& spare = hold_->spare;
    while (hold_->spare_bytes > room && !spare.empty()) {
        hold_->spare_bytes -= spare.back().capacity();
        spare.pop_back();
    }
}

}  // namespace comeback
