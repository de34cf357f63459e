#include "plan/schedule.hpp"

#include <catch2/catch.hpp>
#include <date/tz.h>

#include <algorithm>

using namespace comeback;
using namespace std::chrono_literals;
using date::local_days;

namespace {

const date::time_zone& stockholm() { return *date::locate_zone("Europe/Stockholm"); }

// Wednesday 2025-06-11; windows are aligned to Mondays.
const local_days today{date::year{2025} / 6 / 11};
const sys_seconds now = date::sys_days{date::year{2025} / 6 / 11} + 10h;

sync_config weekly_config() {
    sync_config sync;
    sync.window = date::days{7};
    sync.lookback = date::days{14};
    sync.horizon = date::days{28};
    sync.poll_interval = 300s;
    sync.history_start = date::year{2025} / 5 / 1;
    sync.freshness = {{date::days{14}, 300s}, {date::days{90}, 3600s}, {date::days{400}, 86400s}};
    return sync;
}

window_state complete(const window& w, sys_seconds fetched_at) {
    return {w.first_day, w.end_day, window_status::complete, fetched_at};
}

}  // namespace

TEST_CASE("fresh windows cover lookback to horizon and history stops where they start") {
    const auto plan = plan_customer(today, weekly_config(), stockholm());
    REQUIRE_FALSE(plan.fresh.empty());
    CHECK(plan.fresh.front().first_day <= today - date::days{14});
    CHECK(plan.fresh.back().end_day > today + date::days{28});
    REQUIRE_FALSE(plan.history.empty());
    CHECK(plan.history.front().first_day <= local_days{date::year{2025} / 5 / 1});
    CHECK(plan.history.back().end_day == plan.fresh.front().first_day);
}

TEST_CASE("no history is planned when history_start lies inside the fresh range") {
    auto sync = weekly_config();
    sync.history_start = date::year{2025} / 6 / 1;
    CHECK(plan_customer(today, sync, stockholm()).history.empty());
}

TEST_CASE("a fresh deployment has every window due, the nearest to today first") {
    const auto sync = weekly_config();
    const auto plan = plan_customer(today, sync, stockholm());
    const auto decision = decide(plan, {}, today, now, sync);
    CHECK(decision.fresh.size() == plan.fresh.size());
    CHECK(decision.history.size() == plan.history.size());
    CHECK_FALSE(decision.next_fresh_due);
    // The window holding today comes first.
    CHECK(decision.fresh.front().first_day <= today);
    CHECK(decision.fresh.front().end_day > today);
    // Then in order of distance from today.
    auto distance = [](const window& w) {
        return w.first_day < today ? today - w.first_day : w.first_day - today;
    };
    CHECK(std::is_sorted(decision.fresh.begin(), decision.fresh.end(),
                         [&](const window& a, const window& b) { return distance(a) < distance(b); }));
    // History oldest first.
    CHECK(std::is_sorted(decision.history.begin(), decision.history.end(),
                         [](const window& a, const window& b) { return a.first_day < b.first_day; }));
}

TEST_CASE("near windows are refetched every poll, far ones by the slower tiers") {
    const auto sync = weekly_config();
    const auto near = window_containing(today, sync.window, stockholm());
    const auto month_out = window_containing(today + date::days{40}, sync.window, stockholm());
    const auto year_out = window_containing(today + date::days{300}, sync.window, stockholm());
    const auto beyond = window_containing(today + date::days{500}, sync.window, stockholm());
    CHECK(refresh_interval(near, today, sync) == 300s);
    CHECK(refresh_interval(month_out, today, sync) == 3600s);
    CHECK(refresh_interval(year_out, today, sync) == 86400s);
    CHECK(refresh_interval(beyond, today, sync) == 86400s);

    auto shuffled = sync;
    std::swap(shuffled.freshness[0], shuffled.freshness[2]);
    CHECK(refresh_interval(near, today, shuffled) == 300s);
    CHECK(refresh_interval(month_out, today, shuffled) == 3600s);
    CHECK(refresh_interval(beyond, today, shuffled) == 86400s);

    auto no_tiers = sync;
    no_tiers.freshness.clear();
    CHECK(refresh_interval(year_out, today, no_tiers) == 300s);
}

TEST_CASE("a window fetched within its refresh interval is not due, and says when it will be") {
    auto sync = weekly_config();
    sync.horizon = date::days{60};
    const auto plan = plan_customer(today, sync, stockholm());
    std::vector<window_state> ledger;
    for (const window& w : plan.fresh) ledger.push_back(complete(w, now - 120s));
    const auto decision = decide(plan, ledger, today, now, sync);
    CHECK(decision.fresh.empty());
    REQUIRE(decision.next_fresh_due);
    CHECK(*decision.next_fresh_due == now - 120s + 300s);

    // Ten minutes on, only the windows of the five-minute tier are due.
    const auto later = decide(plan, ledger, today, now + 600s, sync);
    REQUIRE_FALSE(later.fresh.empty());
    for (const window& w : later.fresh) CHECK(refresh_interval(w, today, sync) == 300s);
    CHECK(later.fresh.size() < plan.fresh.size());
    CHECK(*later.next_fresh_due == now - 120s + 3600s);
}

