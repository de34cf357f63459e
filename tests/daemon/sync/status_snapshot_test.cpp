#include "sync/status_snapshot.hpp"

#include <catch2/catch.hpp>

using namespace comeback;
using namespace std::chrono_literals;

namespace {

// Noon in Stockholm on Monday 2026-05-11.
const instant now = date::sys_days{date::year{2026} / 5 / 11} + 10h;
const date::local_days today{date::year{2026} / 5 / 11};

config two_customers() {
    config cfg;
    for (const char* id : {"M1", "M2"}) {
        customer_config customer;
        customer.id = id;
        cfg.customers.push_back(std::move(customer));
    }
    cfg.sync.lookback = date::days{14};
    cfg.sync.horizon = date::days{14};
    cfg.sync.history_start = date::year{2026} / 3 / 2;
    cfg.sync.freshness = {{.within = std::chrono::days{7}, .every = 5min},
                          {.within = std::chrono::days{400}, .every = 24h}};
    return cfg;
}

customer_ledger_entry row(std::string customer, date::local_days first, std::string status,
                          std::optional<instant> fetched_at) {
    ledger_entry entry;
    entry.first_day = first;
    entry.end_day = first + date::days{7};
    entry.status = std::move(status);
    entry.fetched_at = fetched_at;
    return {std::move(customer), entry};
}

const std::vector<std::size_t> first_page{1};

}  // namespace

TEST_CASE("a complete window past its freshness tier is stale; history and other states keep theirs") {
    const auto cfg = two_customers();
    const std::vector<customer_ledger_entry> ledger{
        row("M1", today - date::days{63}, "complete", now - 30 * 24h),  // history: never stale
        row("M1", today, "complete", now - 10min),                      // every 5 min: stale
        row("M1", today + date::days{7}, "complete", now - 1min),       // fetched within 5 min
        row("M1", today - date::days{14}, "complete", now - 2h),        // daily tier: fresh
        row("M1", today - date::days{7}, "held", now - 2 * 24h),
        row("M2", today, "failed", std::nullopt),
        row("M2", today + date::days{7}, "pending", std::nullopt),
    };
    customer_status m1;
    m1.customer_id = "M1";
    m1.last_success = now - 1min;
    m1.last_error = "HTTP 503";
    m1.last_error_at = now - 1h;
    m1.last_error_kind = "transient";
    const auto snapshot = build_status_snapshot({m1}, ledger, cfg, now, first_page);

    REQUIRE(snapshot.read_at == now);
    REQUIRE(snapshot.customers.size() == 2);
    const auto& first = snapshot.customers[0];
    CHECK(first.customer_id == "M1");
    CHECK(first.last_success == now - 1min);
    CHECK(first.last_error == "HTTP 503");
    CHECK(first.last_error_at == now - 1h);
    CHECK(first.last_error_kind == "transient");
    std::vector<std::string> states;
    for (const auto& w : first.windows) states.push_back(w.state);
    CHECK(states == std::vector<std::string>{"complete", "stale", "complete", "complete", "held"});
    const auto& second = snapshot.customers[1];
    CHECK(second.customer_id == "M2");
    CHECK_FALSE(second.last_success);
    REQUIRE(second.windows.size() == 2);
    CHECK(second.windows[0].state == "failed");
    CHECK(second.windows[1].state == "pending");
}

TEST_CASE("configured customers without ledger rows and ledger customers no longer configured are both listed") {
    auto cfg = two_customers();
    customer_status gone;
    gone.customer_id = "M0";
    const auto snapshot = build_status_snapshot({gone}, {row("M0", today, "complete", now)}, cfg, now, first_page);
    REQUIRE(snapshot.customers.size() == 3);
    CHECK(snapshot.customers[0].customer_id == "M0");
    CHECK_FALSE(snapshot.customers[0].configured);
    CHECK(snapshot.customers[1].customer_id == "M1");
    CHECK(snapshot.customers[1].configured);
    CHECK(snapshot.customers[1].windows.empty());
    CHECK(snapshot.customers[2].customer_id == "M2");
}

TEST_CASE("a snapshot counts every customer's windows but keeps the strips of the pages asked for only") {
    config cfg = two_customers();
    cfg.customers.clear();
    std::vector<customer_status> statuses;
    std::vector<customer_ledger_entry> ledger;
    for (int i = 0; i < 120; ++i) {  // pages of 50: 1 to 3
        customer_status status;
        status.customer_id = "C" + std::to_string(1000 + i);
        statuses.push_back(status);
        for (int week = 0; week < 4; ++week) {
            ledger.push_back(row(status.customer_id, today - date::days{7 * (60 - week)}, "complete", now));
        }
    }
    // More windows than a strip shows, for a customer of page 3.
    for (std::size_t week = 4; week < status_strip_max_windows + 20; ++week) {
        ledger.push_back(row("C1119", today - date::days{7 * (60 - int(week))}, "pending", std::nullopt));
    }
    const std::vector<std::size_t> pages{3, 99};  // past the last page: the last
    const auto snapshot = build_status_snapshot(statuses, ledger, cfg, now, pages);
    REQUIRE(snapshot.customers.size() == 120);
    for (std::size_t i = 0; i < 120; ++i) {
        const status_customer& customer = snapshot.customers[i];
        INFO(customer.customer_id);
        CHECK(customer.strip_read == (i >= 100));
        CHECK(customer.windows.size() == (i < 100 ? 0 : i < 119 ? 4 : status_strip_max_windows));
    }
    const status_customer& longest = snapshot.customers[119];
    CHECK(longest.windows_total == status_strip_max_windows + 20);
    CHECK(longest.windows.front().first_day == today - date::days{7 * (60 - 20)});  // the newest kept
    const auto pending = std::find_if(longest.counts.begin(), longest.counts.end(),
                                      [](const status_state_count& c) { return c.state == "pending"; });
    REQUIRE(pending != longest.counts.end());
    CHECK(pending->windows == status_strip_max_windows + 16);
    CHECK(snapshot.customers[0].windows_total == 4);
    REQUIRE(snapshot.customers[0].counts.size() == 1);
    CHECK(snapshot.customers[0].counts[0].windows == 4);
}
