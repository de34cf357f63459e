#include "observability/status_page.hpp"

#include "model/timestamp.hpp"
#include "observability/progress.hpp"

#include <algorithm>
#include <array>
#include <charconv>

namespace comeback {

namespace {

// The states the page has a colour for, in the legend's order. The class
// printed is always one of these fixed words, never text from the database.
struct state_style {
    std::string_view state;  // as the ledger (or the stale rule) names it
    std::string_view label;  // in the legend
    std::string_view colour;
};
constexpr std::array state_styles{
    state_style{"complete", "fresh", "#2e7d32"},
    state_style{"stale", "stale", "#c0ca33"},
    state_style{"pending", "pending", "#bdbdbd"},
    state_style{"failed", "failed", "#c62828"},
    state_style{"held", "held", "#ef6c00"},
    state_style{"other", "other", "#6a1b9a"},
};

std::string_view class_of(std::string_view state) {
    for (const auto& style : state_styles) {
        if (style.state == state && style.state != "other") return style.state;
    }
    return "other";
}

std::string day_text(date::local_days day) { return date::format("%F", day); }

std::string age_text(instant at, instant now) {
    if (at > now) return "just now";
    return human_duration(std::chrono::floor<std::chrono::seconds>(now - at)) + " ago";
}

void append_style(std::string& out) {
    out += "<style>\n"
           "body{font:14px/1.4 sans-serif;margin:1em 2em;color:#212121}\n"
           "table{border-collapse:collapse;width:100%}\n"
           "th,td{text-align:left;padding:.2em .6em;vertical-align:top}\n"
           "tr.facts td{border-top:1px solid #e0e0e0}\n"
           ".strip{display:flex;flex-wrap:wrap;gap:1px;padding-bottom:.4em}\n"
           ".w,.key{display:inline-block;width:7px;height:16px}\n"
           ".error{color:#c62828}\n"
           ".failure{max-width:40em;overflow-wrap:anywhere}\n"
           ".kind{font-weight:bold}\n";
    for (const auto& style : state_styles) {
        out += '.';
        out += style.state;
        out += "{background:";
        out += style.colour;
        out += "}\n";
    }
    out += "</style>\n";
}

void append_legend(std::string& out) {
    out += "<p class=\"legend\">";
    for (const auto& style : state_styles) {
        out += "<span class=\"key ";
        out += style.state;
        out += "\"></span> ";
        out += style.label;
        out += " &nbsp; ";
    }
    out += "(one mark per window, oldest first; hover for its days)</p>\n";
}

void append_counts(std::string& out, const std::vector<status_state_count>& counts) {
    bool first = true;
    for (const auto& style : state_styles) {
        std::size_t n = 0;
        for (const status_state_count& count : counts) {
            if (class_of(count.state) == style.state) n += count.windows;
        }
        if (n == 0) continue;
        if (!first) out += ", ";
        first = false;
        out += std::to_string(n);
        out += ' ';
        out += style.label;
    }
    if (first) out += "none yet";
}

void append_strip(std::string& out, const status_customer& customer) {
    if (!customer.strip_read) {
        out += "<p class=\"later\">Its windows show from the next read of the ledger.</p>";
        return;
    }
    const std::vector<status_window>& windows = customer.windows;
    out += "<div class=\"strip\">";
    const std::size_t first =
        windows.size() > status_strip_max_windows ? windows.size() - status_strip_max_windows : 0;
    const std::size_t shown = windows.size() - first;
    const std::size_t hidden = customer.windows_total > shown ? customer.windows_total - shown : 0;
    for (std::size_t i = first; i < windows.size(); ++i) {
        const status_window& w = windows[i];
        out += "<span class=\"w ";
        out += class_of(w.state);
        out += "\" title=\"";
        out += day_text(w.first_day);
        out += " to ";
        out += day_text(w.end_day - date::days{1});
        out += ": ";
        out += html_escape(w.state);
        if (w.fetched_at) {
            out += ", fetched ";
            out += format_utc(*w.fetched_at);
        }
        out += "\"></span>";
    }
    out += "</div>";
    if (hidden > 0) {
        out += "<p>" + std::to_string(hidden) + " older windows not shown</p>";
    }
}

void append_customer(std::string& out, const status_customer& customer, instant now) {
    out += "<tr class=\"facts\" data-customer=\"";
    out += html_escape(customer.customer_id);
    out += "\"><td class=\"customer\">";
    out += html_escape(customer.customer_id);
    if (!customer.configured) out += " (not configured)";
    out += "</td><td class=\"last-success\">";
    out += customer.last_success ? format_utc(*customer.last_success) : "never";
    out += "</td><td class=\"freshness\">";
    out += customer.last_success ? age_text(*customer.last_success, now) : "never";
    out += "</td><td class=\"counts\">";
    append_counts(out, customer.counts);
    out += "</td><td class=\"failure\">";
    if (customer.last_error) {
        if (customer.last_error_at) {
            out += format_utc(*customer.last_error_at);
            out += ": ";
        }
        if (customer.last_error_kind) {
            out += "<span class=\"kind\">";
            out += html_escape(*customer.last_error_kind);
            out += "</span> ";
        }
        out += html_escape(*customer.last_error);
    }
    out += "</td></tr>\n<tr class=\"windows\"><td colspan=\"5\">";
    append_strip(out, customer);
    out += "</td></tr>\n";
}

std::size_t pages_of(std::size_t customers) {
    return std::max<std::size_t>(1, (customers + status_customers_per_page - 1) / status_customers_per_page);
}

void append_pages(std::string& out, std::size_t page, std::size_t pages) {
    if (pages <= 1) return;
    out += "<p class=\"pages\">page " + std::to_string(page) + " of " + std::to_string(pages);
    if (page > 1) out += " &nbsp; <a href=\"?page=" + std::to_string(page - 1) + "\">previous</a>";
    if (page < pages) out += " &nbsp; <a href=\"?page=" + std::to_string(page + 1) + "\">next</a>";
    out += "</p>\n";
}

}  // namespace

void add_window(status_customer& customer, status_window w) {
    ++customer.windows_total;
    const auto count = std::find_if(customer.counts.begin(), customer.counts.end(),
                                    [&](const status_state_count& c) { return c.state == w.state; });
    if (count != customer.counts.end()) {
        ++count->windows;
    } else {
        customer.counts.push_back({w.state, 1});
    }
    if (!customer.strip_read) return;
    // Older windows go a strip's length at a time: the strip never holds
    // more than twice what it shows.
    if (customer.windows.size() == 2 * status_strip_max_windows) {
        customer.windows.erase(customer.windows.begin(), customer.windows.begin() + status_strip_max_windows);
    }
    customer.windows.push_back(std::move(w));
}

void trim_strip(status_customer& customer) {
    auto& windows = customer.windows;
    if (windows.size() > status_strip_max_windows) {
        windows.erase(windows.begin(), windows.end() - status_strip_max_windows);
    }
    windows.shrink_to_fit();
}

std::pair<std::size_t, std::size_t> status_page_customers(std::size_t count, std::size_t page) {
    const std::size_t pages = pages_of(count);
    page = std::clamp<std::size_t>(page, 1, pages);
    const std::size_t first = (page - 1) * status_customers_per_page;
    return {first, std::min(count, first + status_customers_per_page)};
}

std::string html_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

std::size_t status_page_number(std::string_view target) {
    const auto query = target.find('?');
    if (query == std::string_view::npos) return 1;
    std::string_view rest = target.substr(query + 1);
    while (!rest.empty()) {
        const auto end = rest.find('&');
        const std::string_view pair = rest.substr(0, end);
        if (pair.starts_with("page=")) {
            const std::string_view digits = pair.substr(5);
            std::size_t page = 0;
            const auto [ptr, error] = std::from_chars(digits.data(), digits.data() + digits.size(), page);
            if (error == std::errc{} && ptr == digits.data() + digits.size() && page >= 1) return page;
            return 1;
        }
        if (end == std::string_view::npos) break;
        rest = rest.substr(end + 1);
    }
    return 1;
}

std::string render_status_page(const status_snapshot& snapshot, std::size_t page, instant now) {
    const std::size_t count = snapshot.customers.size();
    const std::size_t pages = pages_of(count);
    page = std::clamp<std::size_t>(page, 1, pages);

    std::string out;
    out += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
           "<meta name=\"viewport\" content=\"width=device-width\">\n";
    const auto [first, last] = status_page_customers(count, page);
    const bool strips_missing =
        std::any_of(snapshot.customers.begin() + first, snapshot.customers.begin() + last,
                    [](const status_customer& customer) { return !customer.strip_read; });
    // No JavaScript: the page reloads itself, faster while nothing is read
    // yet, or while its strips wait for the next read.
    out += !snapshot.read_at ? "<meta http-equiv=\"refresh\" content=\"2\">\n"
           : strips_missing  ? "<meta http-equiv=\"refresh\" content=\"5\">\n"
                             : "<meta http-equiv=\"refresh\" content=\"30\">\n";
    out += "<title>comeback-sync status</title>\n";
    append_style(out);
    out += "</head><body>\n<h1>comeback-sync status</h1>\n";

    if (snapshot.read_error) {
        out += "<p class=\"error\">The last read of the database failed";
        if (snapshot.read_error_at) out += " at " + format_utc(*snapshot.read_error_at);
        out += ": " + html_escape(*snapshot.read_error) + "</p>\n";
    }
    if (!snapshot.read_at) {
        out += "<p class=\"read\">Reading the ledger; this page reloads in a moment.</p>\n";
        out += "</body></html>\n";
        return out;
    }
    out += "<p class=\"read\">The ledger as read at " + format_utc(*snapshot.read_at) + " (" +
           age_text(*snapshot.read_at, now) + "): " + std::to_string(count) +
           (count == 1 ? " customer" : " customers") + ".</p>\n";
    append_legend(out);
    append_pages(out, page, pages);
    out += "<table>\n<thead><tr><th>customer</th><th>last success</th><th>freshness</th>"
           "<th>windows</th><th>last failure</th></tr></thead>\n<tbody>\n";
    for (std::size_t i = first; i < last; ++i) append_customer(out, snapshot.customers[i], now);
    out += "</tbody></table>\n";
    append_pages(out, page, pages);
    out += "</body></html>\n";
    return out;
}

}  // namespace comeback
