#include "observability/status_page_cache.hpp"

namespace comeback {

status_page_cache::status_page_cache(std::chrono::milliseconds interval,
                                     std::function<void()> start_read,
                                     std::function<instant()> clock)
    : interval_(interval), start_read_(std::move(start_read)), clock_(std::move(clock)) {}

std::string status_page_cache::page(std::string_view target) {
    const instant now = clock_();
    bool read = false;
    std::shared_ptr<const status_snapshot> shown;
    {
        std::lock_guard lock(mutex_);
        if (!reading_ && (!last_read_ || now - *last_read_ >= interval_)) {
            reading_ = true;
            last_read_ = now;
            read = true;
        }
        shown = snapshot_;
    }
    // Outside the lock: a read that finished at once may store() right away.
    if (read) start_read_();
    return render_status_page(*shown, status_page_number(target), now);
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
