#include "load/migrations.hpp"

#include "load/embedded_migrations.hpp"
#include "load/migrations_sql.hpp"
#include "load_test_data.hpp"
#include "support/database.hpp"
#include "support/fixtures.hpp"

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

using namespace comeback;
using namespace comeback::test;

namespace {

std::string text_of(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

std::string refusal_of(pqxx::connection& connection, const std::string& schema) {
    try {
        migrate(connection, schema);
    } catch (const migration_error& error) {
        return error.what();
    }
    return "no refusal";
}

// A table's or view's columns in the schema, in order.
std::vector<std::string> columns_of(scratch_schema& db, const std::string& relation) {
    pqxx::read_transaction tx{db.connection()};
    std::vector<std::string> columns;
    for (const auto& row : tx.exec_params("SELECT column_name FROM information_schema.columns"
                                          " WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                                          db.name(), relation)) {
        columns.push_back(row[0].as<std::string>());
    }
    return columns;
}

}  // namespace

TEST_CASE("the embedded migrations are exactly the files under schema/") {
    std::vector<std::string> files;
    for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::path(COMEBACK_SOURCE_DIR) / "schema")) {
        if (entry.path().extension() == ".sql") files.push_back(entry.path().stem().string());
    }
    std::sort(files.begin(), files.end());
    auto embedded = embedded_migrations();
    REQUIRE(embedded.size() == files.size());
    for (std::size_t i = 0; i < files.size(); ++i) {
        INFO(files[i]);
        CHECK(embedded[i].name == files[i]);
        CHECK(embedded[i].sql ==
              text_of(std::filesystem::path(COMEBACK_SOURCE_DIR) / "schema" / (files[i] + ".sql")));
        CHECK(embedded[i].checksum.size() == 64);
    }
    CHECK(newest_known_migration() == embedded.back().version);
}

TEST_CASE("migrate creates the schema, applies every migration once and records it") {
    scratch_schema db;
    const int known = static_cast<int>(embedded_migrations().size());
    CHECK(migrate(db.connection(), db.name()) == known);
    CHECK(migrate(db.connection(), db.name()) == 0);

    pqxx::read_transaction tx{db.connection()};
    auto rows = tx.exec("SELECT version, name, checksum, applied_at IS NOT NULL FROM " + db.quoted() +
                        ".schema_migrations ORDER BY version");
    REQUIRE(rows.size() == embedded_migrations().size());
    for (std::size_t i = 0; i < rows.size(); ++i) {
        CHECK(rows[i][0].as<int>() == embedded_migrations()[i].version);
        CHECK(rows[i][1].as<std::string>() == embedded_migrations()[i].name);
        CHECK(rows[i][2].as<std::string>() == embedded_migrations()[i].checksum);
        CHECK(rows[i][3].as<bool>());
    }
}

TEST_CASE("comeback_report has exactly the contracted columns, in order") {
    scratch_schema db;
    migrate(db.connection(), db.name());
    const std::vector<std::string> contract{
        "customer_id",       "comeback_id",         "contact_id",         "contact_name",
        "booked_by_user_id", "booked_by_name",      "assigned_user_id",   "assigned_user_name",
        "assigned_group_id", "assigned_group_name", "assigned_office_id", "assigned_office_name",
        "state",             "origin",              "occurs_at",          "booked_at",
        "is_deleted",        "first_seen_at",       "last_seen_at"};
    CHECK(columns_of(db, "comeback_report") == contract);
}

TEST_CASE("sync_status keeps its columns in order and gains new ones only at the end") {
    scratch_schema db;
    migrate(db.connection(), db.name());
    // 001's columns, 005's windows_held, 009's last_error_kind: `status` and
    // dashboards read them by name or by position.
    const std::vector<std::string> contract{
        "customer_id",          "last_success",           "windows_complete",
        "windows_failed",       "windows_pending",        "stalest_window_first_day",
        "stalest_window_end_day", "stalest_window_fetched_at", "last_error",
        "last_error_at",        "windows_held",           "last_error_kind"};
    CHECK(columns_of(db, "sync_status") == contract);
}