TEST_CASE("failed and pending windows are due whatever their last fetch") {
    const auto sync = weekly_config();
    const auto plan = plan_customer(today, sync, stockholm());
    std::vector<window_state> ledger;
    for (const window& w : plan.fresh) ledger.push_back(complete(w, now - 1s));
    ledger[0].status = window_status::failed;
    ledger[1].status = window_status::pending;
    const auto decision = decide(plan, ledger, today, now, sync);
    REQUIRE(decision.fresh.size() == 2);
    CHECK(std::count(decision.fresh.begin(), decision.fresh.end(), plan.fresh[0]) == 1);
    CHECK(std::count(decision.fresh.begin(), decision.fresh.end(), plan.fresh[1]) == 1);
}

TEST_CASE("history windows the ledger shows complete are never fetched again") {
    const auto sync = weekly_config();
    const auto plan = plan_customer(today, sync, stockholm());
    REQUIRE(plan.history.size() >= 2);
    std::vector<window_state> ledger{complete(plan.history[0], now - date::days{100})};
    ledger.push_back({plan.history[1].first_day, plan.history[1].end_day, window_status::failed, {}});
    const auto decision = decide(plan, ledger, today, now, sync);
    CHECK(decision.history.size() == plan.history.size() - 1);
    CHECK(decision.history.front() == plan.history[1]);
}

TEST_CASE("a held window is fetched again one refresh interval after its last attempt, fresh or history") {
    const auto sync = weekly_config();
    const auto plan = plan_customer(today, sync, stockholm());
    REQUIRE_FALSE(plan.history.empty());
    auto held = [](const window& w, sys_seconds attempted_at) {
        // Its last complete fetch is old: that is not what makes it due.
        return window_state{w.first_day, w.end_day, window_status::held, now - date::days{30}, attempted_at};
    };
    const window& fresh = plan.fresh.front();
    const window& history = plan.history.front();
    const auto fresh_interval = refresh_interval(fresh, today, sync);
    const auto history_interval = refresh_interval(history, today, sync);
    std::vector<window_state> ledger{held(fresh, now - 10s), held(history, now - 10s)};
    for (const window& w : plan.fresh) {
        if (!(w == fresh)) ledger.push_back(complete(w, now));
    }
    for (const window& w : plan.history) {
        if (!(w == history)) ledger.push_back(complete(w, now));
    }

    const auto soon = decide(plan, ledger, today, now, sync);
    CHECK(soon.fresh.empty());
    CHECK(soon.history.empty());
    REQUIRE(soon.next_fresh_due);
    CHECK(*soon.next_fresh_due <= now - 10s + fresh_interval);

    // By then other fresh windows of shorter tiers may be due again too.
    const auto later = decide(plan, ledger, today, now - 10s + fresh_interval, sync);
    CHECK(std::count(later.fresh.begin(), later.fresh.end(), fresh) == 1);
    CHECK(later.history.empty() == (history_interval > fresh_interval));

    const auto much_later = decide(plan, ledger, today, now - 10s + history_interval, sync);
    CHECK(much_later.history == std::vector<window>{history});
}

TEST_CASE("ledger rows of another window length are ignored") {
    const auto sync = weekly_config();
    const auto plan = plan_customer(today, sync, stockholm());
    const auto& w = plan.fresh.front();
    std::vector<window_state> ledger{{w.first_day, w.end_day + date::days{7}, window_status::complete, now}};
    CHECK(decide(plan, ledger, today, now, sync).fresh.size() == plan.fresh.size());
}

TEST_CASE("a customer backs off exponentially after failed cycles, capped, and resets on success") {
    const auto sync = weekly_config();
    retry_config retry;
    retry.auth_backoff = 3600s;
    customer_backoff backoff;
    CHECK(cycle_delay(backoff, sync, retry) == 300s);
    backoff.cycle_failed();
    CHECK(cycle_delay(backoff, sync, retry) == 300s);
    backoff.cycle_failed();
    CHECK(cycle_delay(backoff, sync, retry) == 600s);
    backoff.cycle_failed();
    CHECK(cycle_delay(backoff, sync, retry) == 1200s);
    for (int i = 0; i < 20; ++i) backoff.cycle_failed();
    CHECK(cycle_delay(backoff, sync, retry) == 3600s);
    backoff.cycle_succeeded();
    CHECK(cycle_delay(backoff, sync, retry) == 300s);
}

TEST_CASE("a customer parked after a credentials failure stays parked for the auth back-off") {
    customer_backoff backoff;
    CHECK_FALSE(backoff.parked(now));
    backoff.park(now, 3600s);
    CHECK(backoff.parked(now + 3599s));
    CHECK_FALSE(backoff.parked(now + 3600s));
}
