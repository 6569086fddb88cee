// A PostgreSQL connection held through libpq directly, and a statement run on it without
// blocking on an I/O thread (libpq's asynchronous API, the socket watched by Asio).
#pragma once

#include <libpq-fe.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <exception>
#include <functional>
#include <memory>
#include <string>

namespace headroom {

// libpqxx 6 does not expose its PGconn, and the asynchronous path needs one: the service's
// pooled connections are these. Errors are thrown as the libpqxx exceptions the rest of the
// service already maps (pqxx::broken_connection, pqxx::sql_error with its SQLSTATE).
class pg_connection {
 public:
  // Connects, blocking (the conninfo's connect_timeout bounds it); throws
  // pqxx::broken_connection with libpq's message.
  explicit pg_connection(const std::string& conninfo);
  ~pg_connection();
  pg_connection(const pg_connection&) = delete;
  pg_connection& operator=(const pg_connection&) = delete;

  PGconn* raw() const { return conn_; }
  int sock() const { return PQsocket(conn_); }
  bool is_open() const { return PQstatus(conn_) == CONNECTION_OK; }

  // Blocking PREPARE (when a connection is dialed, on a dial thread). Throws.
  void prepare(const char* name, const char* sql);
  // After this, sends never block: pg_statement flushes through the event loop.
  void make_nonblocking();

 private:
  PGconn* conn_;
};

using query_result = std::unique_ptr<PGresult, decltype(&PQclear)>;

// Throws what `r` (null: none came) says went wrong, as libpqxx would; returns if it holds rows
// or a command's success. `what` names the statement in the message.
void check_result(const pg_connection& c, const PGresult* r, const std::string& what);

// One statement on `conn`, run on the I/O thread of `io`: `send` starts it (a PQsendQuery*
// call), the socket is awaited with Asio, and PQconsumeInput/PQgetResult collect the answer.
// `done` is called once, on that thread: with the result, or with the exception the blocking
// path would have thrown (database_timeout when `limit` seconds pass without an answer: the
// client-side bound of query_watchdog, here a timer; the connection must then be released
// as broken). `limit` 0: no bound.
class pg_statement : public std::enable_shared_from_this<pg_statement> {
 public:
  using handler = std::function<void(query_result, std::exception_ptr)>;
  using send_fn = std::function<int(PGconn*)>;

  static void start(const boost::asio::any_io_executor& io, pg_connection& conn, double limit,
                    send_fn send, handler done);

  pg_statement(const boost::asio::any_io_executor& io, pg_connection& conn, double limit,
               handler done);
  ~pg_statement();

 private:
  void run(const send_fn& send);
  void do_flush();
  void on_writable(boost::system::error_code ec);
  void do_read();
  void on_readable(boost::system::error_code ec);
  void on_limit(boost::system::error_code ec);
  void fail_lost();
  void finish(std::exception_ptr error);

  pg_connection& conn_;
  // Watches libpq's socket without owning it: released before it is destroyed.
  boost::asio::posix::stream_descriptor socket_;
  boost::asio::steady_timer timer_;
  double limit_;
  bool finished_ = false;
  query_result result_{nullptr, &PQclear};
  handler done_;
};

}  // namespace headroom
