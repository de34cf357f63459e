#include "load/ledger.hpp"

#include "load/migrations.hpp"
#include "load_test_data.hpp"
#include "support/database.hpp"

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

using namespace comeback;
using namespace comeback::test;

namespace {

const date_criteria occurrence{};
const std::chrono::seconds retention = date::days{90};  // privacy.rejected_raw_retention
const std::vector<sample> two_comebacks{{.id = "K1"}, {.id = "K2", .contact_id = "C2"}};

window as_window(const window_key& key) { return window{key.first_day, key.end_day, key.from, key.to}; }

struct migrated : scratch_schema {
    migrated() { migrate(connection(), name()); }
};

}  // namespace

TEST_CASE("planning windows adds pending ledger rows once and leaves existing rows alone") {
    migrated db;
    const std::vector<window> windows{as_window(window_of("M1", week1)), as_window(window_of("M1", week2))};
    // The rows it has just planned are read with the rest, in order.
    const auto planned = plan_and_read_ledger(db.connection(), db.name(), "M1", occurrence,
                                              std::span(windows).subspan(1), retention);
    REQUIRE(planned.size() == 1);
    CHECK(planned[0].first_day == week2);
    CHECK(planned[0].status == "pending");
    CHECK(planned[0].attempts == 0);
    const auto both = plan_and_read_ledger(db.connection(), db.name(), "M1", occurrence, windows, retention);
    REQUIRE(both.size() == 2);
    CHECK(both[0].first_day == week1);
    CHECK(both[1].first_day == week2);
    load(db.connection(), db.name(), window_of("M1", week1), {{.id = "K1"}});
    plan_and_read_ledger(db.connection(), db.name(), "M1", occurrence, windows, retention);

    auto ledger = read_ledger(db.connection(), db.name(), "M1", occurrence);
    REQUIRE(ledger.size() == 2);
    CHECK(ledger[0].first_day == week1);
    CHECK(ledger[0].end_day == week2);
    CHECK(ledger[0].status == "complete");
    CHECK(ledger[0].attempts == 1);
    CHECK(ledger[0].fetched_at.has_value());
    CHECK(ledger[0].last_http_status == 200);
    CHECK(ledger[1].first_day == week2);
    CHECK(ledger[1].status == "pending");
    CHECK(ledger[1].attempts == 0);
    CHECK_FALSE(ledger[1].fetched_at.has_value());
    CHECK_FALSE(ledger[1].last_error.has_value());

    // The bounds are stored exactly as given, microseconds included.
    {
        pqxx::read_transaction tx{db.connection()};
        CHECK(tx.exec1("SELECT window_from::text FROM " + db.quoted() + ".sync_windows WHERE first_day = '2024-05-13'")[0]
              .as<std::string>()
              .rfind("2024-05-13 00:00:00", 0) == 0);
    }
    CHECK(read_ledger(db.connection(), db.name(), "M1", date_criteria{"Booked"}).empty());
}

TEST_CASE("planning and reading in one call returns the rows just planned beside the ones already there") {
    migrated db;
    load(db.connection(), db.name(), window_of("M1", week1), {{.id = "K1"}});
    const std::vector<window> windows{as_window(window_of("M1", week1)), as_window(window_of("M1", week2))};
    for (int round = 0; round < 2; ++round) {
        INFO("round " << round);
        const auto ledger = plan_and_read_ledger(db.connection(), db.name(), "M1", occurrence, windows, retention);
        REQUIRE(ledger.size() == 2);
        CHECK(ledger[0].status == "complete");
        CHECK(ledger[1].first_day == week2);
        CHECK(ledger[1].status == "pending");
    }
    // Nothing to plan: a read.
    CHECK(plan_and_read_ledger(db.connection(), db.name(), "M1", occurrence, {}, retention).size() == 2);
    CHECK(plan_and_read_ledger(db.connection(), db.name(), "M2", occurrence, {}, retention).empty());
}

