// A trivial HTTP/1.1 keep-alive endpoint for bench/load_vs_wrk: answers every request "200 ok"
// as cheaply as Asio allows, so the benchmark measures the load generators, not the server.
// Usage: load_trivial_server [threads]; prints "listening on http://127.0.0.1:PORT".
#include <boost/asio.hpp>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr std::string_view response =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";

class session : public std::enable_shared_from_this<session> {
 public:
  explicit session(tcp::socket s) : socket_(std::move(s)) {}
  void do_read() {
    socket_.async_read_some(asio::buffer(in_.data() + used_, in_.size() - used_),
                            [self = shared_from_this()](boost::system::error_code ec,
                                                        std::size_t n) { self->on_read(ec, n); });
  }

 private:
  // Requests without a body: one response per "\r\n\r\n" (pipelined requests included).
  void on_read(boost::system::error_code ec, std::size_t n) {
    if (ec) return;
    used_ += n;
    std::string_view data(in_.data(), used_);
    std::size_t start = 0, count = 0;
    for (auto end = data.find("\r\n\r\n"); end != std::string_view::npos;
         end = data.find("\r\n\r\n", start)) {
      ++count;
      start = end + 4;
    }
    std::copy(in_.begin() + static_cast<long>(start), in_.begin() + static_cast<long>(used_),
              in_.begin());
    used_ -= start;
    if (used_ == in_.size()) return;  // a header larger than the buffer: not for this bench
    if (count == 0) return do_read();
    out_.clear();
    for (std::size_t i = 0; i < count; ++i) out_.append(response);
    asio::async_write(socket_, asio::buffer(out_),
                      [self = shared_from_this()](boost::system::error_code ec2, std::size_t) {
                        if (!ec2) self->do_read();
                      });
  }

  tcp::socket socket_;
  std::array<char, 8192> in_{};
  std::size_t used_ = 0;
  std::string out_;
};

void do_accept(tcp::acceptor& acceptor) {
  acceptor.async_accept([&acceptor](boost::system::error_code ec, tcp::socket socket) {
    if (!ec) {
      socket.set_option(tcp::no_delay(true));
      std::make_shared<session>(std::move(socket))->do_read();
    }
    do_accept(acceptor);
  });
}

}  // namespace

int main(int argc, char** argv) {
  int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  if (threads < 1) threads = 1;
  asio::io_context io(threads);
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  std::printf("listening on http://127.0.0.1:%u\n", acceptor.local_endpoint().port());
  std::fflush(stdout);
  do_accept(acceptor);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code, int) { io.stop(); });
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back([&] { io.run(); });
  io.run();
  for (auto& t : pool) t.join();
}
