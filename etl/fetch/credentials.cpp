#include "fetch/credentials.hpp"

#include "fetch/outcome.hpp"

#include <openssl/evp.h>

#include <algorithm>

namespace comeback {

namespace {

// Base64 of `text` appended to `out`, which must have the room reserved.
void append_base64(std::string& out, std::string_view text) {
    const std::size_t at = out.size();
    out.resize(at + 4 * ((text.size() + 2) / 3));
    const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + at),
                                        reinterpret_cast<const unsigned char*>(text.data()),
                                        static_cast<int>(text.size()));
    out.resize(at + static_cast<std::size_t>(written));
}

}  // namespace

basic_credentials::basic_credentials(std::string_view username, const secret& password) {
    const std::string& revealed = password.reveal();
    // Every string is sized before it is filled: a reallocation would free a
    // copy of the secret without wiping it.
    std::string pair;
    pair.reserve(username.size() + 1 + revealed.size());
    pair.append(username).append(":").append(revealed);
    constexpr std::string_view scheme = "Basic ";
    authorization_.reserve(scheme.size() + 4 * ((pair.size() + 2) / 3) + 1);
    authorization_.append(scheme);
    append_base64(authorization_, pair);

    if (revealed.empty()) {
        wipe(pair);
        return;  // nothing secret to look for
    }
    forms_.reserve(3);
    forms_.emplace_back(revealed);
    forms_.push_back(std::move(pair));
    wipe(pair);  // a short string is copied, not moved
    forms_.emplace_back(std::string_view(authorization_).substr(scheme.size()));
    std::sort(forms_.begin(), forms_.end(),
              [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
    longest_ = forms_.front().size();
}

basic_credentials::~basic_credentials() {
    wipe(authorization_);
    for (std::string& form : forms_) wipe(form);
}

void basic_credentials::redact(std::string& text, bool cut) const {
    const std::string_view marker = secret::redacted;
    // One pass, longest form first at each position, so a marker is never
    // searched again (a short password could match inside one).
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        const auto hit = std::find_if(forms_.begin(), forms_.end(), [&](const std::string& form) {
            return text.compare(i, form.size(), form) == 0;
        });
        if (hit != forms_.end()) {
            out.append(marker);
            i += hit->size();
        } else {
            out += text[i++];
        }
    }
    if (cut) {
        // The longest end of the text that some form starts with.
        std::size_t fragment = 0;
        for (const std::string& form : forms_) {
            for (std::size_t n = std::min(form.size() - 1, out.size()); n > fragment; --n) {
                if (std::string_view(out).substr(out.size() - n) == std::string_view(form).substr(0, n)) {
                    fragment = n;
                    break;
                }
            }
        }
        if (fragment > 0) out.replace(out.size() - fragment, fragment, marker);
    }
    text.swap(out);
    wipe(out);  // the text as the server sent it, secrets included
}

std::string basic_credentials::shown(std::string_view text, std::size_t max_bytes, bool cut) const {
    // Enough to hold whole any form that starts within the first max_bytes.
    const std::size_t take = std::min(text.size(), max_bytes + longest_);
    std::string part(text.substr(0, take));
    redact(part, cut || take < text.size());
    return sanitize_message(part, max_bytes);
}

}  // namespace comeback
