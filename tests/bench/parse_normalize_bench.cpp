// Parse + normalize throughput over a body held in memory, on one thread, with
// two baselines measured over the same bytes in the same process: memchr (how
// fast this machine can merely touch the bytes) and boost::json::parse into a
// DOM value (what a non-incremental JSON reader costs). Their ratios are what
// make the MB/s figure mean something on a shared 2-core machine.
//
//   parse-normalize-bench --body FILE [--chunk BYTES] [--min-seconds S]
//   parse-normalize-bench --rows N [--seed S] ...     (a generated body instead)
//   --only parse-normalize    measures that stage alone (for a profiler); the
//                             others print 0
//
// Prints key=value lines on stdout for tests/bench/run to read.

#include "model/timestamp.hpp"
#include "normalize/normalize.hpp"
#include "parse/response_parser.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

struct options {
    std::string body_file;
    std::size_t rows = 0;
    std::uint64_t seed = 42;
    std::size_t chunk = 64 * 1024;  // about what one socket read hands on
    double min_seconds = 1.0;
    std::string customer_id = "M10001";
    std::string only;  // empty: every stage
};

[[noreturn]] void usage(const std::string& problem) {
    std::cerr << "parse-normalize-bench: " << problem << "\n"
              << "usage: parse-normalize-bench (--body FILE | --rows N [--seed S])\n"
                 "                             [--chunk BYTES] [--min-seconds S]\n";
    std::exit(2);
}

options parse_options(int argc, char** argv) {
    options result;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(std::string(arg) + " needs a value");
            return argv[++i];
        };
        try {
            if (arg == "--body") {
                result.body_file = value();
            } else if (arg == "--rows") {
                result.rows = std::stoull(value());
            } else if (arg == "--seed") {
                result.seed = std::stoull(value());
            } else if (arg == "--chunk") {
                result.chunk = std::stoull(value());
            } else if (arg == "--only") {
                result.only = value();
            } else if (arg == "--min-seconds") {
                result.min_seconds = std::stod(value());
            } else {
                usage("unknown argument " + std::string(arg));
            }
        } catch (const std::logic_error&) {
            usage("bad number for " + std::string(arg));
        }
    }
    if (result.body_file.empty() == (result.rows == 0)) usage("give exactly one of --body or --rows");
    if (result.chunk == 0) usage("--chunk must be positive");
    if (!result.only.empty() && result.only != "memchr" && result.only != "json-dom" &&
        result.only != "parse" && result.only != "parse-normalize")
        usage("--only takes memchr, json-dom, parse or parse-normalize");
    return result;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open body file " + path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A body shaped like the report: nested objects, some of them null, names with
// non-ASCII letters, both date spellings Vitec is known to write.
std::string generate_body(std::size_t rows, std::uint64_t seed) {
    static constexpr std::array first_names{"Åsa",  "Björn", "Märta", "Örjan", "Karin",
                                            "Jönsson", "Zoë", "Lars", "Sören", "Ingrid"};
    static constexpr std::array last_names{"Ängström", "Lindqvist", "Öberg", "Nordström",
                                           "Karlsson", "Håkansson", "Müller", "Ek"};
    static constexpr std::array states{"New", "Completed", "Cancelled", "Postponed"};
    static constexpr std::array origins{"User", "System", "Web"};
    std::mt19937_64 random(seed);
    auto pick = [&](const auto& list) { return list[random() % list.size()]; };
    auto person = [&](char prefix, unsigned pool) {
        std::ostringstream out;
        out << R"({"id":")" << prefix << random() % pool << R"(","name":")" << pick(first_names)
            << ' ' << pick(last_names) << R"("})";
        return out.str();
    };
    auto stamp = [&](bool with_offset) {
        char text[64];
        const unsigned month = 1 + random() % 12, day = 1 + random() % 28;
        const unsigned hour = random() % 24, minute = random() % 60, second = random() % 60;
        if (with_offset) {
            std::snprintf(text, sizeof text, "2025-%02u-%02uT%02u:%02u:%02u.%07u+0%u:00", month,
                          day, hour, minute, second, static_cast<unsigned>(random() % 10000000),
                          month > 3 && month < 11 ? 2u : 1u);
        } else {
            std::snprintf(text, sizeof text, "2025-%02u-%02uT%02u:%02u:%02u.%03u", month, day,
                          hour, minute, second, static_cast<unsigned>(random() % 1000));
        }
        return std::string(text);
    };

    std::string body = "[";
    for (std::size_t i = 0; i < rows; ++i) {
        if (i != 0) body += ',';
        const bool with_offset = random() % 2 == 0;
        body += R"({"id":"CB)" + std::to_string(i) + R"(","contact":)" + person('C', 50000) +
                R"(,"bookedBy":)" + person('U', 200) + R"(,"assignedTo":{)";
        switch (random() % 3) {  // Vitec sets one participant of the three
            case 0: body += R"("user":)" + person('U', 200) + R"(,"userGroup":null,"office":null)"; break;
            case 1: body += R"("user":null,"userGroup":)" + person('G', 20) + R"(,"office":null)"; break;
            default:
                body += R"("user":null,"userGroup":null,"office":{"customerId":"M)" +
                        std::to_string(10000 + random() % 5) + R"(","name":"Kontor Malmö"})";
        }
        body += R"(},"state":")" + std::string(pick(states)) + R"(","origin":")" +
                pick(origins) + R"(","occursAt":")" + stamp(with_offset) + R"(","bookedDate":")" +
                stamp(with_offset) + R"("})";
    }
    body += ']';
    return body;
}

