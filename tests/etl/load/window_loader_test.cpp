#include "load/window_loader.hpp"

#include "load/contact_memo.hpp"
#include "load/database_failure.hpp"
#include "load/fencing.hpp"
#include "load/migrations.hpp"
#include "load/privacy.hpp"
#include "load/statement_batch.hpp"
#include "load_test_data.hpp"
#include "support/database.hpp"

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include <atomic>
#include <map>
#include <thread>

using namespace comeback;
using namespace comeback::test;

namespace {

// A migrated scratch schema.
struct loaded_schema : scratch_schema {
    loaded_schema() { migrate(connection(), name()); }
};

std::vector<sample> three_comebacks() {
    return {{.id = "K1"}, {.id = "K2", .contact_id = "C2", .contact_name = "Cecilia"},
            {.id = "K3", .user_id = "U2", .user_name = "Dan", .state = "Completed"}};
}

}  // namespace

TEST_CASE("loading a window stores its comebacks, entities, first history versions and a complete ledger row") {
    loaded_schema db;
    auto counts = load(db.connection(), db.name(), window_of("M1", week1), three_comebacks());

    CHECK(counts.rows_seen == 3);
    CHECK(counts.inserted == 3);
    CHECK(counts.changed() == 3);
    CHECK(count_rows(db.connection(), db.name(), "comebacks") == 3);
    CHECK(count_rows(db.connection(), db.name(), "contacts") == 2);
    CHECK(count_rows(db.connection(), db.name(), "users") == 2);
    CHECK(count_rows(db.connection(), db.name(), "comeback_history WHERE change = 'insert' AND valid_to IS NULL") == 3);
    CHECK(one_text(db.connection(), "SELECT status || ' ' || attempts || ' ' || rows_seen || ' ' || rows_changed "
                                    "|| ' ' || last_http_status || ' ' || response_bytes || ' ' || (fetched_at IS NOT NULL) FROM " +
                                        db.quoted() + ".sync_windows") == "complete 1 3 3 200 3456 true");
    CHECK(one_text(db.connection(), "SELECT contact_name || '/' || assigned_user_name || '/' || state FROM " +
                                        db.quoted() + ".comeback_report WHERE comeback_id = 'K3'") ==
          "Anna Andersson/Dan/Completed");
}

TEST_CASE("loading the same window twice writes no tuple and no history row") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    load(db.connection(), db.name(), key, three_comebacks());
    const auto before = table_writes(db.connection(), db.name());
    const auto comeback_tuples = tuple_identities(db.connection(), db.name(), "comebacks");
    const auto contact_tuples = tuple_identities(db.connection(), db.name(), "contacts");
    REQUIRE(before.at("comebacks").inserted == 3);  // the statistics are being read at all

    // Both ways: confirmed by the content digest, and compared row by row.
    const bool compare_rows = GENERATE(false, true);
    INFO("recheck " << compare_rows);
    auto counts = load(db.connection(), db.name(), key, three_comebacks(), {.recheck = compare_rows});
    const auto after = table_writes(db.connection(), db.name());

    CHECK(counts.confirmed == !compare_rows);
    CHECK(counts.rows_seen == 3);
    CHECK(counts.changed() == 0);
    for (const char* table : {"comebacks", "comeback_versions", "contacts", "users", "user_groups", "offices"}) {
        INFO("table " << table);
        CHECK(after.at(table) == before.at(table));
    }
    CHECK(tuple_identities(db.connection(), db.name(), "comebacks") == comeback_tuples);
    CHECK(tuple_identities(db.connection(), db.name(), "contacts") == contact_tuples);
    CHECK(count_rows(db.connection(), db.name(), "comeback_history") == 3);
    CHECK(one_text(db.connection(), "SELECT attempts || ' ' || rows_changed FROM " + db.quoted() + ".sync_windows") == "2 0");
}

TEST_CASE("a connection's staging holds only the load at hand: emptied row by row after small loads, truncated by large ones") {
    loaded_schema db;
    auto staging_bytes = [&] {
        return std::stoll(one_text(db.connection(),
                                   "SELECT pg_relation_size('pg_temp.load_comebacks') + "
                                   "pg_relation_size('pg_temp.load_entities') + "
                                   "pg_relation_size('pg_temp.load_rejections')"));
    };
    // A large load leaves nothing on the server's disk once it commits: its
    // session may never stage again (it goes on confirming windows, or idles).
    std::vector<sample> many;
    for (int i = 0; i < 2000; ++i) many.push_back({.id = "N" + std::to_string(i)});
    CHECK(load(db.connection(), db.name(), window_of("M1", week1), many).inserted == 2000);
    CHECK(staging_bytes() == 0);
    // Then a small one on the same connection: it sees none of the large
    // one's rows (it would soft-delete nothing and insert them all otherwise),
    // and its rows stay for the next load to delete, with no truncation.
    const auto small = load(db.connection(), db.name(), window_of("M2", week1), three_comebacks());
    CHECK(small.inserted == 3);
    CHECK(small.rows_seen == 3);
    CHECK(staging_bytes() > 0);
    CHECK(staging_bytes() <= 128 * 1024);
    // A large load with a changed row takes the compared path, and also leaves
    // staging empty.
    many[7].state = "Cancelled";
    CHECK(load(db.connection(), db.name(), window_of("M1", week1), many).updated == 1);
    CHECK(staging_bytes() == 0);

    // Small loads one after another: each compares only its own rows.
    for (int round = 0; round < 3; ++round) {
        const auto again = load(db.connection(), db.name(), window_of("M2", week1), three_comebacks(),
                                {.recheck = true});
        CHECK(again.rows_seen == 3);
        CHECK(again.changed() == 0);
    }
    CHECK(count_rows(db.connection(), db.name(), "comebacks WHERE customer_id = 'M2'") == 3);
    CHECK(count_rows(db.connection(), db.name(), "comebacks WHERE customer_id = 'M1' AND deleted_at IS NULL") == 2000);
}

TEST_CASE("a connection prepares a load's statements once and plans them again only when it must") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    load(db.connection(), db.name(), key, three_comebacks());
    // name -> when the server prepared it, on this connection.
    auto prepared = [&] {
        std::map<std::string, std::string> statements;
        pqxx::nontransaction tx{db.connection()};
        for (const auto& row : tx.exec("SELECT name, prepare_time::text FROM pg_prepared_statements")) {
            statements[row[0].as<std::string>()] = row[1].as<std::string>();
        }
        return statements;
    };
    const auto first = prepared();
    // A small window's rows go to staging with the statement that empties it.
    for (const char* name : {"begin_load", "stage_rows", "read_load_start", "merge_entities", "record_attempt"}) {
        INFO(name);
        CHECK(first.count(name) == 1);
    }
    // A second load of a changed window, and a confirmed one: the same
    // statements, prepared when the first load ran.
    auto changed = three_comebacks();
    changed[0].state = "Cancelled";
    load(db.connection(), db.name(), key, changed);
    load(db.connection(), db.name(), key, changed);
    const auto later = prepared();
    for (const auto& [name, at] : first) {
        INFO(name);
        CHECK(later.at(name) == at);
    }
    CHECK(one_text(db.connection(), "SELECT state FROM " + db.quoted() + ".comebacks WHERE comeback_id = 'K1'") ==
          "Cancelled");
}

