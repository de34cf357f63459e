// sync_window against the real PostgreSQL and the fake Vitec server, with a
// fault of every kind injected for real: at the server (/_control faults, a
// certificate nobody trusts) and in the database (a terminated backend, a
// trigger, a constraint). Each case checks the outcome, the ledger and the
// metrics.

#include "sync_fixture.hpp"

#include "load/database_failure.hpp"
#include "load/window_loader.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

using namespace comeback;
using namespace comeback::test;
using namespace std::chrono_literals;

namespace {

const auto march = date::year{2024} / 3 / 5;

// A fault in the database: `body` (PL/pgSQL) runs before each statement that
// writes comebacks, in the loader's own transaction.
void before_comebacks_insert(sync_fixture& f, const std::string& body) {
    f.exec("CREATE FUNCTION " + f.db.quoted() + ".fault() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN " +
           body + " RETURN NULL; END $$");
    f.exec("CREATE TRIGGER fault BEFORE INSERT ON " + f.db.quoted() +
           ".comebacks FOR EACH STATEMENT EXECUTE FUNCTION " + f.db.quoted() + ".fault()");
}

}  // namespace

TEST_CASE("a window commits in one attempt, and the ledger and the metrics say so") {
    sync_fixture f({"--rows-per-customer", "500"});
    const window w = f.window_of(march);
    const window_outcome outcome = f.sync(w);

    CHECK(outcome.committed);
    CHECK(outcome.attempts == 1);
    CHECK_FALSE(outcome.last_failure);
    CHECK(outcome.counts.rows_seen > 0);
    CHECK(f.comebacks() == outcome.counts.rows_seen);
    const ledger_entry entry = f.ledger_of(w);
    CHECK(entry.status == "complete");
    CHECK(entry.attempts == 1);
    CHECK(f.requests("rows") == 1);
    CHECK(f.windows("ok") == 1);
    CHECK(f.windows("failed") == 0);
}

TEST_CASE("a fault of each fetch kind is retried or not as its rule says, and recorded under its label") {
    struct fault {
        const char* spec;
        failure_kind kind;
        int http_status;
    };
    const fault faults[] = {
        {"html", failure_kind::broken_response, 200},
        {"truncate=2000", failure_kind::transient, 200},
        {"status=400,message=bad%20window", failure_kind::request_rejected, 400},
        {"status=401", failure_kind::credentials_rejected, 401},
        {"status=403", failure_kind::access_denied, 403},
        {"status=404", failure_kind::endpoint_missing, 404},
        {"status=429,retry-after=0", failure_kind::throttled, 429},
        {"status=502", failure_kind::transient, 502},
        {"reset", failure_kind::transient, 0},
    };
    for (const fault& injected : faults) {
        DYNAMIC_SECTION(injected.spec) {
            sync_fixture f({"--rows-per-customer", "500"});
            f.server.control(std::string("/_control/fault?count=100&spec=") + injected.spec);
            const window w = f.window_of(march);
            const window_outcome outcome = f.sync(w);

            const unsigned expected_attempts = is_retryable(injected.kind) ? f.cfg.vitec.retry.max_attempts : 1;
            CHECK_FALSE(outcome.committed);
            CHECK(outcome.kind() == injected.kind);
            CHECK(outcome.attempts == expected_attempts);
            CHECK(outcome.parks_customer() == parks_customer(injected.kind));
            REQUIRE(outcome.last_failure);
            CHECK(outcome.last_failure->http_status == injected.http_status);
            CHECK(f.server.stats().at("requests").as_int64() == expected_attempts);

            const ledger_entry entry = f.ledger_of(w);
            CHECK(entry.status == "failed");
            CHECK(entry.attempts == static_cast<int>(expected_attempts));
            CHECK(entry.last_error == outcome.error());
            CHECK(f.one<std::string>("SELECT last_error_kind FROM {}.sync_windows") == to_string(injected.kind));
            if (injected.http_status != 0) CHECK(entry.last_http_status == injected.http_status);
            CHECK(f.comebacks() == 0);

            CHECK(f.requests(std::string(to_string(injected.kind))) == expected_attempts);
            CHECK(f.requests("rows") == 0);
            CHECK(f.windows("failed") == 1);
        }
    }
}

TEST_CASE("a retryable fault that passes leaves a committed window and both outcomes counted") {
    sync_fixture f({"--rows-per-customer", "500"});
    f.server.control("/_control/fault?count=1&spec=status=503,retry-after=0");
    const window w = f.window_of(march);
    const window_outcome outcome = f.sync(w);

    CHECK(outcome.committed);
    CHECK(outcome.attempts == 2);
    CHECK(f.ledger_of(w).status == "complete");
    CHECK(f.ledger_of(w).attempts == 2);  // the failed attempt and the commit
    CHECK(f.requests("throttled") == 1);
    CHECK(f.requests("rows") == 1);
    CHECK(f.windows("ok") == 1);
}

