#pragma once
// End-of-work summaries for operators: what ran, what failed and why. Written
// once for run and backfill.

#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace comeback {

// A window that ended without a commit, or held by the deletion guard.
struct failed_window {
    std::string customer_id;
    std::string from;
    std::string to;
    std::string kind;   // the failure kind's label (model/failure.hpp)
    std::string error;
};

// The failed windows of one command, the most recent ones: a summary, not a log.
class failed_windows {
public:
    static constexpr std::size_t kept = 100;

    void add(failed_window failure);
    bool empty() const { return total_ == 0; }
    std::size_t total() const { return total_; }
    const std::vector<failed_window>& recent() const { return recent_; }

    // `title` ("failed windows") and a table of customer, from, to, kind and
    // error (saying how many of how many when some were dropped); nothing when
    // empty.
    void print(std::ostream& out, std::string_view title = "failed windows") const;

private:
    std::vector<failed_window> recent_;
    std::size_t total_ = 0;
};

// A plain text table: columns padded to their widest cell, header underlined.
std::string render_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows);

}  // namespace comeback