TEST_CASE("every key and unique index of the data tables starts with customer_id") {
    scratch_schema db;
    migrate(db.connection(), db.name());
    pqxx::read_transaction tx{db.connection()};
    auto rows = tx.exec_params(
        "SELECT c.relname, i.relname, a.attname"
        " FROM pg_index x"
        " JOIN pg_class c ON c.oid = x.indrelid"
        " JOIN pg_class i ON i.oid = x.indexrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = x.indkey[0]"
        " WHERE n.nspname = $1 AND c.relname <> 'schema_migrations'",
        db.name());
    REQUIRE(rows.size() >= 8);
    for (const auto& row : rows) {
        INFO(row[0].as<std::string>() << " index " << row[1].as<std::string>());
        CHECK(row[2].as<std::string>() == "customer_id");
    }
}

TEST_CASE("a migration changed after it was applied is refused, naming it") {
    scratch_schema db;
    migrate(db.connection(), db.name());
    {
        pqxx::work tx{db.connection()};
        tx.exec0("UPDATE " + db.quoted() + ".schema_migrations SET checksum = 'edited' WHERE version = 1");
        tx.commit();
    }
    const auto message = refusal_of(db.connection(), db.name());
    CHECK_THAT(message, Catch::Contains("001_initial was changed after it was applied"));
    CHECK_THAT(message, Catch::Contains("edited"));
    CHECK_THAT(message, Catch::Contains(std::string(embedded_migrations()[0].checksum)));
}

TEST_CASE("a database newer than the binary is refused, naming the versions it does not know") {
    scratch_schema db;
    migrate(db.connection(), db.name());
    const int newest = newest_known_migration();
    {
        pqxx::work tx{db.connection()};
        for (int version : {newest + 1, newest + 7}) {
            tx.exec_params0("INSERT INTO " + db.quoted() + ".schema_migrations (version, name, checksum)"
                            " VALUES ($1, 'from_the_future', 'x')",
                            version);
        }
        tx.commit();
    }
    const auto message = refusal_of(db.connection(), db.name());
    CHECK_THAT(message, Catch::Contains("is newer than this binary"));
    CHECK_THAT(message, Catch::Contains(std::to_string(newest + 1) + ", " + std::to_string(newest + 7)));
    CHECK_THAT(message, Catch::Contains("knows up to " + std::to_string(newest)));
}

TEST_CASE("an up-to-date schema is checked without the migration lock; one with work to do waits for it") {
    scratch_schema db;
    scratch_schema fresh;
    migrate(db.connection(), db.name());
    // Another migrator holds both schemas' locks.
    auto holder = connect();
    pqxx::work held{*holder};
    held.exec_params1(std::string(sql::migrations::lock), db.name());
    held.exec_params1(std::string(sql::migrations::lock), fresh.name());

    auto checker = connect();
    checker->set_variable("statement_timeout", "2000");
    CHECK(migrate(*checker, db.name()) == 0);  // would wait out the statement_timeout on the lock
    CHECK_THROWS_AS(migrate(*checker, fresh.name()), pqxx::sql_error);  // nothing there yet: the lock
    held.abort();
    CHECK(migrate(*checker, fresh.name()) == static_cast<int>(embedded_migrations().size()));
}

TEST_CASE("concurrent migrators apply each migration exactly once") {
    scratch_schema db;
    constexpr int migrators = 4;
    std::vector<int> applied(migrators, -1);
    std::vector<std::string> errors(migrators);
    std::vector<std::thread> threads;
    for (int i = 0; i < migrators; ++i) {
        threads.emplace_back([&, i] {
            try {
                auto connection = connect();
                applied[i] = migrate(*connection, db.name());
            } catch (const std::exception& error) {
                errors[i] = error.what();
            }
        });
    }
    for (auto& thread : threads) thread.join();
    for (const auto& error : errors) CHECK(error == "");
    int total = 0;
    for (int count : applied) total += count;
    CHECK(total == static_cast<int>(embedded_migrations().size()));
    CHECK(std::count(applied.begin(), applied.end(), 0) == migrators - 1);
}