TEST_CASE("a certificate nobody trusts is tls_rejected and not retried") {
    test_pki pki;
    sync_fixture f({"--rows-per-customer", "50", "--tls-cert", pki.file("server.pem"), "--tls-key",
                    pki.file("server.key")});
    f.cfg.vitec.base_url = parse_vitec_url(f.server.url("https", "localhost"), false);
    f.cfg.vitec.ca_file = pki.file("other-ca.pem");
    const window w = f.window_of(march);
    const window_outcome outcome = f.sync(w);

    CHECK(outcome.kind() == failure_kind::tls_rejected);
    CHECK(outcome.attempts == 1);
    CHECK(f.ledger_of(w).status == "failed");
    CHECK(f.ledger_of(w).last_error->find("vitec.ca_file") != std::string::npos);
    CHECK(f.requests("tls_rejected") == 1);
    CHECK(f.windows("failed") == 1);
}

TEST_CASE("a connection lost under the loader fails the attempt as database_lost, and the retry commits") {
    // The pool replaces a connection the server closed before handing it out
    // (sync/db_workers), so the loss has to come while the loader works: its
    // backend is terminated as it first writes comebacks, once (a sequence is
    // not rolled back with the transaction).
    sync_fixture f({"--rows-per-customer", "12000", "--from", "2024-03-04", "--to", "2024-03-10"});
    const window w = f.window_of(march);
    f.exec("CREATE SEQUENCE " + f.db.quoted() + ".loss_count");
    before_comebacks_insert(f, "IF nextval('" + f.db.quoted() +
                                   ".loss_count') = 1 THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF;");

    const window_outcome outcome = f.sync(w, 1);
    CHECK(outcome.committed);
    CHECK(outcome.attempts == 2);
    CHECK(outcome.counts.rows_seen == 12000);
    CHECK(f.requests("database_lost") == 1);
    CHECK(f.requests("rows") == 1);
    const ledger_entry entry = f.ledger_of(w);
    CHECK(entry.status == "complete");
    CHECK(entry.attempts == 2);
}

TEST_CASE("a loader that loses its connection on every attempt fails the window as database_lost") {
    sync_fixture f({"--rows-per-customer", "500"});
    // The loader's own backend is terminated as it writes comebacks.
    before_comebacks_insert(f, "PERFORM pg_terminate_backend(pg_backend_pid());");
    const window w = f.window_of(march);
    const window_outcome outcome = f.sync(w);

    CHECK_FALSE(outcome.committed);
    CHECK(outcome.kind() == failure_kind::database_lost);
    CHECK(outcome.attempts == f.cfg.vitec.retry.max_attempts);
    CHECK(outcome.error().starts_with("database "));
    const ledger_entry entry = f.ledger_of(w);
    CHECK(entry.status == "failed");
    CHECK(entry.attempts == static_cast<int>(f.cfg.vitec.retry.max_attempts));
    CHECK(entry.last_error == outcome.error());
    CHECK(f.one<std::string>("SELECT last_error_kind FROM {}.sync_windows") == "database_lost");
    CHECK(f.comebacks() == 0);
    CHECK(f.requests("database_lost") == f.cfg.vitec.retry.max_attempts);
    CHECK(f.windows("failed") == 1);
}

TEST_CASE("a serialization failure is a conflict: retried, and the next attempt commits") {
    sync_fixture f({"--rows-per-customer", "500"});
    f.exec("CREATE SEQUENCE " + f.db.quoted() + ".conflicts");
    before_comebacks_insert(f, "IF nextval('" + f.db.quoted() + ".conflicts') = 1 THEN "
                               "RAISE EXCEPTION 'injected' USING ERRCODE = 'serialization_failure'; END IF;");
    const window w = f.window_of(march);
    const window_outcome outcome = f.sync(w);

    CHECK(outcome.committed);
    CHECK(outcome.attempts == 2);
    CHECK(f.requests("database_conflict") == 1);
    CHECK(f.requests("rows") == 1);
    CHECK(f.ledger_of(w).status == "complete");
}

TEST_CASE("a statement the database refuses is not retried, and the error names the database and what to check") {
    sync_fixture f({"--rows-per-customer", "500"});
    f.exec("ALTER TABLE " + f.db.quoted() + ".comebacks ADD CONSTRAINT refuse_all CHECK (false) NOT VALID");
    const window w = f.window_of(march);
    const window_outcome outcome = f.sync(w);

    CHECK_FALSE(outcome.committed);
    CHECK(outcome.kind() == failure_kind::database_refused);
    CHECK(outcome.attempts == 1);
    CHECK(f.server.stats().at("requests").as_int64() == 1);
    const std::string database = "database " + std::string(f.db.connection().dbname());
    CHECK(outcome.error().starts_with(database));
    CHECK(outcome.error().find("SQLSTATE 23514") != std::string::npos);
    CHECK(outcome.error().find("schema/*.sql") != std::string::npos);
    const ledger_entry entry = f.ledger_of(w);
    CHECK(entry.status == "failed");
    CHECK(entry.attempts == 1);
    CHECK(entry.last_error == outcome.error());
    CHECK(f.requests("database_refused") == 1);
    CHECK(f.windows("failed") == 1);
}

TEST_CASE("a programming error is not retried: counted, recorded, and thrown for the customer loop") {
    sync_fixture f({"--rows-per-customer", "500"});
    // load_config refuses an unknown zone, so meeting one here is a bug.
    f.cfg.vitec.timezone = "Nowhere/Nothing";
    const window w = window_containing(date::local_days{march}, f.cfg.sync.window,
                                       find_zone("Europe/Stockholm"));
    CHECK_THROWS(f.sync(w));

    CHECK(f.server.stats().at("requests").as_int64() == 0);
    const ledger_entry entry = f.ledger_of(w);
    CHECK(entry.status == "failed");
    CHECK(entry.attempts == 1);
    REQUIRE(entry.last_error);
    CHECK(entry.last_error->starts_with("internal error: "));
    CHECK(f.requests("internal_error") == 1);
    CHECK(f.windows("failed") == 1);
}

