#pragma once
// Building windows and normalized batches for the loader tests, and reading
// back what the database holds. Batches are written as normalized values
// directly so these tests exercise the loader alone.

#include "load/migrations.hpp"
#include "load/window_loader.hpp"
#include "support/database.hpp"

#include <date/date.h>
#include <pqxx/pqxx>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace comeback::test {

inline instant utc(date::local_days day, std::chrono::hours hour = std::chrono::hours{0}) {
    return instant{day.time_since_epoch() + hour};
}

// A window of `length` days from `first`, bounds at UTC midnight.
inline window_key window_of(std::string customer, date::local_days first, int length = 7,
                            date_criteria criteria = {}) {
    window_key key;
    key.customer_id = std::move(customer);
    key.date_criteria = std::move(criteria);
    key.first_day = first;
    key.end_day = first + date::days{length};
    key.from = utc(key.first_day);
    key.to = utc(key.end_day);
    return key;
}

inline const date::local_days week1 = date::local_days{date::year{2024} / 5 / 6};
inline const date::local_days week2 = week1 + date::days{7};

// One comeback as a test writes it: a contact and a user with names.
struct sample {
    std::string id;
    std::string contact_id = "C1";
    std::optional<std::string> contact_name = "Anna Andersson";  // empty: null in the response
    std::string user_id = "U1";
    std::optional<std::string> user_name = "Bo Berg";
    std::optional<std::string> group_id{};
    std::optional<std::string> office_id{};
    std::string state = "New";
    instant occurs_at = utc(week1, std::chrono::hours{10});
};

// The batch normalize() would produce: entities once per id (the last name
// wins; a null name never replaces one).
inline normalized_batch batch_of(const std::string& customer, const std::vector<sample>& samples,
                                 std::size_t first_index = 0) {
    normalized_batch batch;
    batch.customer_id = customer;
    std::map<std::string, std::optional<std::string>> contacts, users, groups, offices;
    auto name = [](auto& names, const std::string& id, const std::optional<std::string>& value) {
        if (value || !names.count(id)) names[id] = value;
    };
    std::size_t index = first_index;
    for (const auto& s : samples) {
        name(contacts, s.contact_id, s.contact_name);
        name(users, s.user_id, s.user_name);
        if (s.group_id) groups[*s.group_id] = "Group " + *s.group_id;
        if (s.office_id) offices[*s.office_id] = "Office " + *s.office_id;
        comeback_record record;
        record.index = index++;
        record.id = s.id;
        record.contact_id = s.contact_id;
        record.booked_by_user_id = s.user_id;
        record.assigned_user_id = s.user_id;
        record.assigned_group_id = s.group_id;
        record.assigned_office_id = s.office_id;
        record.state = s.state;
        record.origin = "User";
        record.occurs_at = s.occurs_at;
        record.booked_at = utc(week1 - date::days{30}, std::chrono::hours{9});
        batch.comebacks.push_back(std::move(record));
    }
    auto fill = [](std::vector<entity>& out, const std::map<std::string, std::optional<std::string>>& from) {
        for (const auto& [id, name] : from) out.push_back({id, name});
    };
    fill(batch.contacts, contacts);
    fill(batch.users, users);
    fill(batch.user_groups, groups);
    fill(batch.offices, offices);
    return batch;
}

// Loads one window from the given batches (each one add() call).
inline load_counts load(pqxx::connection& connection, const std::string& schema,
                        const window_key& key, const std::vector<normalized_batch>& batches,
                        const std::vector<rejection>& rejections = {}, load_options options = {}) {
    window_loader loader{connection, schema, key, options};
    for (std::size_t i = 0; i < batches.size(); ++i) {
        loader.add(batches[i], i == 0 ? std::span<const rejection>(rejections)
                                      : std::span<const rejection>());
    }
    if (batches.empty()) loader.add(normalized_batch{key.customer_id, {}, {}, {}, {}, {}}, rejections);
    return loader.commit(fetch_info{200, std::chrono::milliseconds{12}, 3456, {}});
}

inline load_counts load(pqxx::connection& connection, const std::string& schema,
                        const window_key& key, const std::vector<sample>& samples,
                        load_options options = {}) {
    return load(connection, schema, key, {batch_of(key.customer_id, samples)}, {}, options);
}

// The same, comparing every row with the database (no confirmation by digest).
inline load_counts recheck(pqxx::connection& connection, const std::string& schema,
                           const window_key& key, const std::vector<sample>& samples) {
    return load(connection, schema, key, samples, load_options{.recheck = true});
}

// Every table the loader writes, as sorted row texts: equal snapshots mean an
// identical database.
inline const std::vector<std::string> data_tables{
    "contacts", "users", "user_groups", "offices", "comebacks",
    "comeback_history", "sync_windows", "rejected_rows"};

inline std::map<std::string, std::vector<std::string>> snapshot(pqxx::connection& connection,
                                                                const std::string& schema) {
    std::map<std::string, std::vector<std::string>> tables;
    pqxx::read_transaction tx{connection};
    for (const auto& table : data_tables) {
        auto& rows = tables[table];
        for (const auto& row : tx.exec("SELECT t::text FROM " + tx.quote_name(schema) + "." + table +
                                       " t ORDER BY 1")) {
            rows.push_back(row[0].as<std::string>());
        }
    }
    return tables;
}

// Physical identity of every comeback version: an unchanged row keeps its tuple.
inline std::vector<std::string> tuple_identities(pqxx::connection& connection,
                                                 const std::string& schema, const std::string& table) {
    pqxx::read_transaction tx{connection};
    std::vector<std::string> out;
    for (const auto& row : tx.exec("SELECT ctid::text || ' ' || xmin::text FROM " +
                                   tx.quote_name(schema) + "." + table + " ORDER BY 1")) {
        out.push_back(row[0].as<std::string>());
    }
    return out;
}

struct tuple_writes {
    long long inserted = 0;
    long long updated = 0;
    long long deleted = 0;
    friend bool operator==(const tuple_writes&, const tuple_writes&) = default;
};

// Cumulative tuple writes per table from pg_stat_user_tables. Statistics reach
// shared memory asynchronously; pg_stat_force_next_flush() makes `writer` (the
// session that did the writes) report them as soon as it goes idle, and a new
// snapshot on `writer` then sees them.
inline std::map<std::string, tuple_writes> table_writes(pqxx::connection& writer,
                                                        const std::string& schema) {
    {
        pqxx::nontransaction tx{writer};
        tx.exec("SELECT pg_stat_force_next_flush()");
    }
    pqxx::nontransaction tx{writer};
    tx.exec("SELECT pg_stat_clear_snapshot()");
    std::map<std::string, tuple_writes> writes;
    for (const auto& row : tx.exec_params(
             "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables"
             " WHERE schemaname = $1",
             schema)) {
        writes[row[0].as<std::string>()] = {row[1].as<long long>(), row[2].as<long long>(),
                                            row[3].as<long long>()};
    }
    return writes;
}

// The one value `sql` returns, as text; "NULL" for NULL.
inline std::string one_text(pqxx::connection& connection, const std::string& sql) {
    pqxx::read_transaction tx{connection};
    auto row = tx.exec1(sql);
    return row[0].is_null() ? std::string("NULL") : row[0].as<std::string>();
}

inline long long count_rows(pqxx::connection& connection, const std::string& schema,
                            const std::string& table_and_condition) {
    pqxx::read_transaction tx{connection};
    return tx.exec1("SELECT count(*) FROM " + tx.quote_name(schema) + "." + table_and_condition)[0]
        .as<long long>();
}

}  // namespace comeback::test
