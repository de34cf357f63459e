// promql-metric-names [--expressions] --rules FILE... --dashboard FILE...
// Prints "NAME<TAB>WHERE" for every metric each expression of the files selects;
// with --expressions, "WHERE<TAB>EXPRESSION" for every expression instead.
// Exit 1 with a message when a file cannot be read or holds no expression.

#include "promql_names.hpp"

#include <iostream>
#include <string_view>

int main(int argc, char** argv) {
    using namespace comeback;
    std::string_view kind;
    bool print_expressions = false;
    int status = 0;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--expressions" && kind.empty()) {
            print_expressions = true;
            continue;
        }
        if (arg == "--rules" || arg == "--dashboard") {
            kind = arg;
            continue;
        }
        if (kind.empty()) {
            std::cerr << "usage: promql-metric-names [--expressions] --rules FILE... --dashboard FILE...\n";
            return 2;
        }
        try {
            const auto expressions =
                kind == "--rules" ? rule_file_expressions(arg) : dashboard_expressions(arg);
            if (expressions.empty()) throw std::runtime_error("no expression found");
            for (const auto& [where, expression] : expressions) {
                if (print_expressions) {
                    std::cout << where << '\t' << expression << '\n';
                    continue;
                }
                for (const auto& name : promql_metric_names(expression)) {
                    std::cout << name << '\t' << arg << ": " << where << '\n';
                }
            }
        } catch (const std::exception& error) {
            std::cerr << arg << ": " << error.what() << '\n';
            status = 1;
        }
    }
    return status;
}