TEST_CASE("no retry starts once shutdown is triggered: the last failure stands") {
    sync_fixture f({"--rows-per-customer", "500"});
    f.server.control("/_control/fault?count=100&spec=status=500");
    f.shutdown.trigger();
    const window w = f.window_of(march);
    const window_outcome outcome = f.sync(w);

    CHECK_FALSE(outcome.committed);
    CHECK(outcome.attempts == 1);
    CHECK(outcome.kind() == failure_kind::transient);
    CHECK(f.ledger_of(w).attempts == 1);
}

namespace {

// `count` comeback elements K<n> due on 2024-03-05, for a --fixture response.
std::string fixture_rows(int count, const char* id_key = "id") {
    std::string out;
    for (int n = 0; n < count; ++n) {
        if (n > 0) out += ',';
        out += "{\"" + std::string(id_key) + "\":\"K" + std::to_string(n) +
               "\",\"contact\":{\"id\":\"C" + std::to_string(n) +
               "\",\"name\":\"Contact\"},\"occursAt\":\"2024-03-05T10:00:00\"}";
    }
    return out;
}

}  // namespace

TEST_CASE("a load the deletion guard holds is its own outcome: held in the ledger and the metrics, no failure") {
    temp_dir responses;
    responses.write("M1.json", "[" + fixture_rows(40) + "]");
    sync_fixture f({"--fixture", responses.path().string()});
    const window w = f.window_of(march);
    REQUIRE(f.sync(w).committed);

    responses.write("M1.json", "[]");
    const window_outcome held = f.sync(w);
    CHECK(held.held());
    CHECK(held.attempts == 1);
    CHECK_FALSE(held.last_failure);
    CHECK(held.counts.held_deletions == 40);
    CHECK(f.comebacks() == 40);
    CHECK(f.ledger_of(w).status == "held");
    CHECK(f.windows("held") == 1);
    CHECK(f.windows("failed") == 0);
    CHECK(f.windows("ok") == 1);

    // Fetched again in a turn, a held window takes a ticket at once: its
    // ledger keeps the last complete load's digest, which the held content
    // cannot confirm, so a fetch without one would cost a second request.
    REQUIRE(f.sync_in_turn(w).held());
    CHECK(f.requests("rows") == 3);
    CHECK(f.one<int>("SELECT fetches_started FROM {}.sync_customers") == 3);
}

TEST_CASE("a response whose every element is rejected fails as all_rejected, is not retried, and deletes nothing") {
    temp_dir responses;
    responses.write("M1.json", "[" + fixture_rows(3) + "]");
    sync_fixture f({"--fixture", responses.path().string()});
    const window w = f.window_of(march);
    REQUIRE(f.sync(w).committed);

    responses.write("M1.json", "[" + fixture_rows(3, "Id") + "]");
    const window_outcome outcome = f.sync(w);
    CHECK_FALSE(outcome.committed);
    CHECK(outcome.attempts == 1);
    REQUIRE(outcome.kind() == failure_kind::all_rejected);
    CHECK_THAT(outcome.error(), Catch::Contains("every one of the 3 elements was rejected; the first: id is missing"));
    CHECK(f.ledger_of(w).status == "failed");
    CHECK(f.requests("all_rejected") == 1);
    pqxx::read_transaction tx{f.db.connection()};
    CHECK(tx.exec1("SELECT count(*) FROM " + f.db.quoted() + ".comebacks WHERE deleted_at IS NULL")[0].as<int>() == 3);
}

