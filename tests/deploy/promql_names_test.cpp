#include "promql_names.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <stdexcept>
#include <string>

#include <unistd.h>

using comeback::promql_metric_names;
using names = std::set<std::string>;

TEST_CASE("metric names are told from functions, aggregations and label lists") {
    CHECK(promql_metric_names("comeback_sync_healthy == 0") == names{"comeback_sync_healthy"});
    CHECK(promql_metric_names("max by (job) (comeback_sync_healthy) == 0") ==
          names{"comeback_sync_healthy"});
    CHECK(promql_metric_names("sum(rate(a_total[5m])) by (customer, outcome)") == names{"a_total"});
    CHECK(promql_metric_names("sum without(instance)(b)") == names{"b"});
    CHECK(promql_metric_names("a / on(customer) group_left(name) b * ignoring(x) c") ==
          names{"a", "b", "c"});
    CHECK(promql_metric_names("topk(3, x) or count_values(\"v\", y)") == names{"x", "y"});
    CHECK(promql_metric_names("job:requests:rate5m") == names{"job:requests:rate5m"});
}

TEST_CASE("label matchers, strings, ranges and literals name no metric") {
    CHECK(promql_metric_names(R"(x{a="b}c", d=~'e|{f}', g!=`h\`})") == names{"x"});
    CHECK(promql_metric_names("absent(up{job=\"comeback-sync\"})") == names{"up"});
    CHECK(promql_metric_names("increase(w{result=\"failed\"}[15m]) > 0") == names{"w"});
    CHECK(promql_metric_names("max_over_time(x[1h:5m]) offset 1h30m") == names{"x"});
    CHECK(promql_metric_names("a > bool 1e3 and b unless c or d").size() == 4);
    CHECK(promql_metric_names("1 + 0x1f + 2.5 + .5 + Inf - NaN").empty());
    CHECK(promql_metric_names("vector(1)").empty());
    CHECK(promql_metric_names("x # a comment naming y\n + z") == names{"x", "z"});
}

TEST_CASE("Grafana variables are not metric names") {
    CHECK(promql_metric_names(
              "histogram_quantile(0.95, sum by (le) (rate(h_bucket{customer=~\"$customer\"}"
              "[$__rate_interval])))") == names{"h_bucket"});
    CHECK(promql_metric_names("x > $threshold and y > ${limit}") == names{"x", "y"});
}

TEST_CASE("an expression that does not close is refused, not half read") {
    CHECK_THROWS_AS(promql_metric_names("sum(x"), std::invalid_argument);
    CHECK_THROWS_AS(promql_metric_names("x)"), std::invalid_argument);
    CHECK_THROWS_AS(promql_metric_names("x{a=\"b\""), std::invalid_argument);
    CHECK_THROWS_AS(promql_metric_names("x{a=\"b}"), std::invalid_argument);
    CHECK_THROWS_AS(promql_metric_names("rate(x[5m)"), std::invalid_argument);
}

namespace {
std::filesystem::path write_temp(const std::string& name, const std::string& text) {
    // The process id keeps parallel runs from sharing a file.
    const auto path = std::filesystem::temp_directory_path() / (std::to_string(::getpid()) + "-" + name);
    std::ofstream(path) << text;
    return path;
}
bool has(const std::vector<comeback::located_expression>& all, const std::string& where,
         const std::string& expression) {
    return std::any_of(all.begin(), all.end(), [&](const auto& e) {
        return e.where == where && e.expression == expression;
    });
}
}  // namespace

TEST_CASE("every expression of a dashboard is found: panels in rows, annotations, variables") {
    const auto file = write_temp("promql_names_test_dashboard.json", R"json({
      "annotations": {"list": [{"name": "deploys", "expr": "changes(d[5m])"}]},
      "templating": {"list": [
        {"name": "customer", "type": "query", "query": "label_values(v_total{a=\"b\"}, customer)"},
        {"name": "job", "type": "query", "query": {"query": "label_values(job)", "refId": "X"}},
        {"name": "q", "type": "query", "query": "query_result(topk(5, r))"},
        {"name": "ds", "type": "datasource", "query": "prometheus"}]},
      "panels": [
        {"type": "row", "title": "Row", "panels": [
          {"title": "Inner", "targets": [{"refId": "A", "expr": "rate(p_total[5m])"}]}]},
        {"title": "Outer", "targets": [{"refId": "B", "expr": "o"}]}]})json");
    const auto found = comeback::dashboard_expressions(file);
    CHECK(found.size() == 5);
    CHECK(has(found, "panel 'Inner' A", "rate(p_total[5m])"));
    CHECK(has(found, "panel 'Outer' B", "o"));
    CHECK(has(found, "dashboard", "changes(d[5m])"));
    CHECK(has(found, "variable $customer", "v_total{a=\"b\"}"));
    CHECK(has(found, "variable $q", "topk(5, r)"));
    std::filesystem::remove(file);

    const auto broken = write_temp("promql_names_test_broken.json", R"({"panels": [)");
    CHECK_THROWS_WITH(comeback::dashboard_expressions(broken), Catch::Contains("not JSON"));
    std::filesystem::remove(broken);
}

TEST_CASE("every rule of a rule file is found, alerting and recording") {
    const auto file = write_temp("promql_names_test_rules.yml", R"(groups:
  - name: a
    rules:
      - alert: Down
        expr: up == 0
      - record: job:x:rate5m
        expr: sum by (job) (rate(x_total[5m]))
)");
    const auto found = comeback::rule_file_expressions(file);
    CHECK(found.size() == 2);
    CHECK(has(found, "rule Down", "up == 0"));
    CHECK(has(found, "rule job:x:rate5m", "sum by (job) (rate(x_total[5m]))"));
    std::filesystem::remove(file);
}

TEST_CASE("the shipped rules and dashboard read without error") {
    const std::filesystem::path deploy = std::filesystem::path(COMEBACK_SOURCE_DIR) / "deploy";
    const auto rules = comeback::rule_file_expressions(deploy / "prometheus/comeback-sync.rules.yml");
    const auto dashboard = comeback::dashboard_expressions(deploy / "grafana/comeback-sync.json");
    CHECK(rules.size() >= 7);
    CHECK(dashboard.size() >= 10);
    for (const auto& e : rules) CHECK_NOTHROW(promql_metric_names(e.expression));
    for (const auto& e : dashboard) CHECK_NOTHROW(promql_metric_names(e.expression));
    CHECK(has(dashboard, "variable $customer", "comeback_sync_windows_total"));
}
