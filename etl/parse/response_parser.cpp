#include "parse/response_parser.hpp"

#include "model/text.hpp"
#include "model/timestamp.hpp"
#include "parse/element_scanner.hpp"

#include <boost/json/basic_parser_impl.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <utility>

namespace comeback {
namespace {

namespace json = boost::json;

// The object being read at a given depth (2 is the element itself).
enum class scope : std::uint8_t { element, contact, booked_by, assigned_to, user, user_group, office };

// Where the next value goes.
enum class slot : std::uint8_t {
    ignored,  // an unknown key, or anything in an element already rejected
    id,
    contact,
    booked_by,
    assigned_to,
    state,
    origin,
    occurs_at,
    booked_date,
    ref_id,    // id of contact, bookedBy, assignedTo.user, assignedTo.userGroup
    ref_name,  // name of the same
    user,
    user_group,
    office,
    office_customer_id,
    office_name,
};

constexpr std::string_view scope_path(scope s) {
    switch (s) {
    case scope::element: return "";
    case scope::contact: return "contact.";
    case scope::booked_by: return "bookedBy.";
    case scope::assigned_to: return "assignedTo.";
    case scope::user: return "assignedTo.user.";
    case scope::user_group: return "assignedTo.userGroup.";
    case scope::office: return "assignedTo.office.";
    }
    return "";
}

constexpr std::string_view slot_key(slot s) {
    switch (s) {
    case slot::ignored: return "?";
    case slot::id: return "id";
    case slot::contact: return "contact";
    case slot::booked_by: return "bookedBy";
    case slot::assigned_to: return "assignedTo";
    case slot::state: return "state";
    case slot::origin: return "origin";
    case slot::occurs_at: return "occursAt";
    case slot::booked_date: return "bookedDate";
    case slot::ref_id: return "id";
    case slot::ref_name: return "name";
    case slot::user: return "user";
    case slot::user_group: return "userGroup";
    case slot::office: return "office";
    case slot::office_customer_id: return "customerId";
    case slot::office_name: return "name";
    }
    return "?";
}

slot slot_for_key(scope in, std::string_view key) {
    switch (in) {
    case scope::element:
        if (key == "id") return slot::id;
        if (key == "contact") return slot::contact;
        if (key == "bookedBy") return slot::booked_by;
        if (key == "assignedTo") return slot::assigned_to;
        if (key == "state") return slot::state;
        if (key == "origin") return slot::origin;
        if (key == "occursAt") return slot::occurs_at;
        if (key == "bookedDate") return slot::booked_date;
        return slot::ignored;
    case scope::contact:
    case scope::booked_by:
    case scope::user:
    case scope::user_group:
        if (key == "id") return slot::ref_id;
        if (key == "name") return slot::ref_name;
        return slot::ignored;
    case scope::assigned_to:
        if (key == "user") return slot::user;
        if (key == "userGroup") return slot::user_group;
        if (key == "office") return slot::office;
        return slot::ignored;
    case scope::office:
        if (key == "customerId") return slot::office_customer_id;
        if (key == "name") return slot::office_name;
        return slot::ignored;
    }
    return slot::ignored;
}

bool is_text_slot(slot s) {
    return s == slot::id || s == slot::state || s == slot::origin || s == slot::occurs_at ||
           s == slot::booked_date || s == slot::ref_id || s == slot::ref_name ||
           s == slot::office_customer_id || s == slot::office_name;
}

// NUL cannot be stored in PostgreSQL text. In an id it would silently merge or
// split keys, so such an element is rejected; in descriptive text it becomes
// U+FFFD and the row is kept.
void replace_nul(std::string& text) {
    for (std::size_t at = text.find('\0'); at != std::string::npos; at = text.find('\0', at)) {
        text.replace(at, 1, "\xEF\xBF\xBD");
    }
}

constexpr std::size_t deepest_known = 4;  // element 2, contact 3, assignedTo.user 4

// The SAX handler: turns parser events into rows and rejections. All of the
// response's state lives here; the driver below only moves bytes.
class element_reader {
public:
    static constexpr std::size_t max_array_size = std::size_t(-1);
    static constexpr std::size_t max_object_size = std::size_t(-1);
    static constexpr std::size_t max_string_size = std::size_t(-1);
    static constexpr std::size_t max_key_size = std::size_t(-1);