TEST_CASE("an unchanged response confirms its window unparsed, from its digest; anything else is parsed") {
    temp_dir responses;
    // Good rows and one rejected element, which the confirmation sees again.
    responses.write("M1.json", "[" + fixture_rows(5) + "," + fixture_rows(1, "Id") + "]");
    sync_fixture f({"--fixture", responses.path().string()});
    const window w = f.window_of(march);
    auto times_seen = [&] { return f.one<int>("SELECT sum(times_seen) FROM {}.rejected_rows"); };
    auto response_digest = [&] { return f.one<std::string>("SELECT response_digest FROM {}.sync_windows"); };

    const window_outcome first = f.sync(w);
    REQUIRE(first.committed);
    CHECK_FALSE(first.counts.confirmed);
    CHECK(first.counts.inserted == 5);
    // A first load has no digest to equal, but is held too: its request ends
    // as soon as the body is in, then it is parsed.
    CHECK_FALSE(first.counts.unparsed);
    CHECK(f.hold.peak > 0);
    CHECK(f.hold.held == 0);
    const std::string digest = response_digest();
    CHECK(digest.size() == 32);  // XXH3-128 in hex
    CHECK(times_seen() == 1);

    SECTION("the same bytes: confirmed without parsing, as a parsed confirmation would count it") {
        const window_outcome again = f.sync(w);
        REQUIRE(again.committed);
        CHECK(again.counts.confirmed);
        CHECK(again.counts.unparsed);
        CHECK(again.counts.rows_seen == 5);
        CHECK(again.counts.rejected == 1);
        CHECK(again.counts.unreadable_ids == first.counts.unreadable_ids);
        CHECK(again.counts.unreadable_ids == 1);  // the element keyed "Id" has no readable id
        CHECK(again.counts.changed() == 0);
        CHECK(times_seen() == 2);
        CHECK(response_digest() == digest);
        CHECK(f.ledger_of(w).attempts == 2);
        CHECK(f.hold.peak > 0);
        CHECK(f.hold.held == 0);  // nothing stays counted once the window is done
    }
    SECTION("a response too large to hold is parsed as it arrives, and confirmed by its content") {
        f.hold.per_response = 16;
        const window_outcome again = f.sync(w);
        REQUIRE(again.committed);
        CHECK(again.counts.confirmed);
        CHECK_FALSE(again.counts.unparsed);
        CHECK(response_digest() == digest);
        CHECK(times_seen() == 2);
        CHECK(f.hold.held == 0);
    }
    SECTION("no room left over all responses in flight: parsed") {
        f.hold.held = f.hold.total - 10;
        const window_outcome again = f.sync(w);
        REQUIRE(again.committed);
        CHECK(again.counts.confirmed);
        CHECK_FALSE(again.counts.unparsed);
        CHECK(f.hold.held == f.hold.total - 10);
    }
    SECTION("a setting that decides how the body is read changes the digest: parsed") {
        f.cfg.vitec.max_field_bytes *= 2;
        const window_outcome again = f.sync(w);
        REQUIRE(again.committed);
        CHECK(again.counts.confirmed);
        CHECK_FALSE(again.counts.unparsed);
        CHECK(response_digest() != digest);
        // The new digest is trusted from then on.
        CHECK(f.sync(w).counts.unparsed);
    }
    // The same bytes, but the ledger row changed as `assignment` says: the
    // confirm rule no longer holds, so the window is parsed and compared.
    auto compared_after = [&](const std::string& assignment) {
        f.exec("UPDATE " + f.db.quoted() + ".sync_windows SET " + assignment);
        const window_outcome again = f.sync(w);
        REQUIRE(again.committed);
        CHECK_FALSE(again.counts.confirmed);
        CHECK_FALSE(again.counts.unparsed);
        CHECK(again.counts.changed() == 0);
    };
    SECTION("a window last compared over a day ago is parsed and compared") {
        compared_after("compared_at = compared_at - interval '2 days'");
    }
    SECTION("a window another load changed since is parsed and compared") {
        compared_after("changed_at = fetched_at + interval '1 second'");
    }
    SECTION("digests of an earlier build's algorithm (SHA-256, 64 hex digits) are compared once, then trusted") {
        // What an upgrade from a version that digested with SHA-256 finds: no
        // digest of the new kind can equal them, so the window is parsed and
        // compared (changing nothing) and its new digests are recorded.
        compared_after("response_digest = repeat('a', 64), content_digest = repeat('b', 64)");
        CHECK(response_digest() == digest);
        const window_outcome after = f.sync(w);
        CHECK(after.counts.confirmed);
        CHECK(after.counts.unparsed);
    }
    SECTION("changed bytes are parsed and loaded") {
        responses.write("M1.json", "[" + fixture_rows(6) + "]");
        const window_outcome again = f.sync(w);
        REQUIRE(again.committed);
        CHECK_FALSE(again.counts.confirmed);
        CHECK(again.counts.inserted == 1);
        CHECK(response_digest() != digest);
    }
}

