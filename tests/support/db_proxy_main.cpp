// db-proxy: the test TCP proxy (support/tcp_proxy.hpp) as a program, for the
// end-to-end tests. Writes its port to --port-file once listening, then reads
// one command per line from standard input and answers each on standard
// output ("ok COMMAND"); exits at the end of its input or on SIGTERM.
//   blackhole                 stop forwarding now
//   heal                      forward again, everything held included
//   hold-before PATTERN       blackhole from the next client bytes holding
//                             PATTERN (COMMIT, stage_rows), those bytes held back
//   hold-after PATTERN        the same, those bytes delivered first: the
//                             server runs them, its answer never arrives
//   reset                     close every connection
// When a hold-* pattern is met it prints "held PATTERN".
//   db-proxy --upstream-port N [--upstream-host H] --port-file F [--delay-ms D]
// --delay-ms: every piece is forwarded D ms after it arrived, each way (a
// database D ms away: a round trip costs 2 D more).

#include "support/tcp_proxy.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>

int main(int argc, char** argv) {
    std::string host = "127.0.0.1", port_file;
    int upstream_port = 0;
    int delay_ms = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string option = argv[i];
        if (option == "--upstream-host") host = argv[i + 1];
        else if (option == "--upstream-port") upstream_port = std::atoi(argv[i + 1]);
        else if (option == "--port-file") port_file = argv[i + 1];
        else if (option == "--delay-ms") delay_ms = std::atoi(argv[i + 1]);
        else {
            std::cerr << "db-proxy: unknown option " << option << '\n';
            return 2;
        }
    }
    if (upstream_port <= 0 || port_file.empty()) {
        std::cerr << "usage: db-proxy --upstream-port N [--upstream-host H] --port-file F [--delay-ms D]\n";
        return 2;
    }
    std::mutex output;
    auto say = [&](const std::string& line) {
        std::lock_guard lock(output);
        std::cout << line << std::endl;
    };
    comeback::test::tcp_proxy proxy(host, static_cast<std::uint16_t>(upstream_port), 0,
                                    std::chrono::milliseconds(std::max(delay_ms, 0)));
    proxy.on_held([&](const std::string& pattern) { say("held " + pattern); });
    {
        const std::string temporary = port_file + ".tmp";
        std::ofstream(temporary) << proxy.port() << '\n';
        std::filesystem::rename(temporary, port_file);
    }
    for (std::string line; std::getline(std::cin, line);) {
        if (line == "blackhole") proxy.blackhole();
        else if (line == "heal") proxy.heal();
        else if (line == "reset") proxy.reset();
        else if (line.starts_with("hold-before ")) proxy.blackhole_at(line.substr(12), false);
        else if (line.starts_with("hold-after ")) proxy.blackhole_at(line.substr(11), true);
        else {
            say("unknown " + line);
            continue;
        }
        say("ok " + line);
    }
    return 0;
}
