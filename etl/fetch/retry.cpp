// The back-off rule and the one retry driver.

#include "fetch/retry.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace comeback {

namespace net = boost::asio;

std::chrono::milliseconds retry_delay(const retry_config& config, unsigned retry,
                                      std::optional<std::chrono::milliseconds> retry_after,
                                      std::mt19937_64& rng) {
    if (retry_after) return std::clamp(*retry_after, std::chrono::milliseconds{0}, config.max_retry_after);
    // base * 2^(retry-1), computed in a way that cannot overflow for any retry count.
    const auto max_delay = std::max(config.max_delay, std::chrono::milliseconds{0});
    auto ceiling = std::max(config.base_delay, std::chrono::milliseconds{0});
    for (unsigned n = 1; n < retry && ceiling < max_delay; ++n) ceiling *= 2;
    ceiling = std::min(ceiling, max_delay);
    // Full jitter: anywhere between zero and the ceiling, so clients that failed
    // together do not come back together.
    std::uniform_int_distribution<std::chrono::milliseconds::rep> pick(0, ceiling.count());
    return std::chrono::milliseconds(pick(rng));
}

net::awaitable<retry_result> run_with_retries(const retry_config& config, std::mt19937_64& rng,
                                              const attempt_step& attempt,
                                              const failure_observer& on_failure,
                                              const retry_wait& wait) {
    const unsigned max_attempts = std::max(1u, config.max_attempts);
    retry_result result;
    for (unsigned n = 1;; ++n) {
        result.attempts = n;
        result.last_failure = co_await attempt(n);
        if (!result.last_failure) co_return result;
        std::optional<std::chrono::milliseconds> delay;
        if (is_retryable(result.last_failure->kind) && n < max_attempts)
            delay = retry_delay(config, n, result.last_failure->retry_after, rng);
        if (on_failure) co_await on_failure(n, *result.last_failure, delay);
        if (!delay || !co_await wait(*delay)) co_return result;
    }
}

retry_wait timer_wait(net::any_io_executor executor) {
    return [executor](std::chrono::milliseconds delay) -> net::awaitable<bool> {
        net::steady_timer timer(executor, delay);
        co_await timer.async_wait(net::as_tuple(net::use_awaitable));
        co_return true;
    };
}

}  // namespace comeback