TEST_CASE("a re-fetch that may confirm its window unparsed takes no fetch ticket; one that does not is fetched again with one") {
    temp_dir responses;
    responses.write("M1.json", "[" + fixture_rows(5) + "]");
    sync_fixture f({"--fixture", responses.path().string()});
    const window w = f.window_of(march);
    auto tickets = [&] { return f.one<int>("SELECT fetches_started FROM {}.sync_customers"); };
    auto window_ticket = [&] { return f.one<int>("SELECT fetch_ticket FROM {}.sync_windows"); };

    // A first load has no digest to confirm: it takes a ticket.
    REQUIRE(f.sync_in_turn(w).committed);
    CHECK(tickets() == 1);
    CHECK(f.requests("rows") == 1);

    // The same bytes: confirmed unparsed, without a ticket; the window records
    // the counter as it stands. Such a response is never parsed, so none of it
    // is held: each piece goes into the digest as it arrives.
    f.hold.peak = 0;
    const window_outcome again = f.sync_in_turn(w);
    REQUIRE(again.committed);
    CHECK(again.counts.unparsed);
    CHECK(tickets() == 1);
    CHECK(window_ticket() == 1);
    CHECK(f.requests("rows") == 2);
    CHECK(f.hold.peak == 0);
    CHECK(f.hold.spare.empty());
    // Without the turn's ledger the fetch takes one, as before.
    REQUIRE(f.sync(w).counts.unparsed);
    CHECK(tickets() == 2);
    CHECK(window_ticket() == 2);
    CHECK(f.requests("rows") == 3);

    SECTION("changed bytes: dropped unread, fetched again with a ticket, and loaded") {
        responses.write("M1.json", "[" + fixture_rows(6) + "]");
        const window_outcome changed = f.sync_in_turn(w);
        REQUIRE(changed.committed);
        CHECK_FALSE(changed.counts.confirmed);
        CHECK(changed.counts.inserted == 1);
        CHECK(changed.attempts == 1);
        CHECK(tickets() == 3);
        CHECK(window_ticket() == 3);
        CHECK(f.requests("rows") == 5);
    }
    SECTION("a body that outgrows the hold: cut off, fetched again with a ticket, and loaded") {
        f.hold.per_response = f.ledger_of(w).confirmable_bytes.value() + 64;
        responses.write("M1.json", "[" + fixture_rows(40) + "]");
        const window_outcome grown = f.sync_in_turn(w);
        REQUIRE(grown.committed);
        CHECK(grown.counts.inserted == 35);
        CHECK(tickets() == 3);
        CHECK(f.hold.held == 0);
    }
    SECTION("a recheck takes a ticket and compares") {
        f.hold.per_response = f.hold.total;
        const auto ledger = read_ledger(f.db.connection(), f.db.name(), "M1", f.cfg.sync.date_criteria);
        vitec_client client(f.io.get_executor(), f.cfg.vitec);
        window_context context{client, f.workers, f.confirmations, f.shutdown, &f.metrics, f.rng};
        context.hold = &f.hold;
        context.ledger = &ledger;
        context.load.recheck = true;
        const window_outcome rechecked = run(f.io, sync_window(context, f.cfg, f.customer(), w));
        REQUIRE(rechecked.committed);
        CHECK_FALSE(rechecked.counts.confirmed);
        CHECK(tickets() == 3);
        // The context worked the configuration's fingerprint out once, for its later windows.
        CHECK(context.fingerprint == response_fingerprint(f.cfg));
    }
}

TEST_CASE("a planned window's first load in a turn takes no fetch ticket; one loaded meanwhile is fetched again with one") {
    temp_dir responses;
    responses.write("M1.json", "[" + fixture_rows(5) + "]");
    sync_fixture f({"--fixture", responses.path().string()});
    const window w = f.window_of(march);
    const window other = f.window_of(date::year_month_day{date::year{2024} / 5 / 6});
    auto tickets = [&] { return f.one<int>("SELECT coalesce(sum(fetches_started), 0)::int FROM {}.sync_customers"); };
    auto window_ticket = [&](const window& of) {
        return f.one<std::string>("SELECT coalesce(fetch_ticket::text, 'none') FROM {}.sync_windows WHERE first_day = '" +
                                  date::format("%F", of.first_day) + "'");
    };

    SECTION("never loaded: no ticket; the window records the counter as it stands") {
        const auto ledger = f.plan(w);
        REQUIRE(f.sync(w, 4, &ledger).committed);
        CHECK(tickets() == 0);
        CHECK(window_ticket(w) == "none");  // no fetch has taken one yet
        CHECK(f.requests("rows") == 1);
        REQUIRE(f.sync(other).committed);  // without the turn's ledger: ticket 1
        const window third = f.window_of(date::year_month_day{date::year{2024} / 7 / 1});
        const auto later = f.plan(third);
        REQUIRE(f.sync(third, 4, &later).committed);
        CHECK(tickets() == 1);
        CHECK(window_ticket(third) == "1");
        // A fetch that took its ticket before that load committed is dropped.
        f.exec("UPDATE " + f.db.quoted() + ".sync_customers SET fetches_started = 0");
        const window_outcome stale = f.sync(third);
        CHECK_FALSE(stale.committed);
        CHECK(stale.dropped());
    }
    SECTION("loaded meanwhile: the response is not loaded, the window is fetched again with a ticket") {
        const auto ledger = f.plan(w);
        REQUIRE(f.sync(w).committed);  // another fetch, with ticket 1, loads it first
        responses.write("M1.json", "[" + fixture_rows(6) + "]");
        const window_outcome outcome = f.sync(w, 4, &ledger);
        REQUIRE(outcome.committed);
        CHECK(outcome.counts.inserted == 1);
        CHECK(outcome.attempts == 1);
        CHECK(tickets() == 2);
        CHECK(window_ticket(w) == "2");
        CHECK(f.requests("rows") == 3);
        CHECK(f.comebacks() == 6);
    }
}

TEST_CASE("a response that outgrows its hold midway is parsed from there on, under the same digest") {
    temp_dir responses;
    responses.write("M1.json", "[" + fixture_rows(2000) + "]");
    sync_fixture f({"--fixture", responses.path().string()});
    const window w = f.window_of(march);
    auto response_digest = [&] { return f.one<std::string>("SELECT response_digest FROM {}.sync_windows"); };
    REQUIRE(f.sync(w).committed);
    const std::string digest = response_digest();

    // One read takes at most 64 KiB: room for the first over all responses
    // in flight, not for a later one. So the digest takes the held part on
    // the I/O thread, and the rest as it comes.
    const std::size_t room = 64 * 1024 + 1;
    REQUIRE(room < fixture_rows(2000).size());
    f.hold.held = f.hold.total - room;  // other windows' responses
    const window_outcome again = f.sync(w);
    REQUIRE(again.committed);
    CHECK(again.counts.confirmed);
    CHECK_FALSE(again.counts.unparsed);
    CHECK(f.hold.peak > f.hold.total - room);  // it was held for a while
    CHECK(f.hold.held == f.hold.total - room);
    CHECK(response_digest() == digest);
    // Held whole, the digest is finished on the loader's thread: the same.
    f.hold.held = 0;
    const window_outcome third = f.sync(w);
    REQUIRE(third.committed);
    CHECK(third.counts.unparsed);
    CHECK(response_digest() == digest);
}

