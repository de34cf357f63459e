#pragma once
// Which metrics the alerting rules and the Grafana dashboard select, so a test
// can hold them against what a running daemon serves. Reads PromQL only as far
// as telling metric names from functions, keywords, labels and literals.

#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace comeback {

// The metric names one PromQL expression selects. Grafana variables ($name,
// ${name}, [$__rate_interval]) are skipped. Throws std::invalid_argument on an
// unclosed string, brace, bracket or parenthesis.
std::set<std::string> promql_metric_names(std::string_view expression);

struct located_expression {
    std::string where;       // e.g. "rule ComebackSyncUnhealthy", "panel 'Freshness' A"
    std::string expression;  // PromQL
};

// Every `expr` of a Prometheus rule file (alerting and recording rules).
std::vector<located_expression> rule_file_expressions(const std::filesystem::path& file);

// Every PromQL expression of a Grafana dashboard: each `expr` anywhere (panel
// and annotation targets, rows included) and each query variable's query
// (label_values(SELECTOR, label) contributes SELECTOR).
std::vector<located_expression> dashboard_expressions(const std::filesystem::path& file);

}  // namespace comeback
