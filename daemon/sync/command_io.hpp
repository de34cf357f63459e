#pragma once
// The io_context of a command (run, backfill), which owns it beside the
// objects its coroutines use: the shutdown switch, the database workers, the
// client. A suspended coroutine's frame is owned by the io_context until it
// resumes, and destroying the frame runs destructors that touch those objects
// (a sleep unregisters from the shutdown switch, a session goes back to the
// pool). ~io_context destroys the frames only after every later member is
// gone, which is too late; so the command's destructor calls
// drop_pending_work() first, and the frames go while everything they refer to
// still exists, however the command was left (an exception out of run()
// included).

#include <boost/asio/io_context.hpp>

namespace comeback {

class command_io_context : public boost::asio::io_context {
public:
    // One thread runs it: concurrency hint 1.
    command_io_context() : boost::asio::io_context(1) {}

    // Destroys every queued handler and every suspended coroutine frame now,
    // without running them. The context is unusable afterwards, except for
    // destroying the I/O objects still bound to it. Idempotent.
    void drop_pending_work() { shutdown(); }
};

}  // namespace comeback
