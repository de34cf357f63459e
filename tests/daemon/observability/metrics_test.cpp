#include "observability/metrics.hpp"

#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace comeback;
using namespace std::chrono_literals;

namespace {

const metrics_registry::clock::time_point t0{std::chrono::seconds(1'700'000'000)};

std::size_t count_lines(const std::string& text) { return std::count(text.begin(), text.end(), '\n'); }

bool has_line(const std::string& text, const std::string& line) {
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) {
        if (l == line) return true;
    }
    return false;
}

}  // namespace

TEST_CASE("label values escape backslashes, quotes and newlines") {
    CHECK(escape_label_value("plain") == "plain");
    CHECK(escape_label_value("a\\b") == "a\\\\b");
    CHECK(escape_label_value("say \"hi\"") == "say \\\"hi\\\"");
    CHECK(escape_label_value("two\nlines") == "two\\nlines");
}

TEST_CASE("every rendered line is a comment or a valid sample, and every metric has HELP and TYPE") {
    metrics_registry registry(300s, t0);
    const std::vector<std::string> customers{"M1", "odd \"id\"\\\n"};
    registry.set_customers(customers);
    registry.count_request("M1", "rows");
    registry.count_request("odd \"id\"\\\n", "transient");
    registry.window_succeeded("M1", {.inserted = 3}, 0.2s, t0 + 10s);
    registry.window_failed("odd \"id\"\\\n", 40s);
    auto starts = std::make_shared<wait_stats>();
    starts->wait_microseconds = 1'234'567;
    registry.watch_request_starts(starts);
    registry.watch_database_checkouts(std::make_shared<wait_stats>());

    const auto text = registry.render_prometheus(t0 + 20s);
    const std::regex sample(
        R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")*\})? (?:[-+0-9.eE]+|\+Inf)$)");
    const std::regex comment(R"(^# (HELP|TYPE) comeback_sync_[a-z_]+ .+$)");
    std::istringstream in(text);
    std::set<std::string> typed;
    for (std::string line; std::getline(in, line);) {
        INFO(line);
        if (line.starts_with("#")) {
            CHECK(std::regex_match(line, comment));
            if (line.starts_with("# TYPE ")) typed.insert(line.substr(7, line.find(' ', 7) - 7));
        } else {
            CHECK(std::regex_match(line, sample));
            const auto name = line.substr(0, line.find_first_of("{ "));
            const bool declared = typed.contains(name) ||
                                  typed.contains(std::regex_replace(name, std::regex("_(bucket|sum|count)$"), ""));
            CHECK(declared);
        }
    }
    CHECK(text.ends_with("\n"));
    CHECK(has_line(text, R"(comeback_sync_requests_total{customer="odd \"id\"\\\n",outcome="transient"} 1)"));
}

TEST_CASE("rows, windows and requests are counted per customer") {
    metrics_registry registry(300s, t0);
    registry.set_per_customer_series(per_customer_series::all);
    registry.count_request("M1", "rows");
    registry.count_request("M1", "rows");
    registry.count_request("M1", "throttled");
    registry.window_succeeded("M1", {.inserted = 5, .updated = 2, .deleted = 1, .undeleted = 1, .rejected = 4},
                              1s, t0);
    registry.window_succeeded("M1", {.inserted = 1}, 1s, t0);
    registry.window_succeeded("M1", {.confirmed = true}, 1s, t0);
    registry.window_failed("M2", 1s);

    const auto text = registry.render_prometheus(t0);
    CHECK(has_line(text, R"(comeback_sync_requests_total{customer="M1",outcome="rows"} 2)"));
    CHECK(has_line(text, R"(comeback_sync_requests_total{customer="M1",outcome="throttled"} 1)"));
    CHECK(has_line(text, R"(comeback_sync_rows_total{customer="M1",change="inserted"} 6)"));
    CHECK(has_line(text, R"(comeback_sync_rows_total{customer="M1",change="updated"} 2)"));
    CHECK(has_line(text, R"(comeback_sync_rows_total{customer="M1",change="deleted"} 1)"));
    CHECK(has_line(text, R"(comeback_sync_rows_total{customer="M1",change="undeleted"} 1)"));
    CHECK(has_line(text, R"(comeback_sync_rows_total{customer="M1",change="rejected"} 4)"));
    CHECK(has_line(text, R"(comeback_sync_windows_total{customer="M1",result="ok"} 3)"));
    CHECK(has_line(text, R"(comeback_sync_windows_confirmed_total{customer="M1"} 1)"));
    CHECK(has_line(text, R"(comeback_sync_windows_confirmed_total{customer="M2"} 0)"));
    CHECK(has_line(text, R"(comeback_sync_windows_total{customer="M2",result="failed"} 1)"));
    CHECK(has_line(text, R"(comeback_sync_rows_total{customer="M2",change="inserted"} 0)"));
}

TEST_CASE("held windows are counted apart, shown as a gauge, put their customer in trouble, and are no success") {
    metrics_registry registry(300s, t0);
    registry.window_held("M1", 1s);
    registry.window_held("M1", 1s);
    registry.set_windows_held("M1", 1);

    const auto text = registry.render_prometheus(t0);
    CHECK(has_line(text, R"(comeback_sync_windows_total{customer="M1",result="held"} 2)"));
    CHECK(has_line(text, R"(comeback_sync_windows_total{customer="M1",result="ok"} 0)"));
    CHECK(has_line(text, R"(comeback_sync_windows_held{customer="M1"} 1)"));
    CHECK(has_line(text, R"(comeback_sync_windows_held 1)"));
    CHECK(has_line(text, R"(comeback_sync_windows_total{result="held"} 2)"));
    CHECK(has_line(text, R"(comeback_sync_customers_in_trouble 1)"));
    CHECK(text.find("comeback_sync_last_success_timestamp_seconds{customer=\"M1\"}") == std::string::npos);

    // Released: out of trouble, its own series go; the totals stay.
    registry.set_windows_held("M1", 0);
    const auto released = registry.render_prometheus(t0);
    CHECK(has_line(released, R"(comeback_sync_windows_held 0)"));
    CHECK(has_line(released, R"(comeback_sync_customers_in_trouble 0)"));
    CHECK(released.find("comeback_sync_windows_held{customer=\"M1\"}") == std::string::npos);
    registry.set_per_customer_series(per_customer_series::all);
    CHECK(has_line(registry.render_prometheus(t0), R"(comeback_sync_windows_held{customer="M1"} 0)"));
}

TEST_CASE("window durations fill cumulative histogram buckets") {
    metrics_registry registry(300s, t0);
    registry.set_per_customer_series(per_customer_series::all);
    registry.window_succeeded("M1", {}, 0.07s, t0);
    registry.window_succeeded("M1", {}, 3s, t0);
    registry.window_failed("M1", 1000s);

    const auto text = registry.render_prometheus(t0);
    CHECK(has_line(text, R"(comeback_sync_window_duration_seconds_bucket{customer="M1",le="0.05"} 0)"));
    CHECK(has_line(text, R"(comeback_sync_window_duration_seconds_bucket{customer="M1",le="0.1"} 1)"));
    CHECK(has_line(text, R"(comeback_sync_window_duration_seconds_bucket{customer="M1",le="2.5"} 1)"));
    CHECK(has_line(text, R"(comeback_sync_window_duration_seconds_bucket{customer="M1",le="5"} 2)"));
    CHECK(has_line(text, R"(comeback_sync_window_duration_seconds_bucket{customer="M1",le="300"} 2)"));
    CHECK(has_line(text, R"(comeback_sync_window_duration_seconds_bucket{customer="M1",le="+Inf"} 3)"));
    CHECK(has_line(text, R"(comeback_sync_window_duration_seconds_count{customer="M1"} 3)"));
    CHECK(has_line(text, R"(comeback_sync_window_duration_seconds_sum{customer="M1"} 1003.07)"));
}

TEST_CASE("last success and freshness appear once a customer has succeeded") {
    metrics_registry registry(300s, t0);
    registry.set_per_customer_series(per_customer_series::all);
    const std::vector<std::string> customers{"M1", "M2"};
    registry.set_customers(customers);
    registry.window_succeeded("M1", {}, 1s, t0 + 100s);

    const auto text = registry.render_prometheus(t0 + 160s);
    CHECK(has_line(text, R"(comeback_sync_last_success_timestamp_seconds{customer="M1"} 1700000100)"));
    CHECK(has_line(text, R"(comeback_sync_freshness_seconds{customer="M1"} 60)"));
    CHECK(text.find(R"(freshness_seconds{customer="M2"})") == std::string::npos);
    CHECK(has_line(text, "comeback_sync_customers 2"));
}

TEST_CASE("customers dropped from the configuration lose their series") {
    metrics_registry registry(300s, t0);
    registry.set_per_customer_series(per_customer_series::all);
    registry.window_succeeded("M1", {.inserted = 1}, 1s, t0);
    registry.window_succeeded("M2", {.inserted = 1}, 1s, t0);
    const std::vector<std::string> customers{"M2"};
    registry.set_customers(customers);

    const auto text = registry.render_prometheus(t0);
    CHECK(text.find("customer=\"M1\"") == std::string::npos);
    CHECK(has_line(text, R"(comeback_sync_rows_total{customer="M2",change="inserted"} 1)"));
}

TEST_CASE("a fresh start is healthy for three poll intervals, then unhealthy without a success") {
    metrics_registry registry(60s, t0);
    CHECK(registry.health(t0 + 180s).healthy);
    const auto late = registry.health(t0 + 181s);
    CHECK_FALSE(late.healthy);
    CHECK(late.reason.find("since start") != std::string::npos);
    CHECK(late.reason.find("181s") != std::string::npos);
    CHECK(registry.render_prometheus(t0 + 181s).find("comeback_sync_healthy 0\n") != std::string::npos);
}

TEST_CASE("any customer's success keeps the daemon healthy for three poll intervals") {
    metrics_registry registry(60s, t0);
    registry.window_failed("M1", 1s);
    registry.window_succeeded("M2", {}, 1s, t0 + 170s);
    CHECK(registry.health(t0 + 350s).healthy);
    CHECK(registry.render_prometheus(t0 + 350s).find("comeback_sync_healthy 1\n") != std::string::npos);
    const auto stale = registry.health(t0 + 351s);
    CHECK_FALSE(stale.healthy);
    CHECK(stale.reason == "no customer has succeeded for 181s (limit: 3 poll intervals = 180s)");
}

TEST_CASE("a longer poll interval after a reload widens the health limit") {
    metrics_registry registry(60s, t0);
    CHECK_FALSE(registry.health(t0 + 200s).healthy);
    registry.set_poll_interval(120s);
    CHECK(registry.health(t0 + 200s).healthy);
}

namespace {

// A fleet in its steady state: every customer has committed windows, requests
// and rows; `failing` of them also had their last window fail.
void fill_fleet(metrics_registry& registry, std::size_t customers, const std::set<std::string>& failing) {
    std::vector<std::string> ids;
    for (std::size_t i = 1; i <= customers; ++i) ids.push_back(fmt::format("F{:05}", i));
    registry.set_customers(ids, t0);
    for (const auto& id : ids) {
        registry.count_request(id, "rows");
        registry.window_succeeded(id, {.inserted = 20, .confirmed = false}, 0.3s, t0 + 10s);
        registry.count_request(id, "rows");
        registry.window_succeeded(id, {.confirmed = true}, 0.2s, t0 + 70s);
        if (failing.contains(id)) {
            registry.count_request(id, "transient");
            registry.window_failed(id, 40s, t0 + 100s);
        }
    }
}

}  // namespace

TEST_CASE("by default a scrape of 10,000 customers stays under 1 MB and still names the failing ones") {
    const std::set<std::string> failing{"F00042", "F09999"};
    metrics_registry registry(60s, t0);
    fill_fleet(registry, 10'000, failing);
    const auto text = registry.render_prometheus(t0 + 120s);
    INFO(text.substr(0, 2000));
    CHECK(text.size() <= 1'000'000);
    // One freshness line a customer, the totals, and the failing customers in full.
    CHECK(count_lines(text) <= 10'000 + 100 + 2 * 40);

    // Staleness of every customer stays visible.
    CHECK(has_line(text, R"(comeback_sync_freshness_seconds{customer="F00001"} 50)"));
    CHECK(has_line(text, R"(comeback_sync_freshness_seconds{customer="F10000"} 50)"));
    // A healthy customer's other series fold into the totals, which count everyone.
    CHECK(text.find(R"(rows_total{customer="F00001")") == std::string::npos);
    CHECK(text.find(R"(window_duration_seconds_bucket{customer="F00001")") == std::string::npos);
    CHECK(has_line(text, R"(comeback_sync_rows_total{change="inserted"} 200000)"));
    CHECK(has_line(text, R"(comeback_sync_requests_total{outcome="rows"} 20000)"));
    CHECK(has_line(text, R"(comeback_sync_requests_total{outcome="transient"} 2)"));
    CHECK(has_line(text, R"(comeback_sync_windows_total{result="failed"} 2)"));
    CHECK(has_line(text, R"(comeback_sync_windows_confirmed_total 10000)"));
    CHECK(has_line(text, R"(comeback_sync_window_duration_seconds_count 20002)"));
    CHECK(has_line(text, R"(comeback_sync_last_success_timestamp_seconds 1700000070)"));
    // The failing customers keep every series of their own.
    CHECK(has_line(text, "comeback_sync_customers_in_trouble 2"));
    for (const auto& id : failing) {
        INFO(id);
        CHECK(has_line(text, fmt::format(R"(comeback_sync_windows_total{{customer="{}",result="failed"}} 1)", id)));
        CHECK(has_line(text, fmt::format(R"(comeback_sync_requests_total{{customer="{}",outcome="transient"}} 1)", id)));
        CHECK(has_line(text, fmt::format(R"(comeback_sync_rows_total{{customer="{}",change="inserted"}} 20)", id)));
        CHECK(has_line(text, fmt::format(R"(comeback_sync_last_success_timestamp_seconds{{customer="{}"}} 1700000070)", id)));
    }
}

TEST_CASE("with per_customer_series all every customer has every series") {
    metrics_registry registry(60s, t0);
    fill_fleet(registry, 10'000, {"F00042"});
    registry.set_per_customer_series(per_customer_series::all);
    const auto text = registry.render_prometheus(t0 + 120s);
    CHECK(count_lines(text) >= 10'000 * 25);
    CHECK(has_line(text, R"(comeback_sync_rows_total{customer="F00001",change="inserted"} 20)"));
    CHECK(has_line(text, R"(comeback_sync_window_duration_seconds_count{customer="F00001"} 2)"));
    CHECK(has_line(text, R"(comeback_sync_windows_total{customer="F00042",result="failed"} 1)"));
    // Full detail is today's exposition: no totals beside the customers' series.
    CHECK(text.find(R"(comeback_sync_rows_total{change=)") == std::string::npos);
    CHECK(has_line(text, "comeback_sync_customers_in_trouble 1"));
}

TEST_CASE("a render shows what a first render would, whatever the renders before it showed") {
    // Renders reuse the memory of the last one's copy; none of its content may stay.
    metrics_registry reused(60s, t0);
    fill_fleet(reused, 300, {"F00007", "F00200"});
    reused.set_per_customer_series(per_customer_series::all);
    CHECK(reused.render_prometheus(t0 + 120s).find(R"(customer="F00300")") != std::string::npos);
    // Fewer customers, fewer in trouble, the other mode.
    const std::vector<std::string> fewer{"F00001", "F00007", "F00099"};
    reused.set_customers(fewer, t0);
    reused.set_per_customer_series(per_customer_series::trouble);
    (void)reused.render_prometheus(t0 + 120s);
    reused.count_request("F00099", "transient");
    reused.window_failed("F00099", 40s, t0 + 130s);
    reused.set_windows_held("F00001", 2);

    metrics_registry fresh(60s, t0);
    fill_fleet(fresh, 300, {"F00007", "F00200"});
    fresh.set_customers(fewer, t0);
    fresh.count_request("F00099", "transient");
    fresh.window_failed("F00099", 40s, t0 + 130s);
    fresh.set_windows_held("F00001", 2);
    const auto text = reused.render_prometheus(t0 + 140s);
    CHECK(text == fresh.render_prometheus(t0 + 140s));
    CHECK(has_line(text, R"(comeback_sync_windows_held 2)"));
    CHECK(has_line(text, R"(comeback_sync_windows_total{customer="F00099",result="failed"} 1)"));
    CHECK(text.find(R"(customer="F00200")") == std::string::npos);

    reused.set_per_customer_series(per_customer_series::all);
    fresh.set_per_customer_series(per_customer_series::all);
    CHECK(reused.render_prometheus(t0 + 150s) == fresh.render_prometheus(t0 + 150s));
}

TEST_CASE("the listener's renders are shared while still being sent, then made anew in the old one's memory") {
    metrics_registry registry(60s, t0);
    fill_fleet(registry, 2'000, {});
    registry.set_per_customer_series(per_customer_series::all);
    const auto t = std::chrono::steady_clock::time_point{} + 1h;

    // Until the listener sets the rule, every call renders.
    const metrics_registry unset(60s, t0);
    {
        const auto held = unset.render_shared(t);
        CHECK(unset.render_shared(t) != held);
    }
    registry.set_render_sharing(10s);

    // Held by no answer: a scrape after another gets a render of its own,
    // whatever changed in between (so /metrics agrees with /healthz).
    const std::string once = *registry.render_shared(t);
    const std::string again = *registry.render_shared(t + 1ms);
    CHECK(has_line(once, "comeback_sync_metrics_renders_total 1"));
    CHECK(has_line(again, "comeback_sync_metrics_renders_total 2"));
    auto first = registry.render_shared(t);
    // An answer (`first`) still sends it: shared up to the send's limit.
    CHECK(registry.render_shared(t + 9s) == first);
    auto later = registry.render_shared(t + 10s);
    CHECK(later != first);
    CHECK(later->size() > 1'000'000);
    first.reset();

    // No answer holds it: the next render writes into its memory.
    const char* memory = later->data();
    const std::string before = *later;
    later.reset();
    registry.count_request("F00001", "transient");
    registry.window_failed("F00001", 40s, t0 + 100s);
    auto latest = registry.render_shared(t + 10s);
    CHECK(latest->data() == memory);
    CHECK(*latest != before);
    CHECK(has_line(*latest, R"(comeback_sync_windows_total{customer="F00001",result="failed"} 1)"));
    // Renders made for the listener: two unheld, `first`, `later`, `latest`.
    CHECK(has_line(*latest, "comeback_sync_metrics_renders_total 5"));

    // Far fewer customers since: a buffer far larger than a render needs is let go.
    const std::vector<std::string> one{"F00001"};
    registry.set_customers(one, t0);
    latest.reset();
    const auto small = registry.render_shared(t + 15s);
    CHECK(small->capacity() < 1'000'000);
    CHECK(small->find(R"(customer="F00001")") != std::string::npos);
}

TEST_CASE("renders back to back, as a flood of scrapes makes them, hold up no update of the sync") {
    // Full detail at 2,000 customers: each render formats about 4 MB. Updates
    // on this thread, as the sync's threads make them, while another thread
    // renders without pause; their pace is held against their pace alone,
    // measured here too. A render that kept the registry locked while it
    // formats lets an update through only between two renders: a pace of
    // about a thousandth.
    metrics_registry registry(60s, t0);
    fill_fleet(registry, 2'000, {"F00042"});
    registry.set_per_customer_series(per_customer_series::all);
    std::vector<std::string> ids;
    for (int i = 1; i <= 2'000; ++i) ids.push_back(fmt::format("F{:05}", i));
    // Updates a millisecond for `until` returns true.
    auto pace = [&](const auto& until) {
        const auto started = std::chrono::steady_clock::now();
        std::size_t updates = 0;
        for (std::size_t i = 0; !until(); i = (i + 1) % ids.size(), ++updates) {
            registry.count_request(ids[i], "rows");
            registry.window_succeeded(ids[i], {.confirmed = true}, 0.2s, t0 + 100s);
        }
        const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - started;
        return static_cast<double>(updates) / took.count();
    };
    const auto alone_until = std::chrono::steady_clock::now() + 100ms;
    const double alone = pace([&] { return std::chrono::steady_clock::now() >= alone_until; });

    std::atomic<bool> rendering = true;
    std::size_t smallest = SIZE_MAX;  // of the renders; Catch2 checks on this thread only
    std::thread renderer([&] {
        for (int r = 0; r < 8; ++r) smallest = std::min(smallest, registry.render_prometheus(t0 + 120s).size());
        rendering = false;
    });
    const double flooded = pace([&] { return !rendering.load(); });
    renderer.join();
    CHECK(smallest > 1'000'000);
    INFO("updates a millisecond: " << alone << " alone, " << flooded << " while 8 renders ran back to back");
    CHECK(flooded > alone / 10);
}

TEST_CASE("a customer stays in trouble while its last window failed, and for 3 poll intervals after a failure") {
    metrics_registry registry(60s, t0);
    const std::vector<std::string> customers{"M1"};
    registry.set_customers(customers, t0);
    const auto shown = [&](metrics_registry::clock::time_point now) {
        return registry.render_prometheus(now).find(R"(windows_total{customer="M1")") != std::string::npos;
    };
    CHECK_FALSE(shown(t0));  // configured, nothing finished yet
    registry.window_failed("M1", 1s, t0 + 10s);
    CHECK(shown(t0 + 10s));
    CHECK(shown(t0 + 1000s));  // still failing: no success since
    registry.window_succeeded("M1", {}, 1s, t0 + 1000s);
    CHECK_FALSE(shown(t0 + 1000s));  // recovered, its last failure long ago
    registry.window_failed("M1", 1s, t0 + 1010s);
    registry.window_succeeded("M1", {}, 1s, t0 + 1020s);
    CHECK(shown(t0 + 1010s + 180s));  // a success since, but a failure within 3 poll intervals...
    CHECK_FALSE(shown(t0 + 1010s + 181s));  // ...then its series fold into the totals
    CHECK(has_line(registry.render_prometheus(t0 + 1191s), "comeback_sync_windows_total{result=\"failed\"} 2"));
}

TEST_CASE("the totals keep counting customers a reload removed, so they never go down") {
    metrics_registry registry(60s, t0);
    registry.window_succeeded("M1", {.inserted = 3}, 1s, t0);
    registry.window_succeeded("M2", {.inserted = 4}, 1s, t0);
    const std::vector<std::string> customers{"M2"};
    registry.set_customers(customers);
    const auto text = registry.render_prometheus(t0);
    CHECK(has_line(text, R"(comeback_sync_rows_total{change="inserted"} 7)"));
    CHECK(text.find(R"(customer="M1")") == std::string::npos);
}

TEST_CASE("a customer without a success 3 poll intervals after it was configured is in trouble") {
    metrics_registry registry(60s, t0);
    const std::vector<std::string> customers{"M1", "M2"};
    registry.set_customers(customers, t0);
    registry.window_succeeded("M2", {}, 1s, t0 + 30s);
    CHECK(registry.render_prometheus(t0 + 180s).find(R"(customer="M1")") == std::string::npos);
    const auto late = registry.render_prometheus(t0 + 181s);
    CHECK(has_line(late, R"(comeback_sync_windows_total{customer="M1",result="ok"} 0)"));
    CHECK(late.find(R"(windows_total{customer="M2")") == std::string::npos);
    CHECK(has_line(late, "comeback_sync_customers_in_trouble 1"));
}

TEST_CASE("the request limiter's and the database pool's waits are shown once each is watched, apart") {
    struct watched {
        void (metrics_registry::*watch)(std::shared_ptr<const wait_stats>);
        std::string waiting, started, wait_seconds, other;  // `other`: the other one's gauge
    };
    const watched cases[] = {
        {&metrics_registry::watch_request_starts, "comeback_sync_requests_waiting",
         "comeback_sync_requests_started_total", "comeback_sync_request_start_wait_seconds_total",
         "database_sessions_waiting"},
        {&metrics_registry::watch_database_checkouts, "comeback_sync_database_sessions_waiting",
         "comeback_sync_database_sessions_started_total", "comeback_sync_database_session_wait_seconds_total",
         "requests_waiting"},
    };
    for (const watched& c : cases) {
        INFO(c.waiting);
        metrics_registry registry(300s, t0);
        CHECK(registry.render_prometheus(t0).find(c.waiting) == std::string::npos);
        auto stats = std::make_shared<wait_stats>();
        stats->waiting = 3;
        stats->started = 120;
        stats->wait_microseconds = 2'500'000;
        (registry.*c.watch)(stats);
        auto text = registry.render_prometheus(t0);
        CHECK(has_line(text, c.waiting + " 3"));
        CHECK(has_line(text, c.started + " 120"));
        CHECK(has_line(text, c.wait_seconds + " 2.5"));
        CHECK(has_line(text, "# TYPE " + c.waiting + " gauge"));
        CHECK(has_line(text, "# TYPE " + c.wait_seconds + " counter"));
        CHECK(text.find(c.other) == std::string::npos);
        // Read at each render: what the owner counts meanwhile shows at the next.
        stats->waiting = 0;
        stats->started = 123;
        text = registry.render_prometheus(t0);
        CHECK(has_line(text, c.waiting + " 0"));
        CHECK(has_line(text, c.started + " 123"));
    }
}
