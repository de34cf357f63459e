// The three descriptions of the configuration must agree: the loader's own
// list of keys (known_key_paths, the list it refuses unknown keys against),
// docs/configuration.md and config/comeback-sync.example.yaml.

#include "config/config.hpp"

#include "support/fixtures.hpp"
#include "support/scoped.hpp"

#include <catch2/catch.hpp>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>

using namespace comeback;
using comeback::test::env_guard;
using comeback::test::temp_dir;

namespace {

const std::filesystem::path source_dir = COMEBACK_SOURCE_DIR;

std::string read_text(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + file.string());
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

std::set<std::string> known_keys() {
    const std::vector<std::string> paths = known_key_paths();
    return {paths.begin(), paths.end()};
}

// Every key path in a YAML document, list items as "[]": "sync.freshness[].every".
void collect_paths(const YAML::Node& node, const std::string& prefix, std::set<std::string>& out) {
    if (node.IsMap()) {
        for (auto it = node.begin(); it != node.end(); ++it) {
            std::string key = prefix.empty() ? it->first.Scalar() : prefix + "." + it->first.Scalar();
            out.insert(key);
            collect_paths(it->second, key, out);
        }
    } else if (node.IsSequence()) {
        for (const auto& item : node) collect_paths(item, prefix + "[]", out);
    }
}

// The example with its commented-out keys switched on. A key the example shows
// but does not set is written `# key: value`, with the '#' where the key would
// start; prose comments never begin with a lower-case word and a colon.
std::string with_commented_keys(const std::string& text) {
    static const std::regex commented_key(R"(^( *)# ([a-z_]+:( .*)?)$)");
    std::istringstream in(text);
    std::string out;
    for (std::string line; std::getline(in, line);) {
        std::smatch match;
        out += std::regex_match(line, match, commented_key) ? match[1].str() + match[2].str() : line;
        out += '\n';
    }
    return out;
}

// The key column of the page's reference tables: every row that starts with
// `| `key.path` |`. Other tables (password sources, address forms) start with
// values, not key paths.
std::set<std::string> reference_rows(const std::string& markdown) {
    static const std::regex row(R"(^\| `([a-z_]+(\[\])?(\.[a-z_]+(\[\])?)*)` \|)");
    std::set<std::string> out;
    std::istringstream lines(markdown);
    for (std::string line; std::getline(lines, line);) {
        std::smatch match;
        if (std::regex_search(line, match, row)) out.insert(match[1].str());
    }
    return out;
}

// check-config's output as YAML, without the lines whose value is a
// placeholder such as `<the system CA store>`.
YAML::Node described(const config& cfg) {
    std::istringstream lines(describe(cfg));
    std::string text;
    for (std::string line; std::getline(lines, line);)
        if (line.find(": <") == std::string::npos) text += line + "\n";
    return YAML::Load(text);
}

// The node at a key path such as "vitec.retry.max_delay"; undefined when absent.
YAML::Node at(const YAML::Node& node, std::string_view path) {
    if (path.empty() || !node.IsDefined()) return node;
    const auto dot = path.find('.');
    const YAML::Node child = node[std::string(path.substr(0, dot))];
    return at(child, dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1));
}

}  // namespace

TEST_CASE("the loader's key list is the one it checks the file against") {
    const std::set<std::string> known = known_keys();
    CHECK(known.size() == known_key_paths().size());  // no key listed twice
    // Spot checks across the layout: top level, nested sections, list items.
    for (const char* path : {"database", "database.conninfo", "vitec.retry.auth_backoff", "sync.freshness",
                             "sync.freshness[].every", "customers", "customers[].password_credential",
                             "metrics.listen", "log.format"}) {
        INFO(path);
        CHECK(known.count(path) == 1);
    }
    // A key the list lacks is refused by the loader with the list of the known ones.
    const std::set<std::string> sections = {"database", "vitec", "sync", "customers", "metrics", "log", "privacy"};
    for (const std::string& path : known)
        if (path.find('.') == std::string::npos && path.find('[') == std::string::npos)
            CHECK(sections.count(path) == 1);
}

