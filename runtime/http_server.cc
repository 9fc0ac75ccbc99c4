#include "runtime/http_server.h"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace kitty::runtime {
namespace {

constexpr size_t kMaxHeaderBytes = 16 * 1024;

}  // namespace

const char* HttpReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Handle(const std::string& path, Handler handler) {
  handlers_[path] = std::move(handler);
}

absl::Status HttpServer::Start(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port_str = std::to_string(port);
  const int gai =
      ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port_str.c_str(), &hints, &res);
  if (gai != 0) {
    return absl::UnavailableError(
        absl::StrCat("http: cannot resolve \"", host, "\": ", gai_strerror(gai)));
  }
  std::string last_error = "no address";
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    const int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, 64) != 0) {
      last_error = std::strerror(errno);
      ::close(fd);
      continue;
    }
    listen_fd_ = fd;
    break;
  }
  ::freeaddrinfo(res);
  if (listen_fd_ < 0) {
    return absl::UnavailableError(
        absl::StrCat("http: cannot listen on ", host, ":", port, ": ", last_error));
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                     : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
    return absl::InternalError(absl::StrCat("http: eventfd: ", std::strerror(errno)));
  }
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void HttpServer::Stop() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof(one));
    thread_.join();
  }
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  listen_fd_ = wake_fd_ = -1;
}

namespace {

// One client connection of the poll loop.
struct Connection {
  int fd = -1;
  std::string in;       // request bytes so far
  std::string out;      // the response, once decided
  size_t out_sent = 0;  // bytes of `out` written
  bool answered = false;
  std::chrono::steady_clock::time_point deadline;
};

// End of the request headers in `in`, or npos.
size_t HeaderEnd(const std::string& in) {
  const size_t crlf = in.find("\r\n\r\n");
  return crlf != std::string::npos ? crlf : in.find("\n\n");
}

}  // namespace