    element_reader(parser_options options, response_parser::batch_sink sink,
                   detail::element_scanner& scanner)
        : options_(options), sink_(std::move(sink)), scanner_(scanner) {
        if (options_.batch_rows == 0) options_.batch_rows = 1;
        if (options_.max_field_bytes == 0) options_.max_field_bytes = 1;
        // No reserve for a whole batch here: most windows hold a few rows, and a
        // full batch's worth per window in flight (880 KB at 2,000 rows) is what a
        // daemon with many customers would keep resident. flush() reserves once
        // a response has shown it fills batches.
    }

    // Why the handler stopped the parse, when it did.
    const std::string& failure() const { return failure_; }
    // True when it stopped because a token was over max_field_bytes.
    bool token_too_long() const { return token_too_long_; }
    parse_summary& summary() { return summary_; }

    void flush() {
        if (batch_.empty()) return;
        row_batch full = std::move(batch_);
        batch_ = row_batch{};
        if (full.rows.size() + full.rejections.size() >= options_.batch_rows) {
            batch_.rows.reserve(options_.batch_rows);  // a full batch: more are likely to follow
        }
        sink_(std::move(full));
    }

    bool on_document_begin(json::error_code&) { return true; }
    bool on_document_end(json::error_code&) { return true; }

    bool on_array_begin(json::error_code&) {
        if (depth_ == 0) {
            depth_ = 1;
            return true;
        }
        ++depth_;
        if (skip_depth_ != 0) return true;
        if (depth_ == 2) {
            begin_element();
            reject("the element is an array, not an object");
        } else {
            unexpected_value("an array");
        }
        skip_depth_ = depth_;
        return true;
    }

    bool on_array_end(std::size_t, json::error_code&) {
        if (skip_depth_ == depth_) {
            skip_depth_ = 0;
            if (depth_ == 2) finish_element();
        }
        --depth_;
        return true;
    }

    bool on_object_begin(json::error_code& ec) {
        if (depth_ == 0) return stop(ec, "the top level is an object, not an array");
        ++depth_;
        if (skip_depth_ != 0) return true;
        if (depth_ == 2) {
            begin_element();
            scopes_[2] = scope::element;
            return true;
        }
        const slot target = std::exchange(slot_, slot::ignored);
        switch (target) {
        case slot::contact: open(scope::contact, row_->contact.emplace()); return true;
        case slot::booked_by: open(scope::booked_by, row_->booked_by.emplace()); return true;
        case slot::user: open(scope::user, row_->assigned_user.emplace()); return true;
        case slot::user_group: open(scope::user_group, row_->assigned_group.emplace()); return true;
        case slot::office:
            row_->assigned_office.emplace();
            scopes_[depth_] = scope::office;
            return true;
        case slot::assigned_to:
            // A repeated key replaces the earlier value, as in any JSON reader.
            row_->assigned_user.reset();
            row_->assigned_group.reset();
            row_->assigned_office.reset();
            scopes_[depth_] = scope::assigned_to;
            return true;
        default:
            slot_ = target;
            unexpected_value("an object");
            skip_depth_ = depth_;
            return true;
        }
    }

    bool on_object_end(std::size_t, json::error_code&) {
        if (skip_depth_ != 0) {
            if (skip_depth_ == depth_) {
                skip_depth_ = 0;
                if (depth_ == 2) finish_element();
            }
        } else if (depth_ == 2) {
            finish_element();
        } else if (!rejected_) {
            close(scopes_[depth_]);
        }
        --depth_;
        return true;
    }

    bool on_key_part(json::string_view part, std::size_t size, json::error_code& ec) {
        if (size > options_.max_field_bytes) return too_long("a key", ec);
        if (skip_depth_ == 0) key_.append(part.data(), part.size());
        return true;
    }

    bool on_key(json::string_view last, std::size_t size, json::error_code& ec) {
        if (size > options_.max_field_bytes) return too_long("a key", ec);
        std::string_view key{last.data(), last.size()};
        if (!key_.empty()) {  // parts are kept outside skipped containers only
            key_.append(key);
            key = key_;
        }
        // Kept only whole and short, to name a value in a message (a cut key
        // could end in half of something the server echoed), in a fixed
        // buffer: this runs for every key of a body.
        last_key_size_ = size <= max_named_key && key.size() == size ? size : 0;
        std::memcpy(last_key_.data(), key.data(), last_key_size_);
        if (skip_depth_ != 0) return true;
        key_scope_ = scopes_[depth_];
        if (rejected_) {
            // Still look for the element's id, so the rejection can name it.
            slot_ = depth_ == 2 && key == "id" ? slot::id : slot::ignored;
        } else {
            slot_ = slot_for_key(scopes_[depth_], key);
        }
        key_.clear();
        return true;
    }

