#pragma once
// The one retry driver. A window's attempts (in the daemon and in backfill
// alike: fetch, parse and load) go through run_with_retries(); whether a
// failure is tried again is its kind's rule (model/failure.hpp), and how long
// to wait first is retry_delay().

#include "config/config.hpp"
#include "model/failure.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <random>

namespace comeback {

// Pure: the delay before retry n (1-based), exponential with full jitter:
// uniform in [0, min(max_delay, base_delay * 2^(n-1))]. A server's Retry-After
// (capped by max_retry_after) takes precedence when given.
std::chrono::milliseconds retry_delay(const retry_config& config, unsigned retry,
                                      std::optional<std::chrono::milliseconds> retry_after,
                                      std::mt19937_64& rng);

// One attempt (1-based number): nullopt when it succeeded, else its failure.
// Each call starts afresh (a new request, a new parser, a new transaction).
using attempt_step =
    std::function<boost::asio::awaitable<std::optional<failure>>(unsigned attempt)>;

// Told about every failed attempt before anything else happens: `next_delay`
// is the wait before the next attempt, or nullopt when this failure is final
// (not retryable, or the last attempt allowed).
using failure_observer = std::function<boost::asio::awaitable<void>(
    unsigned attempt, const failure& failed, std::optional<std::chrono::milliseconds> next_delay)>;

// Waits between attempts; false stops retrying (e.g. the process is shutting down).
using retry_wait = std::function<boost::asio::awaitable<bool>(std::chrono::milliseconds delay)>;

struct retry_result {
    unsigned attempts = 0;                  // attempts made, at least one
    std::optional<failure> last_failure;    // empty: the last attempt succeeded
    bool ok() const { return !last_failure; }
};

// Up to config.max_attempts attempts (at least one); stops at the first
// success, at a failure whose kind is not retryable, or when `wait` says stop.
// Throws what `attempt` or `on_failure` throw (a programming error is never
// retried).
boost::asio::awaitable<retry_result> run_with_retries(const retry_config& config,
                                                      std::mt19937_64& rng,
                                                      const attempt_step& attempt,
                                                      const failure_observer& on_failure,
                                                      const retry_wait& wait);

// A retry_wait on a timer of `executor` that always runs out.
retry_wait timer_wait(boost::asio::any_io_executor executor);

}  // namespace comeback