TEST_CASE("a schema name that is not a plain identifier is refused before any SQL runs") {
    auto connection = connect();
    for (const char* bad : {"", "Vitec", "vitec; DROP TABLE x", "1abc", "a\"b",
                            "this_name_is_much_longer_than_the_sixty_three_bytes_postgres_keeps"}) {
        INFO(bad);
        CHECK_THROWS_AS(migrate(*connection, bad), std::invalid_argument);
    }
}

namespace {

// Brings `db` up to migration `last` as a binary that knew no newer one would.
void migrate_up_to(scratch_schema& db, int last) {
    pqxx::work tx{db.connection()};
    tx.exec0("CREATE SCHEMA " + db.quoted());
    tx.exec0("SET LOCAL search_path TO " + db.quoted());
    tx.exec0(std::string(sql::migrations::create_migrations_table.text()));
    for (const auto& migration : embedded_migrations()) {
        if (migration.version > last) continue;
        tx.exec0(std::string(migration.sql));
        tx.exec_params0(std::string(sql::migrations::record_applied.text()), migration.version,
                        std::string(migration.name), std::string(migration.checksum));
    }
    tx.commit();
}

// comeback_history's rows, one text each, in key order.
std::vector<std::string> history_rows(pqxx::connection& connection, const std::string& schema) {
    pqxx::read_transaction tx{connection};
    std::vector<std::string> rows;
    for (const auto& row : tx.exec("SELECT h::text FROM " + schema +
                                   ".comeback_history h ORDER BY customer_id, comeback_id, valid_from")) {
        rows.push_back(row[0].as<std::string>());
    }
    return rows;
}

}  // namespace

TEST_CASE("008 moves each current version into its comebacks row; comeback_history reads the same rows") {
    scratch_schema db;
    migrate_up_to(db, 7);
    {
        pqxx::work tx{db.connection()};
        tx.exec0("SET LOCAL search_path TO " + db.quoted());
        // K1 updated, K2 deleted, K3 as first loaded; K4's history and K5's
        // comebacks row deleted by hand.
        tx.exec0(R"sql(
INSERT INTO comebacks (customer_id, comeback_id, state, occurs_at, first_seen_at, last_seen_at, deleted_at)
VALUES ('M1', 'K1', 'Completed', '2024-05-06 10:00Z', '2024-05-01 00:00Z', '2024-05-03 00:00Z', NULL),
       ('M1', 'K2', 'New', '2024-05-07 10:00Z', '2024-05-01 00:00Z', '2024-05-02 00:00Z', '2024-05-03 00:00Z'),
       ('M1', 'K3', 'New', '2024-05-08 10:00Z', '2024-05-01 00:00Z', '2024-05-01 00:00Z', NULL),
       ('M1', 'K4', 'New', '2024-05-09 10:00Z', '2024-05-01 00:00Z', '2024-05-01 00:00Z', NULL);
INSERT INTO comeback_history (customer_id, comeback_id, valid_from, valid_to, change, state, occurs_at, is_deleted)
VALUES ('M1', 'K1', '2024-05-01 00:00Z', '2024-05-02 00:00Z', 'insert', 'New', '2024-05-06 10:00Z', false),
       ('M1', 'K1', '2024-05-02 00:00Z', NULL, 'update', 'Completed', '2024-05-06 10:00Z', false),
       ('M1', 'K2', '2024-05-01 00:00Z', '2024-05-03 00:00Z', 'insert', 'New', '2024-05-07 10:00Z', false),
       ('M1', 'K2', '2024-05-03 00:00Z', NULL, 'delete', 'New', '2024-05-07 10:00Z', true),
       ('M1', 'K3', '2024-05-01 00:00Z', NULL, 'insert', 'New', '2024-05-08 10:00Z', false),
       ('M1', 'K5', '2024-05-01 00:00Z', NULL, 'insert', 'New', '2024-05-10 10:00Z', false);
GRANT SELECT ON comeback_history TO PUBLIC;
)sql");
        tx.commit();
    }
    const auto before = history_rows(db.connection(), db.quoted());
    REQUIRE(before.size() == 6);

    CHECK(migrate(db.connection(), db.name()) == newest_known_migration() - 7);

    auto after = history_rows(db.connection(), db.quoted());
    REQUIRE(after.size() == 7);
    // K1, K2 and K3 read exactly as before; K4 has its version again, from
    // when it was first seen; K5's open version, which no comeback stands
    // for any more, has ended.
    CHECK(std::vector<std::string>(after.begin(), after.begin() + 5) ==
          std::vector<std::string>(before.begin(), before.begin() + 5));
    CHECK(one_text(db.connection(), "SELECT valid_from = '2024-05-01 00:00Z' AND valid_to IS NULL AND change = 'insert' FROM " +
                                        db.quoted() + ".comeback_history WHERE comeback_id = 'K4'") == "t");
    CHECK(one_text(db.connection(), "SELECT valid_to IS NOT NULL FROM " + db.quoted() +
                                        ".comeback_history WHERE comeback_id = 'K5'") == "t");
    // What is stored once: every current version in comebacks, only closed ones in the table.
    CHECK(count_rows(db.connection(), db.name(), "comeback_versions") == 3);
    CHECK(count_rows(db.connection(), db.name(), "comeback_versions WHERE valid_to IS NULL") == 0);
    CHECK(one_text(db.connection(), "SELECT string_agg(comeback_id || ':' || version_change, ',' ORDER BY comeback_id) FROM " +
                                        db.quoted() + ".comebacks") == "K1:update,K2:delete,K3:insert,K4:insert");
    // The state changes read the view: K1 New -> Completed.
    CHECK(one_text(db.connection(), "SELECT string_agg(coalesce(from_state, '-') || '>' || to_state, ',' ORDER BY seen_at) FROM " +
                                        db.quoted() + ".comeback_state_changes WHERE comeback_id = 'K1'") ==
          "->New,New>Completed");
    // The grant on the table holds for the view.
    CHECK(one_text(db.connection(), "SELECT has_table_privilege('public', '" + db.quoted() +
                                        ".comeback_history', 'SELECT')") == "t");
}

