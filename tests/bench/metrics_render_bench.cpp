// One /metrics scrape at fleet scale, rendered in process: a registry filled
// as a fleet's steady state leaves it (every customer with committed windows,
// a few failing), in both metrics.per_customer_series modes. Prints one line
// per mode: `mode bytes lines median_ms`, the median of the renders. Then a
// flood: renders of the `all` mode back to back on a thread of their own, as
// scrapes without end would make them, while this thread counts windows as the
// sync does; prints `flood updates longest_ms p99_ms render_ms`, how long an
// update took at most and at the 99th percentile, beside a render's median.
//
//   metrics-render-bench [--customers N] [--failing N] [--renders N]

#include "observability/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace comeback;
using namespace std::chrono_literals;

namespace {

std::size_t number_after(int& i, int argc, char** argv) {
    if (i + 1 >= argc) {
        fmt::print(stderr, "metrics-render-bench: {} needs a number\n", argv[i]);
        std::exit(2);
    }
    return std::stoul(argv[++i]);
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t customers = 10'000, failing = 10, renders = 5;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--customers") customers = number_after(i, argc, argv);
        else if (arg == "--failing") failing = number_after(i, argc, argv);
        else if (arg == "--renders") renders = std::max<std::size_t>(1, number_after(i, argc, argv));
        else {
            fmt::print(stderr, "metrics-render-bench: unknown argument {}\n", arg);
            return 2;
        }
    }

    const auto now = metrics_registry::clock::now();
    metrics_registry registry(60s, now - 1h);
    std::vector<std::string> ids;
    for (std::size_t i = 1; i <= customers; ++i) ids.push_back(fmt::format("F{:05}", i));
    registry.set_customers(ids, now - 1h);
    // What a steady state leaves: each customer's first loads and its
    // confirmed re-fetches, and a failing window for every customers/failing-th one.
    const std::size_t every = failing == 0 ? 0 : std::max<std::size_t>(1, customers / failing);
    for (std::size_t i = 0; i < ids.size(); ++i) {
        for (int window = 0; window < 3; ++window) {
            registry.count_request(ids[i], "rows");
            registry.window_succeeded(ids[i], {.inserted = 7}, 0.4s, now - 50min);
            registry.count_request(ids[i], "rows");
            registry.window_succeeded(ids[i], {.confirmed = true}, 0.2s, now - 30s);
        }
        if (every != 0 && i % every == 0) {
            registry.count_request(ids[i], "transient");
            registry.window_failed(ids[i], 40s, now - 20s);
        }
    }

    for (const auto detail : {per_customer_series::trouble, per_customer_series::all}) {
        registry.set_per_customer_series(detail);
        std::vector<double> ms;
        std::string text;
        // The render's own cost, once the allocator has settled: glibc's
        // thresholds rise to a render's size only after it has mapped and
        // freed a few (the daemon fixes them at 8 MiB, so its scrapes in full
        // detail keep paying for new pages: row 9's scrapes through the socket).
        for (int warm = 0; warm < 4; ++warm) (void)registry.render_prometheus(now);
        for (std::size_t r = 0; r < renders; ++r) {
            // The last render is gone before the next starts, as in the
            // daemon, where each is sent and freed.
            std::string().swap(text);
            const auto started = std::chrono::steady_clock::now();
            text = registry.render_prometheus(now);
            ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
        }
        std::sort(ms.begin(), ms.end());
        fmt::print("{} {} {} {:.1f}\n", to_string(detail), text.size(),
                   std::count(text.begin(), text.end(), '\n'), ms[ms.size() / 2]);
    }

    // The flood: as many renders as above, while updates go on.
    std::vector<double> render_ms;
    std::vector<double> update_ms;
    std::atomic<bool> rendering = true;
    std::thread renderer([&] {
        for (std::size_t r = 0; r < renders; ++r) {
            const auto started = std::chrono::steady_clock::now();
            const auto text = registry.render_prometheus(now);
            render_ms.push_back(
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
        }
        rendering = false;
    });
    // At least one update: a few customers' renders may all be done before
    // this thread first looks (the small run, 40 customers), and the figures
    // below need one.
    std::size_t i = 0;
    do {
        const auto started = std::chrono::steady_clock::now();
        registry.count_request(ids[i], "rows");
        registry.window_succeeded(ids[i], {.confirmed = true}, 0.2s, now - 10s);
        update_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
        i = (i + 1) % ids.size();
    } while (rendering);
    renderer.join();
    std::sort(render_ms.begin(), render_ms.end());
    std::sort(update_ms.begin(), update_ms.end());
    fmt::print("flood {} {:.3f} {:.3f} {:.1f}\n", update_ms.size(), update_ms.back(),
               update_ms[update_ms.size() * 99 / 100], render_ms[render_ms.size() / 2]);
}
