// File: runtime/grpc_messages.h
// -----------------------------------------------------------------------------
// Request parsing and response serialization for the raw (ByteBuffer) gRPC methods of
// InferenceService. gRPC's callback API answers a request it cannot parse with UNIMPLEMENTED
// and no message, which sends a client looking for a missing method; the service therefore
// takes its requests as bytes and parses them here, so that a malformed request or a string
// field that is not UTF-8 (proto3 requires it; a C++ client can send anything) gets
// INVALID_ARGUMENT naming the message and the field.
#ifndef KITTY_RUNTIME_GRPC_MESSAGES_H_
#define KITTY_RUNTIME_GRPC_MESSAGES_H_

#include <google/protobuf/message.h>
#include <grpcpp/support/byte_buffer.h>

#include <string_view>

#include "absl/status/status.h"

namespace kitty::runtime {

// Parses `wire` into `message`. InvalidArgument on failure: "<full field path> is not valid
// UTF-8" when a string field (at any depth) holds invalid UTF-8, else a malformed-encoding
// message naming the message type.
absl::Status ParseRequestMessage(std::string_view wire, google::protobuf::Message* message);
absl::Status ParseRequestMessage(const grpc::ByteBuffer& buffer,
                                 google::protobuf::Message* message);

// Serializes `message` into `buffer` (one slice).
void SerializeResponse(const google::protobuf::Message& message, grpc::ByteBuffer* buffer);

}  // namespace kitty::runtime

#endif  // KITTY_RUNTIME_GRPC_MESSAGES_H_
