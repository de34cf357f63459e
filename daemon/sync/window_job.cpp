#include "sync/window_job.hpp"

#include "fetch/vitec_client.hpp"
#include "model/timestamp.hpp"
#include "normalize/normalize.hpp"
#include "observability/logging.hpp"
#include "observability/metrics.hpp"
#include "parse/response_parser.hpp"
#include "sync/db_workers.hpp"
#include "sync/shutdown.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <pqxx/pqxx>

#include <exception>
#include <functional>
#include <vector>

namespace comeback {

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;

namespace {

// What travels from the parser to the loader: a batch, or the end of the body.
struct load_message {
    normalized_batch batch;
    std::vector<rejection> rejections;
    std::optional<fetch_info> finish;  // set on the last message only
};
using load_queue = asio::experimental::channel<void(boost::system::error_code, load_message)>;
using done_channel = asio::experimental::channel<void(boost::system::error_code)>;

struct attempt_result {
    std::optional<load_counts> counts;  // committed
    std::optional<fetch_kind> kind;     // a fetch failure
    bool retryable = false;
    int http_status = 0;
    std::string error;
    std::optional<std::chrono::milliseconds> retry_after;
};

window_key key_of(const config& cfg, const customer_config& customer, const window& w) {
    return {customer.id, cfg.sync.date_criteria, w.first_day, w.end_day, w.from, w.to};
}

// The loader's side: takes batches off the queue on a database thread, inside
// one transaction, and commits when the end of the body arrives. Anything else
// (a closed queue, a database error) leaves the transaction to roll back.
asio::awaitable<void> load_side(db_workers::session& session, load_queue& queue,
                                done_channel& done, const std::string& schema,
                                const window_key& key, load_options options,
                                std::optional<load_counts>& counts,
                                std::string& load_error) {
    std::unique_ptr<window_loader> loader;
    // A failed step destroys the loader at once, on the same thread and while
    // its connection still exists: session.run() drops a broken connection
    // right after the step, and the loader must not outlive it.
    auto step = [&](pqxx::connection& connection, const std::function<void()>& work) {
        try {
            if (!loader) loader = std::make_unique<window_loader>(connection, schema, key, options);
            work();
        } catch (...) {
            loader.reset();
            throw;
        }
    };
    try {
        for (;;) {
            load_message message = co_await queue.async_receive(asio::use_awaitable);
            if (message.finish) {
                co_await session.run([&](pqxx::connection& connection) {
                    step(connection, [&] { counts = loader->commit(*message.finish); });
                });
                break;
            }
            co_await session.run([&](pqxx::connection& connection) {
                step(connection, [&] { loader->add(message.batch, message.rejections); });
            });
        }
    } catch (const boost::system::system_error&) {
        // The queue was closed: the fetch failed, nothing is committed.
    } catch (const std::exception& error) {
        load_error = std::string("database: ") + error.what();
        queue.close();  // the fetch side stops at its next send
    }
    if (loader) {
        // Rolling back is a round trip: keep it off the I/O thread too.
        try {
            co_await session.run([&](pqxx::connection&) { loader.reset(); });
        } catch (const std::exception&) {
            loader.reset();
        }
    }
    co_await done.async_send(boost::system::error_code{}, asio::use_awaitable);
}

asio::awaitable<attempt_result> attempt_window(window_context& context, const config& cfg,
                                               const customer_config& customer,
                                               const window& w, const window_key& key) {
    auto executor = co_await asio::this_coro::executor;
    db_workers::session session = co_await context.db.checkout();
    load_queue queue(executor, context.queue_batches);
    done_channel done(executor, 1);
    std::optional<load_counts> counts;
    std::string load_error;
    asio::co_spawn(executor,
                   load_side(session, queue, done, cfg.database.schema, key, context.load, counts,
                             load_error),
                   asio::detached);

    std::vector<row_batch> ready;
    parser_options options;
    options.api_zone = &find_zone(cfg.vitec.timezone);
    response_parser parser(options, [&](row_batch&& batch) { ready.push_back(std::move(batch)); });
    auto hand_on = [&]() -> asio::awaitable<void> {
        for (row_batch& batch : ready) {
            load_message message;
            message.batch = normalize(customer.id, batch.rows);
            message.rejections = std::move(batch.rejections);
            co_await queue.async_send(boost::system::error_code{}, std::move(message),
                                      asio::use_awaitable);
        }
        ready.clear();
    };
    const body_sink sink = [&](std::string_view chunk) -> asio::awaitable<void> {
        parser.feed(chunk);  // response_error marks the response broken
        co_await hand_on();
    };

    attempt_result result;
    const window_request request{customer.id, &customer.password, w.from_text(), w.to_text(),
                                 cfg.sync.date_criteria.name()};
    try {
        fetch_result fetched = co_await context.client.fetch(request, sink);
        result.http_status = fetched.http_status;
        if (fetched.ok()) {
            try {
                parser.finish();
                co_await hand_on();
                load_message last;
                last.finish = fetch_info{fetched.http_status, fetched.duration, fetched.bytes};
                co_await queue.async_send(boost::system::error_code{}, std::move(last),
                                          asio::use_awaitable);
            } catch (const response_error& error) {
                result.kind = fetch_kind::broken_response;
                result.error = error.what();
            }
        } else {
            result.kind = fetched.failure->kind;
            result.error = fetched.failure->message;
            result.retry_after = fetched.failure->retry_after;
        }
    } catch (const boost::system::system_error&) {
        // Our own queue was closed under the sink: the load side failed and
        // says why in load_error.
    } catch (const std::exception& error) {
        result.kind = fetch_kind::transient;
        result.error = error.what();
    }
    if (result.kind || !load_error.empty()) queue.close();
    co_await done.async_receive(asio::use_awaitable);

    if (counts) {
        result.counts = counts;
        result.kind.reset();
        result.error.clear();
    } else if (result.kind) {
        result.retryable = is_retryable(*result.kind);
    } else {
        // A database failure: retried like a transient fetch failure, since a
        // dropped connection or a serialization conflict usually passes.
        result.error = load_error.empty() ? "the window was not committed" : load_error;
        result.retryable = true;
    }
    co_return result;
}

asio::awaitable<void> record_failure(window_context& context, const config& cfg,
                                     const window_key& key, const attempt_result& attempt) {
    try {
        db_workers::session session = co_await context.db.checkout();
        co_await session.run([&](pqxx::connection& connection) {
            record_window_failure(connection, cfg.database.schema, key, attempt.http_status,
                                  attempt.error);
        });
    } catch (const std::exception& error) {
        log_event(spdlog::level::err, "ledger.record_failed",
                  {{"customer", key.customer_id}, {"error", error.what()}});
    }
}

}  // namespace

asio::awaitable<window_outcome> sync_window(window_context& context, const config& cfg,
                                            const customer_config& customer, const window& w) {
    const window_key key = key_of(cfg, customer, w);
    const auto started = steady::now();
    const retry_config& retry = cfg.vitec.retry;
    const unsigned max_attempts = std::max(1u, retry.max_attempts);
    window_outcome outcome;

    for (unsigned attempt = 1; attempt <= max_attempts; ++attempt) {
        attempt_result result = co_await attempt_window(context, cfg, customer, w, key);
        outcome.attempts = attempt;
        outcome.http_status = result.http_status;
        if (context.metrics && (result.counts || result.kind)) {
            context.metrics->count_request(customer.id,
                                           to_string(result.kind.value_or(fetch_kind::rows)));
        }
        if (result.counts) {
            outcome.committed = true;
            outcome.counts = *result.counts;
            outcome.kind.reset();
            outcome.error.clear();
            const load_counts& c = outcome.counts;
            log_event(spdlog::level::info, "window.loaded",
                      {{"customer", customer.id},
                       {"from", w.from_text()},
                       {"to", w.to_text()},
                       {"attempts", attempt},
                       {"rows", c.rows_seen},
                       {"confirmed", c.confirmed},
                       {"inserted", c.inserted},
                       {"updated", c.updated},
                       {"deleted", c.deleted},
                       {"undeleted", c.undeleted},
                       {"rejected", c.rejected}});
            break;
        }
        outcome.kind = result.kind;
        outcome.error = result.error;
        co_await record_failure(context, cfg, key, result);

        const bool last = attempt == max_attempts || !result.retryable;
        log_event(last ? spdlog::level::warn : spdlog::level::info,
                  last ? "window.failed" : "window.retry",
                  {{"customer", customer.id},
                   {"from", w.from_text()},
                   {"to", w.to_text()},
                   {"attempt", attempt},
                   {"kind", result.kind ? std::string(to_string(*result.kind)) : "database"},
                   {"http_status", result.http_status},
                   {"error", result.error}});
        if (last) break;
        const auto delay = retry_delay(retry, attempt, result.retry_after, context.rng);
        if (!co_await context.shutdown.sleep(delay)) break;  // shutting down: no new attempt
    }

    outcome.duration = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - started);
    if (context.metrics) {
        if (outcome.committed) {
            const load_counts& c = outcome.counts;
            context.metrics->window_succeeded(customer.id,
                                              {c.inserted, c.updated, c.deleted, c.undeleted, c.rejected, c.confirmed},
                                              outcome.duration);
        } else {
            context.metrics->window_failed(customer.id, outcome.duration);
        }
    }
    co_return outcome;
}

}  // namespace comeback