TEST_CASE("a small window's load waits for the server three times, a confirmed one twice") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    // A connection's first load also creates its staging tables.
    load(db.connection(), db.name(), window_of("M0", week1), three_comebacks());

    // Its start (BEGIN, the lock, the last load); staging, entities and
    // comebacks; the ledger row with COMMIT.
    const auto first = load(db.connection(), db.name(), key, three_comebacks());
    CHECK(first.inserted == 3);
    CHECK(first.round_trips == 3);

    // Its start; the ledger row with COMMIT.
    const auto again = load(db.connection(), db.name(), key, three_comebacks());
    CHECK(again.confirmed);
    CHECK(again.round_trips == 2);

    // A compared window: its start; staging with the deletion guard's count;
    // the merge and soft delete; history, the ledger row and COMMIT.
    auto changed = three_comebacks();
    changed[0].state = "Cancelled";
    changed.pop_back();
    const auto compared = load(db.connection(), db.name(), key, changed);
    CHECK(compared.updated == 1);
    CHECK(compared.deleted == 1);
    CHECK(compared.round_trips == 4);
    CHECK(count_rows(db.connection(), db.name(), "comeback_history WHERE customer_id = 'M1'") == 5);
}

TEST_CASE("a changed field writes exactly one history row and closes the previous version") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    auto samples = three_comebacks();
    load(db.connection(), db.name(), key, samples);

    samples[0].state = "Completed";
    auto counts = load(db.connection(), db.name(), key, samples);

    CHECK(counts.updated == 1);
    CHECK(counts.changed() == 1);
    CHECK(count_rows(db.connection(), db.name(), "comeback_history WHERE comeback_id = 'K1'") == 2);
    CHECK(count_rows(db.connection(), db.name(), "comeback_history WHERE comeback_id <> 'K1'") == 2);
    CHECK(one_text(db.connection(), "SELECT string_agg(change || ':' || state || ':' || (valid_to IS NULL), ',' ORDER BY valid_from) FROM " +
                                        db.quoted() + ".comeback_history WHERE comeback_id = 'K1'") ==
          "insert:New:false,update:Completed:true");
    CHECK(one_text(db.connection(), "SELECT bool_and(h1.valid_to = h2.valid_from) FROM " + db.quoted() +
                                        ".comeback_history h1 JOIN " + db.quoted() +
                                        ".comeback_history h2 USING (customer_id, comeback_id) WHERE h1.change = 'insert' AND h2.change = 'update'") == "t");
}

TEST_CASE("a comeback missing from a later fetch of its window is soft-deleted and undeleted when it returns") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    auto samples = three_comebacks();
    load(db.connection(), db.name(), key, samples);

    auto without_k2 = samples;
    without_k2.erase(without_k2.begin() + 1);
    auto counts = load(db.connection(), db.name(), key, without_k2);
    CHECK(counts.deleted == 1);
    CHECK(one_text(db.connection(), "SELECT is_deleted FROM " + db.quoted() + ".comeback_report WHERE comeback_id = 'K2'") == "t");
    CHECK(one_text(db.connection(), "SELECT change || ' ' || is_deleted FROM " + db.quoted() +
                                        ".comeback_history WHERE comeback_id = 'K2' AND valid_to IS NULL") == "delete true");

    // Deleted stays deleted: a second load without it writes nothing.
    CHECK(load(db.connection(), db.name(), key, without_k2).changed() == 0);

    counts = load(db.connection(), db.name(), key, samples);
    CHECK(counts.undeleted == 1);
    CHECK(counts.changed() == 1);
    CHECK(one_text(db.connection(), "SELECT deleted_at IS NULL FROM " + db.quoted() + ".comebacks WHERE comeback_id = 'K2'") == "t");
    CHECK(one_text(db.connection(), "SELECT string_agg(change, ',' ORDER BY valid_from) FROM " + db.quoted() +
                                        ".comeback_history WHERE comeback_id = 'K2'") == "insert,delete,undelete");
}

TEST_CASE("a window deletes only comebacks whose occurs_at lies inside it, and only for the Occurrence criteria") {
    loaded_schema db;
    const auto week1_key = window_of("M1", week1);
    const auto week2_key = window_of("M1", week2);
    load(db.connection(), db.name(), week1_key, {{.id = "A"}});
    load(db.connection(), db.name(), week2_key, {{.id = "B", .occurs_at = utc(week2, std::chrono::hours{8})}});
    // On the shared boundary: inside both windows, since `to` is inclusive.
    load(db.connection(), db.name(), week2_key,
         {{.id = "B", .occurs_at = utc(week2, std::chrono::hours{8})}, {.id = "EDGE", .occurs_at = utc(week2)}});

    auto counts = load(db.connection(), db.name(), week1_key, std::vector<sample>{});
    CHECK(counts.deleted == 2);  // A and EDGE; B lies in week 2
    CHECK(one_text(db.connection(), "SELECT string_agg(comeback_id, ',' ORDER BY comeback_id) FROM " + db.quoted() +
                                        ".comebacks WHERE deleted_at IS NOT NULL") == "A,EDGE");

    // Another criteria does not say which comebacks of the range exist: nothing is deleted.
    auto booked = window_of("M1", week2, 7, date_criteria{"Booked"});
    CHECK(load(db.connection(), db.name(), booked, std::vector<sample>{}).deleted == 0);
    CHECK(one_text(db.connection(), "SELECT deleted_at IS NULL FROM " + db.quoted() + ".comebacks WHERE comeback_id = 'B'") == "t");
}

TEST_CASE("a renamed contact keeps its key, the report shows the new name, and its comebacks are not rewritten") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    auto samples = three_comebacks();
    load(db.connection(), db.name(), key, samples);
    const auto comeback_tuples = tuple_identities(db.connection(), db.name(), "comebacks");

    samples[0].contact_name = "Anna Berg";
    samples[2].contact_name = "Anna Berg";
    auto counts = load(db.connection(), db.name(), key, samples);

    CHECK(counts.changed() == 0);
    CHECK(count_rows(db.connection(), db.name(), "contacts") == 2);
    CHECK(one_text(db.connection(), "SELECT name FROM " + db.quoted() + ".contacts WHERE contact_id = 'C1'") == "Anna Berg");
    CHECK(one_text(db.connection(), "SELECT contact_name FROM " + db.quoted() + ".comeback_report WHERE comeback_id = 'K1'") == "Anna Berg");
    CHECK(tuple_identities(db.connection(), db.name(), "comebacks") == comeback_tuples);
}

TEST_CASE("names with Unicode, quotes, backslashes, tabs, newlines and 5,000 characters arrive unchanged") {
    // A small window's rows reach staging as array parameters, a large one's
    // by COPY: both ways carry the same text.
    const bool large = GENERATE(false, true);
    INFO((large ? "a window staged by COPY" : "a window staged as arrays"));
    loaded_schema db;
    const std::vector<std::string> names{
        "Åsa Öberg-Ärlig ☃ 🏠 中文",
        "O'Brien \"the\" quote",
        "back\\slash \\N \\t \\\\",
        "tab\there, newline\nthere, carriage\rreturn",
        std::string(5000, 'x') + "å",
        "",
        "{braces, commas} NULL \"{\\\"}\"",
        "  leading and trailing spaces  ",
        "NULL",
    };
    std::vector<sample> samples;
    for (std::size_t i = 0; i < names.size(); ++i) {
        samples.push_back({.id = "id\t" + std::to_string(i) + "\\", .contact_id = "C\n" + std::to_string(i),
                           .contact_name = names[i]});
    }
    // About 400 KiB of formatted rows: over what goes as arrays.
    for (int i = 0; large && i < 1500; ++i) {
        samples.push_back({.id = "P" + std::to_string(i), .contact_id = "P" + std::to_string(i),
                           .contact_name = std::string(200, 'p')});
    }
    load(db.connection(), db.name(), window_of("M1", week1), samples);

    pqxx::read_transaction tx{db.connection()};
    for (std::size_t i = 0; i < names.size(); ++i) {
        INFO("name " << i);
        auto row = tx.exec_params1("SELECT contact_name, comeback_id FROM " + db.quoted() +
                                       ".comeback_report WHERE contact_id = $1",
                                   "C\n" + std::to_string(i));
        CHECK(row[0].as<std::string>() == names[i]);
        CHECK(row[1].as<std::string>() == "id\t" + std::to_string(i) + "\\");
    }
    CHECK(tx.exec1("SELECT count(*) FROM " + db.quoted() + ".comebacks")[0].as<std::size_t>() == samples.size());
}

