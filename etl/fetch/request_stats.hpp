#pragma once
// What the request limiter (request_limiter.hpp) says about the requests
// waiting for their start, for /metrics: written by the limiter on the I/O
// thread, read by the metrics registry on whichever thread renders. Shared by
// every client `run` makes (a reload makes a new one), so the figures carry on.

#include <atomic>
#include <cstdint>

namespace comeback {

struct request_start_stats {
    std::atomic<std::uint64_t> waiting{0};            // requests waiting for a start now
    std::atomic<std::uint64_t> started{0};            // requests started so far
    std::atomic<std::uint64_t> wait_microseconds{0};  // their waits for a start, in all
};

}  // namespace comeback
