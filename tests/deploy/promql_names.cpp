#include "promql_names.hpp"

#include <boost/json.hpp>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>

namespace comeback {
namespace {

bool ident_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':'; }
bool ident_char(char c) { return ident_start(c) || std::isdigit(static_cast<unsigned char>(c)); }

template <std::size_t N>
bool one_of(std::string_view word, const std::array<std::string_view, N>& words) {
    return std::find(words.begin(), words.end(), word) != words.end();
}

// Followed by a parenthesized list of label names, not of expressions.
constexpr std::array<std::string_view, 6> label_list_keywords = {
    "by", "without", "on", "ignoring", "group_left", "group_right"};
constexpr std::array<std::string_view, 8> keywords = {
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"};
// Aggregations may put `by (...)` between their name and their parenthesis.
constexpr std::array<std::string_view, 13> aggregations = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk"};

class scanner {
public:
    explicit scanner(std::string_view text) : text_(text) {}

    std::set<std::string> names() {
        std::set<std::string> found;
        while (pos_ < text_.size()) {
            const char c = text_[pos_];
            if (c == '"' || c == '\'' || c == '`') {
                skip_string();
            } else if (c == '{') {
                skip_group('{', '}');
            } else if (c == '[') {
                skip_group('[', ']');
            } else if (c == '#') {
                while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
            } else if (c == '$') {
                skip_variable();
            } else if (std::isdigit(static_cast<unsigned char>(c)) ||
                       (c == '.' && pos_ + 1 < text_.size() &&
                        std::isdigit(static_cast<unsigned char>(text_[pos_ + 1])))) {
                // A number or a duration: 3600, 0.95, 1e3, 0x1f, 5m, 1h30m.
                while (pos_ < text_.size() && (ident_char(text_[pos_]) || text_[pos_] == '.')) ++pos_;
            } else if (ident_start(c)) {
                word(found);
            } else {
                if (c == '(') ++depth_;
                if (c == ')' && depth_-- == 0) fail("a ')' without its '('");
                ++pos_;
            }
        }
        if (depth_ != 0) fail("an unclosed '('");
        return found;
    }

private:
    void word(std::set<std::string>& found) {
        const auto start = pos_;
        while (pos_ < text_.size() && ident_char(text_[pos_])) ++pos_;
        const std::string_view name = text_.substr(start, pos_ - start);
        std::string lower(name);
        std::transform(lower.begin(), lower.end(), lower.begin(),
                       [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
        skip_spaces();
        const bool call = pos_ < text_.size() && text_[pos_] == '(';
        if (one_of(lower, label_list_keywords)) {
            if (call) skip_group('(', ')');
            return;
        }
        if (one_of(lower, keywords) || one_of(lower, aggregations) || call) return;
        found.emplace(name);
    }

    void skip_spaces() {
        while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    }

    void skip_string() {
        const char quote = text_[pos_++];
        while (pos_ < text_.size() && text_[pos_] != quote) {
            if (text_[pos_] == '\\' && quote != '`') ++pos_;
            ++pos_;
        }
        if (pos_ >= text_.size()) fail(std::string("an unclosed ") + quote + " string");
        ++pos_;
    }

    // From an opening character to its match; strings inside may hold either.
    void skip_group(char open, char close) {
        const auto start = pos_;
        int depth = 0;
        while (pos_ < text_.size()) {
            const char c = text_[pos_];
            if (c == '"' || c == '\'' || c == '`') {
                skip_string();
                continue;
            }
            if (c == open) ++depth;
            if (c == close && --depth == 0) {
                ++pos_;
                return;
            }
            ++pos_;
        }
        pos_ = start;
        fail(std::string("an unclosed '") + open + "'");
    }

    void skip_variable() {
        ++pos_;
        if (pos_ < text_.size() && text_[pos_] == '{') {
            skip_group('{', '}');
            return;
        }
        while (pos_ < text_.size() && ident_char(text_[pos_])) ++pos_;
    }

    [[noreturn]] void fail(const std::string& what) const {
        throw std::invalid_argument(what + " at offset " + std::to_string(pos_) + " in: " +
                                    std::string(text_));
    }

    std::string_view text_;
    std::size_t pos_ = 0;
    int depth_ = 0;
};

std::string read_file(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + file.string());
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
    return text;
}

// A Grafana Prometheus variable query: label_values(SELECTOR, label) and
// query_result(EXPR) name metrics; label_values(label), label_names() and
// metrics(REGEX) do not.
std::string variable_expression(std::string_view query) {
    query = trim(query);
    auto inside = [&](std::string_view function) -> std::optional<std::string_view> {
        if (!query.starts_with(function) || !query.ends_with(')')) return std::nullopt;
        auto rest = trim(query.substr(function.size()));
        if (!rest.starts_with('(')) return std::nullopt;
        return rest.substr(1, rest.size() - 2);
    };
    if (auto args = inside("label_values")) {
        const auto comma = args->rfind(',');
        return comma == std::string_view::npos ? std::string() : std::string(args->substr(0, comma));
    }
    if (auto args = inside("query_result")) return std::string(*args);
    if (inside("label_names") || inside("metrics")) return {};
    return std::string(query);
}

void collect_exprs(const boost::json::value& node, const std::string& where,
                   std::vector<located_expression>& out) {
    if (const auto* object = node.if_object()) {
        std::string here = where;
        if (const auto* title = object->if_contains("title"); title && title->is_string()) {
            here = "panel '" + std::string(title->get_string()) + "'";
        }
        for (const auto& [key, value] : *object) {
            if (key == "expr" && value.is_string()) {
                std::string at = here;
                if (const auto* ref = object->if_contains("refId"); ref && ref->is_string()) {
                    at += " " + std::string(ref->get_string());
                }
                out.push_back({at, std::string(value.get_string())});
            } else {
                collect_exprs(value, here, out);
            }
        }
    } else if (const auto* array = node.if_array()) {
        for (const auto& value : *array) collect_exprs(value, where, out);
    }
}

}  // namespace

std::set<std::string> promql_metric_names(std::string_view expression) {
    return scanner(expression).names();
}

std::vector<located_expression> rule_file_expressions(const std::filesystem::path& file) {
    const YAML::Node root = YAML::LoadFile(file.string());
    std::vector<located_expression> out;
    for (const auto& group : root["groups"]) {
        for (const auto& rule : group["rules"]) {
            const auto name = rule["alert"] ? rule["alert"].as<std::string>()
                                            : rule["record"].as<std::string>("?");
            if (!rule["expr"]) throw std::runtime_error(file.string() + ": rule " + name + " has no expr");
            out.push_back({"rule " + name, rule["expr"].as<std::string>()});
        }
    }
    return out;
}

std::vector<located_expression> dashboard_expressions(const std::filesystem::path& file) {
    boost::json::error_code error;
    const auto root = boost::json::parse(read_file(file), error);
    if (error) throw std::runtime_error(file.string() + ": not JSON: " + error.message());
    std::vector<located_expression> out;
    collect_exprs(root, "dashboard", out);
    if (const auto* templating = root.as_object().if_contains("templating")) {
        if (const auto* list = templating->as_object().if_contains("list")) {
            for (const auto& variable : list->as_array()) {
                const auto& v = variable.as_object();
                const auto* type = v.if_contains("type");
                if (!type || type->as_string() != "query") continue;
                const auto* query = v.if_contains("query");
                if (query && query->is_object()) query = query->as_object().if_contains("query");
                if (!query || !query->is_string()) continue;
                auto expression = variable_expression(query->as_string());
                if (!expression.empty()) {
                    out.push_back({"variable $" + std::string(v.at("name").as_string()), expression});
                }
            }
        }
    }
    return out;
}

}  // namespace comeback
