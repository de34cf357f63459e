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

void failed_windows::add(failed_window failure) {
    ++total_;
    if (recent_.size() == kept) recent_.erase(recent_.begin());
    recent_.push_back(std::move(failure));
}

void failed_windows::print(std::ostream& out, std::string_view title) const {
    if (empty()) return;
    std::vector<std::vector<std::string>> rows;
    for (const auto& f : recent_) rows.push_back({f.customer_id, f.from, f.to, f.kind, f.error});
    out << title;
    if (total_ > recent_.size()) out << " (the last " << recent_.size() << " of " << total_ << ")";
    out << ":\n" << render_table({"customer", "from", "to", "kind", "error"}, rows);
}

}  // namespace comeback
