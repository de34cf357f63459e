// Basic credentials and their redaction, pure: every form of the secret is
// replaced before text is cut, whatever its length, and a cut never leaves a
// piece of it behind.

#include "fetch/credentials.hpp"
#include "fetch/outcome.hpp"

#include <catch2/catch.hpp>
#include <date/date.h>

using namespace comeback;
using namespace std::chrono_literals;

namespace {

// Base64 of "sync:Pa55/word+x", written out so the test does not reuse the code it checks.
const std::string token = "c3luYzpQYTU1L3dvcmQreA==";
const secret password("Pa55/word+x");

// Every piece of four bytes or more of the token found in `text`, or "".
std::string token_piece_in(std::string_view text) {
    for (std::size_t length = 4; length <= token.size(); ++length)
        for (std::size_t at = 0; at + length <= token.size(); ++at)
            if (text.find(token.substr(at, length)) != std::string_view::npos) return token.substr(at, length);
    return "";
}

}  // namespace

TEST_CASE("the Authorization value is Basic and the Base64 of user:password") {
    const basic_credentials credentials("sync", password);
    CHECK(credentials.authorization() == "Basic " + token);
}

TEST_CASE("every form of the secret is redacted, however short") {
    const basic_credentials credentials("sync", password);
    std::string text = "pw Pa55/word+x, pair sync:Pa55/word+x, header Basic " + token + " end";
    credentials.redact(text);
    CHECK(text == "pw <redacted>, pair <redacted>, header Basic <redacted> end");

    // One byte is still a secret: the text gets mangled rather than leak it.
    const basic_credentials tiny("sync", secret("q"));
    std::string with_q = "quick query";
    tiny.redact(with_q);
    CHECK(with_q == "<redacted>uick <redacted>uery");
    // A marker is never searched again, so a password inside "<redacted>" cannot eat it.
    const basic_credentials inside("sync", secret("red"));
    std::string twice = "red red";
    inside.redact(twice);
    CHECK(twice == "<redacted> <redacted>");
}

TEST_CASE("a cut text loses any end that starts a secret") {
    const basic_credentials credentials("sync", password);
    for (std::size_t keep = 1; keep < token.size(); ++keep) {
        std::string text = "echo: Basic " + token.substr(0, keep);
        credentials.redact(text, true);
        INFO(keep << ": " << text);
        CHECK(text == "echo: Basic <redacted>");
    }
    std::string whole_text = "ends in Pa55";
    credentials.redact(whole_text, false);  // not cut: the text is all there is
    CHECK(whole_text == "ends in Pa55");
}

TEST_CASE("shown text is redacted before it is cut, wherever the cut falls") {
    const basic_credentials credentials("sync", password);
    for (std::size_t padding = 250; padding <= 300; ++padding) {
        const std::string text = std::string(padding, 'x') + " Basic " + token + " and more";
        const std::string shown = credentials.shown(text, 300);
        INFO(padding << ": " << shown);
        CHECK(token_piece_in(shown).empty());
        // 300, "...", and a marker the cut would fall into kept whole.
        CHECK(shown.size() <= 300 + std::string_view(secret::redacted).size() + 3);
    }
    // The text itself was cut inside the token.
    const std::string cut_text = std::string(10, 'x') + token.substr(0, 12);
    CHECK(token_piece_in(credentials.shown(cut_text, 300, true)).empty());
}

TEST_CASE("an error body's decoded message is redacted before it is cut") {
    const basic_credentials credentials("sync", password);
    // JSON escapes hide the secret from a search of the raw body.
    const std::string escaped = R"({"message":"you sent Pa55\/word\u002bx and Basic )" + token + R"("})";
    const std::string message = error_body_message(escaped, &credentials);
    CHECK(message == "you sent <redacted> and Basic <redacted>");
    const std::string nested = R"({"message":{"sent":"Pa55\/word+x","auth":[")" + token + R"("]}})";
    const std::string shown = error_body_message(nested, &credentials);
    CHECK(shown.find("Pa55") == std::string::npos);
    CHECK(token_piece_in(shown).empty());
    CHECK(shown.find("<redacted>") != std::string::npos);
    // The body went on after what was read: a piece at its end goes too.
    const std::string start = "proxy error, Authorization: Basic " + token.substr(0, 9);
    CHECK(token_piece_in(error_body_message(start, &credentials, true)).empty());
}

TEST_CASE("a classified response shows no secret, from its body or its headers") {
    const basic_credentials credentials("sync", password);
    response_facts facts;
    facts.status = 200;
    facts.content_type = "text/html; echo=Basic " + token;
    facts.credentials = &credentials;
    const auto now = date::sys_days{date::year{2024} / 5 / 1};
    auto wrong_type = classify_response(facts, 300s, now);
    REQUIRE(wrong_type);
    CHECK(token_piece_in(wrong_type->message).empty());
    facts.status = 400;
    const std::string body = std::string(280, 'p') + "Basic " + token;
    facts.error_body = body;
    auto rejected = classify_response(facts, 300s, now);
    REQUIRE(rejected);
    CHECK(token_piece_in(rejected->message).empty());
}