// Runs `work` until at least `min_seconds` have passed (and at least twice) and
// returns the best single run in seconds: the least disturbed by neighbours.
double best_seconds(double min_seconds, const std::function<void()>& work) {
    double best = 1e300, total = 0;
    for (int runs = 0; runs < 2 || total < min_seconds; ++runs) {
        const auto start = clock_type::now();
        work();
        const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
        best = std::min(best, seconds);
        total += seconds;
    }
    return best;
}

double mb_per_second(std::size_t bytes, double seconds) {
    return seconds > 0 ? bytes / 1e6 / seconds : 0;
}

}  // namespace

int main(int argc, char** argv) {
    const options opts = parse_options(argc, argv);
    try {
        const std::string body =
            opts.body_file.empty() ? generate_body(opts.rows, opts.seed) : read_file(opts.body_file);
        const date::time_zone& zone = comeback::find_zone("Europe/Stockholm");

        // The sinks fold what they see into `checksum` so no stage can be optimized away.
        std::uint64_t checksum = 0;

        auto measure = [&](std::string_view stage, const std::function<void()>& work) {
            return opts.only.empty() || opts.only == stage ? best_seconds(opts.min_seconds, work) : 0.0;
        };

        const double memchr_seconds = measure("memchr", [&] {
            std::size_t braces = 0;
            for (const char* at = body.data(), *end = body.data() + body.size();
                 (at = static_cast<const char*>(std::memchr(at, '{', end - at))) != nullptr; ++at)
                ++braces;
            checksum += braces;
        });

        const double dom_seconds = measure("json-dom", [&] {
            const boost::json::value value = boost::json::parse(body);
            checksum += value.as_array().size();
        });

        comeback::parse_summary summary;
        auto run_parser = [&](const comeback::response_parser::batch_sink& sink) {
            comeback::response_parser parser({.api_zone = &zone}, sink);
            for (std::size_t at = 0; at < body.size(); at += opts.chunk)
                parser.feed(std::string_view(body).substr(at, opts.chunk));
            summary = parser.finish();
        };

        const double parse_seconds = measure("parse", [&] {
            run_parser([&](comeback::row_batch&& batch) { checksum += batch.rows.size(); });
        });

        const double parse_normalize_seconds = measure("parse-normalize", [&] {
            run_parser([&](comeback::row_batch&& batch) {
                const comeback::normalized_batch normalized =
                    comeback::normalize(opts.customer_id, std::move(batch.rows));
                checksum += normalized.comebacks.size() + normalized.contacts.size();
            });
        });

        std::cout << "body_bytes=" << body.size() << "\n"
                  << "rows=" << summary.rows << "\n"
                  << "rejected=" << summary.rejected << "\n"
                  << "chunk_bytes=" << opts.chunk << "\n"
                  << "memchr_mb_s=" << mb_per_second(body.size(), memchr_seconds) << "\n"
                  << "json_dom_mb_s=" << mb_per_second(body.size(), dom_seconds) << "\n"
                  << "parse_mb_s=" << mb_per_second(body.size(), parse_seconds) << "\n"
                  << "parse_normalize_mb_s="
                  << mb_per_second(body.size(), parse_normalize_seconds) << "\n"
                  << "parse_normalize_rows_s="
                  << (parse_normalize_seconds > 0 ? summary.rows / parse_normalize_seconds : 0) << "\n"
                  << "checksum=" << checksum << "\n";
        if (summary.rows == 0 && (opts.only.empty() || opts.only.starts_with("parse"))) {
            std::cerr << "parse-normalize-bench: the body held no rows; nothing was measured\n";
            return 1;
        }
    } catch (const std::exception& e) {
        std::cerr << "parse-normalize-bench: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
