#include "load/fencing.hpp"

#include "load/database_failure.hpp"
#include "load/fencing_sql.hpp"
#include "load/identifier.hpp"
#include "load/prepared.hpp"
#include "load/sql_time.hpp"

#include <pqxx/pqxx>

#include <string>

namespace comeback {

fetch_ticket take_fetch_ticket(pqxx::connection& connection, std::string_view schema,
                               std::string_view customer_id,
                               const std::function<void(pqxx::transaction_base&)>& also) {
    check_schema_name(schema);
    const std::string customer(customer_id);
    pqxx::work tx{connection, "take fetch ticket"};
    sql::exec1(tx, sql::fencing::begin_ticket, std::string(schema));
    auto taken = sql::exec(tx, sql::fencing::take_fetch_ticket, customer);
    if (taken.empty()) {
        sql::exec0(tx, sql::fencing::register_customer, customer);
        taken = sql::exec(tx, sql::fencing::take_fetch_ticket, customer);
    }
    const fetch_ticket ticket = taken.at(0)[0].as<fetch_ticket>();
    if (also) also(tx);
    tx.commit();
    return ticket;
}

void check_fetch_ticket(pqxx::transaction_base& tx, const window_key& key, fetch_ticket ticket) {
    const auto row = sql::exec(tx, sql::fencing::read_window_ticket, key.customer_id,
                               key.date_criteria.name(), sql_time::day_number(key.first_day),
                               sql_time::day_number(key.end_day));
    if (row.empty() || row[0][0].is_null()) return;
    const fetch_ticket committed = row[0][0].as<fetch_ticket>();
    if (committed > ticket) {
        throw stale_fetch_error(describe_window(key) + ": a fetch that began later (ticket " +
                                std::to_string(committed) + ") committed first; this fetch's (ticket " +
                                std::to_string(ticket) + ") response is dropped");
    }
}

}  // namespace comeback