TEST_CASE("a DELETE on comeback_history deletes closed versions, and a current one with its comeback") {
    scratch_schema db;
    migrate(db.connection(), db.name());
    {
        pqxx::work tx{db.connection()};
        tx.exec0("SET LOCAL search_path TO " + db.quoted());
        tx.exec0(R"sql(
INSERT INTO comebacks (customer_id, comeback_id, state, first_seen_at, last_seen_at, version_from, version_change)
VALUES ('M1', 'K1', 'Completed', '2024-05-01 00:00Z', '2024-05-02 00:00Z', '2024-05-02 00:00Z', 'update'),
       ('M1', 'K2', 'New', '2024-05-01 00:00Z', '2024-05-02 00:00Z', '2024-05-01 00:00Z', 'insert');
INSERT INTO comeback_versions (customer_id, comeback_id, valid_from, valid_to, change, state, is_deleted)
VALUES ('M1', 'K1', '2024-05-01 00:00Z', '2024-05-02 00:00Z', 'insert', 'New', false);
)sql");
        tx.commit();
    }
    pqxx::work tx{db.connection()};
    // Old history only: the current versions stay.
    CHECK(tx.exec("DELETE FROM " + db.quoted() + ".comeback_history WHERE valid_to < '2024-06-01'").affected_rows() == 1);
    CHECK(tx.exec1("SELECT count(*) FROM " + db.quoted() + ".comebacks")[0].as<int>() == 2);
    // Everything of K1: its current version is the comeback itself.
    CHECK(tx.exec("DELETE FROM " + db.quoted() + ".comeback_history WHERE comeback_id = 'K1'").affected_rows() == 1);
    CHECK(tx.exec1("SELECT string_agg(comeback_id, ',') FROM " + db.quoted() + ".comebacks")[0].as<std::string>() == "K2");
    CHECK(tx.exec1("SELECT count(*) FROM " + db.quoted() + ".comeback_versions")[0].as<int>() == 0);
}
