// A broken response never erases good data: the deletion guard, unreadable
// ids, null names; and personal data can be forgotten: erased contacts,
// omitted names, the rejected rows' retention, forget_contact and
// rewrite_contact_names.

#include "load/ledger.hpp"
#include "load/privacy.hpp"
#include "load/window_loader.hpp"

#include "load/migrations.hpp"
#include "load_test_data.hpp"
#include "normalize/pseudonym.hpp"
#include "support/database.hpp"

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

using namespace comeback;
using namespace comeback::test;
using namespace std::chrono_literals;

namespace {

struct loaded_schema : scratch_schema {
    loaded_schema() { migrate(connection(), name()); }
};

// `count` comebacks K000.. in week 1, each with its own contact.
std::vector<sample> comebacks(int count, int first = 0) {
    std::vector<sample> out;
    for (int i = first; i < first + count; ++i) {
        char id[8];
        std::snprintf(id, sizeof id, "K%03d", i);
        out.push_back({.id = id, .contact_id = std::string("C") + (id + 1),
                       .contact_name = std::string("Contact ") + (id + 1)});
    }
    return out;
}

void run(pqxx::connection& connection, const std::string& sql) {
    pqxx::work tx{connection};
    tx.exec0(sql);
    tx.commit();
}

// Everything a load may write except the ledger row.
std::map<std::string, std::vector<std::string>> stored_data(pqxx::connection& connection,
                                                            const std::string& schema) {
    auto tables = snapshot(connection, schema);
    tables.erase("sync_windows");
    return tables;
}

}  // namespace

TEST_CASE("a load that would delete more than half of a window's live comebacks, and at least 20, is held") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    load(db.connection(), db.name(), key, comebacks(40));
    const auto digest_before = one_text(db.connection(), "SELECT content_digest || fetched_at FROM " + db.quoted() + ".sync_windows");
    const auto before = stored_data(db.connection(), db.name());

    // 16 of 40 come back, one of them changed: 24 would be deleted (60%).
    auto shrunk = comebacks(16);
    shrunk[0].state = "Completed";
    const auto counts = load(db.connection(), db.name(), key, shrunk);

    CHECK(counts.held);
    CHECK(counts.held_deletions == 24);
    CHECK(counts.held_live_rows == 40);
    CHECK(counts.changed() == 0);
    // Nothing of the window is written: not the deletions, not the change.
    CHECK(stored_data(db.connection(), db.name()) == before);
    CHECK(one_text(db.connection(), "SELECT status || ' ' || held_deletions || '/' || held_live_rows || ' ' || last_error FROM " +
                                        db.quoted() + ".sync_windows") ==
          "held 24/40 held: the load would soft-delete 24 of the window's 40 live comebacks");
    // The last complete load's record stays: nothing confirms against the held content.
    CHECK(one_text(db.connection(), "SELECT content_digest || fetched_at FROM " + db.quoted() + ".sync_windows") == digest_before);
    const auto held = read_held_windows(db.connection(), db.name());
    REQUIRE(held.size() == 1);
    CHECK(held[0].customer_id == "M1");
    CHECK(held[0].first_day == week1);
    CHECK(held[0].deletions == 24);
    CHECK(held[0].live_rows == 40);
    CHECK(held[0].held_since);
    CHECK(read_sync_status(db.connection(), db.name()).at(0).windows_held == 1);
    // A hold is not a failure: its reason has no failure kind.
    CHECK_FALSE(read_sync_status(db.connection(), db.name()).at(0).last_error_kind);

    SECTION("an empty response is held the same way") {
        const auto empty = load(db.connection(), db.name(), key, std::vector<normalized_batch>{});
        CHECK(empty.held);
        CHECK(empty.held_deletions == 40);
        CHECK(stored_data(db.connection(), db.name()) == before);
    }
    SECTION("the old content coming back confirms the window and ends the hold") {
        const auto back = load(db.connection(), db.name(), key, comebacks(40));
        CHECK_FALSE(back.held);
        CHECK(back.changed() == 0);
        CHECK(one_text(db.connection(), "SELECT status || ' ' || (held_since IS NULL) || ' ' || (last_error IS NULL) FROM " +
                                            db.quoted() + ".sync_windows") == "complete true true");
        CHECK(read_held_windows(db.connection(), db.name()).empty());
    }
    SECTION("a failed attempt of a held window leaves it held") {
        record_window_failure(db.connection(), db.name(), key, 503, failure_kind::transient, "HTTP 503");
        CHECK(one_text(db.connection(), "SELECT status || ' ' || held_deletions || ' ' || last_error_kind FROM " + db.quoted() +
                                            ".sync_windows") == "held 24 transient");
    }
}

