#pragma once
// End-of-work summaries for operators: what ran, what failed and why.

#include "sync/run_state.hpp"

#include <ostream>

namespace comeback {

// Windows committed and failed, rows, and each failure (customer, window, error).
void print_totals(const run_totals& totals, std::ostream& out);

// A plain text table: columns padded to their widest cell, header underlined.
std::string render_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows);

}  // namespace comeback
