#pragma once
// Statements of one transaction sent together, in one message and one round
// trip, where each statement run on its own costs one: the server runs them
// one after another without waiting for the client between them, and neither
// side wakes up in between. A small window's load needs the results of only
// three points (its start, its counts, its commit); sent statement by
// statement it was eight round trips, each a network hop's time while the
// window holds its session. (On the loopback bench the server's CPU did not
// move with them: its cost is executing the statements, docs/benchmarks.md,
// row 7.)
//
// The statements are the units' named statements (statement.hpp), prepared on
// the connection as sql::exec prepares them and run with EXECUTE, their
// parameters written as quoted literals that the server reads with the
// parameter types' input functions, as it reads the parameters sql::exec
// sends. A statement that must not share a message with others (one that is
// several statements, COPY, one whose failure the caller recovers from with
// a savepoint) is run on its own.
//
// batched_transaction is a read-committed transaction whose BEGIN travels in
// its first batch and whose COMMIT may travel in its last: everything run on
// it must go through a batch first (window_loader sends its batch before any
// statement it runs directly).

#include "load/statement.hpp"

#include <pqxx/pqxx>

#include <concepts>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace comeback::sql {

class batched_transaction final : public pqxx::dbtransaction {
public:
    batched_transaction(pqxx::connection_base& connection, const std::string& name);
    ~batched_transaction() noexcept override;

    batched_transaction(const batched_transaction&) = delete;
    batched_transaction& operator=(const batched_transaction&) = delete;

    // The first batch, with BEGIN, went to the server: from now on an abort
    // sends ROLLBACK.
    void begin_sent() { begin_sent_ = true; }
    // The COMMIT went with the last batch (statement_batch::add_commit):
    // commit() then only ends the transaction object.
    void commit_sent() { commit_sent_ = true; }

private:
    // BEGIN is the first command of the first batch.
    void do_begin() override {}
    // ROLLBACK, unless no batch was sent: the server has no transaction to
    // end then (a window whose fetch failed before its load began), and a
    // ROLLBACK would cost a round trip and a warning in the server's log.
    void do_abort() override;
    // COMMIT, unless a batch sent it. A connection lost during the COMMIT
    // leaves the outcome unknown: pqxx::in_doubt_error, as libpqxx's own
    // transactions throw.
    void do_commit() override;

    bool begin_sent_ = false;
    bool commit_sent_ = false;
};

class statement_batch {
public:
    // What a statement returned, handed over when the batch has been sent.
    using rows_handler = std::function<void(const pqxx::result&)>;

    // Begins the transaction: BEGIN is the batch's first command.
    explicit statement_batch(batched_transaction& tx);

    // Queues named statement `s` with its arguments: strings, integers,
    // booleans and std::optional of them (empty: NULL). `handler`, if any,
    // gets its rows when the batch is sent.
    template <typename... Args>
    void add(const statement& s, rows_handler handler, const Args&... args) {
        std::vector<std::optional<std::string>> values;
        values.reserve(sizeof...(Args));
        (values.push_back(text_of(args)), ...);
        add_values(s, values, std::move(handler));
    }
    // The same with the arguments already written as text (NULL: empty).
    void add_values(const statement& s, const std::vector<std::optional<std::string>>& values,
                    rows_handler handler = {});

    // Queues a command that takes no parameters and that PREPARE does not
    // take (SET LOCAL, SAVEPOINT, TRUNCATE): one statement, no semicolon.
    void add_command(std::string_view command, rows_handler handler = {});

    // Queues COMMIT: the transaction commits when the batch is sent, if every
    // statement before it succeeded.
    void add_commit();

    // Sends what is queued as one message and hands each statement's rows to
    // its handler, in order. A statement that fails throws its pqxx
    // exception; the statements after it did not run, the transaction is
    // aborted, and no handler of that batch runs. Nothing queued: nothing is
    // sent.
    void send();

    bool empty() const { return queued_.empty(); }
    // Messages sent so far: the transaction's round trips through batches.
    std::size_t messages_sent() const { return sent_; }

private:
    static std::optional<std::string> text_of(const std::string& value) { return value; }
    static std::optional<std::string> text_of(std::string_view value) { return std::string(value); }
    static std::optional<std::string> text_of(const char* value) { return std::string(value); }
    static std::optional<std::string> text_of(bool value) { return value ? "t" : "f"; }
    template <std::integral T>
        requires(!std::same_as<T, bool>)
    static std::optional<std::string> text_of(T value) {
        return std::to_string(value);
    }
    template <typename T>
    static std::optional<std::string> text_of(const std::optional<T>& value) {
        if (!value) return std::nullopt;
        return text_of(*value);
    }

    struct queued {
        std::string text;
        rows_handler handler;
    };

    batched_transaction& tx_;
    std::vector<queued> queued_;
    bool begin_queued_ = true;
    bool commit_queued_ = false;
    std::size_t sent_ = 0;
};

// A handler that requires statement `s`, a named statement of static storage,
// to return no rows, as sql::exec0 does (pqxx::unexpected_rows otherwise).
statement_batch::rows_handler expect_no_rows(const statement& s);

}  // namespace comeback::sql
