#pragma once
// The fake Vitec server's data: a deterministic data set of comeback rows,
// generated row by row on demand (never held whole), so a response of a
// million rows costs no memory. Linked by the server and by tests that need
// the expected data (library `fake_vitec_dataset`).
//
// The same (seed, customers, rows, range, nasty, generation) always gives the
// same rows. A higher generation changes the data the way a live system does:
// states change, comebacks are rescheduled or reassigned, rows are deleted,
// contacts, users, groups and offices are renamed, and new rows appear.

#include <date/date.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace date {
class time_zone;
}

namespace comeback::fake {

using micro_time = std::chrono::sys_time<std::chrono::microseconds>;

struct dataset_options {
    std::uint64_t seed = 1;
    std::vector<std::string> customers{"M1"};
    std::size_t rows_per_customer = 100;  // rows of generation 0; later ones add a few
    date::local_days from{date::year{2024} / 1 / 1};  // occursAt spans these local days,
    date::local_days to{date::year{2024} / 12 / 31};  // both inclusive
    bool nasty = false;        // hostile names and nulls at every level
    unsigned generation = 0;
    std::string timezone = "Europe/Stockholm";
};

struct fake_named {
    std::string id;
    std::optional<std::string> name;  // null in JSON when absent
};

struct fake_office {
    std::string customer_id;
    std::optional<std::string> name;
};

struct fake_assignment {
    std::optional<fake_named> user;
    std::optional<fake_named> group;
    std::optional<fake_office> office;
};

// How a timestamp is written, the ways Vitec has been seen to write them.
enum class date_style {
    offset_7_digits,    // 2024-04-28T22:58:37.5691339+02:00
    utc_z,              // 2024-04-28T20:58:37.569133Z
    local_millis,       // 2024-04-28T22:58:37.569  (Stockholm wall clock, no offset)
    local_seconds,      // 2024-04-28T22:58:37      (no fraction, no offset)
};

struct fake_row {
    std::string customer_id;
    std::string id;
    std::optional<fake_named> contact;
    std::optional<fake_named> booked_by;
    std::optional<fake_assignment> assigned_to;
    std::optional<std::string> state;
    std::optional<std::string> origin;
    micro_time occurs_at;  // exact: what a correct reader gets back from the text
    micro_time booked_at;
    date_style occurs_style = date_style::offset_7_digits;
    date_style booked_style = date_style::offset_7_digits;
    unsigned seventh_digit = 0;  // the 100 ns digit written after the microseconds
};

// Which date the request's from/to select on.
enum class date_criterion { occurrence, booked };

// "Occurrence" -> occurrence; "Booked" or "BookedDate" -> booked (any letter case).
std::optional<date_criterion> parse_date_criterion(std::string_view text);

class dataset {
public:
    // Throws std::invalid_argument for an empty customer list, from > to, or an
    // unknown time zone.
    explicit dataset(dataset_options options);

    const dataset_options& options() const { return options_; }
    const date::time_zone& zone() const { return *zone_; }

    // Index of a customer in options().customers, or nullopt.
    std::optional<std::size_t> customer_index(std::string_view customer_id) const;

    // Row slots of a customer in this generation; some hold deleted rows.
    std::size_t slot_count(std::size_t customer) const;

    // The row in a slot, or nullopt when it is deleted (or not yet born) in this generation.
    std::optional<fake_row> row(std::size_t customer, std::size_t slot) const;

    // Whether the row's chosen date lies within [from, to], local wall-clock times.
    bool matches(const fake_row& row, date_criterion criterion,
                 date::local_time<std::chrono::microseconds> from,
                 date::local_time<std::chrono::microseconds> to) const;

    // Appends the row as one element of the response array (camelCase, nulls kept).
    void append_json(const fake_row& row, std::string& out) const;

    // Appends the row as one CSV line (with "\n") in the columns of csv_header().
    // PostgreSQL COPY's CSV conventions: NULL is an empty unquoted field, an
    // empty string is "". Timestamps are UTC, e.g. 2024-04-28T20:58:37.569133Z.
    void append_csv(const fake_row& row, std::string& out) const;

    // "customer_id,comeback_id,...,booked_at\n": the columns of the comeback_report view.
    static std::string_view csv_header();

private:
    std::string render_date(micro_time value, date_style style, unsigned seventh_digit) const;

    dataset_options options_;
    std::unordered_map<std::string, std::size_t> customer_indexes_;  // id -> index, for fleets of customers
    const date::time_zone* zone_ = nullptr;
    micro_time first_instant_;  // local midnight of `from`
    micro_time end_instant_;    // local midnight after `to`
};

// One customer's rows of one generation, ordered by the local wall-clock time
// of one of their dates: the rows of a window are found by binary search, so
// serving a window costs the rows in it, not the customer's whole data set.
// Built once (one pass over the customer's slots) and kept compact: 16 bytes
// per row, never the rows or their JSON, so a 1,000,000-row customer costs
// 16 MB and each row is generated again when it is served. The index keeps
// no reference to the dataset; it is valid for the generation it was built from.
class date_index {
public:
    // Throws std::out_of_range for an unknown customer index, std::length_error
    // for more slots than 32 bits can number.
    date_index(const dataset& data, std::size_t customer, date_criterion criterion);

    // The slots whose row data.matches(row, criterion, from, to), in slot order
    // (the order a full scan serves them in).
    std::vector<std::uint32_t> slots(date::local_time<std::chrono::microseconds> from,
                                     date::local_time<std::chrono::microseconds> to) const;

    std::size_t size() const { return entries_.size(); }

private:
    struct entry {
        std::int64_t local_us;  // the chosen date, local wall-clock time
        std::uint32_t slot;
    };
    std::vector<entry> entries_;  // sorted by local_us
};

}  // namespace comeback::fake