TEST_CASE("a NUL character, which PostgreSQL text cannot hold, becomes U+FFFD instead of failing the window") {
    loaded_schema db;
    load(db.connection(), db.name(), window_of("M1", week1),
         {{.id = "K1", .contact_name = std::string("before\0after", 12)}});
    CHECK(one_text(db.connection(), "SELECT name FROM " + db.quoted() + ".contacts") == "before\xEF\xBF\xBD" "after");
}

TEST_CASE("two customers with the same ids stay apart") {
    loaded_schema db;
    load(db.connection(), db.name(), window_of("M1", week1), {{.id = "K1", .contact_name = "First"}});
    load(db.connection(), db.name(), window_of("M2", week1), {{.id = "K1", .contact_name = "Second", .state = "Done"}});
    // M2's next fetch no longer has K1: only M2's copy is deleted.
    load(db.connection(), db.name(), window_of("M2", week1), std::vector<sample>{});

    CHECK(one_text(db.connection(), "SELECT string_agg(customer_id || ':' || contact_name || ':' || state || ':' || is_deleted, ',' ORDER BY customer_id) FROM " +
                                        db.quoted() + ".comeback_report") == "M1:First:New:false,M2:Second:Done:true");
    CHECK(count_rows(db.connection(), db.name(), "sync_windows") == 2);
}

TEST_CASE("duplicates within a window are counted and the last index wins, across batches too") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    auto first = batch_of("M1", {{.id = "K1", .state = "New"}, {.id = "K2"}, {.id = "K1", .state = "Second"}}, 0);
    auto second = batch_of("M1", {{.id = "K1", .state = "Last"}}, 3);
    auto counts = load(db.connection(), db.name(), key, {first, second});

    CHECK(counts.rows_seen == 2);
    CHECK(counts.duplicates == 2);
    CHECK(counts.inserted == 2);
    CHECK(one_text(db.connection(), "SELECT state FROM " + db.quoted() + ".comebacks WHERE comeback_id = 'K1'") == "Last");
    CHECK(one_text(db.connection(), "SELECT rows_duplicate FROM " + db.quoted() + ".sync_windows") == "2");
}

TEST_CASE("a large first load with a duplicate keeps the last index, the same as a small one") {
    // A first load beyond small_window_rows inserts every staged row as it
    // comes; a repeated id fails that insert, and the general path dedupes.
    loaded_schema db;
    const auto key = window_of("M1", week1);
    std::vector<sample> rows;
    for (std::size_t i = 0; i < window_loader::small_window_rows + 50; ++i) {
        rows.push_back({.id = "K" + std::to_string(i), .contact_id = "C" + std::to_string(i % 300)});
    }
    rows.push_back({.id = "K7", .state = "Last"});
    const auto counts = load(db.connection(), db.name(), key, rows);

    CHECK(counts.rows_seen == window_loader::small_window_rows + 50);
    CHECK(counts.duplicates == 1);
    CHECK(counts.inserted == window_loader::small_window_rows + 50);
    CHECK(count_rows(db.connection(), db.name(), "comebacks") == static_cast<long long>(window_loader::small_window_rows) + 50);
    CHECK(one_text(db.connection(), "SELECT state || ' ' || contact_id FROM " + db.quoted() + ".comebacks WHERE comeback_id = 'K7'") == "Last C1");
    CHECK(one_text(db.connection(), "SELECT count(*) FROM " + db.quoted() + ".comeback_versions") == "0");
}

TEST_CASE("with a contact memo, a contact a committed load stored as the window names it is not looked up") {
    loaded_schema db;
    contact_memo memo;
    load_options options;
    options.contacts = &memo;
    // Staging outlives the load on its connection: what the load flagged.
    auto flags = [&] {
        return one_text(db.connection(), "SELECT string_agg(contact_id || ':' || contact_known, ',' ORDER BY idx) "
                                         "FROM pg_temp.load_comebacks");
    };
    auto names = [&] {
        return one_text(db.connection(), "SELECT string_agg(contact_id || ':' || coalesce(name, 'NULL'), ',' "
                                         "ORDER BY contact_id) FROM " + db.quoted() + ".contacts");
    };
    const auto week3 = week2 + date::days{7};
    auto at = [](date::local_days day) { return utc(day, std::chrono::hours{10}); };

    load(db.connection(), db.name(), window_of("M1", week1),
         {{.id = "K1", .contact_id = "C1", .contact_name = "Anna"}, {.id = "K2", .contact_id = "C2", .contact_name = "Bo"}},
         options);
    CHECK(flags() == "C1:false,C2:false");

    // C1 as stored, C2 renamed, C3 new: only C1 goes unlooked-up.
    const auto counts = load(db.connection(), db.name(), window_of("M1", week2),
                             {{.id = "K3", .contact_id = "C1", .contact_name = "Anna", .occurs_at = at(week2)},
                              {.id = "K4", .contact_id = "C2", .contact_name = "Bosse", .occurs_at = at(week2)},
                              {.id = "K5", .contact_id = "C3", .contact_name = "Cilla", .occurs_at = at(week2)}},
                             options);
    CHECK(flags() == "C1:true,C2:false,C3:false");
    CHECK(names() == "C1:Anna,C2:Bosse,C3:Cilla");
    CHECK(counts.inserted == 3);

    // Erased since: the skipped contact stays erased, as a merge would leave it.
    forget_contact(db.connection(), db.name(), "M1", "C1");
    load(db.connection(), db.name(), window_of("M1", week3),
         {{.id = "K6", .contact_id = "C1", .contact_name = "Anna", .occurs_at = at(week3)},
          {.id = "K7", .contact_id = "C2", .contact_name = "Bosse", .occurs_at = at(week3)}},
         options);
    CHECK(flags() == "C1:true,C2:true");
    CHECK(names() == "C1:NULL,C2:Bosse,C3:Cilla");

    // Within a window: C2 as stored in one batch and renamed in the next
    // takes the new name; C3 renamed, then named no more, keeps the new one.
    const auto week4 = week3 + date::days{7};
    load(db.connection(), db.name(), window_of("M1", week4),
         {batch_of("M1", {{.id = "K10", .contact_id = "C2", .contact_name = "Bosse", .occurs_at = at(week4)},
                          {.id = "K11", .contact_id = "C3", .contact_name = "Camilla", .occurs_at = at(week4)}}),
          batch_of("M1", {{.id = "K12", .contact_id = "C2", .contact_name = "Bo", .occurs_at = at(week4)},
                          {.id = "K13", .contact_id = "C3", .contact_name = std::nullopt, .occurs_at = at(week4)}},
                   2)},
         {}, options);
    CHECK(flags() == "C2:true,C3:false,C2:false,C3:false");
    CHECK(names() == "C1:NULL,C2:Bo,C3:Camilla");

    // A load that never commits teaches the memo nothing.
    {
        window_loader loader{db.connection(), db.name(), window_of("M1", week3), options};
        loader.add(batch_of("M1", {{.id = "K8", .contact_id = "C4", .contact_name = "Dan", .occurs_at = at(week3)}}), {});
    }
    CHECK(memo.size() == 3);
}

