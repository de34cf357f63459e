#pragma once
// HTTP Basic credentials for one request, and their removal from anything a
// server sends back. A server may echo what it received (a proxy's error page,
// a debug message quoting the Authorization header), and such text ends up in
// logs, the ledger and `status`: every form of the secret is replaced by
// secret::redacted before the text is cut or shown. Every copy of the secret
// this object makes is wiped when it is destroyed.

#include "config/secret.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace comeback {

class basic_credentials {
public:
    // Throws only std::bad_alloc. `password` is read, not kept.
    basic_credentials(std::string_view username, const secret& password);
    ~basic_credentials();
    basic_credentials(const basic_credentials&) = delete;
    basic_credentials& operator=(const basic_credentials&) = delete;

    // "Basic " + Base64(username ":" password), the Authorization header's value.
    const std::string& authorization() const { return authorization_; }

    // Replaces every occurrence of the password, of username:password and of
    // its Base64 token by secret::redacted, whatever their length. `cut` says
    // the text is the start of a longer one: an end of the text that is the
    // start of one of those forms is replaced too, so that a cut never leaves a
    // piece of a secret behind.
    void redact(std::string& text, bool cut = false) const;

    // At most `max_bytes` of server text made fit to show: redacted first,
    // then cut and sanitized (fetch/outcome.hpp's sanitize_message). `cut`:
    // `text` is itself the start of a longer text.
    std::string shown(std::string_view text, std::size_t max_bytes, bool cut = false) const;

private:
    std::string authorization_;
    std::vector<std::string> forms_;  // longest first, so a longer form is replaced whole
    std::size_t longest_ = 0;
};

}  // namespace comeback
