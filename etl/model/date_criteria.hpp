#pragma once
// The report's `date` parameter (TaskDateCriteria): which of a comeback's dates
// a window's from/to filter on. Vitec documents only Occurrence; other values
// are passed through as configured, since the full list is not published.
//
// The one place that knows what a criteria means for the data: only a window
// filtered on occurs_at tells which comebacks of that time range exist, so only
// such a window may soft-delete the stored comebacks it no longer lists.

#include <string>
#include <string_view>
#include <utility>

namespace comeback {

class date_criteria {
public:
    static constexpr std::string_view occurrence_name = "Occurrence";

    // Occurrence, the documented default.
    date_criteria() : name_(occurrence_name) {}
    // Any non-empty name; etl/config checks the configured text before it gets here.
    explicit date_criteria(std::string name) : name_(std::move(name)) {}

    // As sent in the request and stored in sync_windows.date_criteria.
    const std::string& name() const { return name_; }

    // True when from/to filter on occurs_at: a complete response then lists
    // every comeback whose occurs_at lies in the window.
    bool filters_occurs_at() const { return name_ == occurrence_name; }

    friend bool operator==(const date_criteria&, const date_criteria&) = default;

private:
    std::string name_;
};

}  // namespace comeback