TEST_CASE("a rejected element is stored once per window and seen again bumps its last_seen_at") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    const std::vector<rejection> rejections{
        {.index = 1, .id = "K9", .reason = "occursAt: \"soon\" is not a timestamp", .raw = "{\"id\":\"K9\",\"occursAt\":\"soon\"}"},
        {.index = 2, .id = std::nullopt, .reason = "element is not an object", .raw = "42"}};
    auto counts = load(db.connection(), db.name(), key, {batch_of("M1", {{.id = "K1"}})}, rejections);
    CHECK(counts.rejected == 2);
    const auto first_seen = one_text(db.connection(), "SELECT max(last_seen_at)::text FROM " + db.quoted() + ".rejected_rows");

    load(db.connection(), db.name(), key, {batch_of("M1", {{.id = "K1"}})}, rejections);
    CHECK(count_rows(db.connection(), db.name(), "rejected_rows") == 2);
    CHECK(one_text(db.connection(), "SELECT string_agg(times_seen::text, ',') FROM " + db.quoted() + ".rejected_rows") == "2,2");
    CHECK(one_text(db.connection(), "SELECT bool_and(last_seen_at > first_seen_at) FROM " + db.quoted() + ".rejected_rows") == "t");
    CHECK(one_text(db.connection(), "SELECT min(last_seen_at)::text FROM " + db.quoted() + ".rejected_rows") > first_seen);
    CHECK(one_text(db.connection(), "SELECT rows_rejected FROM " + db.quoted() + ".sync_windows") == "2");
}

TEST_CASE("a loader destroyed without commit leaves nothing of its window") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    load(db.connection(), db.name(), key, three_comebacks());
    const auto before = snapshot(db.connection(), db.name());
    {
        window_loader loader{db.connection(), db.name(), key};
        loader.add(batch_of("M1", {{.id = "NEW"}}), {});
    }
    CHECK(snapshot(db.connection(), db.name()) == before);
    // The connection stays usable for the next window.
    CHECK(load(db.connection(), db.name(), key, three_comebacks()).changed() == 0);
}

TEST_CASE("a connection killed mid-load leaves the database exactly as before") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    auto samples = three_comebacks();
    load(db.connection(), db.name(), key, samples);
    auto observer = connect();
    const auto before = snapshot(*observer, db.name());

    const int pid = db.connection().backendpid();
    {
        window_loader loader{db.connection(), db.name(), key};
        samples[0].state = "Changed";
        loader.add(batch_of("M1", samples), {});
        {
            pqxx::nontransaction tx{*observer};
            REQUIRE(tx.exec_params1("SELECT pg_terminate_backend($1)", pid)[0].as<bool>());
        }
        // add() holds a small window in memory; the loss shows at commit.
        loader.add(batch_of("M1", {{.id = "LATE"}}), {});
        CHECK_THROWS_AS(loader.commit({}), pqxx::broken_connection);
    }
    CHECK(snapshot(*observer, db.name()) == before);
}

TEST_CASE("two loaders of the same customer at once neither deadlock nor lose a row") {
    loaded_schema db;
    constexpr int rows_per_window = 2000;
    auto make = [](date::local_days first, const std::string& prefix) {
        std::vector<sample> samples;
        for (int i = 0; i < rows_per_window; ++i) {
            // Shared contacts and users in opposite orders: without the customer
            // lock the two transactions would wait on each other's rows.
            const int shared = prefix == "a" ? i % 50 : 49 - i % 50;
            samples.push_back({.id = prefix + std::to_string(i),
                               .contact_id = "C" + std::to_string(shared),
                               .contact_name = "Contact " + std::to_string(shared),
                               .user_id = "U" + std::to_string(shared % 7),
                               .occurs_at = utc(first, std::chrono::hours{1 + i % 100})});
        }
        return samples;
    };
    const auto a = make(week1, "a");
    const auto b = make(week2, "b");

    std::exception_ptr failure_a, failure_b;
    auto run = [&](const std::vector<sample>& samples, date::local_days first, std::exception_ptr& failure) {
        try {
            auto connection = connect();
            for (int round = 0; round < 3; ++round) {
                load(*connection, db.name(), window_of("M1", first), samples);
            }
        } catch (...) {
            failure = std::current_exception();
        }
    };
    std::thread daemon{run, std::cref(a), week1, std::ref(failure_a)};
    std::thread backfill{run, std::cref(b), week2, std::ref(failure_b)};
    daemon.join();
    backfill.join();
    if (failure_a) std::rethrow_exception(failure_a);
    if (failure_b) std::rethrow_exception(failure_b);

    CHECK(count_rows(db.connection(), db.name(), "comebacks WHERE deleted_at IS NULL") == 2 * rows_per_window);
    CHECK(count_rows(db.connection(), db.name(), "comeback_history") == 2 * rows_per_window);
    CHECK(count_rows(db.connection(), db.name(), "contacts") == 50);
    CHECK(one_text(db.connection(), "SELECT sum(attempts) FROM " + db.quoted() + ".sync_windows") == "6");
}

TEST_CASE("the report's last_seen_at follows the newest complete fetch of the comeback's window") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    load(db.connection(), db.name(), key, three_comebacks());
    load(db.connection(), db.name(), key, three_comebacks());
    CHECK(one_text(db.connection(), "SELECT bool_and(r.last_seen_at = w.fetched_at AND r.last_seen_at > r.first_seen_at) FROM " +
                                        db.quoted() + ".comeback_report r CROSS JOIN " + db.quoted() + ".sync_windows w") == "t");
}

TEST_CASE("the loader refuses misuse: a bad schema name, another customer's batch, add after commit") {
    loaded_schema db;
    CHECK_THROWS_AS(window_loader(db.connection(), "bad-name\"", window_of("M1", week1)), std::invalid_argument);
    window_loader loader{db.connection(), db.name(), window_of("M1", week1)};
    CHECK_THROWS_AS(loader.add(batch_of("M2", {{.id = "K"}}), {}), std::invalid_argument);
    loader.commit({});
    CHECK_THROWS_AS(loader.add(batch_of("M1", {{.id = "K"}}), {}), std::logic_error);
}

TEST_CASE("a batch whose comebacks name an entity it does not carry is refused before anything is written") {
    loaded_schema db;
    auto batch = batch_of("M1", {{.id = "K1"}});
    batch.comebacks[0].assigned_group_id = "G-missing";
    window_loader loader{db.connection(), db.name(), window_of("M1", week1)};
    CHECK_THROWS_WITH(loader.add(batch, {}), Catch::Contains("user group G-missing"));
}

TEST_CASE("an entity's last_seen_at is refreshed only once it is a day old, so re-loads stay write-free") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    load(db.connection(), db.name(), key, three_comebacks());
    auto age_contacts = [&] {
        pqxx::work tx{db.connection()};
        tx.exec0("UPDATE " + db.quoted() + ".contacts SET last_seen_at = now() - interval '12 hours' WHERE contact_id = 'C1'");
        tx.exec0("UPDATE " + db.quoted() + ".contacts SET last_seen_at = now() - interval '25 hours' WHERE contact_id = 'C2'");
        tx.commit();
    };
    const std::string fresh = "SELECT string_agg(contact_id || ':' || (last_seen_at > now() - interval '1 hour'), ',' ORDER BY contact_id) FROM " +
                              db.quoted() + ".contacts";

    SECTION("a load that compares rows refreshes the day-old one") {
        age_contacts();
        CHECK_FALSE(recheck(db.connection(), db.name(), key, three_comebacks()).confirmed);
        CHECK(one_text(db.connection(), fresh) == "C1:false,C2:true");
    }
    SECTION("a load confirmed by its window's load of less than a day ago leaves them") {
        age_contacts();
        CHECK(load(db.connection(), db.name(), key, three_comebacks()).confirmed);
        CHECK(one_text(db.connection(), fresh) == "C1:false,C2:false");
    }
    SECTION("a window last compared over a day ago compares rows again, however recently it was confirmed") {
        age_contacts();
        REQUIRE(load(db.connection(), db.name(), key, three_comebacks()).confirmed);
        pqxx::work tx{db.connection()};
        tx.exec0("UPDATE " + db.quoted() + ".sync_windows SET compared_at = compared_at - interval '25 hours',"
                 " changed_at = changed_at - interval '25 hours'");
        tx.commit();
        CHECK_FALSE(load(db.connection(), db.name(), key, three_comebacks()).confirmed);
        CHECK(one_text(db.connection(), fresh) == "C1:false,C2:true");
        CHECK(load(db.connection(), db.name(), key, three_comebacks()).confirmed);
    }
}

