// The configuration loader on any text: it returns a configuration or throws
// config_error naming the file, nothing else; check-config's description of a
// loaded configuration never throws; and no password read from a file, a
// credential or the environment appears in either. Durations, sizes, listen
// addresses and base URLs read back from their own spelling.

#include "config/config.hpp"
#include "config/values.hpp"
#include "support/check.hpp"
#include "support/split.hpp"

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace {

using namespace comeback;
namespace fs = std::filesystem;

// Passwords behind files, credentials and the environment.
constexpr std::string_view file_secret = "canary-7Gq2-from-a-file";
constexpr std::string_view env_secret = "canary-Vx81-from-the-environment";

// The directory the configuration seems to live in, with the password files
// and credential the test fixtures name (tests/fixtures/config), holding the
// canaries. Made once per process.
const fs::path& config_directory() {
    static const fs::path directory = [] {
        char pattern[] = "/tmp/comeback-fuzz-config.XXXXXX";
        const char* made = ::mkdtemp(pattern);
        if (made == nullptr) throw std::runtime_error("mkdtemp failed");
        const fs::path dir = made;
        fs::create_directories(dir / "secrets");
        for (const char* name : {"secrets/vitec-password", "secrets/customer-password",
                                 "customer-password", "vitec", "pw"}) {
            std::ofstream(dir / name) << file_secret << "\n";
        }
        std::ofstream(dir / "secrets/ca.pem") << "not checked here\n";
        ::setenv("CREDENTIALS_DIRECTORY", dir.c_str(), 1);
        ::setenv("COMEBACK_CONFIG_TEST_PASSWORD", std::string(env_secret).c_str(), 1);
        std::atexit([] {
            std::error_code ignored;
            fs::remove_all(config_directory(), ignored);
        });
        return dir;
    }();
    return directory;
}

bool holds_secret(std::string_view text) {
    return text.find(file_secret) != std::string_view::npos ||
           text.find(env_secret) != std::string_view::npos;
}

// The typed values a setting is parsed into print in the spelling their parser
// reads back (check-config shows that spelling). The input is tried as each.
void check_values(std::string_view text) {
    try {
        const auto duration = parse_duration(text);
        FUZZ_CHECK(parse_duration(format_duration(duration)) == duration);
    } catch (const std::invalid_argument&) {
    }
    try {
        const auto size = parse_size(text);
        FUZZ_CHECK(parse_size(format_size(size)) == size);
    } catch (const std::invalid_argument&) {
    }
    try {
        const listen_address address = parse_listen_address(text);
        FUZZ_CHECK(parse_listen_address(to_string(address)) == address);
    } catch (const std::invalid_argument&) {
    }
    for (const bool insecure : {false, true}) {
        try {
            const vitec_url url = parse_vitec_url(text, insecure);
            FUZZ_CHECK(parse_vitec_url(url.text, insecure) == url);
            FUZZ_CHECK(!url.host.empty() && url.port != 0);
            FUZZ_CHECK(url.path_prefix.empty() ||
                       (url.path_prefix.front() == '/' && url.path_prefix.back() != '/'));
        } catch (const std::invalid_argument&) {
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    check_values(text);

    config_origin origin;
    origin.file = "fuzz.yaml";
    origin.directory = config_directory();
    // Now and then a file others can read, where inline passwords are refused.
    origin.mode = fuzz::digest(text) % 4 == 0 ? 0100644 : 0100600;
    try {
        const config cfg = load_config_text(text, origin);
        FUZZ_CHECK(!cfg.customers.empty());
        const std::string description = describe(cfg);
        FUZZ_CHECK(!holds_secret(description) || holds_secret(text));
    } catch (const config_error& error) {
        const std::string_view message = error.what();
        FUZZ_CHECK(message.rfind("fuzz.yaml:", 0) == 0);
        // Unless the input spelled it itself (an unknown key is named, and libFuzzer
        // learns the canaries from the comparisons below).
        FUZZ_CHECK(!holds_secret(message) || holds_secret(text));
    }
    return 0;
}
