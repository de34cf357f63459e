#include "load/statement_batch.hpp"

#include "load/prepared.hpp"

#include <pqxx/pipeline>

#include <stdexcept>
#include <utility>

namespace comeback::sql {

namespace {

// A connection lost after COMMIT was sent: whether it committed is unknown.
pqxx::in_doubt_error commit_in_doubt(const pqxx::broken_connection& lost) {
    return pqxx::in_doubt_error(std::string("the connection was lost while committing: ") + lost.what());
}

}  // namespace

batched_transaction::batched_transaction(pqxx::connection_base& connection, const std::string& name)
    : pqxx::internal::namedclass{"batched_transaction", name},
      pqxx::dbtransaction(connection, "READ COMMITTED", pqxx::read_write) {
    Begin();
}

batched_transaction::~batched_transaction() noexcept { End(); }

void batched_transaction::do_abort() {
    if (begin_sent_) pqxx::dbtransaction::do_abort();
}

void batched_transaction::do_commit() {
    if (commit_sent_) return;
    try {
        direct_exec("COMMIT");
    } catch (const pqxx::broken_connection& lost) {
        throw commit_in_doubt(lost);
    }
}

statement_batch::statement_batch(batched_transaction& tx) : tx_(tx) { queued_.push_back({"BEGIN", {}}); }

void statement_batch::add_values(const statement& s, const std::vector<std::optional<std::string>>& values,
                                 rows_handler handler) {
    if (commit_queued_) throw std::logic_error("statement_batch: a statement queued after COMMIT");
    // Prepared once per connection, as sql::exec prepares it; EXECUTE needs
    // it on the server before the batch runs.
    const std::string name = register_statement(tx_.conn(), s);
    tx_.conn().prepare_now(name);
    std::string text = "EXECUTE " + tx_.quote_name(name);
    if (!values.empty()) {
        text += '(';
        for (std::size_t i = 0; i < values.size(); ++i) {
            if (i > 0) text += ", ";
            text += values[i] ? tx_.quote(*values[i]) : "NULL";
        }
        text += ')';
    }
    queued_.push_back({std::move(text), std::move(handler)});
}

statement_batch::rows_handler expect_no_rows(const statement& s) {
    return [&s](const pqxx::result& rows) { no_rows(rows, s); };
}

void statement_batch::add_command(std::string_view command, rows_handler handler) {
    if (commit_queued_) throw std::logic_error("statement_batch: a command queued after COMMIT");
    if (command.find(';') != std::string_view::npos) {
        throw std::logic_error("statement_batch: a command of several statements");
    }
    queued_.push_back({std::string(command), std::move(handler)});
}

void statement_batch::add_commit() {
    add_command("COMMIT");
    commit_queued_ = true;
}

void statement_batch::send() {
    if (queued_.empty()) return;
    std::vector<queued> batch = std::move(queued_);
    queued_.clear();
    const bool commits = std::exchange(commit_queued_, false);
    if (std::exchange(begin_queued_, false)) tx_.begin_sent();
    std::vector<pqxx::result> results;
    results.reserve(batch.size());
    {
        pqxx::pipeline pipeline{tx_, "statement batch"};
        // Nothing is sent until every statement is in: one message.
        pipeline.retain(static_cast<int>(batch.size()));
        std::vector<pqxx::pipeline::query_id> ids;
        ids.reserve(batch.size());
        for (const auto& q : batch) ids.push_back(pipeline.insert(q.text));
        try {
            for (const auto id : ids) results.push_back(pipeline.retrieve(id));
        } catch (const pqxx::broken_connection& lost) {
            if (!commits) throw;
            throw commit_in_doubt(lost);
        }
        pipeline.complete();
    }
    ++sent_;
    if (commits) tx_.commit_sent();
    for (std::size_t i = 0; i < batch.size(); ++i) {
        if (batch[i].handler) batch[i].handler(results[i]);
    }
}

}  // namespace comeback::sql