TEST_CASE("sync status counts each customer's windows and names the stalest window and the last error") {
    migrated db;
    const auto third = week2 + date::days{7};
    plan_and_read_ledger(db.connection(), db.name(), "M1", occurrence,
                         std::vector<window>{as_window(window_of("M1", week1)),
                                             as_window(window_of("M1", week2)),
                                             as_window(window_of("M1", third))},
                         retention);
    load(db.connection(), db.name(), window_of("M1", week2), {{.id = "K1", .occurs_at = utc(week2, std::chrono::hours{3})}});
    load(db.connection(), db.name(), window_of("M1", third), {{.id = "K2", .occurs_at = utc(third, std::chrono::hours{3})}});
    record_window_failure(db.connection(), db.name(), window_of("M1", week1), 500, failure_kind::transient, "server error");
    load(db.connection(), db.name(), window_of("M2", week1), {{.id = "K1"}});

    auto statuses = read_sync_status(db.connection(), db.name());
    REQUIRE(statuses.size() == 2);
    const auto& m1 = statuses[0];
    CHECK(m1.customer_id == "M1");
    CHECK(m1.windows_complete == 2);
    CHECK(m1.windows_failed == 1);
    CHECK(m1.windows_pending == 0);
    REQUIRE(m1.last_success.has_value());
    // Never fetched successfully comes first.
    CHECK(m1.stalest_window_first_day == week1);
    CHECK_FALSE(m1.stalest_window_fetched_at.has_value());
    CHECK(m1.last_error == "server error");
    CHECK(m1.last_error_kind == "transient");

    const auto& m2 = statuses[1];
    CHECK(m2.customer_id == "M2");
    CHECK(m2.windows_complete == 1);
    CHECK(m2.stalest_window_first_day == week1);
    CHECK(m2.stalest_window_fetched_at == m2.last_success);
    CHECK_FALSE(m2.last_error.has_value());
    CHECK_FALSE(m2.last_error_kind.has_value());

    auto ledger = read_ledger(db.connection(), db.name(), "M1", occurrence);
    REQUIRE(ledger.size() == 3);
    CHECK(ledger[0].status == "failed");
    CHECK(ledger[0].last_error == "server error");
    CHECK(ledger[0].last_http_status == 500);
    CHECK(ledger[0].attempted_at.has_value());
}

TEST_CASE("a failed attempt keeps everything the window's last complete load recorded, its bounds too") {
    migrated db;
    const auto key = window_of("M1", week1);
    load(db.connection(), db.name(), key, two_comebacks);
    // Every column a failure leaves alone, as text.
    const std::string kept =
        "SELECT concat_ws('|', window_from, window_to, rows_seen, rows_duplicate, rows_changed,"
        " rows_rejected, response_bytes, fetch_ms, load_ms, fetched_at, content_digest,"
        " changed_at, compared_at) FROM " + db.quoted() + ".sync_windows";
    auto text_of = [&](const std::string& sql) { return one_text(db.connection(), sql); };
    const std::string before = text_of(kept);
    REQUIRE(before.find("||") == std::string::npos);  // none of them is NULL

    // The same days with other bounds, as after a change of time zone.
    auto moved = key;
    moved.from += std::chrono::hours{1};
    moved.to += std::chrono::hours{1};
    record_window_failure(db.connection(), db.name(), moved, 504, failure_kind::transient, "gateway timeout");

    CHECK(text_of(kept) == before);
    CHECK(text_of("SELECT concat_ws('|', status, attempts, last_http_status, last_error,"
                  " attempted_at > fetched_at) FROM " + db.quoted() + ".sync_windows") ==
          "failed|2|504|gateway timeout|t");

    // A complete load takes the bounds it was given.
    load(db.connection(), db.name(), moved, two_comebacks);
    CHECK(text_of("SELECT concat_ws('|', status, attempts, last_http_status,"
                  " coalesce(last_error, 'none'), window_from = '2024-05-06 01:00+00')"
                  " FROM " + db.quoted() + ".sync_windows") == "complete|3|200|none|t");
}

