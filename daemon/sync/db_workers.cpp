#include "sync/db_workers.hpp"

#include "load/database_failure.hpp"
#include "sync/database.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <pqxx/pqxx>

#include <mutex>
#include <vector>

namespace comeback {

namespace asio = boost::asio;
using slot_channel = asio::experimental::channel<void(boost::system::error_code)>;

struct db_workers::shared_state {
    shared_state(asio::any_io_executor io, database_config config, std::size_t threads,
                 std::size_t connections)
        : config(std::move(config)), pool(threads), slots(io, connections) {}

    database_config config;
    asio::thread_pool pool;
    // A counting semaphore: a slot is taken by sending into the buffer and
    // given back by receiving from it. Touched from the io_context only.
    slot_channel slots;
    std::mutex idle_mutex;  // connections come back from pool threads too
    std::vector<std::unique_ptr<pqxx::connection>> idle;
    std::string database = "the database";  // for messages, once a connection opened; idle_mutex

    void opened(pqxx::connection& connection) {
        auto described = describe_database(connection);
        std::lock_guard lock(idle_mutex);
        database = std::move(described);
    }
    std::string database_text() {
        std::lock_guard lock(idle_mutex);
        return database;
    }
};

db_workers::db_workers(asio::any_io_executor io, database_config config, std::size_t threads,
                       std::size_t connections)
    : state_(std::make_shared<shared_state>(std::move(io), std::move(config), threads,
                                            connections)) {}

db_workers::~db_workers() { stop(); }

void db_workers::stop() {
    state_->pool.stop();
    state_->pool.join();
}

asio::awaitable<db_workers::session> db_workers::checkout() {
    co_await state_->slots.async_send(boost::system::error_code{}, asio::use_awaitable);
    session taken;
    taken.state_ = state_;
    taken.counted_ = true;
    std::lock_guard lock(state_->idle_mutex);
    if (!state_->idle.empty()) {
        taken.connection_ = std::move(state_->idle.back());
        state_->idle.pop_back();
    }
    co_return taken;
}

db_workers::session db_workers::dedicated() {
    session taken;
    taken.state_ = state_;
    return taken;
}

db_workers::session::session(session&& other) noexcept
    : state_(std::move(other.state_)),
      connection_(std::move(other.connection_)),
      counted_(std::exchange(other.counted_, false)) {}

db_workers::session& db_workers::session::operator=(session&& other) noexcept {
    if (this != &other) {
        session dropped(std::move(*this));
        state_ = std::move(other.state_);
        connection_ = std::move(other.connection_);
        counted_ = std::exchange(other.counted_, false);
    }
    return *this;
}

db_workers::session::~session() {
    if (!state_) return;
    if (connection_ && counted_) {
        std::lock_guard lock(state_->idle_mutex);
        state_->idle.push_back(std::move(connection_));
    }
    if (counted_) state_->slots.try_receive([](boost::system::error_code) {});
}

asio::awaitable<void> db_workers::session::run(std::function<void(pqxx::connection&)> work) {
    co_await asio::co_spawn(
        state_->pool.get_executor(),
        [this, &work]() -> asio::awaitable<void> {
            try {
                if (!connection_ || !connection_->is_open()) {
                    connection_ = open_database(state_->config);
                    state_->opened(*connection_);
                }
                work(*connection_);
            } catch (const std::exception& error) {
                auto classified = classify_database_error(error, state_->database_text());
                // Only a server that answered (a refusal, a conflict) leaves the
                // connection usable. Anything else (a lost or half-broken
                // connection, a usage error mid-protocol) leaves it in doubt:
                // never reuse it.
                if (!classified || classified->kind == failure_kind::database_lost) connection_.reset();
                if (classified) throw database_error(std::move(*classified));
                throw;
            } catch (...) {
                connection_.reset();
                throw;
            }
            co_return;
        },
        asio::use_awaitable);
}

}  // namespace comeback
