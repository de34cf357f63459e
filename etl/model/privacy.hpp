#pragma once
// What comeback-sync keeps of the personal data in the report. Contacts are
// private persons (the brokers' clients); users, groups and offices are staff
// and organisations, whose names are kept as sent.

#include <string_view>

namespace comeback {

// privacy.contact_names: how a contact's name is stored.
enum class contact_names {
    keep,          // as Vitec sends it
    pseudonymize,  // a keyed hash of it (normalize/pseudonym.hpp): equal names stay equal
    omit,          // NULL: no contact name is stored at all
};

}  // namespace comeback
