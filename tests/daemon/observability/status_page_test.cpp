#include "observability/status_page.hpp"
#include "observability/status_page_cache.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace comeback;
using namespace std::chrono_literals;

namespace {

const instant now = date::sys_days{date::year{2026} / 5 / 11} + 12h;

date::local_days day(int d) { return date::local_days{date::year{2026} / 5 / d}; }

std::size_t count_of(const std::string& text, std::string_view what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

status_customer customer(std::string id, std::vector<std::string> states) {
    status_customer c;
    c.customer_id = std::move(id);
    c.last_success = now - 90s;
    c.strip_read = true;
    int d = 1;
    for (auto& state : states) {
        add_window(c, {day(d), day(d + 1), std::move(state), now - 90s});
        ++d;
    }
    return c;
}

status_snapshot snapshot_of(std::vector<status_customer> customers) {
    status_snapshot s;
    s.read_at = now - 2s;
    s.customers = std::move(customers);
    return s;
}

}  // namespace

TEST_CASE("each window is a mark coloured by its ledger state, unknown states included") {
    const auto page = render_status_page(
        snapshot_of({customer("M1", {"complete", "stale", "failed", "pending", "held", "frozen"})}),
        1, now);
    CHECK(page.starts_with("<!DOCTYPE html>"));
    CHECK(count_of(page, "<span class=\"w ") == 6);
    CHECK(page.find("<span class=\"w complete\" title=\"2026-05-01 to 2026-05-01: complete, fetched "
                    "2026-05-11T11:58:30.000000Z\"></span>") != std::string::npos);
    for (const char* state : {"stale", "failed", "pending", "held"}) {
        CHECK(count_of(page, std::string("<span class=\"w ") + state + "\"") == 1);
    }
    // A state the page does not know keeps its name in the title, under a fixed class.
    CHECK(page.find("<span class=\"w other\" title=\"2026-05-06 to 2026-05-06: frozen") != std::string::npos);
    CHECK(page.find("1 fresh, 1 stale, 1 pending, 1 failed, 1 held, 1 other") != std::string::npos);
    CHECK(page.find("<td class=\"freshness\">1m30s ago</td>") != std::string::npos);
    CHECK(page.find("<script") == std::string::npos);
}

TEST_CASE("a customer never synced shows never, and a failure shows its time, kind and message") {
    status_customer fresh;
    fresh.customer_id = "M2";
    fresh.strip_read = true;
    status_customer failing = customer("M3", {"failed"});
    failing.last_error = "HTTP 401 Unauthorized";
    failing.last_error_at = now - 1h;
    failing.last_error_kind = "credentials_rejected";
    failing.configured = false;
    const auto page = render_status_page(snapshot_of({fresh, failing}), 1, now);
    CHECK(page.find("<td class=\"customer\">M2</td><td class=\"last-success\">never</td>"
                    "<td class=\"freshness\">never</td><td class=\"counts\">none yet</td>") !=
          std::string::npos);
    CHECK(page.find("<td class=\"failure\">2026-05-11T11:00:00.000000Z: <span class=\"kind\">credentials_rejected</span> "
                    "HTTP 401 Unauthorized</td>") != std::string::npos);
    CHECK(page.find("M3 (not configured)") != std::string::npos);
}

TEST_CASE("every text from the database is escaped, so markup in it stays text") {
    status_customer evil = customer("<script>alert('id')</script>", {"<b>held</b>"});
    evil.last_error = "\"><img src=x onerror=alert(1)> & more";
    evil.last_error_kind = "<img src=y>";
    status_snapshot s = snapshot_of({evil});
    s.read_error = "<script>alert('db')</script>";
    s.read_error_at = now;
    const auto page = render_status_page(s, 1, now);
    CHECK(page.find("<script") == std::string::npos);
    CHECK(page.find("<img") == std::string::npos);
    CHECK(page.find("<b>") == std::string::npos);
    CHECK(page.find("&lt;script&gt;alert(&#39;id&#39;)&lt;/script&gt;") != std::string::npos);
    CHECK(page.find("data-customer=\"&lt;script&gt;alert(&#39;id&#39;)&lt;/script&gt;\"") != std::string::npos);
    CHECK(page.find("&quot;&gt;&lt;img src=x onerror=alert(1)&gt; &amp; more") != std::string::npos);
    CHECK(page.find("&lt;script&gt;alert(&#39;db&#39;)&lt;/script&gt;") != std::string::npos);
    CHECK(page.find(": &lt;b&gt;held&lt;/b&gt;") != std::string::npos);
    CHECK(page.find("<span class=\"kind\">&lt;img src=y&gt;</span>") != std::string::npos);
    CHECK(html_escape("a&b<c>d\"e'f") == "a&amp;b&lt;c&gt;d&quot;e&#39;f");
}

TEST_CASE("many customers are split into pages of a bounded size") {
    std::vector<status_customer> many;
    for (int i = 0; i < 120; ++i) many.push_back(customer("C" + std::to_string(1000 + i), {"complete"}));
    const auto s = snapshot_of(many);
    const auto first = render_status_page(s, 1, now);
    CHECK(count_of(first, "<tr class=\"facts\"") == status_customers_per_page);
    CHECK(first.find(">C1000<") != std::string::npos);
    CHECK(first.find(">C1050<") == std::string::npos);
    CHECK(first.find("page 1 of 3") != std::string::npos);
    CHECK(first.find("<a href=\"?page=2\">next</a>") != std::string::npos);
    const auto last = render_status_page(s, 3, now);
    CHECK(count_of(last, "<tr class=\"facts\"") == 20);
    CHECK(last.find(">C1119<") != std::string::npos);
    CHECK(render_status_page(s, 99, now) == last);
    CHECK(first.find("120 customers") != std::string::npos);
}

TEST_CASE("a long strip shows its newest windows and says how many are hidden") {
    status_customer long_history;
    long_history.customer_id = "M1";
    long_history.strip_read = true;
    const std::size_t windows = 3 * status_strip_max_windows + 30;
    for (std::size_t i = 0; i < windows; ++i) {
        const auto first = date::local_days{date::year{2000} / 1 / 3} + date::days{7 * int(i)};
        add_window(long_history, {first, first + date::days{7}, i < 10 ? "failed" : "complete", now});
        CHECK(long_history.windows.size() <= 2 * status_strip_max_windows);  // never the whole history
    }
    trim_strip(long_history);
    CHECK(long_history.windows.size() == status_strip_max_windows);
    CHECK(long_history.windows.capacity() == status_strip_max_windows);
    CHECK(long_history.windows_total == windows);
    const auto page = render_status_page(snapshot_of({long_history}), 1, now);
    CHECK(count_of(page, "<span class=\"w ") == status_strip_max_windows);
    CHECK(page.find(std::to_string(windows - status_strip_max_windows) + " older windows not shown") !=
          std::string::npos);
    CHECK(page.find("title=\"2000-01-03 to") == std::string::npos);
    // The newest ones, the last among them.
    const auto last = date::local_days{date::year{2000} / 1 / 3} + date::days{7 * int(windows - 1)};
    CHECK(page.find("title=\"" + date::format("%F", last) + " to") != std::string::npos);
    // Every window is counted, those not shown too.
    CHECK(page.find(std::to_string(windows - 10) + " fresh, 10 failed") != std::string::npos);
}

TEST_CASE("a customer whose strip this read did not keep shows its counts, and the page reloads soon for the strip") {
    status_customer listed;  // a customer of a page not asked for before
    listed.customer_id = "M1";
    listed.last_success = now - 90s;
    add_window(listed, {day(1), day(2), "complete", now - 90s});
    add_window(listed, {day(2), day(3), "failed", now - 90s});
    CHECK(listed.windows.empty());
    const auto page = render_status_page(snapshot_of({listed}), 1, now);
    CHECK(page.find("<td class=\"counts\">1 fresh, 1 failed</td>") != std::string::npos);
    CHECK(page.find("Its windows show from the next read of the ledger.") != std::string::npos);
    CHECK(count_of(page, "<span class=\"w ") == 0);
    CHECK(page.find("<meta http-equiv=\"refresh\" content=\"5\">") != std::string::npos);
    // With every strip of the page read, it reloads at its usual pace.
    const auto whole = render_status_page(snapshot_of({customer("M1", {"complete"})}), 1, now);
    CHECK(whole.find("<meta http-equiv=\"refresh\" content=\"30\">") != std::string::npos);
    CHECK(whole.find("next read") == std::string::npos);
}

TEST_CASE("before the first read the page says it is reading and reloads soon") {
    const auto page = render_status_page(status_snapshot{}, 1, now);
    CHECK(page.find("Reading the ledger") != std::string::npos);
    CHECK(page.find("<meta http-equiv=\"refresh\" content=\"2\">") != std::string::npos);
    CHECK(page.find("<table") == std::string::npos);
}

TEST_CASE("the page number comes from the query, anything odd is page 1") {
    CHECK(status_page_number("/") == 1);
    CHECK(status_page_number("/?page=3") == 3);
    CHECK(status_page_number("/?x=1&page=2") == 2);
    CHECK(status_page_number("/?page=0") == 1);
    CHECK(status_page_number("/?page=-1") == 1);
    CHECK(status_page_number("/?page=2x") == 1);
    CHECK(status_page_number("/?page=99999999999999999999999") == 1);
}

TEST_CASE("the cache reads the database at most once per interval, however often the page is asked for") {
    instant clock = now;
    int reads = 0;
    std::vector<std::size_t> pages_read;
    status_page_cache cache(5s, [&](std::vector<std::size_t> pages) {
        ++reads;
        pages_read = std::move(pages);
    }, [&] { return clock; });

    // The first request starts a read and is answered at once, before it ends.
    CHECK(cache.page("/").find("Reading the ledger") != std::string::npos);
    CHECK(reads == 1);
    for (int i = 0; i < 1000; ++i) cache.page("/");
    CHECK(reads == 1);

    cache.store(snapshot_of({customer("M1", {"complete"})}));
    clock += 4s;
    for (int i = 0; i < 1000; ++i) CHECK(cache.page("/").find(">M1<") != std::string::npos);
    CHECK(reads == 1);

    clock += 1s;  // the interval has passed: one more read, not one per request
    for (int i = 0; i < 1000; ++i) cache.page("/?page=1");
    CHECK(reads == 2);

    // A read still under way is never doubled, however long it takes.
    clock += 1h;
    for (int i = 0; i < 100; ++i) cache.page("/");
    CHECK(reads == 2);

    // A failed read keeps the last snapshot and says so; the next waits the interval too.
    cache.store_failure("database unreachable");
    const auto page = cache.page("/");
    CHECK(page.find("The last read of the database failed at") != std::string::npos);
    CHECK(page.find("database unreachable") != std::string::npos);
    CHECK(page.find(">M1<") != std::string::npos);
    CHECK(reads == 2);
    clock += 5s;
    cache.page("/");
    CHECK(reads == 3);
    cache.store(snapshot_of({customer("M1", {"complete"})}));
    CHECK(cache.page("/").find("failed at") == std::string::npos);
}

TEST_CASE("a read keeps the strips of the pages asked for last, a bounded number of them") {
    instant clock = now;
    std::vector<std::vector<std::size_t>> reads;
    status_page_cache cache(5s, [&](std::vector<std::size_t> pages) { reads.push_back(std::move(pages)); },
                            [&] { return clock; });
    cache.page("/?page=3");
    REQUIRE(reads.size() == 1);
    CHECK(reads[0] == std::vector<std::size_t>{3});
    cache.store(snapshot_of({}));
    // Asked for meanwhile: every page since, the latest first, each once.
    for (const char* target : {"/", "/?page=2", "/?page=3", "/?page=2"}) cache.page(target);
    CHECK(reads.size() == 1);
    clock += 5s;
    cache.page("/?page=4");
    REQUIRE(reads.size() == 2);
    CHECK(reads[1] == std::vector<std::size_t>{4, 2, 3, 1});
    cache.store(snapshot_of({}));
    // A client walking every page number cannot make a read keep more.
    for (std::size_t page = 100; page < 200; ++page) cache.page("/?page=" + std::to_string(page));
    clock += 5s;
    cache.page("/?page=7");
    REQUIRE(reads.size() == 3);
    CHECK(reads[2].size() == status_pages_kept);
    CHECK(reads[2].front() == 7);
    CHECK(reads[2][1] == 199);
}
