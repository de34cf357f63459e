#include "observability/status_page_cache.hpp"

#include <algorithm>

namespace comeback {

status_page_cache::status_page_cache(std::chrono::milliseconds interval, read_starter start_read,
                                     std::function<instant()> clock)
    : interval_(interval), start_read_(std::move(start_read)), clock_(std::move(clock)) {}

std::string status_page_cache::page(std::string_view target) {
    const instant now = clock_();
    const std::size_t page_number = status_page_number(target);
    std::optional<std::vector<std::size_t>> read;  // the pages of a read to start
    std::shared_ptr<const status_snapshot> shown;
    {
        std::lock_guard lock(mutex_);
        const auto seen = std::find(pages_asked_.begin(), pages_asked_.end(), page_number);
        if (seen != pages_asked_.end()) {
            std::rotate(pages_asked_.begin(), seen, seen + 1);
        } else {
            if (pages_asked_.size() == status_pages_kept) pages_asked_.pop_back();
            pages_asked_.insert(pages_asked_.begin(), page_number);
        }
        if (!reading_ && (!last_read_ || now - *last_read_ >= interval_)) {
            reading_ = true;
            last_read_ = now;
            read = pages_asked_;
        }
        shown = snapshot_;
    }
    // Outside the lock: a read that finished at once may store() right away.
    if (read) start_read_(std::move(*read));
    return render_status_page(*shown, page_number, now);
}

void status_page_cache::store(status_snapshot snapshot) {
    auto stored = std::make_shared<const status_snapshot>(std::move(snapshot));
    const instant now = clock_();
    std::lock_guard lock(mutex_);
    snapshot_ = std::move(stored);
    last_read_ = now;
    reading_ = false;
}

void status_page_cache::store_failure(std::string error) {
    const instant now = clock_();
    std::lock_guard lock(mutex_);
    auto failed = std::make_shared<status_snapshot>(*snapshot_);
    failed->read_error = std::move(error);
    failed->read_error_at = now;
    snapshot_ = std::move(failed);
    last_read_ = now;
    reading_ = false;
}

}  // namespace comeback