TEST_CASE("a re-load is confirmed only when every field and every name it carries is unchanged") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    auto samples = three_comebacks();
    samples[0].group_id = "G1";
    samples[0].office_id = "O1";
    load(db.connection(), db.name(), key, samples);
    REQUIRE(load(db.connection(), db.name(), key, samples).confirmed);

    auto batch = batch_of("M1", samples);
    SECTION("a comeback's field") { batch.comebacks[1].origin = "Import"; }
    SECTION("a contact's name") { batch.contacts[0].name = "Anna Andersson-Berg"; }
    SECTION("a user's name") { batch.users[0].name = "Bo Bergström"; }
    SECTION("a group's name") { batch.user_groups[0].name = "Group G1 (north)"; }
    SECTION("an office's name") { batch.offices[0].name = "Office O1 (closed)"; }
    SECTION("the order of the elements") { std::swap(batch.comebacks[0].index, batch.comebacks[2].index); }
    SECTION("a rejected element") {
        const std::vector<rejection> rejected{{.index = 3, .id = "K4", .reason = "state: 7 is not a string", .raw = "{}"}};
        CHECK_FALSE(load(db.connection(), db.name(), key, {batch}, rejected).confirmed);
        return;
    }
    CHECK_FALSE(load(db.connection(), db.name(), key, {batch}).confirmed);
    // The change is in the database: comparing every row finds nothing left to write.
    const auto again = load(db.connection(), db.name(), key, {batch}, {}, {.recheck = true});
    CHECK(again.changed() == 0);
    CHECK(load(db.connection(), db.name(), key, {batch}).confirmed);
}

TEST_CASE("a window whose data another window's load changed is compared again, not confirmed") {
    loaded_schema db;
    const auto key1 = window_of("M1", week1);
    const auto key2 = window_of("M1", week2);
    const std::vector<sample> in_week1{{.id = "K1"}, {.id = "K2"}};
    load(db.connection(), db.name(), key1, in_week1);
    load(db.connection(), db.name(), key2, {{.id = "K9", .occurs_at = utc(week2, std::chrono::hours{8})}});
    REQUIRE(load(db.connection(), db.name(), key1, in_week1).confirmed);

    SECTION("a comeback moved out of the window") {
        // Week 2's response holds K1, rescheduled; week 1 then answers as before.
        load(db.connection(), db.name(), key2,
             {{.id = "K9", .occurs_at = utc(week2, std::chrono::hours{8})},
              {.id = "K1", .occurs_at = utc(week2, std::chrono::hours{9})}});
        const auto counts = load(db.connection(), db.name(), key1, in_week1);
        CHECK_FALSE(counts.confirmed);
        CHECK(counts.updated == 1);
        CHECK(one_text(db.connection(), "SELECT occurs_at = '2024-05-06 10:00+00' FROM " + db.quoted() +
                                            ".comebacks WHERE comeback_id = 'K1'") == "t");
    }
    SECTION("a contact renamed by another window") {
        load(db.connection(), db.name(), key2,
             {{.id = "K9", .contact_name = "Anna Lind", .occurs_at = utc(week2, std::chrono::hours{8})}});
        CHECK_FALSE(load(db.connection(), db.name(), key1, in_week1).confirmed);
        CHECK(one_text(db.connection(), "SELECT name FROM " + db.quoted() + ".contacts WHERE contact_id = 'C1'") ==
              "Anna Andersson");
    }
    SECTION("a window of another length overlapping it") {
        load(db.connection(), db.name(), window_of("M1", week1 + date::days{3}, 3),
             {{.id = "K7", .occurs_at = utc(week1 + date::days{4})}});
        const auto counts = load(db.connection(), db.name(), key1, in_week1);
        CHECK_FALSE(counts.confirmed);
        CHECK(counts.deleted == 1);  // K7 lies in week 1 but its response has no K7
    }
    SECTION("but not a window whose change lies elsewhere") {
        load(db.connection(), db.name(), key2, {{.id = "K9", .state = "Completed", .occurs_at = utc(week2, std::chrono::hours{8})}});
        CHECK(load(db.connection(), db.name(), key1, in_week1).confirmed);
    }
}

TEST_CASE("a user, group or office renamed by another window's load makes the window compare again") {
    loaded_schema db;
    const auto key1 = window_of("M1", week1);
    const auto key2 = window_of("M1", week2);
    const std::vector<sample> in_week1{{.id = "K1", .group_id = "G1", .office_id = "O1"}};
    const std::vector<sample> in_week2{
        {.id = "K9", .group_id = "G1", .office_id = "O1", .occurs_at = utc(week2, std::chrono::hours{8})}};
    load(db.connection(), db.name(), key1, in_week1);
    auto week2_batch = batch_of("M1", in_week2);
    load(db.connection(), db.name(), key2, {week2_batch});
    REQUIRE(load(db.connection(), db.name(), key1, in_week1).confirmed);

    std::string table;
    SECTION("a user") {
        week2_batch.users[0].name = "Bo Bergström";
        table = "users";
    }
    SECTION("a group") {
        week2_batch.user_groups[0].name = "Group G1 (north)";
        table = "user_groups";
    }
    SECTION("an office") {
        week2_batch.offices[0].name = "Office O1 (closed)";
        table = "offices";
    }
    load(db.connection(), db.name(), key2, {week2_batch});
    CHECK(count_rows(db.connection(), db.name(), table + " WHERE name LIKE '%(%' OR name LIKE '%ö%'") == 1);
    CHECK_FALSE(load(db.connection(), db.name(), key1, in_week1).confirmed);
}

TEST_CASE("a window of criteria other than Occurrence is compared again after any change, wherever it lies") {
    loaded_schema db;
    const auto occurrence_week1 = window_of("M1", week1);
    // Booked windows select on booked_at: any comeback may be in them,
    // whatever its occurs_at.
    const auto booked = window_of("M1", week2 + date::days{28}, 7, date_criteria{"Booked"});
    const std::vector<sample> booked_rows{{.id = "B1", .occurs_at = utc(week2, std::chrono::hours{5})}};
    load(db.connection(), db.name(), occurrence_week1, {{.id = "K1"}});
    load(db.connection(), db.name(), booked, booked_rows);
    REQUIRE(load(db.connection(), db.name(), booked, booked_rows).confirmed);

    load(db.connection(), db.name(), occurrence_week1, {{.id = "K1", .state = "Completed"}});
    CHECK_FALSE(load(db.connection(), db.name(), booked, booked_rows).confirmed);
    CHECK(load(db.connection(), db.name(), booked, booked_rows).confirmed);
}