    bool on_string_part(json::string_view part, std::size_t size, json::error_code& ec) {
        if (size > options_.max_field_bytes) return too_long(value_name(), ec);
        if (skip_depth_ == 0 && (slot_ != slot::ignored || depth_ <= 1)) {
            text_.append(part.data(), part.size());
        }
        return true;
    }

    bool on_string(json::string_view last, std::size_t size, json::error_code& ec) {
        if (size > options_.max_field_bytes) return too_long(value_name(), ec);
        if (depth_ == 0) return stop(ec, "the top level is a string, not an array");
        if (skip_depth_ != 0) return true;
        if (depth_ == 1) {
            text_.clear();
            return bare_element("a string");
        }
        const slot target = std::exchange(slot_, slot::ignored);
        if (target == slot::ignored) return true;
        std::string_view value{last.data(), last.size()};
        if (!text_.empty()) {
            text_.append(value);
            value = text_;
        }
        store_text(target, value);
        text_.clear();
        return true;
    }

    bool on_number_part(json::string_view part, json::error_code& ec) {
        number_size_ += part.size();
        if (number_size_ > options_.max_field_bytes) return too_long(value_name(), ec);
        if (skip_depth_ == 0 && slot_ != slot::ignored) number_.append(part.data(), part.size());
        return true;
    }
    bool on_int64(std::int64_t value, json::string_view last, json::error_code& ec) {
        if (store_enum_number(std::to_string(value))) return true;
        return on_number(last, ec);
    }
    bool on_uint64(std::uint64_t value, json::string_view last, json::error_code& ec) {
        if (store_enum_number(std::to_string(value))) return true;
        return on_number(last, ec);
    }
    bool on_double(double, json::string_view last, json::error_code& ec) {
        return on_number(last, ec);
    }

    bool on_bool(bool value, json::error_code& ec) {
        const std::string_view spelled = value ? "true" : "false";
        return on_scalar(spelled, spelled, ec);
    }

    bool on_null(json::error_code& ec) {
        if (depth_ == 0) return stop(ec, "the top level is null, not an array");
        if (skip_depth_ != 0) return true;
        if (depth_ == 1) return bare_element("null");
        switch (std::exchange(slot_, slot::ignored)) {
        case slot::id: reject("id is null"); break;
        case slot::contact: row_->contact.reset(); break;
        case slot::booked_by: row_->booked_by.reset(); break;
        case slot::assigned_to:
            row_->assigned_user.reset();
            row_->assigned_group.reset();
            row_->assigned_office.reset();
            break;
        case slot::user: row_->assigned_user.reset(); break;
        case slot::user_group: row_->assigned_group.reset(); break;
        case slot::office: row_->assigned_office.reset(); break;
        case slot::state: row_->state.reset(); break;
        case slot::origin: row_->origin.reset(); break;
        case slot::occurs_at: row_->occurs_at.reset(); break;
        case slot::booked_date: row_->booked_at.reset(); break;
        // A null id makes the nested object absent when it closes. A null name
        // says nothing about the name, as if it were missing: it never erases
        // a name the database knows.
        case slot::ref_id: current_ref_->id.clear(); break;
        case slot::ref_name: current_ref_->name.reset(); break;
        case slot::office_customer_id: row_->assigned_office->customer_id.clear(); break;
        case slot::office_name: row_->assigned_office->name.reset(); break;
        case slot::ignored: break;
        }
        return true;
    }

    bool on_comment_part(json::string_view, json::error_code&) { return true; }
    bool on_comment(json::string_view, json::error_code&) { return true; }

private:
    bool stop(json::error_code& ec, std::string why) {
        failure_ = std::move(why);
        ec = json::error::syntax;
        return false;
    }

    // `state` or `origin` as an integer: .NET services can be configured to
    // write enums as numbers. Kept as its decimal text, like an unknown name.
    // Returns false for any other slot, where a number is wrong.
    bool store_enum_number(std::string decimal) {
        if (skip_depth_ != 0 || (slot_ != slot::state && slot_ != slot::origin)) return false;
        const slot target = std::exchange(slot_, slot::ignored);
        (target == slot::state ? row_->state : row_->origin) = std::move(decimal);
        number_.clear();
        return true;
    }

