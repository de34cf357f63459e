#include "sync/confirmer.hpp"

#include "load/database_failure.hpp"
#include "sync/db_workers.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <exception>
#include <vector>

namespace comeback {

namespace asio = boost::asio;
using done_channel = asio::experimental::channel<void(boost::system::error_code)>;

struct confirmer::entry {
    explicit entry(const asio::any_io_executor& executor) : done(executor, 1) {}
    unparsed_response response;
    std::function<std::string()> finish_digest;
    confirmation result;
    std::exception_ptr failed;  // the whole batch's
    done_channel done;
};

namespace {

// A refusal of one window (stale_fetch_error) as the pool hands on every
// database failure: a database_error of its kind.
std::exception_ptr classified(const std::exception_ptr& refused) {
    try {
        std::rethrow_exception(refused);
    } catch (const std::exception& error) {
        if (auto failure = classify_database_error(error, "the database")) {
            return std::make_exception_ptr(database_error(std::move(*failure)));
        }
        return std::current_exception();
    }
}

}  // namespace

confirmer::confirmer(db_workers& db, std::string schema, std::chrono::milliseconds gather)
    : db_(db), schema_(std::move(schema)), gather_(gather) {}

asio::awaitable<confirmer::verdict> confirmer::confirm(const window_key& key, const fetch_info& info,
                                                       std::optional<fetch_ticket> ticket,
                                                       std::function<std::string()>&& finish_digest) {
    const auto executor = co_await asio::this_coro::executor;
    auto waiting = std::make_shared<entry>(executor);
    waiting->response = {key, info, ticket};
    waiting->finish_digest = std::move(finish_digest);
    waiting_.push_back(waiting);
    // Destroyed while it waits (a command's frames go at its end): it leaves
    // the queue, so no later batch reads what its frame held. A batch already
    // on a database thread has read it by then: a command stops the pool's
    // threads before its frames go (sync/command_io.hpp).
    struct leave {
        std::deque<std::shared_ptr<entry>>& queue;
        const std::shared_ptr<entry>& waiting;
        ~leave() { std::erase(queue, waiting); }
    } leaving{waiting_, waiting};
    if (end_gathering_ && waiting_.size() >= gathered_enough) end_gathering_();
    if (!draining_) {
        draining_ = true;
        asio::co_spawn(executor, drain(), asio::detached);
    }
    co_await waiting->done.async_receive(asio::use_awaitable);
    if (waiting->failed) std::rethrow_exception(waiting->failed);
    if (waiting->result.refused) std::rethrow_exception(classified(waiting->result.refused));
    verdict answer{std::move(waiting->result.counts), std::move(waiting->response.info.response_digest)};
    co_return answer;
}

asio::awaitable<void> confirmer::drain() {
    std::vector<std::shared_ptr<entry>> batch;
    // Every window of the batch learns how it ended, however that is.
    auto finish = [&](std::exception_ptr failed) {
        for (const auto& taken : batch) {
            if (failed) taken->failed = failed;
            taken->done.try_send(boost::system::error_code{});
        }
        batch.clear();
    };
    try {
        if (gather_ > std::chrono::milliseconds::zero() && waiting_.size() < gathered_enough) {
            // Without a session: the others' work goes on meanwhile. A
            // window that makes the gathered enough ends the wait.
            asio::steady_timer gathering(co_await asio::this_coro::executor, gather_);
            end_gathering_ = [&gathering] { gathering.cancel(); };
            struct stop_gathering {
                std::function<void()>& end;
                ~stop_gathering() { end = nullptr; }
            } stopping{end_gathering_};
            co_await gathering.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        db_workers::session session = co_await db_.checkout();
        while (!waiting_.empty()) {
            // The longest waiting first, one window a customer (a customer's
            // loads are stamped one after another); the rest wait their turn.
            for (auto at = waiting_.begin(); at != waiting_.end() && batch.size() < max_batch;) {
                const bool customer_taken = std::any_of(batch.begin(), batch.end(), [&](const auto& taken) {
                    return taken->response.key.customer_id == (*at)->response.key.customer_id;
                });
                if (customer_taken) {
                    ++at;
                    continue;
                }
                batch.push_back(*at);
                at = waiting_.erase(at);
            }
            std::exception_ptr failed;
            try {
                co_await session.run([&](pqxx::connection& connection) {
                    std::vector<unparsed_response> responses;
                    responses.reserve(batch.size());
                    for (const auto& taken : batch) {
                        taken->response.info.response_digest = taken->finish_digest();
                        responses.push_back(taken->response);
                    }
                    std::vector<confirmation> results = confirm_unparsed(connection, schema_, responses);
                    for (std::size_t i = 0; i < batch.size(); ++i) batch[i]->result = std::move(results[i]);
                });
                ++batches_;
            } catch (...) {
                failed = std::current_exception();
            }
            finish(failed);
        }
    } catch (...) {
        // Only the checkout can fail here (its wait cancelled): whoever waits
        // learns it rather than waiting for ever.
        const std::exception_ptr failed = std::current_exception();
        batch.insert(batch.end(), waiting_.begin(), waiting_.end());
        waiting_.clear();
        finish(failed);
    }
    draining_ = false;
}

}  // namespace comeback