TEST_CASE("deletions below either threshold are applied at once") {
    loaded_schema db;
    SECTION("a quarter of the window") {
        const auto key = window_of("M1", week1);
        load(db.connection(), db.name(), key, comebacks(40));
        const auto counts = load(db.connection(), db.name(), key, comebacks(30));
        CHECK_FALSE(counts.held);
        CHECK(counts.deleted == 10);
    }
    SECTION("all of a window of 19") {
        const auto key = window_of("M1", week1);
        load(db.connection(), db.name(), key, comebacks(19));
        const auto counts = load(db.connection(), db.name(), key, std::vector<normalized_batch>{});
        CHECK_FALSE(counts.held);
        CHECK(counts.deleted == 19);
        CHECK(one_text(db.connection(), "SELECT status FROM " + db.quoted() + ".sync_windows") == "complete");
    }
    SECTION("a guard that is switched off holds nothing") {
        const auto key = window_of("M1", week1);
        load(db.connection(), db.name(), key, comebacks(40));
        load_options options;
        options.deletion_guard.enabled = false;
        const auto counts = load(db.connection(), db.name(), key, comebacks(1), options);
        CHECK(counts.deleted == 39);
    }
}

TEST_CASE("held deletions are applied once fetches spanning accept_after keep returning the same content") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    load(db.connection(), db.name(), key, comebacks(40));
    REQUIRE(load(db.connection(), db.name(), key, comebacks(10)).held);
    const auto since = one_text(db.connection(), "SELECT held_since::text FROM " + db.quoted() + ".sync_windows");

    // Again the same content, too soon: still held, since the first sighting.
    CHECK(load(db.connection(), db.name(), key, comebacks(10)).held);
    CHECK(one_text(db.connection(), "SELECT held_since::text FROM " + db.quoted() + ".sync_windows") == since);

    // The held content was first returned 25 hours ago (the stored first
    // sighting is the clock this rule reads, so the test moves it).
    run(db.connection(), "UPDATE " + db.quoted() + ".sync_windows SET held_since = held_since - interval '25 hours'");
    SECTION("the same content then applies its deletions") {
        const auto counts = load(db.connection(), db.name(), key, comebacks(10));
        CHECK_FALSE(counts.held);
        CHECK(counts.deletes_accepted == deletes_accepted::span);
        CHECK(counts.deleted == 30);
        CHECK(one_text(db.connection(), "SELECT status || ' ' || (held_digest IS NULL) FROM " + db.quoted() + ".sync_windows") ==
              "complete true");
        CHECK(count_rows(db.connection(), db.name(), "comebacks WHERE deleted_at IS NOT NULL") == 30);
    }
    SECTION("other content starts the span again") {
        const auto counts = load(db.connection(), db.name(), key, comebacks(11));
        CHECK(counts.held);
        CHECK(one_text(db.connection(), "SELECT held_since > now() - interval '1 hour' FROM " + db.quoted() + ".sync_windows") == "t");
        CHECK(load(db.connection(), db.name(), key, comebacks(11)).held);
    }
    SECTION("accept_after 0 never applies them by itself") {
        load_options options;
        options.deletion_guard.accept_after = 0s;
        CHECK(load(db.connection(), db.name(), key, comebacks(10), options).held);
    }
}

TEST_CASE("accept_deletes applies held deletions at once") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    load(db.connection(), db.name(), key, comebacks(40));
    REQUIRE(load(db.connection(), db.name(), key, comebacks(10)).held);
    const auto counts = load(db.connection(), db.name(), key, comebacks(10), load_options{.accept_deletes = true});
    CHECK_FALSE(counts.held);
    CHECK(counts.deletes_accepted == deletes_accepted::command);
    CHECK(counts.deleted == 30);
    CHECK(read_held_windows(db.connection(), db.name()).empty());
}

