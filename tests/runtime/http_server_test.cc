#include "runtime/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kitty::runtime {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// A connected socket to 127.0.0.1:port (or -1); the caller closes it.
int Connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Everything `fd` receives until the peer closes or `timeout_s` passes without data
// (0: no limit).
std::string ReadUntilClosed(int fd, time_t timeout_s) {
  timeval tv{timeout_s, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string out;
  char buf[1024];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

// Sends `raw` to 127.0.0.1:port and returns everything the server answers until it closes.
std::string RoundTrip(int port, const std::string& raw) {
  const int fd = Connect(port);
  if (fd < 0) return "connect failed";
  size_t off = 0;
  while (off < raw.size()) {
    const ssize_t n = ::send(fd, raw.data() + off, raw.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  std::string out = ReadUntilClosed(fd, 0);
  ::close(fd);
  return out;
}

// A Kubernetes-style probe: GET /health, giving up after 2 s (well inside the 5 s deadline of
// the connections a test leaves idle).
std::string Probe(int port) {
  const int fd = Connect(port);
  const std::string req = "GET /health HTTP/1.1\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return "send failed";
  }
  std::string resp = ReadUntilClosed(fd, 2);
  ::close(fd);
  return resp;
}

std::string Get(int port, const std::string& path) {
  return RoundTrip(port, "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n");
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.Handle("/metrics", [] {
      return HttpServer::Response{200, "text/plain; version=0.0.4; charset=utf-8", "m 1\n"};
    });
    server_.Handle("/health", [this] {
      return ready_.load() ? HttpServer::Response{200, "text/plain", "ok\n"}
                           : HttpServer::Response{503, "text/plain", "not ready\n"};
    });
    ASSERT_OK(server_.Start("127.0.0.1", 0));
    ASSERT_GT(server_.port(), 0);
  }

  std::atomic<bool> ready_{false};
  HttpServer server_;
};

TEST_F(HttpServerTest, ServesRegisteredPathWithLengthAndContentType) {
  const std::string resp = Get(server_.port(), "/metrics");
  EXPECT_THAT(resp, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(resp, HasSubstr("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
  EXPECT_THAT(resp, HasSubstr("Content-Length: 4\r\n"));
  EXPECT_THAT(resp, HasSubstr("Connection: close\r\n"));
  EXPECT_THAT(resp, ::testing::EndsWith("\r\n\r\nm 1\n"));
}

TEST_F(HttpServerTest, HandlerDecidesStatus) {
  EXPECT_THAT(Get(server_.port(), "/health"), StartsWith("HTTP/1.1 503 Service Unavailable"));
  ready_ = true;
  EXPECT_THAT(Get(server_.port(), "/health"), StartsWith("HTTP/1.1 200 OK"));
}

TEST_F(HttpServerTest, IgnoresQueryString) {
  EXPECT_THAT(Get(server_.port(), "/metrics?name[]=x"), StartsWith("HTTP/1.1 200 OK"));
}

TEST_F(HttpServerTest, UnknownPathIs404) {
  EXPECT_THAT(Get(server_.port(), "/nope"), StartsWith("HTTP/1.1 404 Not Found"));
}

TEST_F(HttpServerTest, OtherMethodsAre405) {
  const std::string resp =
      RoundTrip(server_.port(), "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  EXPECT_THAT(resp, StartsWith("HTTP/1.1 405 Method Not Allowed"));
  EXPECT_THAT(resp, HasSubstr("Allow: GET, HEAD\r\n"));
}

TEST_F(HttpServerTest, HeadHasHeadersButNoBody) {
  const std::string resp = RoundTrip(server_.port(), "HEAD /metrics HTTP/1.1\r\n\r\n");
  EXPECT_THAT(resp, StartsWith("HTTP/1.1 200 OK"));
  EXPECT_THAT(resp, HasSubstr("Content-Length: 4\r\n"));
  EXPECT_THAT(resp, ::testing::EndsWith("\r\n\r\n"));
}

TEST_F(HttpServerTest, MalformedRequestIs400) {
  EXPECT_THAT(RoundTrip(server_.port(), "garbage\r\n\r\n"), StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(RoundTrip(server_.port(), "GET /metrics\r\n\r\n"), StartsWith("HTTP/1.1 400"));
  // Headers that never end: the connection closes (SHUT_WR) before the blank line.
  EXPECT_THAT(RoundTrip(server_.port(), "GET /metrics HTTP/1.1\r\nHost: x"),
              StartsWith("HTTP/1.1 400"));
}

TEST_F(HttpServerTest, OversizedHeadersAre431) {
  std::string raw = "GET /metrics HTTP/1.1\r\nX: " + std::string(20000, 'a');
  EXPECT_THAT(RoundTrip(server_.port(), raw), StartsWith("HTTP/1.1 431"));
}

TEST_F(HttpServerTest, ServesManyClientsInTurn) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        if (Get(server_.port(), "/metrics").rfind("HTTP/1.1 200 OK", 0) == 0) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 80);
}

// Kubernetes probes must not wait behind a client that connected and sends slowly or nothing
// (one such client held the old one-connection-at-a-time server for its whole 5 s timeout).
TEST_F(HttpServerTest, SilentAndSlowClientsDelayNobody) {
  std::vector<int> idle;
  for (int i = 0; i < 4; ++i) idle.push_back(Connect(server_.port()));
  ASSERT_EQ(::send(idle[1], "GET /hea", 8, MSG_NOSIGNAL), 8);  // never finishes its request
  const int slow = Connect(server_.port());
  ASSERT_EQ(::send(slow, "GET /met", 8, MSG_NOSIGNAL), 8);
  EXPECT_THAT(Probe(server_.port()), StartsWith("HTTP/1.1 503 Service Unavailable"));
  // The slow client still gets its answer when it finishes.
  const std::string rest = "rics HTTP/1.1\r\n\r\n";
  ASSERT_EQ(::send(slow, rest.data(), rest.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(rest.size()));
  EXPECT_THAT(ReadUntilClosed(slow, 2), StartsWith("HTTP/1.1 200 OK"));
  ::close(slow);
  // A client that never sends is dropped once its time is up (it reads the close, no data);
  // one that sent part of a request hears why.
  const time_t wait = static_cast<time_t>(HttpServer::kIoTimeout.count()) + 5;
  timeval tv{wait, 0};
  ::setsockopt(idle[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char byte;
  EXPECT_EQ(::recv(idle[0], &byte, 1, 0), 0);  // 0: closed by the server (-1: timed out)
  EXPECT_THAT(ReadUntilClosed(idle[1], wait), StartsWith("HTTP/1.1 408 Request Timeout"));
  for (int fd : idle) ::close(fd);
}

// More idle connections than the server keeps open: each new client replaces the oldest one
// still sending its request, so a probe is answered at once instead of waiting for a deadline.
TEST_F(HttpServerTest, IdleConnectionsBeyondTheLimitDoNotLockOutProbes) {
  std::vector<int> idle;
  for (size_t i = 0; i < HttpServer::kMaxConnections + 8; ++i) {
    idle.push_back(Connect(server_.port()));
  }
  EXPECT_THAT(Probe(server_.port()), StartsWith("HTTP/1.1 503 Service Unavailable"));
  for (int fd : idle) ::close(fd);
}

TEST_F(HttpServerTest, StopIsIdempotentAndRefusesNewConnections) {
  const int port = server_.port();
  server_.Stop();
  server_.Stop();
  EXPECT_EQ(Get(port, "/metrics"), "connect failed");
}

TEST(HttpServerStartTest, BusyPortIsUnavailable) {
  HttpServer a;
  ASSERT_OK(a.Start("127.0.0.1", 0));
  HttpServer b;
  absl::Status s = b.Start("127.0.0.1", a.port());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
}

}  // namespace
}  // namespace kitty::runtime
