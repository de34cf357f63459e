#include "load/migrations.hpp"

#include "load/embedded_migrations.hpp"
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
    pqxx::read_transaction tx{db.connection()};
    std::vector<std::string> columns;
    for (const auto& row : tx.exec_params(
             "SELECT column_name FROM information_schema.columns"
             " WHERE table_schema = $1 AND table_name = 'comeback_report' ORDER BY ordinal_position",
             db.name())) {
        columns.push_back(row[0].as<std::string>());
    }
    const std::vector<std::string> contract{
        "customer_id",       "comeback_id",         "contact_id",         "contact_name",
        "booked_by_user_id", "booked_by_name",      "assigned_user_id",   "assigned_user_name",
        "assigned_group_id", "assigned_group_name", "assigned_office_id", "assigned_office_name",
        "state",             "origin",              "occurs_at",          "booked_at",
        "is_deleted",        "first_seen_at",       "last_seen_at"};
    CHECK(columns == contract);
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
