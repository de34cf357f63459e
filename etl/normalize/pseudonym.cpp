#include "normalize/pseudonym.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdexcept>

namespace comeback {

namespace {

// 16 of SHA-256's 32 bytes: 128 bits keep distinct names distinct, and the
// column stays readable.
constexpr std::size_t kept_bytes = 16;

}  // namespace

std::string pseudonymize_name(std::string_view key, std::string_view customer_id,
                              std::string_view name) {
    if (key.empty()) throw std::invalid_argument("pseudonymize_name: the key is empty");
    // The customer id and the name, separated by a byte neither can hold
    // (ids have no control characters; a name's NUL became U+FFFD).
    std::string message;
    message.reserve(customer_id.size() + 1 + name.size());
    message.append(customer_id).append(1, '\0').append(name);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
             reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac,
             &length) == nullptr ||
        length < kept_bytes) {
        throw std::runtime_error("pseudonymize_name: OpenSSL could not compute HMAC-SHA-256");
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string out{pseudonym_prefix};
    for (std::size_t i = 0; i < kept_bytes; ++i) {
        out += hex[mac[i] >> 4];
        out += hex[mac[i] & 0x0f];
    }
    return out;
}

bool is_pseudonym(std::string_view text) {
    if (text.size() != pseudonym_prefix.size() + 2 * kept_bytes) return false;
    if (text.substr(0, pseudonym_prefix.size()) != pseudonym_prefix) return false;
    for (char c : text.substr(pseudonym_prefix.size())) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

}  // namespace comeback