TEST_CASE("a first load of a window that holds a comeback the database already has falls back to comparing") {
    loaded_schema db;
    const auto key1 = window_of("M1", week1);
    const auto key2 = window_of("M1", week2);
    load(db.connection(), db.name(), key1, {{.id = "K1"}, {.id = "K2"}});

    SECTION("rescheduled from another window") {
        const auto counts = load(db.connection(), db.name(), key2,
                                 {{.id = "K1", .occurs_at = utc(week2, std::chrono::hours{9})},
                                  {.id = "K3", .occurs_at = utc(week2, std::chrono::hours{10})}});
        CHECK(counts.inserted == 1);
        CHECK(counts.updated == 1);
        CHECK(count_rows(db.connection(), db.name(), "comebacks WHERE occurs_at >= '2024-05-13'") == 2);
        CHECK(count_rows(db.connection(), db.name(), "comeback_history WHERE comeback_id = 'K1'") == 2);
        CHECK(count_rows(db.connection(), db.name(), "comeback_history WHERE valid_to IS NULL") == 3);
    }
    SECTION("rescheduled, in a window large enough to insert inside a savepoint") {
        std::vector<sample> rows{{.id = "K1", .occurs_at = utc(week2, std::chrono::hours{9})}};
        for (std::size_t i = 0; i < window_loader::small_window_rows; ++i) {
            rows.push_back({.id = "N" + std::to_string(i), .occurs_at = utc(week2, std::chrono::hours{10})});
        }
        const auto counts = load(db.connection(), db.name(), key2, rows);
        CHECK(counts.inserted == window_loader::small_window_rows);
        CHECK(counts.updated == 1);
        CHECK(count_rows(db.connection(), db.name(), "comeback_history WHERE comeback_id = 'K1'") == 2);
        CHECK(count_rows(db.connection(), db.name(), "comeback_history WHERE valid_to IS NULL") ==
              static_cast<long long>(window_loader::small_window_rows) + 2);
    }
    SECTION("deleted, in a window with no live row left") {
        load(db.connection(), db.name(), key1, std::vector<sample>{});
        REQUIRE(count_rows(db.connection(), db.name(), "comebacks WHERE deleted_at IS NULL") == 0);
        const auto counts = load(db.connection(), db.name(), key1, {{.id = "K1"}});
        CHECK(counts.undeleted == 1);
        CHECK(counts.inserted == 0);
        CHECK(count_rows(db.connection(), db.name(), "comebacks WHERE deleted_at IS NULL") == 1);
        CHECK(count_rows(db.connection(), db.name(), "comeback_history WHERE valid_to IS NULL AND NOT is_deleted") == 1);
    }
}

TEST_CASE("recheck repairs rows changed by hand, which a confirmed load leaves as they are") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    load(db.connection(), db.name(), key, three_comebacks());
    {
        pqxx::work tx{db.connection()};
        tx.exec0("DELETE FROM " + db.quoted() + ".comebacks WHERE comeback_id = 'K2'");
        tx.commit();
    }
    CHECK(load(db.connection(), db.name(), key, three_comebacks()).confirmed);
    CHECK(count_rows(db.connection(), db.name(), "comebacks") == 2);

    const auto counts = recheck(db.connection(), db.name(), key, three_comebacks());
    CHECK_FALSE(counts.confirmed);
    CHECK(counts.inserted == 1);
    CHECK(count_rows(db.connection(), db.name(), "comebacks") == 3);
    // The deleted row took its current version along; the repair begins a new one.
    CHECK(count_rows(db.connection(), db.name(), "comeback_history WHERE comeback_id = 'K2'") == 1);
    CHECK(count_rows(db.connection(), db.name(), "comeback_history WHERE comeback_id = 'K2' AND valid_to IS NULL") == 1);
}

TEST_CASE("a window too large to hold in memory is streamed into staging and still confirmed") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    // About 11 MiB of staged text, over the few MiB the loader holds, in three batches.
    std::vector<normalized_batch> batches;
    for (int b = 0; b < 3; ++b) {
        std::vector<sample> samples;
        for (int i = 0; i < 6000; ++i) {
            const int n = b * 6000 + i;
            samples.push_back({.id = "B" + std::to_string(n), .contact_id = "C" + std::to_string(n),
                               .contact_name = std::string(600, 'a') + std::to_string(n),
                               .occurs_at = utc(week1, std::chrono::hours{n % 150})});
        }
        batches.push_back(batch_of("M1", samples, static_cast<std::size_t>(b) * 6000));
    }
    auto first = load(db.connection(), db.name(), key, batches);
    CHECK(first.inserted == 18000);
    CHECK(count_rows(db.connection(), db.name(), "contacts") == 18000);
    const auto before = snapshot(db.connection(), db.name());

    auto again = load(db.connection(), db.name(), key, batches);
    CHECK(again.confirmed);
    CHECK(again.rows_seen == 18000);
    auto after = snapshot(db.connection(), db.name());
    after.erase("sync_windows");
    auto expected = before;
    expected.erase("sync_windows");
    CHECK(after == expected);
}

TEST_CASE("a comeback whose element is rejected in a later fetch keeps its stored version instead of being deleted") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    load(db.connection(), db.name(), key, three_comebacks());
    const auto before = snapshot(db.connection(), db.name()).at("comebacks");

    auto without_k3 = three_comebacks();
    without_k3.pop_back();
    const std::vector<rejection> rejections{
        {.index = 2, .id = "K3", .reason = "occursAt: \"later\" is not a timestamp", .raw = "{\"id\":\"K3\"}"}};
    auto counts = load(db.connection(), db.name(), key, {batch_of("M1", without_k3)}, rejections);

    CHECK(counts.deleted == 0);
    CHECK(counts.rejected == 1);
    CHECK(snapshot(db.connection(), db.name()).at("comebacks") == before);
}

TEST_CASE("a connection killed while the window commits leaves the database exactly as before") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    load(db.connection(), db.name(), key, three_comebacks());
    auto observer = connect();
    const auto before = snapshot(*observer, db.name());

    std::vector<sample> many;
    for (int i = 0; i < 30000; ++i) {
        many.push_back({.id = "N" + std::to_string(i), .occurs_at = utc(week1, std::chrono::hours{i % 150})});
    }
    const auto batch = batch_of("M1", many);
    const int pid = db.connection().backendpid();

    // Terminates the loader's session as soon as it is writing comebacks (the
    // batch of the merge statement, which also opens the new comebacks'
    // history): before the closing history versions and the ledger. The
    // batch's text is the session's query; the statement's own text shows
    // only while the connection prepares it, a moment before.
    std::atomic<bool> stop{false};
    std::atomic<bool> killed{false};
    std::thread killer{[&] {
        auto connection = connect();
        while (!stop && !killed) {
            pqxx::nontransaction tx{*connection};
            auto rows = tx.exec_params(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE pid = $1 AND state = 'active' AND query LIKE '%EXECUTE \"merge_comebacks\"(%'",
                pid);
            killed = !rows.empty();
        }
    }};
    bool threw = false;
    try {
        window_loader loader{db.connection(), db.name(), key};
        loader.add(batch, {});
        loader.commit({});
    } catch (const std::exception&) {
        threw = true;
    }
    stop = true;
    killer.join();

    REQUIRE(killed);
    CHECK(threw);
    CHECK(snapshot(*observer, db.name()) == before);
}

// What the database holds after loads made while the server's clock ran an
// hour ahead, once the clock has been stepped back: every stamp an hour in
// the future.
void stamps_from_a_clock_an_hour_ahead(loaded_schema& db) {
    pqxx::work tx{db.connection()};
    tx.exec0("UPDATE " + db.quoted() + ".sync_windows SET fetched_at = fetched_at + interval '1 hour', "
             "changed_at = changed_at + interval '1 hour', compared_at = compared_at + interval '1 hour', "
             "attempted_at = attempted_at + interval '1 hour'");
    tx.exec0("UPDATE " + db.quoted() + ".comeback_versions SET valid_from = valid_from + interval '1 hour', "
             "valid_to = valid_to + interval '1 hour'");
    tx.exec0("UPDATE " + db.quoted() + ".comebacks SET version_from = version_from + interval '1 hour'");
    tx.commit();
}

TEST_CASE("after the server's clock steps back, a change still closes the open version: one open version per comeback") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    auto samples = three_comebacks();
    load(db.connection(), db.name(), key, samples);
    stamps_from_a_clock_an_hour_ahead(db);

    samples[0].state = "Completed";
    CHECK(load(db.connection(), db.name(), key, samples).updated == 1);
    CHECK(count_rows(db.connection(), db.name(), "comeback_history WHERE valid_to IS NULL") == 3);
    CHECK(one_text(db.connection(), "SELECT string_agg(change || ':' || state || ':' || (valid_to IS NULL), ',' ORDER BY valid_from) FROM " +
                                        db.quoted() + ".comeback_history WHERE comeback_id = 'K1'") ==
          "insert:New:false,update:Completed:true");
    // No version ends before it begins.
    CHECK(count_rows(db.connection(), db.name(), "comeback_history WHERE valid_to <= valid_from") == 0);
}

