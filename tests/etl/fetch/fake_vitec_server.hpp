#pragma once
// Runs the real fake-vitec executable for a test: starts it with the given
// arguments on an ephemeral port, waits for its port file, talks to its
// /_control endpoints, and stops it when the test ends.

#include "config/config.hpp"
#include "support/scoped.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace comeback::test {

// A throwaway PKI made with the openssl command, for serving TLS: ca.pem signs
// server.pem (for DNS:localhost only, key server.key); other-ca.pem signs
// nothing served.
class test_pki {
public:
    test_pki() {
        const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";
        openssl("req -x509 " + key + "-keyout ca.key -out ca.pem -days 2 -subj '/CN=comeback test CA'");
        openssl("req -x509 " + key + "-keyout other-ca.key -out other-ca.pem -days 2 -subj '/CN=other CA'");
        openssl("req " + key + "-keyout server.key -out server.csr -subj '/CN=localhost'");
        std::ofstream(dir_.path() / "ext.cnf") << "subjectAltName=DNS:localhost\n";
        openssl("x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
                "-out server.pem -days 2 -extfile ext.cnf");
    }
    std::string file(const char* name) const { return (dir_.path() / name).string(); }

private:
    void openssl(const std::string& arguments) const {
        auto command = "cd '" + dir_.path().string() + "' && openssl " + arguments + " >/dev/null 2>&1";
        if (std::system(command.c_str()) != 0) throw std::runtime_error("failed: openssl " + arguments);
    }

    temp_dir dir_;
};

class fake_vitec_server {
public:
    explicit fake_vitec_server(std::vector<std::string> arguments) {
        auto port_file = dir_.path() / "port";
        arguments.insert(arguments.begin(), {FAKE_VITEC_PATH, "--port-file", port_file.string()});
        std::vector<char*> argv;
        for (auto& argument : arguments) argv.push_back(argument.data());
        argv.push_back(nullptr);
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (!std::filesystem::exists(port_file)) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                throw std::runtime_error("fake-vitec exited before listening");
            }
            if (std::chrono::steady_clock::now() > give_up) throw std::runtime_error("fake-vitec did not start");
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        std::ifstream(port_file) >> port_;
    }
    ~fake_vitec_server() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    fake_vitec_server(const fake_vitec_server&) = delete;
    fake_vitec_server& operator=(const fake_vitec_server&) = delete;

    unsigned short port() const { return port_; }
    pid_t pid() const { return pid_; }
    std::string url(const std::string& scheme = "http", const std::string& host = "127.0.0.1") const {
        return scheme + "://" + host + ":" + std::to_string(port_);
    }

    // A plain HTTP call to a /_control endpoint; returns the body.
    std::string control(const std::string& target, boost::beast::http::verb verb = boost::beast::http::verb::post) const {
        namespace beast = boost::beast;
        namespace http = beast::http;
        boost::asio::io_context io;
        beast::tcp_stream stream(io);
        stream.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port_));
        http::request<http::empty_body> request{verb, target, 11};
        request.set(http::field::host, "127.0.0.1");
        http::write(stream, request);
        beast::flat_buffer buffer;
        http::response<http::string_body> response;
        http::read(stream, buffer, response);
        if (response.result() != http::status::ok)
            throw std::runtime_error("control " + target + " answered " + response.body());
        return response.body();
    }

    boost::json::object stats() const {
        return boost::json::parse(control("/_control/stats", boost::beast::http::verb::get)).as_object();
    }

    // Peak resident memory of the server process, in KiB.
    long peak_rss_kib() const {
        std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
        std::string line;
        while (std::getline(in, line))
            if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
        return -1;
    }

private:
    temp_dir dir_;
    pid_t pid_ = -1;
    unsigned short port_ = 0;
};

// A client configuration for a plain-HTTP fake server, quick to fail in tests.
inline vitec_config local_config(const fake_vitec_server& server) {
    vitec_config config;
    config.base_url = parse_vitec_url(server.url(), false);
    config.username = "sync";
    config.default_password = secret("pw");
    config.request_timeout = std::chrono::seconds(10);
    config.max_concurrent_requests = 4;
    config.max_requests_per_second = 1000;
    config.retry.base_delay = std::chrono::milliseconds(10);
    config.retry.max_delay = std::chrono::milliseconds(50);
    config.retry.max_retry_after = std::chrono::milliseconds(50);
    return config;
}

// Runs a coroutine to completion on `io` and returns its value.
template <class T>
T run(boost::asio::io_context& io, boost::asio::awaitable<T> task) {
    auto future = boost::asio::co_spawn(io, std::move(task), boost::asio::use_future);
    io.restart();
    io.run();
    return future.get();
}

// Peak resident memory of this process so far, in KiB.
inline long current_rss_kib() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

}  // namespace comeback::test
