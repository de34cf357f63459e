// TLS verification with a test CA (test_pki, made with the openssl command):
// the right CA and host name pass; a wrong host name or an unknown CA fail.

#include "fetch/vitec_client.hpp"

#include "fake_vitec_server.hpp"

#include <catch2/catch.hpp>

using namespace comeback;
using namespace comeback::test;
using namespace std::chrono_literals;
namespace net = boost::asio;

namespace {

const secret password("pw");

fetch_result fetch_from(const vitec_config& config) {
    net::io_context io;
    vitec_client client(io.get_executor(), config);
    window_request request{"M1", &password, "2024-01-01T00:00:00", "2024-02-01T00:00:00", "Occurrence"};
    return run(io, client.fetch(request, [](std::string_view) -> net::awaitable<void> { co_return; }));
}

}  // namespace

TEST_CASE("TLS to the right host name with a certificate from the configured CA succeeds, and fails otherwise") {
    test_pki pki;
    fake_vitec_server server({"--default-password", "pw", "--rows-per-customer", "50",
                              "--tls-cert", pki.file("server.pem"), "--tls-key", pki.file("server.key")});
    auto config = local_config(server);
    config.ca_file = pki.file("ca.pem");

    SECTION("verified") {
        config.base_url = parse_vitec_url(server.url("https", "localhost"), false);
        auto result = fetch_from(config);
        INFO((result.failure ? result.failure->message : ""));
        CHECK(result.ok());
        CHECK(result.bytes > 0);
    }
    SECTION("the certificate does not name the host") {
        config.base_url = parse_vitec_url(server.url("https", "127.0.0.1"), false);
        auto result = fetch_from(config);
        CHECK(result.kind() == failure_kind::tls_rejected);
        CHECK_FALSE(is_retryable(*result.kind()));
        CHECK(result.http_status == 0);
        CHECK(result.failure->message.find("TLS handshake") != std::string::npos);
        INFO(result.failure->message);
        CHECK(result.failure->message.find("certificate verify failed (the certificate does not name 127.0.0.1)") != std::string::npos);
    }
    SECTION("the certificate comes from a CA we do not trust") {
        config.base_url = parse_vitec_url(server.url("https", "localhost"), false);
        config.ca_file = pki.file("other-ca.pem");
        auto result = fetch_from(config);
        CHECK(result.kind() == failure_kind::tls_rejected);
        CHECK(result.failure->message.find("certificate verify failed") != std::string::npos);
        CHECK(result.failure->message.find("(unable to get local issuer certificate)") != std::string::npos);
        CHECK(result.failure->message.find("vitec.ca_file") != std::string::npos);
        config.ca_file.clear();  // the system store does not know the test CA either
        CHECK(fetch_from(config).failure->message.find("certificate verify failed") != std::string::npos);
    }
}