TEST_CASE("docs/configuration.md has a reference row for every key the loader knows, and no other") {
    const std::set<std::string> known = known_keys();
    const std::set<std::string> documented = reference_rows(read_text(source_dir / "docs/configuration.md"));
    for (const std::string& key : known) {
        INFO("docs/configuration.md has no reference row for `" << key << "`");
        CHECK(documented.count(key) == 1);
    }
    for (const std::string& key : documented) {
        INFO("docs/configuration.md documents `" << key << "`, which the loader does not know");
        CHECK(known.count(key) == 1);
    }
}

TEST_CASE("the example file shows every key the loader knows, and no other") {
    const std::string example = read_text(source_dir / "config/comeback-sync.example.yaml");
    std::set<std::string> shown;
    collect_paths(YAML::Load(with_commented_keys(example)), "", shown);
    const std::set<std::string> known = known_keys();
    for (const std::string& key : known) {
        INFO("the example does not show " << key);
        CHECK(shown.count(key) == 1);
    }
    for (const std::string& key : shown) {
        INFO("the example shows " << key << ", which the loader does not know");
        CHECK(known.count(key) == 1);
    }
}

TEST_CASE("the defaults in docs/configuration.md are the loader's") {
    // Every reference row `| `key` | type | `default` | meaning |` whose default
    // is one value is compared with what check-config prints for a file that
    // sets nothing optional.
    env_guard password("COMEBACK_CONFIG_TEST_PASSWORD", "unused");
    const YAML::Node effective = described(load_config(test::fixture_path("config/minimal.yaml")));
    const std::string page = read_text(source_dir / "docs/configuration.md");
    static const std::regex row(R"(^\| `([a-z_.]+)` \| [^|]* \| `([^`]*)` \|)");
    std::istringstream lines(page);
    int compared = 0;
    for (std::string line; std::getline(lines, line);) {
        std::smatch match;
        if (!std::regex_search(line, match, row)) continue;
        const std::string path = match[1].str();
        const YAML::Node node = at(effective, path);
        INFO(path);
        REQUIRE(node.IsScalar());
        CHECK(node.Scalar() == match[2].str());
        ++compared;
    }
    CHECK(compared >= 20);
}

TEST_CASE("the example configuration loads, and its values are the defaults it claims") {
    temp_dir credentials;
    credentials.write("vitec-password", "example-default-secret\n");
    env_guard directory("CREDENTIALS_DIRECTORY", credentials.path().c_str());
    env_guard password("VITEC_PASSWORD_M12345", "example-customer-secret");
    const auto example = source_dir / "config/comeback-sync.example.yaml";

    const config cfg = load_config(example);
    CHECK(cfg.vitec.default_password_origin.source == password_source::credential);
    CHECK(cfg.vitec.default_password.reveal() == "example-default-secret");
    REQUIRE(cfg.customers.size() == 2);
    CHECK(cfg.customers[0].password.reveal() == "example-customer-secret");
    CHECK(cfg.customers[1].password_origin.source == password_source::vitec_default);

    // Every other value is the default the example claims it is: check-config
    // prints the same for it as for a file that sets nothing optional.
    env_guard minimal_password("COMEBACK_CONFIG_TEST_PASSWORD", "unused");
    const config defaults = load_config(test::fixture_path("config/minimal.yaml"));
    const YAML::Node example_values = described(cfg);
    const YAML::Node default_values = described(defaults);
    const std::set<std::string> set_on_purpose = {"database.conninfo", "vitec.username", "customers",
                                                  "metrics.listen"};
    int compared = 0;
    for (const std::string& path : known_key_paths()) {
        if (set_on_purpose.count(path) != 0 || path.find('[') != std::string::npos) continue;
        const YAML::Node example_value = at(example_values, path);
        const YAML::Node default_value = at(default_values, path);
        INFO(path);
        // Undefined: a password or a placeholder such as <the system CA store>.
        CHECK(example_value.IsDefined() == default_value.IsDefined());
        if (!example_value.IsDefined() || !default_value.IsDefined()) continue;
        if (!example_value.IsMap()) {  // a section's keys come one by one
            CHECK(YAML::Dump(example_value) == YAML::Dump(default_value));
            ++compared;
        }
    }
    CHECK(compared >= 20);
    // The example turns the listener on; the default has none.
    CHECK(cfg.metrics.listen == listen_address{"127.0.0.1", 9464});
    CHECK_FALSE(defaults.metrics.listen);
}
