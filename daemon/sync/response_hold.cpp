#include "sync/response_hold.hpp"

#include <malloc.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace comeback {

namespace {

// A buffer smaller than this comes from the allocator's own free lists
// cheaply: not worth keeping.
constexpr std::size_t smallest_spare = 64 * 1024;
// The first buffer of a response of unknown size.
constexpr std::size_t first_room = 8 * 1024;

}  // namespace

void keep_held_buffers_mapped() {
    constexpr int kept = 8 * 1024 * 1024;
    if (std::getenv("MALLOC_MMAP_THRESHOLD_") == nullptr) ::mallopt(M_MMAP_THRESHOLD, kept);
    if (std::getenv("MALLOC_TRIM_THRESHOLD_") == nullptr) ::mallopt(M_TRIM_THRESHOLD, kept);
}

held_bytes::held_bytes(std::size_t capacity)
    : data_(std::make_unique_for_overwrite<char[]>(capacity)), capacity_(capacity) {}

void held_bytes::reserve(std::size_t capacity) {
    if (capacity <= capacity_) return;
    auto larger = std::make_unique_for_overwrite<char[]>(capacity);
    if (size_ > 0) std::memcpy(larger.get(), data_.get(), size_);
    data_ = std::move(larger);
    capacity_ = capacity;
}

void held_bytes::append(std::string_view bytes) {
    if (bytes.size() > room()) throw std::logic_error("held_bytes::append: no room for the bytes");
    if (!bytes.empty()) std::memcpy(end(), bytes.data(), bytes.size());
    size_ += bytes.size();
}

held_response::held_response(response_hold* hold, std::size_t expected)
    : hold_(hold), holding_(hold != nullptr), expected_(expected) {
    if (hold_) ++hold_->holders;
}

held_response::~held_response() {
    release();
    if (hold_ && --hold_->holders == 0) {
        std::vector<held_bytes>().swap(hold_->spare);
        hold_->spare_bytes = 0;
    }
}

void held_response::forget_room() {
    if (hold_) hold_->held -= offered_;
    offered_ = 0;
}

void held_response::start_buffer(std::size_t at_least) {
    // As large as the last response when one is known, else small (a
    // fleet's responses are a few KB; the client asks for room by its read
    // size, and a room may be smaller than asked), growing by doubling.
    const std::size_t want =
        std::max(at_least, expected_ > 0 ? std::min(expected_, hold_->per_response) : first_room);
    auto& spare = hold_->spare;
    auto best = spare.end();
    for (auto it = spare.begin(); it != spare.end(); ++it) {
        if (it->capacity() >= want && (best == spare.end() || it->capacity() < best->capacity())) best = it;
    }
    if (best != spare.end()) {
        hold_->spare_bytes -= best->capacity();
        bytes_ = std::move(*best);
        bytes_.clear();
        std::swap(*best, spare.back());
        spare.pop_back();
    } else {
        // A quarter more than asked: the next window's response, a little
        // larger than this one, still fits once this buffer is a spare.
        bytes_ = held_bytes(std::min(want + want / 4, std::max(want, hold_->per_response)));
    }
}

void held_response::grow(std::size_t needed) {
    // Doubling, never past the response's limit, which the callers checked
    // `needed` against.
    bytes_.reserve(std::min(std::max(2 * bytes_.capacity(), bytes_.size() + needed), hold_->per_response));
}

std::span<char> held_response::room(std::size_t wanted) {
    if (!holding_) return {};
    forget_room();
    const auto left = [](std::size_t limit, std::size_t used) { return used < limit ? limit - used : 0; };
    wanted = std::min({wanted, left(hold_->per_response, bytes_.size()), left(hold_->total, hold_->held)});
    if (wanted == 0) return {};
    if (bytes_.capacity() == 0) start_buffer(0);
    if (bytes_.room() == 0) grow(wanted);
    offered_ = std::min(wanted, bytes_.room());
    hold_->held += offered_;
    drop_spares_beyond(hold_->total - hold_->held);
    return {bytes_.end(), offered_};
}

bool held_response::keep(std::string_view chunk) {
    if (!holding_) return false;
    const char* room_start = bytes_.end();
    const bool in_room = offered_ > 0 && chunk.data() >= room_start &&
                         chunk.data() + chunk.size() <= room_start + offered_;
    forget_room();
    if (in_room) {
        // Counted when offered: within both limits.
        if (chunk.data() != room_start) std::memmove(bytes_.end(), chunk.data(), chunk.size());
        bytes_.commit(chunk.size());
    } else {
        if (bytes_.size() + chunk.size() > hold_->per_response ||
            hold_->held + chunk.size() > hold_->total) {
            holding_ = false;
            return false;
        }
        if (bytes_.capacity() == 0) start_buffer(chunk.size());
        if (bytes_.room() < chunk.size()) grow(chunk.size());
        bytes_.append(chunk);
    }
    hold_->held += chunk.size();
    hold_->peak = std::max(hold_->peak, hold_->held);
    drop_spares_beyond(hold_->total - hold_->held);
    return true;
}

held_bytes held_response::take() {
    forget_room();
    if (hold_) hold_->held -= bytes_.size();
    holding_ = false;
    return std::exchange(bytes_, held_bytes());
}

void held_response::release() {
    forget_room();
    if (hold_) {
        hold_->held -= bytes_.size();
        const std::size_t room = hold_->total - hold_->held;
        if (bytes_.capacity() >= smallest_spare && hold_->spare_bytes + bytes_.capacity() <= room) {
            bytes_.clear();
            hold_->spare_bytes += bytes_.capacity();
            hold_->spare.push_back(std::exchange(bytes_, held_bytes()));
        }
    }
    bytes_ = held_bytes();
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