TEST_CASE("a rejection that quotes the password is redacted in the window's failure and in the rejected row") {
    temp_dir responses;
    // A server echoing the password where an object belongs: the rejection
    // quotes the value, and as every element is rejected the window fails
    // with the first rejection's reason.
    responses.write("M1.json", "[{\"id\":\"1\",\"contact\":\"echo pw echo\"}]");
    sync_fixture f({"--fixture", responses.path().string()});
    const window w = f.window_of(march);
    const window_outcome outcome = f.sync(w);
    CHECK_FALSE(outcome.committed);
    INFO(outcome.error());
    REQUIRE(outcome.kind() == failure_kind::all_rejected);
    CHECK_THAT(outcome.error(), Catch::Contains("echo " + std::string(secret::redacted) + " echo"));
    CHECK_THAT(outcome.error(), !Catch::Contains("echo pw"));
    const auto recorded = f.ledger_of(w).last_error;
    REQUIRE(recorded);
    CHECK_THAT(*recorded, !Catch::Contains("echo pw"));

    // With a good element beside it, the window loads and keeps the rejected
    // one: its stored reason is redacted too. (Its raw text is the response's
    // data, kept as sent for privacy.rejected_raw_retention.)
    responses.write("M1.json", "[" + fixture_rows(1) + ",{\"id\":\"2\",\"contact\":\"echo pw echo\"}]");
    REQUIRE(f.sync(w).committed);
    pqxx::read_transaction tx{f.db.connection()};
    const std::string reason =
        tx.exec1("SELECT reason FROM " + f.db.quoted() + ".rejected_rows WHERE comeback_id = '2'")[0].as<std::string>();
    CHECK_THAT(reason, Catch::Contains("echo " + std::string(secret::redacted) + " echo"));
}

TEST_CASE("the response fingerprint follows every setting that decides how a body is loaded, and hides the key") {
    config cfg;
    cfg.privacy.contact_names = contact_names::pseudonymize;
    cfg.privacy.pseudonym_key = secret("first key");
    const std::string base = response_fingerprint(cfg);
    CHECK(base.size() == 32);
    CHECK(base.find("first key") == std::string::npos);
    CHECK(response_fingerprint(cfg) == base);

    config other = cfg;
    other.privacy.pseudonym_key = secret("second key");
    CHECK(response_fingerprint(other) != base);
    other = cfg;
    other.privacy.contact_names = contact_names::omit;
    CHECK(response_fingerprint(other) != base);
    other = cfg;
    other.vitec.timezone = "Europe/Helsinki";
    CHECK(response_fingerprint(other) != base);
    other = cfg;
    other.vitec.max_field_bytes = 4096;
    CHECK(response_fingerprint(other) != base);
}

TEST_CASE("windows waiting to be confirmed at the same time share one statement, and each gets its own verdict") {
    temp_dir responses;
    sync_fixture f({"--fixture", responses.path().string()});
    const window w = f.window_of(march);
    const window later = f.window_of(date::year{2024} / 4 / 5);
    auto key_of = [&](const std::string& customer, const window& of) {
        return window_key{customer, f.cfg.sync.date_criteria, of.first_day, of.end_day, of.from, of.to};
    };
    // Each window's last load read a response with digest D1, under ticket 5.
    for (const window_key& key : {key_of("C1", w), key_of("C1", later), key_of("C2", w), key_of("C3", w), key_of("C4", w)}) {
        window_loader loader{f.db.connection(), f.db.name(), key, {.fetch_ticket = 5}};
        loader.add(normalized_batch{}, {});
        loader.commit(fetch_info{200, 10ms, 2, "D1"});
    }
    struct offer {
        window_key key;
        std::optional<fetch_ticket> ticket;
        std::string digest;
        std::optional<confirmer::verdict> verdict{};
        std::optional<failure_kind> failed{};
    };
    // C1's second window waits for the statement after the first: a
    // customer's loads are stamped one after another.
    std::vector<offer> offers{{key_of("C1", w), 6, "D1"},
                              {key_of("C1", later), std::nullopt, "D1"},
                              {key_of("C2", w), 6, "D2"},
                              {key_of("C3", w), 4, "D1"},
                              {key_of("C4", w), std::nullopt, "D1"}};
    auto offer_all = [&] {
        for (offer& o : offers) {
            o.verdict.reset();
            o.failed.reset();
            boost::asio::co_spawn(
                f.io,
                [&]() -> boost::asio::awaitable<void> {
                    // Named, not temporaries inside the co_await (GCC 12
                    // destroys such temporaries twice).
                    const fetch_info info{200, 10ms, 2, ""};
                    std::function<std::string()> digest = [&] { return o.digest; };
                    try {
                        o.verdict = co_await f.confirmations.confirm(o.key, info, o.ticket, std::move(digest));
                    } catch (const database_error& error) {
                        o.failed = error.failure().kind;
                    }
                },
                boost::asio::detached);
        }
        f.io.restart();
        f.io.run();
    };
    offer_all();
    CHECK(f.confirmations.batches() == 2);
    for (std::size_t i : {0, 1, 4}) {
        INFO(i);
        REQUIRE(offers[i].verdict);
        CHECK(offers[i].verdict->counts);
        CHECK(offers[i].verdict->response_digest == "D1");
    }
    REQUIRE(offers[2].verdict);  // another response: to be parsed and loaded
    CHECK_FALSE(offers[2].verdict->counts);
    CHECK(offers[2].verdict->response_digest == "D2");
    CHECK(offers[3].failed == failure_kind::stale_fetch);  // older than the last load
    CHECK(f.one<int>("SELECT count(*) FROM {}.sync_windows WHERE attempts = 2") == 3);

    // A statement that fails fails every window it carried, and none waits on.
    f.exec("ALTER TABLE " + f.db.quoted() + ".rejected_rows RENAME TO rejected_rows_elsewhere");
    offer_all();
    for (const offer& o : offers) {
        INFO(o.key.customer_id);
        CHECK(o.failed == failure_kind::database_refused);
        CHECK_FALSE(o.verdict);
    }
    CHECK(f.one<int>("SELECT count(*) FROM {}.sync_windows WHERE attempts = 2") == 3);
}

