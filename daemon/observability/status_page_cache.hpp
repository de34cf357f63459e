#pragma once
// What stands between the status page's requests and the database: the last
// snapshot read, and the rule that reads a new one at most once per refresh
// interval, however often the page is requested. A request never waits for
// the database: it is answered from the snapshot it finds (saying when that
// was read) and, when the last read began and ended more than the interval
// ago, starts one read in the background for the next request.

#include "observability/status_page.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace comeback {

// How often the page may read the database.
inline constexpr std::chrono::seconds status_page_refresh{5};
// How many of the pages asked for lately a read keeps the strips of.
inline constexpr std::size_t status_pages_kept = 8;

class status_page_cache {
public:
    // `start_read` begins one read of the database, for the strips of the
    // pages it is given (the status_pages_kept asked for last, the latest
    // first), and returns at once; the read ends by calling store() or
    // store_failure(), from any thread. It is never called while a read is
    // under way, nor sooner than `interval` after the previous read began or
    // ended. `clock` gives the time (tests pass their own).
    using read_starter = std::function<void(std::vector<std::size_t> pages)>;
    status_page_cache(std::chrono::milliseconds interval, read_starter start_read,
                      std::function<instant()> clock);

    // The page for a request target ("/?page=2"). Thread-safe; never blocks on
    // the database.
    std::string page(std::string_view target);

    // A read finished. `snapshot.read_at` is when it began.
    void store(status_snapshot snapshot);
    // A read failed: the page keeps the last snapshot and says why it is old.
    // `error` must hold no secret (database errors here never do).
    void store_failure(std::string error);

private:
    std::chrono::milliseconds interval_;
    read_starter start_read_;
    std::function<instant()> clock_;
    std::mutex mutex_;
    // Shared with requests rendering it, so a request copies no customer.
    std::shared_ptr<const status_snapshot> snapshot_ = std::make_shared<status_snapshot>();
    std::optional<instant> last_read_;  // when the last read began, then when it ended
    bool reading_ = false;
    std::vector<std::size_t> pages_asked_;  // the latest first, at most status_pages_kept
};

}  // namespace comeback
