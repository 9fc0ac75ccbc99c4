// File: runtime/http_server.h
// -----------------------------------------------------------------------------
// A minimal HTTP/1.1 server for kitty-serve's `/metrics` and `/health`: GET and HEAD on exact
// paths (the query string is ignored), one response per connection (`Connection: close`), one
// thread that polls every connection without blocking on any, so a client that sends slowly or
// not at all delays nobody else; each connection gets kIoTimeout in all (request and response;
// one that sent part of a request then gets 408), and at most kMaxConnections are open at once
// (a new one replaces the oldest still sending its request). Enough for
// Prometheus scrapes and Kubernetes probes; not a general web server (no keep-alive, no chunked
// bodies, no TLS).
//
// Why our own (DESIGN.md §8)? prometheus-cpp's exposer is not packaged in Debian 12 and the two
// endpoints need a few dozen lines of sockets, not a web framework.
//
// Thread safety: Handle() before Start(); Start() and Stop() from one controlling thread.
// Handlers run on the server thread, one at a time; they must not block for long (a slow
// handler delays every other connection).
#ifndef KITTY_RUNTIME_HTTP_SERVER_H_
#define KITTY_RUNTIME_HTTP_SERVER_H_

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "absl/status/status.h"

namespace kitty::runtime {

class HttpServer {
 public:
  struct Response {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
  };
  using Handler = std::function<Response()>;
  static constexpr std::chrono::seconds kIoTimeout{5};
  static constexpr size_t kMaxConnections = 64;

  HttpServer() = default;
  ~HttpServer();  // Stop()s
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // REQUIRES: before Start().
  void Handle(const std::string& path, Handler handler);

  // Binds `host:port` ("0.0.0.0", "::", "127.0.0.1", a name; port 0 picks a free port) and
  // starts the thread. Unavailable when the address cannot be bound.
  absl::Status Start(const std::string& host, int port);
  // The bound port (after a successful Start()).
  int port() const { return port_; }
  // Stops accepting, finishes the request in progress and joins the thread. Idempotent.
  void Stop();

 private:
  void Loop();
  // The whole response (status line, headers, body) to the bytes a client sent; `complete` says
  // whether they hold the end of the headers (else the client stopped early or sent too much).
  std::string Respond(const std::string& request, bool complete) const;

  std::map<std::string, Handler> handlers_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: written by Stop() to leave poll()
  int port_ = 0;
  std::thread thread_;
};

// "HTTP/1.1 200 OK"-style reason phrase for the codes the server uses.
const char* HttpReasonPhrase(int status);

}  // namespace kitty::runtime

#endif  // KITTY_RUNTIME_HTTP_SERVER_H_
