#pragma once
// The comeback row as the Vitec report delivers it, after parsing.
// Plain values only: no JSON, no sockets, no database.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace comeback {

// An instant in UTC with the precision PostgreSQL's timestamptz keeps.
using instant = std::chrono::sys_time<std::chrono::microseconds>;

// A contact, user or user group as the report nests it: {id, name}. A name
// that is null or missing is empty here: nothing was said about it, which is
// not the same as a name that is "" (see the loader's merge rule).
struct named_ref {
    std::string id;
    std::optional<std::string> name;

    friend bool operator==(const named_ref&, const named_ref&) = default;
};

// An office is keyed by its own customer id ({customerId, name}).
struct office_ref {
    std::string customer_id;
    std::optional<std::string> name;  // empty: null or missing, as for named_ref

    friend bool operator==(const office_ref&, const office_ref&) = default;
};

// One element of the response array. Every nested object may be absent:
// a comeback assigned to a user group has no user, and so on. `state` and
// `origin` are Vitec enum names kept as text, since their full value lists
// are not published: an unknown value is data, never an error. A service
// configured to write enums as numbers sends 3 instead of "Completed": such a
// value is kept as its decimal text ("3").
struct comeback_row {
    std::size_t index = 0;  // position in the response array; "last wins" orders by it
    std::string id;
    std::optional<named_ref> contact;
    std::optional<named_ref> booked_by;
    std::optional<named_ref> assigned_user;
    std::optional<named_ref> assigned_group;
    std::optional<office_ref> assigned_office;
    std::optional<std::string> state;
    std::optional<std::string> origin;
    std::optional<instant> occurs_at;
    std::optional<instant> booked_at;

    friend bool operator==(const comeback_row&, const comeback_row&) = default;
};

// An element that could not be read as a comeback. Its neighbours are unaffected.
struct rejection {
    std::size_t index = 0;          // position in the response array
    std::optional<std::string> id;  // when the element had a readable id
    std::string reason;             // names the field and the value that was wrong
    std::string raw;                // the element's JSON text, capped (see parser options)

    friend bool operator==(const rejection&, const rejection&) = default;
};

// What the incremental parser hands on: complete rows and rejections, in array order.
struct row_batch {
    std::vector<comeback_row> rows;
    std::vector<rejection> rejections;

    bool empty() const { return rows.empty() && rejections.empty(); }
};

}  // namespace comeback
