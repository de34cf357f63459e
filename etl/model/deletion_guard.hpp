#pragma once
// When a window's load may soft-delete what it no longer sees. A window is
// replaced by what the API says about it, so one bad response (an empty
// array, a silent row cap, an expired view) could delete most of it at once:
// such a load is held instead (see window_loader), and the operator told.

#include <chrono>
#include <cstddef>

namespace comeback {

// sync.deletion_guard.
struct deletion_guard_config {
    bool enabled = true;
    unsigned min_deleted = 20;  // a smaller deletion is never held
    double max_fraction = 0.5;  // of the window's live stored comebacks
    // Held deletions are applied once fetches spanning this long keep
    // returning the same content; 0: never by themselves.
    std::chrono::seconds accept_after{24 * 3600};

    // Whether deleting `deletions` of a window's `live` stored comebacks must
    // wait: more than max_fraction of them, and at least min_deleted.
    bool holds(std::size_t deletions, std::size_t live) const {
        return enabled && deletions >= min_deleted &&
               static_cast<double>(deletions) > max_fraction * static_cast<double>(live);
    }
};

}  // namespace comeback