    // A token over max_field_bytes: the parse stops before more of it is kept.
    bool too_long(const std::string& what, json::error_code& ec) {
        token_too_long_ = true;
        std::string where = depth_ >= 2 ? " in element " + std::to_string(row_->index) : "";
        return stop(ec, what + where + " is longer than " + std::to_string(options_.max_field_bytes) +
                            " bytes, the limit for one value");
    }

    // The value being read, for a message: its field when it is one this
    // reader keeps, else the key it came under (cut; the message is sanitized
    // where it is shown).
    std::string value_name() const {
        if (depth_ <= 1) return "an array element";
        if (slot_ != slot::ignored && skip_depth_ == 0) return field_name(slot_);
        if (last_key_size_ == 0) return "a value";
        return "the value of key \"" + std::string(last_key_.data(), last_key_size_) + "\"";
    }

    static constexpr std::size_t max_named_key = 64;

    bool on_number(json::string_view last, json::error_code& ec) {
        const std::size_t size = std::exchange(number_size_, 0) + last.size();
        if (size > options_.max_field_bytes) return too_long(value_name(), ec);
        number_.append(last.data(), last.size());
        const bool result = on_scalar("a number", number_, ec);
        number_.clear();
        return result;
    }

    // A number, true or false: never right for any other field this reader keeps.
    bool on_scalar(std::string_view kind, std::string_view spelled, json::error_code& ec) {
        if (depth_ == 0) return stop(ec, "the top level is " + std::string(kind) + ", not an array");
        if (skip_depth_ != 0) return true;
        if (depth_ == 1) return bare_element(kind);
        if (slot_ == slot::ignored) return true;
        unexpected_value(std::string(spelled));
        slot_ = slot::ignored;
        return true;
    }

    // A value directly in the top-level array that is not an object.
    bool bare_element(std::string_view kind) {
        begin_element();
        reject("the element is " + std::string(kind) + ", not an object");
        finish_element();
        return true;
    }

    std::string field_name(slot s) const {
        std::string name{scope_path(key_scope_)};
        return name.append(slot_key(s));
    }

    // A value of the wrong JSON type for the current slot.
    void unexpected_value(std::string_view got) {
        if (slot_ == slot::ignored) return;
        const std::string field = field_name(slot_);
        const bool wants_text = is_text_slot(slot_);
        reject(field + ": expected " + (wants_text ? "a string" : "an object or null") + ", got " +
               std::string(got));
    }

    void open(scope s, named_ref& ref) {
        scopes_[depth_] = s;
        current_ref_ = &ref;
    }

    // A nested object without an id names nothing that could be stored: absent.
    void close(scope s) {
        switch (s) {
        case scope::contact:
            if (row_->contact->id.empty()) row_->contact.reset();
            break;
        case scope::booked_by:
            if (row_->booked_by->id.empty()) row_->booked_by.reset();
            break;
        case scope::user:
            if (row_->assigned_user->id.empty()) row_->assigned_user.reset();
            break;
        case scope::user_group:
            if (row_->assigned_group->id.empty()) row_->assigned_group.reset();
            break;
        case scope::office:
            if (row_->assigned_office->customer_id.empty()) row_->assigned_office.reset();
            break;
        case scope::element:
        case scope::assigned_to:
            break;
        }
    }

    // What keeps a string out of the database, if anything: invalid UTF-8
    // anywhere, a NUL in a key (text keeps its NULs as U+FFFD, replace_nul).
    enum class text_fault { none, invalid_utf8, nul_in_key };
    static text_fault fault_of(std::string_view value, bool is_key) {
        if (!is_valid_utf8(value)) return text_fault::invalid_utf8;
        if (is_key && std::memchr(value.data(), '\0', value.size()) != nullptr) return text_fault::nul_in_key;
        return text_fault::none;
    }

    // Checks a string for the database; false (and the element rejected) when it cannot go there.
    bool storable(slot target, std::string_view value, bool is_key) {
        switch (fault_of(value, is_key)) {
        case text_fault::none:
            return true;
        case text_fault::invalid_utf8:
            reject(field_name(target) + ": " + quoted(value) + " is not valid UTF-8");
            return false;
        case text_fault::nul_in_key:
            reject(field_name(target) + ": " + quoted(value) + " contains a NUL character (\\u0000)");
            return false;
        }
        return false;
    }

    // Both build a new string rather than assign into the old one: cheaper for
    // the short values that make up most of a body.
    void store_key(slot target, std::string_view value, std::string& into) {
        if (storable(target, value, true)) into = std::string(value);
    }

    void store_text(slot target, std::string_view value, std::optional<std::string>& into) {
        if (!storable(target, value, false)) return;
        replace_nul(into.emplace(value));
    }

