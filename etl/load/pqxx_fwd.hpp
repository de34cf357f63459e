#pragma once
// Names pqxx::connection and pqxx::transaction_base without including
// libpqxx, so headers that take them stay light. In libpqxx 6.4 `connection`
// is an alias of a class template, which a plain `class connection;` would
// contradict; repeating the alias for the same type is allowed.

namespace pqxx {
class connect_direct;
template <typename CONNECTPOLICY>
class basic_connection_base;
using connection = basic_connection_base<connect_direct>;
class transaction_base;
}  // namespace pqxx
