#include "load/fencing.hpp"

#include "load/database_failure.hpp"
#include "load/fencing_sql.hpp"
#include "load/identifier.hpp"
#include "load/prepared.hpp"
#include "load/sql_time.hpp"

#include <pqxx/pqxx>

#include <string>

namespace comeback {

taken_ticket take_fetch_ticket(pqxx::connection& connection, std::string_view schema,
                               const window_key& key) {
    check_schema_name(schema);
    sql::use_schema_for_session(connection, schema);
    // Each statement commits on its own (sql::fencing::take_fetch_ticket).
    pqxx::nontransaction tx{connection, "take fetch ticket"};
    auto take = [&] {
        return sql::exec(tx, sql::fencing::take_fetch_ticket, key.customer_id, key.date_criteria.name(),
                         sql_time::day_number(key.first_day), sql_time::day_number(key.end_day));
    };
    auto taken = take();
    if (taken.empty()) {
        sql::exec0(tx, sql::fencing::register_customer, key.customer_id);
        taken = take();
    }
    const pqxx::row row = taken.at(0);
    taken_ticket result;
    result.ticket = row[0].as<fetch_ticket>();
    if (!row[1].is_null()) result.last_response_bytes = row[1].as<std::uint64_t>();
    return result;
}

void check_fetch_ticket(const window_key& key, fetch_ticket ticket,
                        std::optional<fetch_ticket> committed) {
    if (committed && *committed >= ticket) {
        throw stale_fetch_error(describe_window(key) + ": a fetch that may have begun later (ticket " +
                                std::to_string(*committed) + ") committed first; this fetch's (ticket " +
                                std::to_string(ticket) + ") response is dropped");
    }
}

void make_durable(pqxx::connection& connection) {
    pqxx::nontransaction tx{connection, "make durable"};
    sql::exec(tx, sql::fencing::durable_point);
}

}  // namespace comeback