TEST_CASE("a failed attempt is recorded in the ledger without touching comebacks") {
    migrated db;
    const auto key = window_of("M1", week1);
    load(db.connection(), db.name(), key, two_comebacks);
    const auto comebacks_before = snapshot(db.connection(), db.name()).at("comebacks");

    record_window_failure(db.connection(), db.name(), key, 503, failure_kind::transient, "service unavailable");
    CHECK(one_text(db.connection(), "SELECT status || ' ' || attempts || ' ' || last_http_status || ' ' || last_error || ' ' || (fetched_at IS NOT NULL) || ' ' || last_error_kind FROM " +
                                        db.quoted() + ".sync_windows") == "failed 2 503 service unavailable true transient");
    CHECK(snapshot(db.connection(), db.name()).at("comebacks") == comebacks_before);

    record_window_failure(db.connection(), db.name(), window_of("M1", week2), 0, failure_kind::transient, "connection reset");
    CHECK(one_text(db.connection(), "SELECT status || ' ' || attempts || ' ' || coalesce(last_http_status::text, 'none') FROM " +
                                        db.quoted() + ".sync_windows WHERE first_day = '2024-05-13'") == "failed 1 none");

    // The next success clears the error.
    load(db.connection(), db.name(), key, two_comebacks);
    CHECK(one_text(db.connection(), "SELECT status || ' ' || attempts || ' ' || coalesce(last_error, 'cleared') || ' ' ||"
                                    " coalesce(last_error_kind, 'cleared') FROM " +
                                        db.quoted() + ".sync_windows WHERE first_day = '2024-05-06'") == "complete 3 cleared cleared");
}

TEST_CASE("a failure message with NUL, invalid UTF-8 or too many bytes is still recorded, cut and cleaned") {
    migrated db;
    const auto key = window_of("M1", week1);
    // What a server may send back: a NUL, a lone byte that is not UTF-8, and far too much text.
    const std::string error = std::string("bad\0gateway \xff ", 14) + std::string(3000, 'x') + "\xc3\xa5";
    record_window_failure(db.connection(), db.name(), key, 502, failure_kind::transient, error);
    CHECK(one_text(db.connection(), "SELECT left(last_error, 16) FROM " + db.quoted() + ".sync_windows") ==
          "bad\xEF\xBF\xBDgateway \xEF\xBF\xBD xx");
    CHECK(one_text(db.connection(), "SELECT octet_length(last_error) <= 2000 + 6 FROM " + db.quoted() + ".sync_windows") ==
          "t");
}

TEST_CASE("every customer's windows are read a chunk at a time from one snapshot, in key order") {
    migrated db;
    // Three customers (one sorting before, one after the others byte-wise),
    // four windows each, planned out of order.
    std::vector<window> planned;
    for (int week = 3; week >= 0; --week) planned.push_back(as_window(window_of("M1", week1 + date::days{7 * week})));
    for (const char* customer : {"M2", "A0", "m1"}) {
        plan_and_read_ledger(db.connection(), db.name(), customer, occurrence, planned, retention);
    }
    load(db.connection(), db.name(), window_of("M2", week2), {{.id = "K1", .occurs_at = utc(week2, std::chrono::hours{3})}});

    auto read = [&](std::size_t chunk_rows, const std::function<void()>& after_first = {}) {
        std::vector<std::string> rows;
        for_each_ledger_window(db.connection(), db.name(), occurrence, chunk_rows, [&](const customer_ledger_entry& w) {
            rows.push_back(w.customer_id + " " + date::format("%F", w.entry.first_day) + " " +
                           date::format("%F", w.entry.end_day) + " " + w.entry.status +
                           (w.entry.fetched_at ? " fetched" : ""));
            if (rows.size() == 1 && after_first) after_first();
        });
        return rows;
    };
    const auto whole = read(1000);
    REQUIRE(whole.size() == 12);
    CHECK(whole.front() == "A0 2024-05-06 2024-05-13 pending");
    CHECK(whole[5] == "M2 2024-05-13 2024-05-20 complete fetched");
    CHECK(whole.back() == "m1 2024-05-27 2024-06-03 pending");
    CHECK(std::is_sorted(whole.begin(), whole.end()));
    for (std::size_t chunk : {1, 2, 3, 4, 5, 11, 12, 13}) {
        INFO("chunk of " << chunk);
        CHECK(read(chunk) == whole);
    }

    // A window planned by another session while the read is under way is
    // not part of it: one snapshot, whatever the chunk size.
    const std::vector<window> later{as_window(window_of("M9", week1))};
    auto other = connect();
    const auto during = read(2, [&] { plan_and_read_ledger(*other, db.name(), "M9", occurrence, later, retention); });
    CHECK(during == whole);
    CHECK(read(2).size() == 13);
}