    void store_time(slot target, std::string_view value, std::optional<instant>& into) {
        timestamp_result read = parse_timestamp(value, *options_.api_zone, field_name(target));
        if (read) {
            into = *read.value;
        } else {
            reject(std::move(read.error));
        }
    }

    void store_text(slot target, std::string_view value) {
        switch (target) {
        case slot::id:
            if (rejected_) {
                // Only to name the rejection: keep it when it is a usable id,
                // as storable() decides, without rejecting the element again.
                if (!value.empty() && fault_of(value, true) == text_fault::none) {
                    row_->id.assign(value.data(), value.size());
                }
                return;
            }
            if (value.empty()) {
                row_->id.clear();
                reject("id is empty");
                return;
            }
            store_key(target, value, row_->id);
            return;
        case slot::state: store_text(target, value, row_->state); return;
        case slot::origin: store_text(target, value, row_->origin); return;
        case slot::occurs_at: store_time(target, value, row_->occurs_at); return;
        case slot::booked_date: store_time(target, value, row_->booked_at); return;
        case slot::ref_id: store_key(target, value, current_ref_->id); return;
        case slot::ref_name: store_text(target, value, current_ref_->name); return;
        case slot::office_customer_id:
            store_key(target, value, row_->assigned_office->customer_id);
            return;
        case slot::office_name: store_text(target, value, row_->assigned_office->name); return;
        case slot::contact:
        case slot::booked_by:
        case slot::assigned_to:
        case slot::user:
        case slot::user_group:
        case slot::office:
            slot_ = target;
            unexpected_value("a string (" + quoted(value) + ")");
            slot_ = slot::ignored;
            return;
        case slot::ignored: return;
        }
    }

    // The element is read straight into the batch's last row, which a
    // rejection takes back: no row is built elsewhere and moved in.
    void begin_element() {
        row_ = &batch_.rows.emplace_back();
        row_->index = next_index_++;
        rejected_ = false;
        reason_.clear();
        slot_ = slot::ignored;
    }

    // Records the first thing wrong with the element; later values are ignored.
    void reject(std::string why) {
        if (rejected_) return;
        rejected_ = true;
        reason_ = std::move(why);
        slot_ = slot::ignored;
    }

    void finish_element() {
        ++summary_.elements;
        // Every element takes its text, so that each finds its own.
        const std::string_view raw = scanner_.take_raw();
        if (!rejected_ && row_->id.empty()) reject("id is missing");
        if (rejected_) {
            rejection& r = batch_.rejections.emplace_back();
            r.index = row_->index;
            if (!row_->id.empty()) r.id = std::move(row_->id);
            r.reason = std::move(reason_);
            // The raw text goes to the database too: cut whole characters, and
            // replace what PostgreSQL text cannot hold.
            r.raw = to_storable_text(cut_at_char_boundary(raw, options_.max_raw_bytes));
            batch_.rows.pop_back();
            ++summary_.rejected;
        } else {
            ++summary_.rows;
        }
        row_ = nullptr;
        rejected_ = false;
        if (batch_.rows.size() + batch_.rejections.size() >= options_.batch_rows) flush();
    }

    parser_options options_;
    response_parser::batch_sink sink_;
    detail::element_scanner& scanner_;
    parse_summary summary_;
    row_batch batch_;
    std::string failure_;

    std::size_t depth_ = 0;       // 1 inside the top-level array, 2 inside an element
    std::size_t skip_depth_ = 0;  // depth of a container being skipped; 0 when none
    scope scopes_[deepest_known + 1] = {};
    slot slot_ = slot::ignored;
    scope key_scope_ = scope::element;  // the object holding the key slot_ came from

    std::size_t next_index_ = 0;
    comeback_row* row_ = nullptr;  // the element being read: the batch's last row
    named_ref* current_ref_ = nullptr;
    bool rejected_ = false;
    std::string reason_;

