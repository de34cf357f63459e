// hostile-vitec: tests/support/hostile_vitec.hpp as a program, for the
// end-to-end test with the real binary.
//   hostile-vitec --mode NAME --port-file FILE [--padding N] [--string-bytes N]
// Serves until SIGTERM or SIGINT.

#include "support/hostile_vitec.hpp"

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
    using namespace comeback::test;
    hostile_options options;
    std::string port_file;
    try {
        for (int i = 1; i + 1 < argc; i += 2) {
            const std::string key = argv[i], value = argv[i + 1];
            if (key == "--mode") options.mode = parse_hostile_mode(value);
            else if (key == "--port-file") port_file = value;
            else if (key == "--padding") options.padding = std::stoul(value);
            else if (key == "--string-bytes") options.string_bytes = std::stoull(value);
            else throw std::invalid_argument("unknown option " + key);
        }
        if (argc % 2 == 0) throw std::invalid_argument("every option takes a value");
    } catch (const std::exception& error) {
        std::cerr << "hostile-vitec: " << error.what() << '\n';
        return 2;
    }
    // Blocked before the server's thread starts, so only sigwait sees them.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);

    hostile_vitec server(options);
    if (!port_file.empty()) {
        const std::string temporary = port_file + ".tmp";
        std::ofstream(temporary) << server.port() << '\n';
        std::filesystem::rename(temporary, port_file);
    }
    std::cerr << "hostile-vitec: listening on " << server.url() << '\n';
    int signal = 0;
    sigwait(&stop, &signal);
    return 0;
}
