// Retrying one window: the back-off rule and the driver around vitec_client::fetch.

#include "fetch/vitec_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
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

net::awaitable<fetch_result> fetch_with_retries(vitec_client& client, const window_request& request,
                                                const sink_factory& make_sink,
                                                const retry_config& config, std::mt19937_64& rng,
                                                const retry_observer& on_retry) {
    const unsigned max_attempts = std::max(1u, config.max_attempts);
    net::steady_timer pause(co_await net::this_coro::executor);
    for (unsigned attempt = 1;; ++attempt) {
        auto sink = make_sink();
        auto result = co_await client.fetch(request, sink);
        result.attempts = attempt;
        if (result.ok() || !is_retryable(result.kind()) || attempt >= max_attempts) co_return result;
        auto delay = retry_delay(config, attempt, result.failure->retry_after, rng);
        if (on_retry) on_retry(attempt, result, delay);
        pause.expires_after(delay);
        co_await pause.async_wait(net::as_tuple(net::use_awaitable));
    }
}

}  // namespace comeback
