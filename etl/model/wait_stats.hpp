#pragma once
// How long work waited for a bounded resource, for /metrics: the request
// limiter's starts (fetch/request_limiter.hpp) and the database pool's
// sessions (daemon/sync/db_workers.hpp). Written by their owner on the I/O
// thread, read by the metrics registry on whichever thread renders. `run`
// keeps one for each for its whole life (a reload's new client counts into
// the same), so the counters only go up.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

namespace comeback {

struct wait_stats {
    std::atomic<std::uint64_t> waiting{0};            // waiting now
    std::atomic<std::uint64_t> started{0};            // given the resource so far, waited or not
    std::atomic<std::uint64_t> wait_microseconds{0};  // their waits, in all
};

// One wait, counted in `waiting` while it lasts and added to
// `wait_microseconds` when it ends, however it ends (a coroutine frame
// destroyed while suspended included). Null stats: counts nothing.
class counted_wait {
public:
    explicit counted_wait(std::shared_ptr<wait_stats> stats) : stats_(std::move(stats)) {
        if (stats_) ++stats_->waiting;
    }
    ~counted_wait() {
        if (!stats_) return;
        --stats_->waiting;
        stats_->wait_microseconds +=
            std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - asked_)
                .count();
    }
    counted_wait(const counted_wait&) = delete;
    counted_wait& operator=(const counted_wait&) = delete;

private:
    std::shared_ptr<wait_stats> stats_;
    std::chrono::steady_clock::time_point asked_ = std::chrono::steady_clock::now();
};

}  // namespace comeback
