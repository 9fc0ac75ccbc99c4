// Tests of runtime/grpc_service's request handling that need no model: the real service on a
// loopback port, called through gRPC's generic stub with raw bytes, as a client in any
// language could. Bytes that do not parse as the request are INVALID_ARGUMENT naming the field
// or the message (gRPC's typed callback API answered them UNIMPLEMENTED with no message); valid
// ones reach the service, which has no engine yet: UNAVAILABLE.
#include "runtime/grpc_service.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kitty/v1/inference.pb.h"

namespace kitty::runtime {
namespace {

using ::testing::HasSubstr;

class GrpcServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
    stub_ = std::make_unique<grpc::GenericStub>(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  // One call of kitty.v1.Inference/`method` with `bytes` as the request message. Generate is
  // server-streaming; a unary call suits it here, as every case ends before any response.
  grpc::Status Call(const std::string& method, const std::string& bytes) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Slice slice(bytes);
    const grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    std::promise<grpc::Status> done;
    stub_->UnaryCall(&context, "/kitty.v1.Inference/" + method, grpc::StubOptions(), &request,
                     &response, [&done](grpc::Status s) { done.set_value(std::move(s)); });
    return done.get_future().get();
  }

  InferenceService service_{InferenceServiceOptions{"test-model", 4}};
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<grpc::GenericStub> stub_;
};

TEST_F(GrpcServiceTest, UnparsableRequestsAreInvalidArgumentNamingTheFieldOrMessage) {
  struct Case {
    std::string method, bytes, message;
  };
  const Case cases[] = {
      {"Generate",
       std::string("\x12\x03"
                   "ab\xff",
                   5),
       "kitty.v1.GenerateRequest.prompt is not valid UTF-8"},
      {"Generate",
       std::string("\x12\x10"
                   "ab",
                   4),
       "not a valid kitty.v1.GenerateRequest"},
      {"Tokenize", std::string("\x0a\x02\xc0\xaf", 4),
       "kitty.v1.TokenizeRequest.text is not valid UTF-8"},
      {"GetModelInfo",
       std::string("\x0a\x05"
                   "ab",
                   4),
       "not a valid kitty.v1.GetModelInfoRequest"},
  };
  for (const Case& c : cases) {
    const grpc::Status s = Call(c.method, c.bytes);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << c.method << ": " << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(c.message)) << c.method;
  }
}

TEST_F(GrpcServiceTest, ValidRequestsReachTheServiceBeforeTheModelLoads) {
  kitty::v1::GenerateRequest generate;
  generate.set_prompt("Once upon a time");
  kitty::v1::TokenizeRequest tokenize;
  tokenize.set_text("hello");
  for (const auto& [method, bytes] :
       {std::pair<std::string, std::string>{"Generate", generate.SerializeAsString()},
        {"Tokenize", tokenize.SerializeAsString()},
        {"GetModelInfo", std::string()}}) {
    const grpc::Status s = Call(method, bytes);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << method << ": " << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr("the model is loading")) << method;
  }
}

}  // namespace
}  // namespace kitty::runtime