TEST_CASE("after the server's clock steps back, a window another load changed is compared, not confirmed") {
    loaded_schema db;
    const auto key1 = window_of("M1", week1);
    const auto key2 = window_of("M1", week2);
    const std::vector<sample> in_week1{{.id = "K1"}, {.id = "K2"}};
    load(db.connection(), db.name(), key1, in_week1);
    load(db.connection(), db.name(), key2, {{.id = "K9", .occurs_at = utc(week2, std::chrono::hours{8})}});
    stamps_from_a_clock_an_hour_ahead(db);

    // Week 2's response now holds K1, rescheduled; week 1 then answers as before.
    load(db.connection(), db.name(), key2,
         {{.id = "K9", .occurs_at = utc(week2, std::chrono::hours{8})},
          {.id = "K1", .occurs_at = utc(week2, std::chrono::hours{9})}});
    const auto counts = load(db.connection(), db.name(), key1, in_week1);
    CHECK_FALSE(counts.confirmed);
    CHECK(counts.updated == 1);
    CHECK(count_rows(db.connection(), db.name(), "comeback_history WHERE valid_to IS NULL") == 3);
}

namespace {

// A response as the daemon fetched it, with its digest (sync/response_digest.hpp).
fetch_info response_with_digest(const std::string& digest) {
    return fetch_info{200, std::chrono::milliseconds{12}, 3456, digest};
}

// Parses and loads a window, as the daemon does with a response it did not confirm unparsed.
load_counts load_response(pqxx::connection& connection, const std::string& schema, const window_key& key,
                          const std::vector<sample>& samples, const std::vector<rejection>& rejections,
                          const std::string& digest, load_options options = {}) {
    window_loader loader{connection, schema, key, options};
    loader.add(batch_of(key.customer_id, samples), rejections);
    return loader.commit(response_with_digest(digest));
}

// Whether the locked path (read_load_start, which window_loader::commit()
// reads) would confirm the window for this response digest; reads only.
bool locked_load_confirms(pqxx::connection& connection, const std::string& schema, const window_key& key,
                          const std::string& digest) {
    sql::batched_transaction tx{connection, "read load start"};
    sql::statement_batch batch{tx};
    batch.add_command("SET LOCAL search_path TO " + tx.quote_name(schema));
    load_start start;
    read_load_start(batch, key, {}, digest, {}, start);
    batch.send();
    return start.last.confirms;
}

// A snapshot without the two tables a confirmation writes (the ledger and
// the rejected rows): the data, which no confirmation changes.
std::map<std::string, std::vector<std::string>> beyond_confirmations(
    std::map<std::string, std::vector<std::string>> tables) {
    tables.erase("sync_windows");
    tables.erase("rejected_rows");
    return tables;
}

const std::vector<rejection> one_rejection{
    {.index = 2, .id = std::nullopt, .reason = "element is not an object", .raw = "42"}};

}  // namespace

TEST_CASE("a window confirmed unparsed leaves the ledger row and rejected rows a parsed confirmation leaves") {
    loaded_schema db;
    const auto parsed = window_of("M1", week1);
    const auto unparsed = window_of("M2", week1);
    for (const auto& key : {parsed, unparsed}) {
        load_response(db.connection(), db.name(), key, three_comebacks(), one_rejection, "D1",
                      {.fetch_ticket = 1});
    }
    const auto before = snapshot(db.connection(), db.name());

    const auto by_parse = load_response(db.connection(), db.name(), parsed, three_comebacks(), one_rejection,
                                        "D1", {.fetch_ticket = 2});
    const auto by_digest = confirm_unparsed(db.connection(), db.name(), unparsed, response_with_digest("D1"),
                                            {.fetch_ticket = 2});
    REQUIRE(by_parse.confirmed);
    REQUIRE(by_digest);
    CHECK(by_digest->unparsed);
    CHECK(by_digest->confirmed);
    CHECK(by_digest->rows_seen == by_parse.rows_seen);
    CHECK(by_digest->duplicates == by_parse.duplicates);
    CHECK(by_digest->rejected == by_parse.rejected);
    CHECK(by_digest->unreadable_ids == by_parse.unreadable_ids);
    CHECK(by_digest->changed() == 0);

    // Every column but the customer and the instants (each load has its own
    // stamp and durations), which are compared by how they relate instead.
    const std::string columns =
        "status, attempts, rows_seen, rows_duplicate, rows_changed, rows_rejected, last_http_status, "
        "last_error, response_bytes, fetch_ms, content_digest, response_digest, fetch_ticket, held_digest, "
        "held_since, held_deletions, held_live_rows, window_from, window_to, first_day, end_day, date_criteria, "
        "fetched_at = attempted_at, compared_at < fetched_at, changed_at < fetched_at";
    auto ledger_row = [&](const std::string& customer) {
        return one_text(db.connection(), "SELECT row(" + columns + ")::text FROM " + db.quoted() +
                                              ".sync_windows WHERE customer_id = '" + customer + "'");
    };
    CHECK(ledger_row("M2") == ledger_row("M1"));
    CHECK(ledger_row("M2").find("complete,2,3,0,0,1,200,,3456,12,") == 1);
    auto rejected_row = [&](const std::string& customer) {
        return one_text(db.connection(), "SELECT row(r.times_seen, r.reason, r.raw, r.last_seen_at = w.fetched_at)::text FROM " +
                                             db.quoted() + ".rejected_rows r JOIN " + db.quoted() +
                                             ".sync_windows w USING (customer_id) WHERE customer_id = '" +
                                             customer + "'");
    };
    CHECK(rejected_row("M2") == rejected_row("M1"));
    CHECK(rejected_row("M2") == "(2,\"element is not an object\",42,t)");
    // And no data: the other tables are as before.
    CHECK(beyond_confirmations(snapshot(db.connection(), db.name())) == beyond_confirmations(before));
}

TEST_CASE("an unparsed confirmation and a load under the customer's lock agree on whether a window confirms") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    load_response(db.connection(), db.name(), key, three_comebacks(), {}, "D1", {.fetch_ticket = 1});
    struct ledger_state {
        std::string name;
        std::string change;  // run on the window's ledger row first ("{}" is the table); empty: none
        std::string offered_digest;
        bool confirms;
    };
    // Values, not SQL with this run's schema: each generated value runs the test case anew.
    const ledger_state state = GENERATE(values<ledger_state>({
        {"as the last load left it", "", "D1", true},
        {"another response", "", "D2", false},
        {"compared a day and more ago", "UPDATE {} SET compared_at = clock_timestamp() - interval '25 hours'", "D1",
         false},
        {"data changed by a later load", "UPDATE {} SET changed_at = fetched_at + interval '1 second'", "D1", false},
        {"counts unknown", "UPDATE {} SET rows_seen = NULL", "D1", false},
        {"never fetched", "DELETE FROM {}", "D1", false},
    }));
    INFO(state.name);
    if (!state.change.empty()) {
        std::string change = state.change;
        change.replace(change.find("{}"), 2, db.quoted() + ".sync_windows");
        pqxx::work tx{db.connection()};
        tx.exec0(change);
        tx.commit();
    }
    const bool locked = locked_load_confirms(db.connection(), db.name(), key, state.offered_digest);
    const auto unparsed = confirm_unparsed(db.connection(), db.name(), key, response_with_digest(state.offered_digest),
                                           {.fetch_ticket = 2});
    CHECK(locked == state.confirms);
    CHECK(unparsed.has_value() == state.confirms);
    // Nothing written unless confirmed: the row keeps the first load's attempt.
    CHECK(count_rows(db.connection(), db.name(), "sync_windows WHERE attempts > 1") == (state.confirms ? 1 : 0));
}

