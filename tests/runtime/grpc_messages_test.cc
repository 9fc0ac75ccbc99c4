// Tests of runtime/grpc_messages: requests parsed from raw bytes get INVALID_ARGUMENT naming the
// field (invalid UTF-8 at any depth) or the message (a malformed encoding); responses round-trip.
#include "runtime/grpc_messages.h"

#include <grpcpp/support/slice.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kitty/v1/inference.pb.h"

namespace kitty::runtime {
namespace {

using ::testing::HasSubstr;

// Field `number` as a length-delimited record with `bytes` (< 128 of them).
std::string Delimited(int number, const std::string& bytes) {
  return std::string(1, static_cast<char>((number << 3) | 2)) +
         std::string(1, static_cast<char>(bytes.size())) + bytes;
}

TEST(GrpcMessagesTest, ParsesAValidRequest) {
  kitty::v1::GenerateRequest want;
  want.set_prompt("Once upon a time \xe2\x86\x92");
  want.set_request_id("r1");
  want.mutable_sampling_params()->set_max_tokens(7);
  want.mutable_sampling_params()->add_stop("\xc3\xa9t\xc3\xa9");
  kitty::v1::GenerateRequest got;
  ASSERT_TRUE(ParseRequestMessage(want.SerializeAsString(), &got).ok());
  EXPECT_EQ(got.SerializeAsString(), want.SerializeAsString());
}

TEST(GrpcMessagesTest, NamesATopLevelStringThatIsNotUtf8) {
  kitty::v1::GenerateRequest msg;
  const absl::Status s = ParseRequestMessage(Delimited(2, "ab\xff"), &msg);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("kitty.v1.GenerateRequest.prompt is not valid UTF-8"));
  // a surrogate half (ED A0 80) and an overlong form (C0 AF) are not UTF-8 either
  for (const char* bad : {"\xed\xa0\x80", "\xc0\xaf"}) {
    EXPECT_THAT(ParseRequestMessage(Delimited(1, bad), &msg).message(),
                HasSubstr("kitty.v1.GenerateRequest.request_id is not valid UTF-8"));
  }
}

TEST(GrpcMessagesTest, NamesANestedRepeatedString) {
  kitty::v1::SamplingParams params;
  params.set_max_tokens(4);
  params.add_stop("fine");
  const std::string nested = params.SerializeAsString() + Delimited(7, "\xe2\x82");  // cut short
  kitty::v1::GenerateRequest msg;
  const absl::Status s = ParseRequestMessage(Delimited(2, "hi") + Delimited(4, nested), &msg);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(),
              HasSubstr("kitty.v1.GenerateRequest.sampling_params.stop is not valid UTF-8"));
}

TEST(GrpcMessagesTest, NamesTheMessageOfAMalformedEncoding) {
  kitty::v1::TokenizeRequest msg;
  // a length of 16 with 2 bytes left; a field number 0
  for (const std::string& bad : {std::string("\x0a\x10"
                                             "ab"),
                                 std::string("\x02\x01x", 3)}) {
    const absl::Status s = ParseRequestMessage(bad, &msg);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("not a valid kitty.v1.TokenizeRequest"));
  }
}

TEST(GrpcMessagesTest, ByteBufferRoundTrip) {
  kitty::v1::GenerateResponse response;
  response.set_request_id("r2");
  auto* out = response.add_outputs();
  out->set_text("delta");
  out->add_token_ids(42);
  grpc::ByteBuffer buffer;
  SerializeResponse(response, &buffer);
  kitty::v1::GenerateResponse back;
  ASSERT_TRUE(ParseRequestMessage(buffer, &back).ok());
  EXPECT_EQ(back.SerializeAsString(), response.SerializeAsString());

  // a body in several slices, as gRPC delivers larger messages
  kitty::v1::GenerateRequest request;
  request.set_prompt(std::string(3000, 'a') + "\xe2\x86\x92");
  request.mutable_sampling_params()->add_stop("end");
  const std::string wire = request.SerializeAsString();
  grpc::Slice parts[3] = {grpc::Slice(wire.substr(0, 7)), grpc::Slice(wire.substr(7, 1500)),
                          grpc::Slice(wire.substr(1507))};
  kitty::v1::GenerateRequest joined;
  ASSERT_TRUE(ParseRequestMessage(grpc::ByteBuffer(parts, 3), &joined).ok());
  EXPECT_EQ(joined.SerializeAsString(), wire);

  kitty::v1::GetModelInfoRequest empty;  // an empty body is a valid (empty) message
  EXPECT_TRUE(ParseRequestMessage(grpc::ByteBuffer(), &empty).ok());
}

}  // namespace
}  // namespace kitty::runtime
