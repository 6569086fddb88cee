// The service's PostgreSQL connection through libpq (pg_connection.hpp), and the asynchronous
// statement: send, flush and read driven by the I/O thread's event loop.
#include "pg_connection.hpp"

#include <boost/asio/post.hpp>
#include <chrono>
#include <pqxx/except>

#include "pg_timeouts.hpp"

namespace headroom {

namespace net = boost::asio;

namespace {

// libpq's messages end with a newline; ours are one line.
std::string one_line(const char* message) {
  std::string s = message ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// What went wrong with a statement's answer, as the blocking path reports it: PostgreSQL's
// statement_timeout as database_timeout, anything else as check_result throws it; null if
// nothing did.
std::exception_ptr answer_error(const pg_connection& c, const PGresult* r) {
  try {
    check_result(c, r, "statement");
    return nullptr;
  } catch (const std::exception& e) {
    try {
      throw_if_statement_timeout(e);
    } catch (const database_timeout&) {
      return std::current_exception();
    }
    return std::current_exception();
  }
}

}  // namespace

pg_connection::pg_connection(const std::string& conninfo) : conn_(PQconnectdb(conninfo.c_str())) {
  if (!conn_) throw pqxx::broken_connection("out of memory opening a PostgreSQL connection");
  if (PQstatus(conn_) != CONNECTION_OK) {
    const std::string why = one_line(PQerrorMessage(conn_));
    PQfinish(conn_);
    throw pqxx::broken_connection(why);
  }
}

pg_connection::~pg_connection() { PQfinish(conn_); }

void pg_connection::prepare(const char* name, const char* sql) {
  const query_result r(PQprepare(conn_, name, sql, 0, nullptr), &PQclear);
  check_result(*this, r.get(), std::string("PREPARE ") + name);
}

void pg_connection::make_nonblocking() {
  if (PQsetnonblocking(conn_, 1) != 0)
    throw pqxx::broken_connection(one_line(PQerrorMessage(conn_)));
}

void check_result(const pg_connection& c, const PGresult* r, const std::string& what) {
  const ExecStatusType status = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) return;
  // No result, or an error on a connection that is gone: the connection failed, not the SQL.
  if (!r || !c.is_open())
    throw pqxx::broken_connection(one_line(r ? PQresultErrorMessage(r) : PQerrorMessage(c.raw())));
  throw pqxx::sql_error(one_line(PQresultErrorMessage(r)), what,
                        PQresultErrorField(r, PG_DIAG_SQLSTATE));
}

void pg_statement::start(const net::any_io_executor& io, pg_connection& conn, double limit,
                         send_fn send, handler done) {
  std::make_shared<pg_statement>(io, conn, limit, std::move(done))->run(send);
}

pg_statement::pg_statement(const net::any_io_executor& io, pg_connection& conn, double limit,
                           handler done)
    : conn_(conn), socket_(io), timer_(io), limit_(limit), done_(std::move(done)) {}

pg_statement::~pg_statement() {
  // libpq owns the socket: never let Asio close it.
  socket_.release();
}

void pg_statement::run(const send_fn& send) {
  if (!send(conn_.raw())) return fail_lost();
  boost::system::error_code ec;
  socket_.assign(conn_.sock(), ec);
  if (ec)
    return finish(std::make_exception_ptr(pqxx::broken_connection(
        "cannot watch the PostgreSQL connection's socket: " + ec.message())));
  if (limit_ > 0) {
    timer_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(limit_)));
    timer_.async_wait(
        [self = shared_from_this()](boost::system::error_code e) { self->on_limit(e); });
  }
  do_flush();
}

// A statement is a few hundred bytes, so the first flush nearly always sends it all; a full
// socket buffer (1: data left) waits for room instead of blocking the thread. (libpq's manual
// also reads input meanwhile, for a server that answers before it has read a long statement;
// ours are too short for that.)
void pg_statement::do_flush() {
  const int left = PQflush(conn_.raw());
  if (left < 0) return fail_lost();
  if (left == 0) return do_read();
  socket_.async_wait(
      net::posix::stream_descriptor::wait_write,
      [self = shared_from_this()](boost::system::error_code ec) { self->on_writable(ec); });
}

// A wait that ends after the statement finished (cancelled by the time limit) must not touch
// the connection: the caller may have closed it already.
void pg_statement::on_writable(boost::system::error_code ec) {
  if (finished_) return;
  if (ec) return fail_lost();
  do_flush();
}

void pg_statement::do_read() {
  socket_.async_wait(
      net::posix::stream_descriptor::wait_read,
      [self = shared_from_this()](boost::system::error_code ec) { self->on_readable(ec); });
}

void pg_statement::on_readable(boost::system::error_code ec) {
  if (finished_) return;  // as on_writable
  if (ec) return fail_lost();
  if (!PQconsumeInput(conn_.raw())) return fail_lost();
  // Every result of the statement, up to the null that ends them; the first is the answer
  // (an error result also comes first).
  while (!PQisBusy(conn_.raw())) {
    PGresult* r = PQgetResult(conn_.raw());
    if (!r) return finish(answer_error(conn_, result_.get()));
    if (!result_)
      result_.reset(r);
    else
      PQclear(r);
  }
  do_read();  // more of the answer is on its way
}

// The bound passed: PostgreSQL's own statement_timeout, a second earlier, did not end the
// statement, so the backend is stopped or overwhelmed. Stop waiting; the caller closes the
// connection, which the backend cannot answer on any more.
void pg_statement::on_limit(boost::system::error_code ec) {
  if (ec) return;
  finish(std::make_exception_ptr(unanswered(limit_)));
}

// libpq says the connection failed, or the wait on its socket did.
void pg_statement::fail_lost() {
  finish(std::make_exception_ptr(pqxx::broken_connection(one_line(PQerrorMessage(conn_.raw())))));
}

// Once only: whichever of the answer, a failure and the time limit comes first.
void pg_statement::finish(std::exception_ptr error) {
  if (finished_) return;
  finished_ = true;
  timer_.cancel();
  // Pending waits end with operation_aborted and find the statement finished.
  boost::system::error_code ec;
  socket_.cancel(ec);
  socket_.release();
  handler done = std::move(done_);
  done(error ? query_result(nullptr, &PQclear) : std::move(result_), error);
}

}  // namespace headroom