TEST_CASE("an unparsed confirmation of a fetch older than the window's last load is refused as stale") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    load_response(db.connection(), db.name(), key, three_comebacks(), {}, "D1", {.fetch_ticket = 7});
    const auto before = snapshot(db.connection(), db.name());
    CHECK_THROWS_AS(confirm_unparsed(db.connection(), db.name(), key, response_with_digest("D1"), {.fetch_ticket = 6}),
                    stale_fetch_error);
    CHECK_THROWS_AS(load_response(db.connection(), db.name(), key, three_comebacks(), {}, "D1", {.fetch_ticket = 6}),
                    stale_fetch_error);
    CHECK(snapshot(db.connection(), db.name()) == before);
    CHECK_FALSE(confirm_unparsed(db.connection(), db.name(), key, response_with_digest("D1"), {.recheck = true}));
    CHECK_FALSE(confirm_unparsed(db.connection(), db.name(), key, response_with_digest(""), {}));
    CHECK(confirm_unparsed(db.connection(), db.name(), key, response_with_digest("D1"), {.fetch_ticket = 8}));
}

TEST_CASE("several windows' responses are confirmed unparsed in one statement, each as if alone") {
    loaded_schema db;
    const auto same = window_of("M1", week1);
    const auto other = window_of("M2", week1);
    const auto stale = window_of("M3", week1);
    const auto unknown = window_of("M4", week1);
    const auto undigested = window_of("M5", week1);
    for (const auto& key : {same, other, stale, undigested}) {
        load_response(db.connection(), db.name(), key, three_comebacks(), one_rejection, "D1", {.fetch_ticket = 5});
    }
    const auto before = snapshot(db.connection(), db.name());
    const std::vector<unparsed_response> responses{
        {same, response_with_digest("D1"), 6},
        {other, response_with_digest("D2"), 6},        // another response: loaded in full instead
        {stale, response_with_digest("D1"), 4},        // older than the window's last load
        {unknown, response_with_digest("D1"), std::nullopt},  // never planned
        {undigested, response_with_digest(""), 6},      // no digest: never offered
    };
    const std::vector<confirmation> results = confirm_unparsed(db.connection(), db.name(), responses);
    REQUIRE(results.size() == responses.size());
    REQUIRE(results[0].counts);
    CHECK(results[0].counts->unparsed);
    CHECK(results[0].counts->rows_seen == 3);
    CHECK(results[0].counts->rejected == 1);
    CHECK(results[0].counts->unreadable_ids == 1);
    CHECK_FALSE(results[0].refused);
    for (std::size_t i : {1, 3, 4}) {
        INFO(i);
        CHECK_FALSE(results[i].counts);
        CHECK_FALSE(results[i].refused);
    }
    CHECK_FALSE(results[2].counts);
    REQUIRE(results[2].refused);
    CHECK_THROWS_AS(std::rethrow_exception(results[2].refused), stale_fetch_error);

    // Only the confirmed window's ledger row and rejected rows changed, as a
    // confirmation of it alone changes them.
    CHECK(count_rows(db.connection(), db.name(), "sync_windows WHERE attempts = 2") == 1);
    CHECK(count_rows(db.connection(), db.name(), "sync_windows WHERE customer_id = 'M1' AND fetch_ticket = 6") == 1);
    CHECK(count_rows(db.connection(), db.name(), "rejected_rows WHERE times_seen = 2 AND customer_id = 'M1'") == 1);
    CHECK(count_rows(db.connection(), db.name(), "rejected_rows WHERE times_seen = 2") == 1);
    CHECK(beyond_confirmations(snapshot(db.connection(), db.name())) == beyond_confirmations(before));

    // A customer's loads are stamped one after another: never two in one statement.
    const std::vector<unparsed_response> twice{{same, response_with_digest("D1"), 7},
                                               {window_of("M1", week2), response_with_digest("D1"), 7}};
    CHECK_THROWS_AS(confirm_unparsed(db.connection(), db.name(), twice), std::logic_error);
    CHECK(confirm_unparsed(db.connection(), db.name(), std::span<const unparsed_response>{}).empty());
}

TEST_CASE("an unparsed confirmation that meets a load committing on its window confirms nothing") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    load_response(db.connection(), db.name(), key, three_comebacks(), {}, "D1", {.fetch_ticket = 1});

    // Another session's transaction holds the window's ledger row, as a load
    // of the window, or of another window that changed this one's data,
    // does until it commits. The confirmation's snapshot predates that commit.
    struct racing_write {
        std::string name;
        std::string set;
        bool confirms;
    };
    const racing_write racing = GENERATE(values<racing_write>({
        {"a later load of another window changed the window's data", "changed_at = fetched_at + interval '1 second'", false},
        {"a later load of the window itself committed", "fetched_at = fetched_at + interval '1 second', "
                                                        "compared_at = fetched_at + interval '1 second'", false},
        {"a failed attempt, which changes nothing the rule reads", "attempts = attempts + 1, last_error = 'timeout'", true},
    }));
    INFO(racing.name);
    auto other = connect();
    auto confirming = connect();
    pqxx::work holder{*other};
    holder.exec0("UPDATE " + db.quoted() + ".sync_windows SET " + racing.set + " WHERE customer_id = 'M1'");

    std::atomic<bool> returned{false};
    std::optional<load_counts> confirmed;
    std::exception_ptr failure;
    std::thread confirmer{[&] {
        try {
            confirmed = confirm_unparsed(*confirming, db.name(), key, response_with_digest("D1"), {.fetch_ticket = 2});
        } catch (...) {
            failure = std::current_exception();
        }
        returned = true;
    }};
    // It waits for the row until the holder commits.
    std::this_thread::sleep_for(std::chrono::milliseconds{300});
    const bool waited = !returned;
    holder.commit();
    confirmer.join();
    if (failure) std::rethrow_exception(failure);
    CHECK(waited);
    CHECK(confirmed.has_value() == racing.confirms);
    CHECK(count_rows(db.connection(), db.name(), "sync_windows WHERE fetch_ticket = 2") == (racing.confirms ? 1 : 0));
}

TEST_CASE("a fetch that took its ticket before a confirmation without one is dropped should it commit after it") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    // The daemon's first load of the window, fenced as every load is.
    const auto first = take_fetch_ticket(db.connection(), db.name(), key);
    load_response(db.connection(), db.name(), key, three_comebacks(), {}, "D1", {.fetch_ticket = first.ticket});

    // Another instance takes a ticket and fetches; meanwhile a re-fetch sent
    // without a ticket confirms the window. Which began first is unknown, so
    // the confirmation records the counter and the other fetch is dropped.
    const auto earlier = take_fetch_ticket(db.connection(), db.name(), key);
    REQUIRE(confirm_unparsed(db.connection(), db.name(), key, response_with_digest("D1"), {}));
    CHECK(one_text(db.connection(), "SELECT fetch_ticket FROM " + db.quoted() + ".sync_windows") ==
          std::to_string(earlier.ticket));
    const auto before = snapshot(db.connection(), db.name());
    CHECK_THROWS_AS(load_response(db.connection(), db.name(), key, {{.id = "K9"}}, {}, "D2",
                                  {.fetch_ticket = earlier.ticket}),
                    stale_fetch_error);
    CHECK(snapshot(db.connection(), db.name()) == before);

    // A fetch that takes its ticket after the confirmation began after it: it loads.
    const auto later = take_fetch_ticket(db.connection(), db.name(), key);
    CHECK(load_response(db.connection(), db.name(), key, {{.id = "K9"}}, {}, "D2", {.fetch_ticket = later.ticket})
              .inserted == 1);
}
