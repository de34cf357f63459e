#include "dataset.hpp"

#include "model/text.hpp"

#include <date/tz.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <limits>
#include <stdexcept>

namespace comeback::fake {

namespace {

using namespace std::chrono;

// splitmix64: every value of the data set is a pure function of a few
// numbers, so any row can be produced alone, in any order.
std::uint64_t mix(std::uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

std::uint64_t hash_text(std::string_view text) {
    std::uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
    return h;
}

template <class... Rest>
std::uint64_t hash_of(std::uint64_t first, Rest... rest) {
    std::uint64_t h = mix(first);
    ((h = mix(h ^ static_cast<std::uint64_t>(rest))), ...);
    return h;
}

// Salts keep the different decisions about one row independent.
enum salt : std::uint64_t {
    salt_occurs = 1, salt_booked, salt_contact, salt_booker, salt_user, salt_group, salt_office,
    salt_shape, salt_state, salt_origin, salt_style, salt_change, salt_rename, salt_null,
    salt_name, salt_fraction,
};

constexpr std::array first_names{"Anna", "Erik", "Maria", "Lars", "Karin", "Per", "Eva",
                                 "Johan", "Sara", "Nils", "Ingrid", "Olof"};
constexpr std::array last_names{"Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson",
                                "Larsson", "Olsson", "Persson", "Svensson", "Gustafsson"};
constexpr std::array group_names{"Säljare Syd", "Uthyrning", "Nyproduktion", "Kundtjänst"};
constexpr std::array office_names{"Kontor City", "Kontor Söder", "Kontor Norr"};
constexpr std::array states{"New", "Completed", "Cancelled", "InProgress"};
constexpr std::array origins{"User", "System", "Import"};

// Hostile names: quotes, backslashes, JSON-looking text, non-ASCII, emoji,
// control characters, a long name, SQL-looking text.
const std::array<std::string, 9>& nasty_names() {
    static const std::array<std::string, 9> names{
        "O'Brien \"Bobby\" Tables",
        "back\\slash \\\\ double",
        "Åsa Öström-Ängelholm",
        "Emoji 😀 🏠 Name",
        "Line\nbreak\tand tab",
        "{\"json\": [1, 2]}",
        "Robert'); DROP TABLE comeback;--",
        "日本語の名前 ß",
        std::string(300, 'L') + " long",
    };
    return names;
}

}  // namespace

std::optional<date_criterion> parse_date_criterion(std::string_view text) {
    std::string lower(text);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (lower == "occurrence") return date_criterion::occurrence;
    if (lower == "booked" || lower == "bookeddate") return date_criterion::booked;
    return std::nullopt;
}

dataset::dataset(dataset_options options) : options_(std::move(options)) {
    if (options_.customers.empty()) throw std::invalid_argument("the data set needs at least one customer");
    if (options_.to < options_.from) throw std::invalid_argument("the data set's --from is after --to");
    customer_indexes_.reserve(options_.customers.size());
    // A customer listed twice is found at its first place, as a scan would find it.
    for (std::size_t i = 0; i < options_.customers.size(); ++i) customer_indexes_.emplace(options_.customers[i], i);
    zone_ = date::locate_zone(options_.timezone);
    first_instant_ = floor<microseconds>(zone_->to_sys(options_.from, date::choose::earliest));
    end_instant_ = floor<microseconds>(zone_->to_sys(options_.to + date::days{1}, date::choose::earliest));
}

std::optional<std::size_t> dataset::customer_index(std::string_view customer_id) const {
    auto found = customer_indexes_.find(std::string(customer_id));
    if (found == customer_indexes_.end()) return std::nullopt;
    return found->second;
}

namespace {

std::size_t rows_added_per_generation(std::size_t rows) { return std::max<std::size_t>(1, rows / 20); }

}  // namespace

std::size_t dataset::slot_count(std::size_t) const {
    return options_.rows_per_customer +
           options_.generation * rows_added_per_generation(options_.rows_per_customer);
}

std::optional<fake_row> dataset::row(std::size_t customer, std::size_t slot) const {
    const auto& customer_id = options_.customers.at(customer);
    const std::uint64_t base = hash_of(options_.seed, hash_text(customer_id));
    const std::size_t rows = options_.rows_per_customer;
    const unsigned born = slot < rows ? 0 : static_cast<unsigned>((slot - rows) / rows_added_per_generation(rows)) + 1;
    if (born > options_.generation) return std::nullopt;
    const bool nasty = options_.nasty;
    const auto range = (end_instant_ - first_instant_).count();

    // An entity's name in this generation: its base name, with the suffix of its
    // latest rename. The same id always carries the same name within a generation.
    auto entity_name = [&](std::uint64_t kind, std::uint64_t index,
                           std::string base_name) -> std::optional<std::string> {
        if (nasty) {
            auto h = hash_of(base, kind, index, salt_null);
            if (h % 11 == 0) return std::nullopt;
            if (h % 11 == 1) base_name = nasty_names()[(h >> 8) % nasty_names().size()];
        }
        for (unsigned g = options_.generation; g >= 1; --g) {
            if (hash_of(base, kind, index, salt_rename, g) % 5 == 0)
                return base_name + " (ändrad " + std::to_string(g) + ")";
        }
        return base_name;
    };
    auto person = [&](std::uint64_t kind, std::uint64_t index) {
        auto h = hash_of(base, kind, index, salt_name);
        return std::string(first_names[h % first_names.size()]) + " " +
               last_names[(h >> 16) % last_names.size()];
    };

    const std::uint64_t h = hash_of(base, slot);
    fake_row out;
    out.customer_id = customer_id;
    out.id = customer_id + "-" + std::to_string(100000 + slot);

    std::size_t contact_index = hash_of(h, salt_contact) % (rows / 3 + 1);
    std::size_t booker_index = hash_of(h, salt_booker) % 10;
    std::size_t user_index = hash_of(h, salt_user) % 10;
    std::size_t group_index = hash_of(h, salt_group) % group_names.size();
    std::size_t office_index = hash_of(h, salt_office) % office_names.size();
    std::size_t state_index = hash_of(h, salt_state) % states.size();
    std::uint64_t occurs_pick = hash_of(h, salt_occurs);

    // Changes of later generations, applied in order.
    for (unsigned g = born + 1; g <= options_.generation; ++g) {
        auto change = hash_of(h, salt_change, g) % 100;
        if (change < 5) return std::nullopt;  // deleted for good
        if (change < 15) state_index = hash_of(h, salt_state, g) % states.size();
        else if (change < 25) occurs_pick = hash_of(h, salt_occurs, g);  // rescheduled
        else if (change < 30) user_index = hash_of(h, salt_user, g) % 10;  // reassigned
    }

    // Style first: a style without fraction digits needs a whole-second instant.
    auto style_pick = hash_of(h, salt_style);
    out.occurs_style = static_cast<date_style>(style_pick % 4);
    out.booked_style = static_cast<date_style>((style_pick >> 8) % 4);
    out.seventh_digit = static_cast<unsigned>((style_pick >> 16) % 10);
    auto fit = [](micro_time t, date_style style, std::uint64_t fraction_pick) {
        auto whole = floor<seconds>(t);
        switch (style) {
            case date_style::local_seconds: return micro_time(whole);
            case date_style::local_millis: return micro_time(whole + milliseconds(fraction_pick % 1000));
            default: return micro_time(whole + microseconds(fraction_pick % 1000000));
        }
    };
    out.occurs_at = fit(first_instant_ + microseconds(static_cast<std::int64_t>(occurs_pick % static_cast<std::uint64_t>(range))),
                        out.occurs_style, hash_of(h, salt_fraction));
    auto booked_before = seconds(static_cast<std::int64_t>(hash_of(h, salt_booked) % (60 * 86400)));
    out.booked_at = fit(out.occurs_at - booked_before, out.booked_style, hash_of(h, salt_fraction, 2));

    auto nulled = [&](std::uint64_t what) { return nasty && hash_of(h, salt_null, what) % 12 == 0; };

    if (!nulled(1))
        out.contact = fake_named{customer_id + "-K" + std::to_string(contact_index),
                                 entity_name(salt_contact, contact_index, person(salt_contact, contact_index))};
    if (!nulled(2))
        out.booked_by = fake_named{customer_id + "-U" + std::to_string(booker_index),
                                   entity_name(salt_user, booker_index, person(salt_user, booker_index))};
    auto make_user = [&] {
        return fake_named{customer_id + "-U" + std::to_string(user_index),
                          entity_name(salt_user, user_index, person(salt_user, user_index))};
    };
    auto make_group = [&] {
        return fake_named{customer_id + "-G" + std::to_string(group_index),
                          entity_name(salt_group, group_index, group_names[group_index])};
    };
    auto make_office = [&] {
        return fake_office{customer_id + "-O" + std::to_string(office_index),
                           entity_name(salt_office, office_index, office_names[office_index])};
    };
    // The participant is usually one of user, group or office; sometimes all three.
    switch (hash_of(h, salt_shape) % 20) {
        case 0: break;                                           // "assignedTo": null
        case 1: out.assigned_to = fake_assignment{}; break;      // all three null
        case 2: case 3: case 4: case 5: case 6:
            out.assigned_to = fake_assignment{make_user(), make_group(), make_office()}; break;
        case 7: case 8: case 9: case 10: case 11: case 12:
            out.assigned_to = fake_assignment{make_user(), std::nullopt, std::nullopt}; break;
        case 13: case 14: case 15:
            out.assigned_to = fake_assignment{std::nullopt, make_group(), std::nullopt}; break;
        default:
            out.assigned_to = fake_assignment{std::nullopt, std::nullopt, make_office()}; break;
    }
    if (!nulled(3)) out.state = states[state_index];
    if (!nulled(4)) out.origin = origins[hash_of(h, salt_origin) % origins.size()];
    // Vitec's enum lists are not public: nasty data carries values nobody has seen.
    if (nasty && hash_of(h, salt_state, 99) % 25 == 0) out.state = "SomethingNew";
    return out;
}

bool dataset::matches(const fake_row& row, date_criterion criterion,
                      date::local_time<microseconds> from, date::local_time<microseconds> to) const {
    auto value = criterion == date_criterion::occurrence ? row.occurs_at : row.booked_at;
    auto local = zone_->to_local(value);
    return from <= local && local <= to;
}

date_index::date_index(const dataset& data, std::size_t customer, date_criterion criterion) {
    if (customer >= data.options().customers.size())
        throw std::out_of_range("date_index: no customer at index " + std::to_string(customer));
    const std::size_t slots = data.slot_count(customer);
    if (slots > std::numeric_limits<std::uint32_t>::max())
        throw std::length_error("date_index: " + std::to_string(slots) + " slots do not fit 32 bits");
    entries_.reserve(slots);
    for (std::size_t slot = 0; slot < slots; ++slot) {
        auto row = data.row(customer, slot);
        if (!row) continue;
        auto value = criterion == date_criterion::occurrence ? row->occurs_at : row->booked_at;
        entries_.push_back({data.zone().to_local(value).time_since_epoch().count(),
                            static_cast<std::uint32_t>(slot)});
    }
    entries_.shrink_to_fit();
    std::sort(entries_.begin(), entries_.end(),
              [](const entry& a, const entry& b) { return a.local_us < b.local_us; });
}

std::vector<std::uint32_t> date_index::slots(date::local_time<microseconds> from,
                                             date::local_time<microseconds> to) const {
    auto first = std::lower_bound(entries_.begin(), entries_.end(), from.time_since_epoch().count(),
                                  [](const entry& e, std::int64_t t) { return e.local_us < t; });
    auto last = std::upper_bound(first, entries_.end(), to.time_since_epoch().count(),
                                 [](std::int64_t t, const entry& e) { return t < e.local_us; });
    std::vector<std::uint32_t> out;
    out.reserve(static_cast<std::size_t>(last - first));
    for (auto it = first; it != last; ++it) out.push_back(it->slot);
    std::sort(out.begin(), out.end());
    return out;
}

namespace {

// "YYYY-MM-DDTHH:MM:SS" and `fraction_digits` (0, 3 or 6) digits of the
// second's fraction: what date::format("%FT%T", ...) writes for a time in
// seconds, milliseconds or microseconds, without the stream and locale it
// builds per call, or printf's format parsing (those made date formatting
// most of the server's time).
std::string date_time_text(std::int64_t micros, int fraction_digits) {
    constexpr std::int64_t per_day = 86'400'000'000;
    std::int64_t days = micros / per_day;
    std::int64_t rest = micros % per_day;
    if (rest < 0) {
        rest += per_day;
        --days;
    }
    const date::year_month_day ymd{date::sys_days{date::days{days}}};
    const auto second = rest / 1'000'000;
    const auto fraction = rest % 1'000'000;
    char text[32];
    char* at = text;
    // Writes `value` as exactly `width` decimal digits, zero-padded.
    auto digits = [&at](std::int64_t value, int width) {
        for (int i = width - 1; i >= 0; --i) {
            at[i] = static_cast<char>('0' + value % 10);
            value /= 10;
        }
        at += width;
    };
    digits(static_cast<int>(ymd.year()), 4);
    *at++ = '-';
    digits(static_cast<unsigned>(ymd.month()), 2);
    *at++ = '-';
    digits(static_cast<unsigned>(ymd.day()), 2);
    *at++ = 'T';
    digits(second / 3600, 2);
    *at++ = ':';
    digits(second / 60 % 60, 2);
    *at++ = ':';
    digits(second % 60, 2);
    if (fraction_digits == 3) {
        *at++ = '.';
        digits(fraction / 1000, 3);
    } else if (fraction_digits == 6) {
        *at++ = '.';
        digits(fraction, 6);
    }
    return std::string(text, at);
}

}  // namespace

std::string dataset::render_date(micro_time value, date_style style, unsigned seventh_digit) const {
    if (style == date_style::local_millis || style == date_style::local_seconds) {
        // A wall-clock time in the repeated autumn hour cannot be read back
        // unambiguously; such instants are written with their offset instead.
        auto local = zone_->to_local(value);
        auto info = zone_->get_info(floor<seconds>(local));
        if (info.result != date::local_info::unique) style = date_style::offset_7_digits;
        else if (style == date_style::local_seconds) return date_time_text(floor<seconds>(local).time_since_epoch().count() * 1'000'000, 0);
        else return date_time_text(floor<milliseconds>(local).time_since_epoch().count() * 1000, 3);
    }
    if (style == date_style::utc_z) return date_time_text(value.time_since_epoch().count(), 6) + "Z";
    auto info = zone_->get_info(floor<seconds>(value));
    auto local = value + info.offset;
    auto offset = duration_cast<minutes>(info.offset).count();
    char sign = offset < 0 ? '-' : '+';
    offset = offset < 0 ? -offset : offset;
    char tail[16];
    std::snprintf(tail, sizeof tail, "%u%c%02d:%02d", seventh_digit, sign,
                  static_cast<int>(offset / 60), static_cast<int>(offset % 60));
    return date_time_text(local.time_since_epoch().count(), 6) + tail;
}

namespace {

void append_optional(const std::optional<std::string>& text, std::string& out) {
    if (text) append_json_string(out, *text);
    else out += "null";
}

void append_named(const std::optional<fake_named>& value, std::string& out) {
    if (!value) {
        out += "null";
        return;
    }
    out += "{\"id\":";
    append_json_string(out, value->id);
    out += ",\"name\":";
    append_optional(value->name, out);
    out += '}';
}

void append_csv_field(const std::optional<std::string>& value, std::string& out) {
    if (!value) return;  // NULL: empty and unquoted
    out += '"';
    for (char c : *value) {
        if (c == '"') out += '"';
        out += c;
    }
    out += '"';
}

}  // namespace

void dataset::append_json(const fake_row& row, std::string& out) const {
    out += "{\"id\":";
    append_json_string(out, row.id);
    out += ",\"contact\":";
    append_named(row.contact, out);
    out += ",\"bookedBy\":";
    append_named(row.booked_by, out);
    out += ",\"assignedTo\":";
    if (!row.assigned_to) {
        out += "null";
    } else {
        out += "{\"user\":";
        append_named(row.assigned_to->user, out);
        out += ",\"userGroup\":";
        append_named(row.assigned_to->group, out);
        out += ",\"office\":";
        if (const auto& office = row.assigned_to->office) {
            out += "{\"customerId\":";
            append_json_string(out, office->customer_id);
            out += ",\"name\":";
            append_optional(office->name, out);
            out += '}';
        } else {
            out += "null";
        }
        out += '}';
    }
    out += ",\"state\":";
    append_optional(row.state, out);
    out += ",\"origin\":";
    append_optional(row.origin, out);
    out += ",\"occursAt\":\"" + render_date(row.occurs_at, row.occurs_style, row.seventh_digit);
    out += "\",\"bookedDate\":\"" + render_date(row.booked_at, row.booked_style, row.seventh_digit);
    out += "\"}";
}

std::string_view dataset::csv_header() {
    return "customer_id,comeback_id,contact_id,contact_name,booked_by_user_id,booked_by_name,"
           "assigned_user_id,assigned_user_name,assigned_group_id,assigned_group_name,"
           "assigned_office_id,assigned_office_name,state,origin,occurs_at,booked_at\n";
}

void dataset::append_csv(const fake_row& row, std::string& out) const {
    auto field = [&](const std::optional<std::string>& value) {
        append_csv_field(value, out);
        out += ',';
    };
    auto id_of = [](const std::optional<fake_named>& v) { return v ? std::optional(v->id) : std::nullopt; };
    auto name_of = [](const std::optional<fake_named>& v) { return v ? v->name : std::nullopt; };
    std::optional<fake_named> user, group;
    std::optional<fake_office> office;
    if (row.assigned_to) {
        user = row.assigned_to->user;
        group = row.assigned_to->group;
        office = row.assigned_to->office;
    }
    field(row.customer_id);
    field(row.id);
    field(id_of(row.contact));
    field(name_of(row.contact));
    field(id_of(row.booked_by));
    field(name_of(row.booked_by));
    field(id_of(user));
    field(name_of(user));
    field(id_of(group));
    field(name_of(group));
    field(office ? std::optional(office->customer_id) : std::nullopt);
    field(office ? office->name : std::nullopt);
    field(row.state);
    field(row.origin);
    out += date::format("%FT%TZ", row.occurs_at) + ',';
    out += date::format("%FT%TZ", row.booked_at) + '\n';
}

}  // namespace comeback::fake
