#pragma once
// Splits parsed rows into the entity sets the database keeps: contacts, users
// (booked-by and assigned users share one id space), user groups, offices
// (keyed by the office's customerId) and flat comeback records.

#include "model/comeback.hpp"
#include "model/privacy.hpp"

#include <string_view>
#include <string>
#include <vector>

namespace comeback {

struct entity {
    std::string id;
    std::optional<std::string> name;  // empty: the response named no name (null or missing)

    friend bool operator==(const entity&, const entity&) = default;
};

// A comeback with its nested objects replaced by their keys.
struct comeback_record {
    std::size_t index = 0;  // position in the response; the loader keeps the last per id
    std::string id;
    std::optional<std::string> contact_id;
    std::optional<std::string> booked_by_user_id;
    std::optional<std::string> assigned_user_id;
    std::optional<std::string> assigned_group_id;
    std::optional<std::string> assigned_office_id;
    std::optional<std::string> state;
    std::optional<std::string> origin;
    std::optional<instant> occurs_at;
    std::optional<instant> booked_at;

    friend bool operator==(const comeback_record&, const comeback_record&) = default;
};

// Everything in one batch, for one customer. Within each entity set an id
// appears once with the last name seen (a null or missing name never replaces
// one seen before it); comebacks keep array order.
struct normalized_batch {
    std::string customer_id;  // the customer the data was fetched under
    std::vector<entity> contacts;
    std::vector<entity> users;
    std::vector<entity> user_groups;
    std::vector<entity> offices;
    std::vector<comeback_record> comebacks;
};

// How contact names leave normalize (privacy.contact_names). `pseudonym_key`
// is the secret's text, needed for pseudonymize only; it is never stored.
struct contact_name_rule {
    contact_names mode = contact_names::keep;
    std::string_view pseudonym_key;
};

// Takes the rows by value: their strings move into the batch, so a caller done
// with them passes them with std::move and nothing is copied.
// Throws std::invalid_argument when the rule pseudonymizes without a key.
normalized_batch normalize(std::string customer_id, std::vector<comeback_row> rows,
                           const contact_name_rule& contact_rule = {});

}  // namespace comeback
