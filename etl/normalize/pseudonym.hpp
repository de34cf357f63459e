#pragma once
// The pseudonym that privacy.contact_names: pseudonymize stores instead of a
// contact's name: "pseudonym:" and 32 hex digits of HMAC-SHA-256, keyed by the
// configured secret, over the customer id and the name.
//
// Of the name, not of the contact id: BI counts distinct contacts by
// contact_id already; what a pseudonym keeps is that two contact ids with the
// same name show the same text (the same person entered twice), without the
// name. With the customer id: the same person at two customers is not linked
// across them. Without the key nobody can confirm a guessed name, which a
// plain hash would allow.

#include <string>
#include <string_view>

namespace comeback {

inline constexpr std::string_view pseudonym_prefix = "pseudonym:";

// Throws std::invalid_argument when the key is empty, std::runtime_error when
// OpenSSL fails.
std::string pseudonymize_name(std::string_view key, std::string_view customer_id,
                              std::string_view name);

// Whether `text` has the shape pseudonymize_name() gives: a stored name that
// is already a pseudonym is not pseudonymized again.
bool is_pseudonym(std::string_view text);

}  // namespace comeback