TEST_CASE("a window with an element whose id cannot be read deletes nothing") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    load(db.connection(), db.name(), key, comebacks(3));
    const std::vector<rejection> unreadable{
        {.index = 1, .id = std::nullopt, .reason = "id is missing", .raw = "{\"Id\":\"K001\"}"}};
    const auto counts = load(db.connection(), db.name(), key, {batch_of("M1", comebacks(1))}, unreadable);
    CHECK(counts.unreadable_ids == 1);
    CHECK(counts.deleted == 0);
    CHECK_FALSE(counts.held);
    CHECK(count_rows(db.connection(), db.name(), "comebacks WHERE deleted_at IS NULL") == 3);
    CHECK(count_rows(db.connection(), db.name(), "rejected_rows") == 1);

    // Every id unreadable: nothing deleted either.
    const std::vector<rejection> all_unreadable{
        {.index = 0, .id = std::nullopt, .reason = "id is missing", .raw = "{\"Id\":\"K000\"}"},
        {.index = 1, .id = std::nullopt, .reason = "id is missing", .raw = "{\"Id\":\"K001\"}"},
        {.index = 2, .id = std::nullopt, .reason = "id is missing", .raw = "{\"Id\":\"K002\"}"}};
    CHECK(load(db.connection(), db.name(), key, std::vector<normalized_batch>{}, all_unreadable).deleted == 0);
    CHECK(count_rows(db.connection(), db.name(), "comebacks WHERE deleted_at IS NULL") == 3);
}

TEST_CASE("a null name never erases a known one, and a name never known is NULL in the report") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    load(db.connection(), db.name(), key, {{.id = "K1"}, {.id = "K2", .contact_id = "C2", .contact_name = std::nullopt,
                                                          .user_id = "U2", .user_name = std::nullopt}});
    CHECK(one_text(db.connection(), "SELECT coalesce(contact_name, 'NULL') || '/' || coalesce(booked_by_name, 'NULL') FROM " +
                                        db.quoted() + ".comeback_report WHERE comeback_id = 'K2'") == "NULL/NULL");

    // K1's contact and user arrive without names, K2's with theirs.
    load(db.connection(), db.name(), key, {{.id = "K1", .contact_name = std::nullopt, .user_name = std::nullopt},
                                           {.id = "K2", .contact_id = "C2", .contact_name = "Cecilia", .user_id = "U2", .user_name = "Dan"}});
    CHECK(one_text(db.connection(), "SELECT string_agg(contact_name || '/' || booked_by_name, ',' ORDER BY comeback_id) FROM " +
                                        db.quoted() + ".comeback_report") == "Anna Andersson/Bo Berg,Cecilia/Dan");
    // An empty name is what the response said.
    load(db.connection(), db.name(), key, {{.id = "K1", .contact_name = ""}, {.id = "K2", .contact_id = "C2", .contact_name = "Cecilia", .user_id = "U2", .user_name = "Dan"}});
    CHECK(one_text(db.connection(), "SELECT '[' || contact_name || ']' FROM " + db.quoted() + ".comeback_report WHERE comeback_id = 'K1'") == "[]");
}

TEST_CASE("omit stores no contact name, and empties the names a window's contacts had") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    load(db.connection(), db.name(), key, comebacks(3));
    load_options options;
    options.contact_names = contact_names::omit;
    // normalize() gives no names under omit, so the content differs from the
    // last load's and the load compares; this batch carries the names all the
    // same (and so must be compared: recheck), and the loader writes none.
    options.recheck = true;
    load(db.connection(), db.name(), key, comebacks(3), options);
    CHECK(count_rows(db.connection(), db.name(), "contacts WHERE name IS NOT NULL") == 0);
    CHECK(count_rows(db.connection(), db.name(), "users WHERE name IS NOT NULL") == 1);
}

