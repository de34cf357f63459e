#pragma once
// Reading fixture files from tests/fixtures/.

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace comeback::test {

inline std::filesystem::path fixture_path(const std::string& name) {
    return std::filesystem::path(COMEBACK_FIXTURES_DIR) / name;
}

inline std::string read_fixture(const std::string& name) {
    std::ifstream in(fixture_path(name), std::ios::binary);
    if (!in) throw std::runtime_error("cannot open fixture " + fixture_path(name).string());
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

}  // namespace comeback::test
