#pragma once
// The exit codes scripts and operators rely on.

namespace comeback {

enum exit_code : int {
    exit_ok = 0,              // everything asked for was done
    exit_windows_failed = 1,  // the work ran but some windows failed (the summary says which)
    exit_usage = 2,           // usage or configuration error
};

}  // namespace comeback