    std::string key_;     // a key arriving in parts
    std::string text_;    // a string value arriving in parts
    std::string number_;  // a number arriving in parts
    std::size_t number_size_ = 0;  // of the number arriving in parts, kept or not
    std::array<char, max_named_key> last_key_{};  // the last key when short, to name a value
    std::size_t last_key_size_ = 0;
    bool token_too_long_ = false;
};

json::parse_options reader_options() {
    json::parse_options options;
    // Invalid UTF-8 is judged per field by the reader, so that one bad name
    // rejects one element instead of the whole response.
    options.allow_invalid_utf8 = true;
    options.max_depth = 64;
    return options;
}

std::size_t first_non_space(std::string_view text) {
    const std::size_t at = text.find_first_not_of(" \t\r\n");
    return at == std::string_view::npos ? text.size() : at;
}

}  // namespace

struct response_parser::impl {
    impl(parser_options options, batch_sink sink)
        // A few bytes past the cap let the cut see where the split character ends.
        : scanner(options.max_raw_bytes + 4),
          parser(reader_options(), options, std::move(sink), scanner) {}

    [[noreturn]] void fail(std::string message, failure_kind kind = failure_kind::broken_response) {
        failure = message;
        failure_kind_ = kind;
        throw response_error(message, kind);
    }

    // Hands `data` to the JSON parser; `offset` is where it starts in the body.
    void write(std::string_view data, bool more) {
        json::error_code ec;
        const std::size_t used = parser.write_some(more, data.data(), data.size(), ec);
        const std::size_t at = fed + used;
        if (ec) {
            const std::string& why = parser.handler().failure();
            if (parser.handler().token_too_long())
                fail(why + " (at byte " + std::to_string(at) + ")", failure_kind::field_too_large);
            // The handler only stops on the top-level value, which starts at the first content.
            if (!why.empty()) fail(why + " (at byte " + std::to_string(first_content) + ")");
            if (ec == json::error::incomplete) {
                if (!seen_content) fail("the response body is empty");
                fail("the response body ends at byte " + std::to_string(fed) +
                     " before the array is complete (truncated?)");
            }
            if (at == first_content && first_char == '<') {
                fail("the response body is not JSON: it starts with '<' (an HTML page?) at byte " +
                     std::to_string(at));
            }
            fail("the response body is not valid JSON at byte " + std::to_string(at) + ": " +
                 ec.message());
        }
        if (used < data.size()) {
            fail("unexpected data after the array at byte " + std::to_string(at));
        }
        fed += used;
    }

    void note_first_content(std::string_view chunk) {
        if (seen_content) return;
        const std::size_t at = first_non_space(chunk);
        if (at == chunk.size()) {
            first_content += chunk.size();
            return;
        }
        first_content += at;
        first_char = chunk[at];
        seen_content = true;
    }

    detail::element_scanner scanner;
    json::basic_parser<element_reader> parser;
    std::size_t fed = 0;  // bytes the JSON parser has accepted
    std::size_t first_content = 0;
    char first_char = 0;
    bool seen_content = false;
    bool finished = false;
    std::optional<std::string> failure;
    failure_kind failure_kind_ = failure_kind::broken_response;
};

response_parser::response_parser(parser_options options, batch_sink sink) {
    if (options.api_zone == nullptr) {
        throw std::invalid_argument("response_parser: parser_options.api_zone is required");
    }
    if (!sink) throw std::invalid_argument("response_parser: a batch sink is required");
    impl_ = std::make_unique<impl>(options, std::move(sink));
}

response_parser::~response_parser() = default;

void response_parser::feed(std::string_view chunk) {
    if (impl_->failure) throw response_error(*impl_->failure, impl_->failure_kind_);
    if (impl_->finished) throw std::logic_error("response_parser: feed() after finish()");
    impl_->parser.handler().summary().bytes += chunk.size();
    impl_->note_first_content(chunk);
    // The scanner goes ahead of the JSON parser by what it hands on, so that
    // each end-of-element event finds that element's raw text complete.
    while (!chunk.empty()) {
        const std::size_t scanned = impl_->scanner.scan(chunk);
        impl_->write(chunk.substr(0, scanned), true);
        chunk.remove_prefix(scanned);
    }
}

parse_summary response_parser::finish() {
    if (impl_->failure) throw response_error(*impl_->failure, impl_->failure_kind_);
    auto& reader = impl_->parser.handler();
    if (!impl_->finished) {
        impl_->write({}, false);
        impl_->finished = true;
        reader.flush();
    }
    return reader.summary();
}

row_batch parse_response(std::string_view body, const date::time_zone& api_zone) {
    row_batch all;
    parser_options options;
    options.api_zone = &api_zone;
    response_parser parser(options, [&all](row_batch&& batch) {
        for (auto& row : batch.rows) all.rows.push_back(std::move(row));
        for (auto& rejected : batch.rejections) all.rejections.push_back(std::move(rejected));
    });
    parser.feed(body);
    parser.finish();
    return all;
}

}  // namespace comeback
