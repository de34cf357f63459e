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
    const auto snapshot = build_status_snapshot({m1}, ledger, cfg, now);

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
    const auto snapshot = build_status_snapshot({gone}, {row("M0", today, "complete", now)}, cfg, now);
    REQUIRE(snapshot.customers.size() == 3);
    CHECK(snapshot.customers[0].customer_id == "M0");
    CHECK_FALSE(snapshot.customers[0].configured);
    CHECK(snapshot.customers[1].customer_id == "M1");
    CHECK(snapshot.customers[1].configured);
    CHECK(snapshot.customers[1].windows.empty());
    CHECK(snapshot.customers[2].customer_id == "M2");
}