void HttpServer::Loop() {
  using Clock = std::chrono::steady_clock;
  std::vector<Connection> conns;
  Clock::time_point accept_paused_until;  // after EMFILE and the like: poll the listener later
  auto close_conn = [](Connection& c) {
    ::close(c.fd);
    c.fd = -1;
  };
  auto answer = [this](Connection& c, bool complete) {
    c.out = Respond(c.in, complete);
    c.answered = true;
  };
  while (true) {
    const Clock::time_point before = Clock::now();
    std::vector<pollfd> fds = {{wake_fd_, POLLIN, 0}};
    // The listener is polled even at the connection limit: a new client then replaces the
    // oldest one still sending its request, so idle connections cannot lock out the probes.
    const bool accepting = before >= accept_paused_until;
    if (accepting) fds.push_back({listen_fd_, POLLIN, 0});
    const size_t first_conn = fds.size();
    Clock::time_point wake_at = accepting ? Clock::time_point::max() : accept_paused_until;
    for (const Connection& c : conns) {
      fds.push_back({c.fd, static_cast<short>(c.answered ? POLLOUT : POLLIN), 0});
      wake_at = std::min(wake_at, c.deadline);
    }
    int timeout_ms = -1;
    if (wake_at != Clock::time_point::max()) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(wake_at - before);
      timeout_ms = static_cast<int>(std::max<int64_t>(0, left.count()));
    }
    const int n = ::poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) break;
    if (n > 0 && fds[0].revents != 0) break;  // Stop()

    for (size_t i = 0; n > 0 && i < conns.size(); ++i) {
      Connection& c = conns[i];
      const short ev = fds[first_conn + i].revents;
      if (ev == 0) continue;
      if (!c.answered) {
        char buf[4096];
        bool eof = false;
        while (true) {
          const ssize_t got = ::recv(c.fd, buf, sizeof(buf), MSG_DONTWAIT);
          if (got > 0) {
            c.in.append(buf, static_cast<size_t>(got));
            if (c.in.size() > kMaxHeaderBytes) break;
            continue;
          }
          if (got < 0 && errno == EINTR) continue;
          eof = got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
          break;
        }
        if (HeaderEnd(c.in) != std::string::npos) {
          answer(c, true);
        } else if (c.in.size() > kMaxHeaderBytes || eof) {
          if (c.in.empty()) {  // the peer went away without a request
            close_conn(c);
            continue;
          }
          answer(c, false);
        }
      }
      if (c.answered) {  // just answered (the socket is most likely writable), or POLLOUT
        bool failed = (ev & (POLLERR | POLLNVAL)) != 0;
        while (!failed && c.out_sent < c.out.size()) {
          const ssize_t put = ::send(c.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent,
                                     MSG_NOSIGNAL | MSG_DONTWAIT);
          if (put > 0) {
            c.out_sent += static_cast<size_t>(put);
          } else if (put < 0 && errno == EINTR) {
            continue;
          } else {
            // EAGAIN: wait for POLLOUT; anything else (EPIPE, ECONNRESET): the peer is gone.
            failed = !(put < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
            break;
          }
        }
        // POLLHUP without POLLOUT: the peer closed both ways, nothing more can be written.
        if (c.out_sent < c.out.size() && (ev & (POLLHUP | POLLOUT)) == POLLHUP) failed = true;
        if (c.out_sent == c.out.size() || failed) {
          ::shutdown(c.fd, SHUT_WR);
          close_conn(c);
        }
      }
    }
    const Clock::time_point now = Clock::now();
    for (Connection& c : conns) {
      if (c.fd < 0 || now < c.deadline) continue;
      // Too slow in all. One that sent part of a request hears why (best effort).
      if (!c.answered && !c.in.empty()) {
        const std::string timeout =
            "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        (void)!::send(c.fd, timeout.data(), timeout.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      }
      close_conn(c);
    }
    std::erase_if(conns, [](const Connection& c) { return c.fd < 0; });

    if (accepting && n > 0 && (fds[1].revents & POLLIN) != 0) {
      while (true) {
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
          if (errno == EINTR || errno == ECONNABORTED) continue;
          // Out of descriptors or memory: the listener stays readable, so leave it for a while
          // instead of spinning on it.
          if (errno != EAGAIN && errno != EWOULDBLOCK) {
            accept_paused_until = Clock::now() + std::chrono::milliseconds(100);
          }
          break;
        }
        if (conns.size() >= kMaxConnections) {
          // At the limit: drop the oldest connection still waiting for its request (answered
          // ones finish on their own); if every one is answered, the new one waits its turn.
          auto oldest = std::find_if(conns.begin(), conns.end(),
                                     [](const Connection& c) { return !c.answered; });
          if (oldest == conns.end()) {
            ::close(fd);
            break;
          }
          ::close(oldest->fd);
          conns.erase(oldest);
        }
        conns.push_back(Connection{fd, {}, {}, 0, false, Clock::now() + kIoTimeout});
      }
    }
  }
  for (Connection& c : conns) close_conn(c);
}

std::string HttpServer::Respond(const std::string& request, bool complete) const {
  Response resp;
  std::string method;
  if (!complete) {
    resp.status = request.size() > kMaxHeaderBytes ? 431 : 400;
    resp.body = "malformed request\n";
  } else {
    const std::string line = request.substr(0, request.find_first_of("\r\n"));
    std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (parts.size() != 3 || parts[2].rfind("HTTP/1.", 0) != 0) {
      resp.status = 400;
      resp.body = "malformed request line\n";
    } else {
      method = parts[0];
      std::string path = parts[1].substr(0, parts[1].find('?'));
      auto it = handlers_.find(path);
      if (method != "GET" && method != "HEAD") {
        resp.status = 405;
        resp.body = "only GET and HEAD\n";
      } else if (it == handlers_.end()) {
        resp.status = 404;
        resp.body = absl::StrCat("no handler for ", path, "\n");
      } else {
        resp = it->second();
      }
    }
  }
  std::string out =
      absl::StrCat("HTTP/1.1 ", resp.status, " ", HttpReasonPhrase(resp.status),
                   "\r\nContent-Type: ", resp.content_type,
                   "\r\nContent-Length: ", resp.body.size(), "\r\nConnection: close\r\n");
  if (resp.status == 405) out += "Allow: GET, HEAD\r\n";
  out += "\r\n";
  if (method != "HEAD") out += resp.body;
  return out;
}

}  // namespace kitty::runtime