TEST_CASE("the reads of the whole ledger run without PostgreSQL's JIT, the others keep the session's setting") {
    migrated db;
    const std::vector<window> windows{as_window(window_of("M1", week1)), as_window(window_of("M1", week2))};
    plan_and_read_ledger(db.connection(), db.name(), "M1", occurrence, windows, retention);
    load(db.connection(), db.name(), window_of("M1", week1), {{.id = "K1"}});

    // Every statement's plan comes back as a notice, JIT for any plan at all.
    struct plans : pqxx::errorhandler {
        explicit plans(pqxx::connection_base& connection) : pqxx::errorhandler(connection) {}
        bool operator()(const char message[]) noexcept override {
            seen.emplace_back(message);
            return true;
        }
        // The plans seen since the last call whose query text holds `text`.
        std::vector<std::string> take(std::string_view text) {
            std::vector<std::string> matching;
            for (auto& plan : seen) {
                if (plan.find(text) != std::string::npos) matching.push_back(std::move(plan));
            }
            seen.clear();
            return matching;
        }
        std::vector<std::string> seen;
    } heard{db.connection()};
    {
        pqxx::nontransaction session{db.connection()};
        session.exec0("LOAD 'auto_explain'");
        session.exec0("SET auto_explain.log_min_duration = 0");
        session.exec0("SET auto_explain.log_level = notice");
        session.exec0("SET client_min_messages = notice");
        session.exec0("SET jit = on");
        session.exec0("SET jit_above_cost = 0");
    }
    auto jit_in = [](const std::vector<std::string>& plans) {
        return std::any_of(plans.begin(), plans.end(),
                           [](const std::string& plan) { return plan.find("\nJIT:") != std::string::npos; });
    };
    // The session compiles: the check below would see JIT if it were used.
    {
        pqxx::read_transaction tx{db.connection()};
        tx.exec1("SELECT count(*) FROM " + db.quoted() + ".sync_windows");
    }
    const auto control = heard.take("sync_windows");
    REQUIRE(control.size() == 1);
    REQUIRE(jit_in(control));

    REQUIRE(read_sync_status(db.connection(), db.name()).size() == 1);
    const auto status = heard.take("FROM sync_status");
    REQUIRE(status.size() == 1);
    CHECK_FALSE(jit_in(status));

    std::size_t windows_read = 0;
    for_each_ledger_window(db.connection(), db.name(), occurrence, 1, [&](const customer_ledger_entry&) { ++windows_read; });
    CHECK(windows_read == 2);
    const auto chunks = heard.take("FROM sync_windows");
    CHECK(chunks.size() == 3);  // two windows a row at a time, then an empty chunk
    CHECK_FALSE(jit_in(chunks));

    // Only those transactions: a customer's own ledger read is planned as
    // the session says, and so is the session's next statement.
    REQUIRE(read_ledger(db.connection(), db.name(), "M1", occurrence).size() == 2);
    CHECK(jit_in(heard.take("FROM sync_windows")));
    pqxx::nontransaction after{db.connection()};
    CHECK(after.exec1("SHOW jit")[0].as<std::string>() == "on");
}
