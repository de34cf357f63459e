#include "observability/progress.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace comeback {

double progress_tracker::rate(clock::time_point now) const {
    const std::chrono::duration<double> elapsed = now - started_;
    if (done_ == 0 || elapsed.count() <= 0) return 0;
    return static_cast<double>(done_) / elapsed.count();
}

std::string progress_tracker::eta_text(clock::time_point now) const {
    const double per_second = rate(now);
    if (per_second <= 0 || planning_) return "?";
    const auto left = static_cast<double>(total_ - std::min(done_, total_)) / per_second;
    return human_duration(std::chrono::seconds(static_cast<std::int64_t>(left + 0.5)));
}

std::string progress_tracker::bar(clock::time_point now, std::size_t width) const {
    std::string tail = fmt::format(" {}/{}{} windows  {} rows  {:.1f} win/s  ETA {}", done_, total_,
                                   planning_ ? "+" : "", rows_, rate(now), eta_text(now));
    if (failed_ > 0) tail += fmt::format("  {} failed", failed_);
    const std::size_t room = width > tail.size() + 12 ? width - tail.size() - 2 : 10;
    // Nothing to do is done; nothing planned yet is not.
    const std::size_t filled = total_ == 0 ? (planning_ ? 0 : room)
                                           : static_cast<std::size_t>(room * std::min(done_, total_) / total_);
    return "[" + std::string(filled, '#') + std::string(room - filled, '.') + "]" + tail;
}

std::string human_duration(std::chrono::seconds duration) {
    const auto total = duration.count();
    if (total >= 3600) return fmt::format("{}h{:02}m", total / 3600, (total % 3600) / 60);
    if (total >= 60) return fmt::format("{}m{:02}s", total / 60, total % 60);
    return fmt::format("{}s", total);
}

}  // namespace comeback