TEST_CASE("with a gather time, windows offered one after another to an idle confirmer share one statement") {
    temp_dir responses;
    sync_fixture f({"--fixture", responses.path().string()});
    const window w = f.window_of(march);
    const std::vector<std::string> customers{"C1", "C2", "C3", "C4"};
    static_assert(confirmer::gathered_enough == 4);
    for (const std::string& customer : customers) {
        const window_key key{customer, f.cfg.sync.date_criteria, w.first_day, w.end_day, w.from, w.to};
        window_loader loader{f.db.connection(), f.db.name(), key, {.fetch_ticket = 5}};
        loader.add(normalized_batch{}, {});
        loader.commit(fetch_info{200, 10ms, 2, "D1"});
    }
    // The first `count` customers' windows, each offered 40 ms after the one
    // before, long after the statement of the one before would have ended.
    // A watchdog ends the run after 30 s, as a gather of an hour would.
    bool watchdog_fired = false;
    auto offer_spaced = [&](confirmer& confirmations, std::size_t count) {
        std::size_t confirmed = 0;
        std::size_t finished = 0;
        boost::asio::steady_timer watchdog(f.io, std::chrono::seconds(30));
        watchdog.async_wait([&](boost::system::error_code error) {
            if (error) return;
            watchdog_fired = true;
            f.io.stop();
        });
        for (std::size_t i = 0; i < count; ++i) {
            boost::asio::co_spawn(
                f.io,
                [&, i]() -> boost::asio::awaitable<void> {
                    boost::asio::steady_timer spacing(f.io, std::chrono::milliseconds(40) * i);
                    co_await spacing.async_wait(boost::asio::use_awaitable);
                    const window_key key{customers[i], f.cfg.sync.date_criteria, w.first_day, w.end_day, w.from, w.to};
                    const fetch_info info{200, 10ms, 2, ""};
                    std::function<std::string()> digest = [] { return std::string("D1"); };
                    const confirmer::verdict verdict = co_await confirmations.confirm(key, info, 6, std::move(digest));
                    if (verdict.counts) ++confirmed;
                    if (++finished == count) watchdog.cancel();
                },
                boost::asio::detached);
        }
        f.io.restart();
        f.io.run();
        if (watchdog_fired) {
            // The windows still waiting refer to this frame and to the
            // confirmer: their coroutines go now, before either does.
            f.io.drop_pending_work();
            FAIL("the confirmations did not end within 30 s");
        }
        return confirmed;
    };
    SECTION("none: each window is sent at once, in a statement of its own") {
        CHECK(offer_spaced(f.confirmations, 3) == 3);
        CHECK(f.confirmations.batches() == 3);
    }
    SECTION("long enough for three: one statement, sent when the gather time is up") {
        confirmer gathering(f.workers, f.db.name(), std::chrono::milliseconds(2000));
        CHECK(offer_spaced(gathering, 3) == 3);
        CHECK(gathering.batches() == 1);
    }
    SECTION("an hour: the fourth window waiting ends the gather") {
        confirmer gathering(f.workers, f.db.name(), std::chrono::hours(1));
        CHECK(offer_spaced(gathering, 4) == 4);
        CHECK(gathering.batches() == 1);
    }
}