TEST_CASE("forget_contact erases the name everywhere, and later loads keep it erased") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    const std::vector<rejection> naming{
        {.index = 5, .id = "K9", .reason = "contact.name: \"Anna Andersson\" is not what was expected",
         .raw = "{\"id\":\"K9\",\"contact\":{\"id\":\"C1\",\"name\":\"Anna Andersson\"}}"},
        {.index = 6, .id = "K8", .reason = "occursAt: \"soon\" is not a timestamp", .raw = "{\"id\":\"K8\"}"}};
    load(db.connection(), db.name(), key, {batch_of("M1", {{.id = "K1"}, {.id = "K2", .contact_id = "C2", .contact_name = "Bea"}})}, naming);
    record_window_failure(db.connection(), db.name(), window_of("M1", week2), 200, failure_kind::all_rejected,
                          "every element was rejected; the first: contact.name: \"Anna Andersson\"");

    const auto erasure = forget_contact(db.connection(), db.name(), "M1", "C1");
    CHECK(erasure.newly_recorded);
    CHECK(erasure.name_erased);
    CHECK(erasure.rejected_rows_withheld == 1);
    CHECK(erasure.ledger_errors_withheld == 1);
    auto nowhere = [&] {
        for (const auto& [table, rows] : snapshot(db.connection(), db.name())) {
            for (const auto& row : rows) {
                INFO(table << ": " << row);
                CHECK(row.find("Anna Andersson") == std::string::npos);
            }
        }
    };
    nowhere();
    CHECK(one_text(db.connection(), "SELECT name FROM " + db.quoted() + ".contacts WHERE contact_id = 'C2'") == "Bea");
    CHECK(count_rows(db.connection(), db.name(), "rejected_rows WHERE raw IS NOT NULL") == 1);
    CHECK(count_rows(db.connection(), db.name(), "contact_erasures WHERE contact_id = 'C1'") == 1);

    // Vitec goes on sending the name: compared or confirmed, it stays erased.
    load(db.connection(), db.name(), key, {batch_of("M1", {{.id = "K1"}, {.id = "K2", .contact_id = "C2", .contact_name = "Bea"}})}, naming);
    recheck(db.connection(), db.name(), key, {{.id = "K1"}, {.id = "K2", .contact_id = "C2", .contact_name = "Bea"}});
    load(db.connection(), db.name(), window_of("M1", week2),
         {{.id = "K5", .occurs_at = utc(week2, std::chrono::hours{9})}});
    nowhere();
    CHECK(one_text(db.connection(), "SELECT coalesce(contact_name, 'NULL') FROM " + db.quoted() + ".comeback_report WHERE comeback_id = 'K5'") == "NULL");

    // Asked again: nothing left to erase, the erasure already recorded.
    const auto again = forget_contact(db.connection(), db.name(), "M1", "C1");
    CHECK_FALSE(again.newly_recorded);
    CHECK_FALSE(again.name_erased);
    CHECK(again.rejected_rows_withheld == 0);
}

TEST_CASE("rejected rows keep their raw text for the retention period, counted from when last seen") {
    loaded_schema db;
    const auto key = window_of("M1", week1);
    const std::vector<rejection> rejections{{.index = 1, .id = "K9", .reason = "bad", .raw = "{\"id\":\"K9\",\"x\":1}"}};
    const std::vector<rejection> other{{.index = 1, .id = "K8", .reason = "worse", .raw = "{\"id\":\"K8\",\"x\":2}"}};
    load(db.connection(), db.name(), key, {batch_of("M1", {{.id = "K1"}})}, rejections);
    load(db.connection(), db.name(), window_of("M2", week1), {batch_of("M2", {{.id = "K1"}})}, other);
    CHECK(count_rows(db.connection(), db.name(), "rejected_rows WHERE raw IS NOT NULL") == 2);
    auto raw_texts = [&] {
        return one_text(db.connection(), "SELECT string_agg(customer_id || ':' || reason || '=' || coalesce(raw, 'NULL'), ' ' "
                                          "ORDER BY customer_id, reason) FROM " + db.quoted() + ".rejected_rows");
    };

    // Both last seen 91 days ago; M1's week 2 then loads a new rejection, and
    // M1's next cycle begins.
    run(db.connection(), "UPDATE " + db.quoted() + ".rejected_rows SET last_seen_at = last_seen_at - interval '91 days'");
    const std::vector<rejection> recent{{.index = 0, .id = "K7", .reason = "new", .raw = "{\"id\":\"K7\"}"}};
    load(db.connection(), db.name(), window_of("M1", week2),
         {batch_of("M1", {{.id = "K5", .occurs_at = utc(week2, std::chrono::hours{9})}})}, recent);
    plan_and_read_ledger(db.connection(), db.name(), "M1", date_criteria{}, {}, date::days{90});
    // M1's old raw text is gone, its row and reason stay; M1's recent one and
    // M2's (whose own cycles or apply-privacy purge it) are untouched.
    CHECK(raw_texts() == "M1:bad=NULL M1:new={\"id\":\"K7\"} M2:worse={\"id\":\"K8\",\"x\":2}");
    CHECK(purge_rejected_raw(db.connection(), db.name(), date::days{90}) == 1);
    CHECK(raw_texts() == "M1:bad=NULL M1:new={\"id\":\"K7\"} M2:worse=NULL");

    // Seen again, it is current again; a retention of 0 keeps none at all.
    load(db.connection(), db.name(), key, {batch_of("M1", {{.id = "K1"}})}, rejections);
    CHECK(count_rows(db.connection(), db.name(), "rejected_rows WHERE raw IS NOT NULL") == 2);
    load_options none;
    none.rejected_raw_retention = 0s;
    load(db.connection(), db.name(), key, {batch_of("M1", {{.id = "K1"}})}, rejections, none);
    // The load stores none; the customer's next cycle empties what earlier loads kept.
    CHECK(raw_texts() == "M1:bad=NULL M1:new={\"id\":\"K7\"} M2:worse=NULL");
    plan_and_read_ledger(db.connection(), db.name(), "M1", date_criteria{}, {}, 0s);
    CHECK(count_rows(db.connection(), db.name(), "rejected_rows WHERE customer_id = 'M1' AND raw IS NOT NULL") == 0);
}

