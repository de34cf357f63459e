#include "sync/summary.hpp"

#include <algorithm>
#include <sstream>

namespace comeback {

std::string render_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> widths(header.size(), 0);
    auto widen = [&](const std::vector<std::string>& row) {
        for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i) {
            widths[i] = std::max(widths[i], row[i].size());
        }
    };
    widen(header);
    for (const auto& row : rows) widen(row);
    std::ostringstream out;
    auto line = [&](const std::vector<std::string>& row) {
        for (std::size_t i = 0; i < widths.size(); ++i) {
            const std::string cell = i < row.size() ? row[i] : "";
            out << cell;
            if (i + 1 < widths.size()) out << std::string(widths[i] - cell.size() + 2, ' ');
        }
        out << '\n';
    };
    line(header);
    std::vector<std::string> rule;
    for (std::size_t width : widths) rule.push_back(std::string(width, '-'));
    line(rule);
    for (const auto& row : rows) line(row);
    return out.str();
}

void print_totals(const run_totals& totals, std::ostream& out) {
    out << "windows committed: " << totals.windows_ok << ", failed: " << totals.windows_failed
        << ", rows seen: " << totals.rows_seen << ", rows changed: " << totals.rows_changed << '\n';
    if (totals.failures.empty()) return;
    std::vector<std::vector<std::string>> rows;
    for (const auto& failure : totals.failures) {
        rows.push_back({failure.customer_id, failure.from, failure.to, failure.error});
    }
    out << "failed windows:\n" << render_table({"customer", "from", "to", "error"}, rows);
}

}  // namespace comeback