TEST_CASE("a window confirmed unparsed commits asynchronously; a load that changed data commits as the server says") {
    // The test cluster commits asynchronously throughout; the workers'
    // sessions (opened at first use, through libpq's PGOPTIONS) do not.
    const char* options_before = std::getenv("PGOPTIONS");
    const std::string kept = options_before ? options_before : "";
    ::setenv("PGOPTIONS", (kept + " -c synchronous_commit=on").c_str(), 1);
    struct restore_options {
        std::string value;
        bool had;
        ~restore_options() { had ? ::setenv("PGOPTIONS", value.c_str(), 1) : ::unsetenv("PGOPTIONS"); }
    } restore{kept, options_before != nullptr};
    temp_dir responses;
    responses.write("M1.json", "[" + fixture_rows(4) + "]");
    sync_fixture f({"--fixture", responses.path().string()});
    const window w = f.window_of(march);
    // Every write of the window's ledger row notes the synchronous_commit its
    // transaction ran under.
    f.exec("CREATE TABLE " + f.db.quoted() + ".commit_modes (mode text)");
    f.exec("CREATE FUNCTION " + f.db.quoted() + ".note_commit_mode() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
           "INSERT INTO " + f.db.quoted() + ".commit_modes VALUES (current_setting('synchronous_commit')); "
           "RETURN NULL; END $$");
    f.exec("CREATE TRIGGER note_commit_mode AFTER INSERT OR UPDATE ON " + f.db.quoted() +
           ".sync_windows FOR EACH ROW EXECUTE FUNCTION " + f.db.quoted() + ".note_commit_mode()");
    auto modes = [&] {
        std::string all;
        {
            pqxx::read_transaction tx{f.db.connection()};
            for (const auto& row : tx.exec("SELECT mode FROM " + f.db.quoted() + ".commit_modes")) {
                all += row[0].as<std::string>() + " ";
            }
        }
        f.exec("TRUNCATE " + f.db.quoted() + ".commit_modes");
        return all;
    };
    REQUIRE(f.sync(w).committed);  // the first load
    CHECK_THAT(modes(), Catch::Contains("on") && !Catch::Contains("off"));
    REQUIRE(f.sync(w).counts.unparsed);
    // The ledger row, its fetch ticket with it: written by the lazy commit.
    CHECK(modes() == "off ");
    responses.write("M1.json", "[" + fixture_rows(5) + "]");
    REQUIRE(f.sync(w).counts.inserted == 1);
    CHECK_THAT(modes(), !Catch::Contains("off"));
}

TEST_CASE("a window holds no database session while its request waits for the server") {
    temp_dir responses;
    responses.write("M1.json", "[" + fixture_rows(3) + "]");
    sync_fixture f({"--fixture", responses.path().string(), "--latency", "1500"});
    const window w = f.window_of(march);
    vitec_client client(f.io.get_executor(), f.cfg.vitec);
    window_context context{client, f.workers, f.confirmations, f.shutdown, &f.metrics, f.rng};
    context.hold = &f.hold;
    std::optional<window_outcome> outcome;
    boost::asio::co_spawn(
        f.io, [&]() -> boost::asio::awaitable<void> { outcome = co_await sync_window(context, f.cfg, f.customer(), w); },
        boost::asio::detached);
    // Once the ticket is committed, the request is on its way: every one of
    // the pool's sessions (4, see sync_fixture) can then be checked out
    // before the response arrives.
    bool all_out_in_flight = false;
    boost::asio::co_spawn(
        f.io,
        [&]() -> boost::asio::awaitable<void> {
            boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
            auto tickets = [&] {
                pqxx::read_transaction tx{f.db.connection()};
                return tx.exec1("SELECT coalesce(sum(fetches_started), 0) FROM " + f.db.quoted() +
                                ".sync_customers")[0]
                    .as<long long>();
            };
            while (tickets() == 0) {
                timer.expires_after(10ms);
                co_await timer.async_wait(boost::asio::use_awaitable);
            }
            std::vector<db_workers::session> every;
            for (int i = 0; i < 4; ++i) every.push_back(co_await f.workers.checkout());
            all_out_in_flight = !outcome;
        },
        boost::asio::detached);
    f.io.run();
    CHECK(all_out_in_flight);
    REQUIRE(outcome);
    CHECK(outcome->committed);
    CHECK(f.comebacks() == 3);
}

TEST_CASE("the executable is named by the build ID its linker wrote, read without reading the file") {
    const std::string& named = executable_digest();
    REQUIRE(named.starts_with("build-id "));
    CHECK(&executable_digest() == &named);  // read once
    // What binutils reads from the file.
    FILE* pipe = ::popen(("readelf -n /proc/" + std::to_string(::getpid()) + "/exe").c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::string notes;
    char buffer[4096];
    while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) notes.append(buffer, n);
    REQUIRE(::pclose(pipe) == 0);
    const std::string label = "Build ID: ";
    const auto at = notes.find(label);
    REQUIRE(at != std::string::npos);
    const std::string id = notes.substr(at + label.size(), notes.find('\n', at) - at - label.size());
    CHECK(named == "build-id " + id);
}

TEST_CASE("a small window's first load is one hand-off to a database thread, two with a ticket") {
    sync_fixture f({"--rows-per-customer", "500"});
    const window w = f.window_of(march);
    std::uint64_t before = f.workers.calls();
    const window_outcome outcome = f.sync(w);
    REQUIRE(outcome.committed);
    CHECK(outcome.counts.rows_seen > 0);
    // Its one batch goes with the commit: the loader begins, adds and commits
    // in one call, after the call that took its ticket.
    CHECK(f.workers.calls() - before == 2);
    // A window the turn planned and never loaded takes no ticket: its load is
    // the only call.
    const window next = f.window_of(date::year_month_day{date::year{2024} / 3 / 11});
    const auto ledger = f.plan(next);
    before = f.workers.calls();
    REQUIRE(f.sync(next, 4, &ledger).committed);
    CHECK(f.workers.calls() - before == 1);
}