TEST_CASE("a customer's cycle empties its rejected rows' raw text past the retention, whatever its loads store") {
    loaded_schema db;
    const std::vector<rejection> rejections{{.index = 1, .id = "K9", .reason = "bad", .raw = "{\"id\":\"K9\"}"}};
    load(db.connection(), db.name(), window_of("M1", week1), {batch_of("M1", {{.id = "K1"}})}, rejections);
    load(db.connection(), db.name(), window_of("M2", week1), {batch_of("M2", {{.id = "K1"}})}, rejections);
    run(db.connection(), "UPDATE " + db.quoted() + ".rejected_rows SET last_seen_at = last_seen_at - interval '91 days'");
    const std::vector<window> windows{{week1, week2, utc(week1), utc(week2)}};

    // Kept 100 days: nothing is due.
    plan_and_read_ledger(db.connection(), db.name(), "M1", date_criteria{}, windows, date::days{100});
    CHECK(count_rows(db.connection(), db.name(), "rejected_rows WHERE raw IS NOT NULL") == 2);
    // Kept 90 days: M1's cycle empties M1's raw text; M2's waits for M2's cycle.
    plan_and_read_ledger(db.connection(), db.name(), "M1", date_criteria{}, windows, date::days{90});
    CHECK(count_rows(db.connection(), db.name(), "rejected_rows WHERE customer_id = 'M1' AND raw IS NULL") == 1);
    CHECK(count_rows(db.connection(), db.name(), "rejected_rows WHERE customer_id = 'M2' AND raw IS NOT NULL") == 1);
    CHECK(count_rows(db.connection(), db.name(), "rejected_rows") == 2);  // the rows and reasons stay
}

TEST_CASE("rewrite_contact_names pseudonymizes or omits the names already stored") {
    loaded_schema db;
    load(db.connection(), db.name(), window_of("M1", week1), comebacks(3));
    load(db.connection(), db.name(), window_of("M2", week1), comebacks(2));

    CHECK(rewrite_contact_names(db.connection(), db.name(), {contact_names::keep, {}}) == 0);
    const contact_name_rule pseudonyms{contact_names::pseudonymize, "key"};
    CHECK(rewrite_contact_names(db.connection(), db.name(), pseudonyms) == 5);
    CHECK(one_text(db.connection(), "SELECT name FROM " + db.quoted() + ".contacts WHERE customer_id = 'M1' AND contact_id = 'C000'") ==
          pseudonymize_name("key", "M1", "Contact 000"));
    CHECK(count_rows(db.connection(), db.name(), "contacts WHERE name LIKE 'Contact%'") == 0);
    CHECK(count_rows(db.connection(), db.name(), "users WHERE name = 'Bo Berg'") == 2);  // staff keep their names
    // Pseudonyms are not pseudonymized again.
    CHECK(rewrite_contact_names(db.connection(), db.name(), pseudonyms) == 0);

    CHECK(rewrite_contact_names(db.connection(), db.name(), {contact_names::omit, {}}) == 5);
    CHECK(count_rows(db.connection(), db.name(), "contacts WHERE name IS NOT NULL") == 0);
}
