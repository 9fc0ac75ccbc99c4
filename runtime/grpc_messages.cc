#include "runtime/grpc_messages.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/unknown_field_set.h>
#include <grpcpp/support/slice.h>

#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "models/tokenizer.h"

namespace kitty::runtime {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::UnknownField;
using google::protobuf::UnknownFieldSet;

// The path (from the top message) of the first string field in `wire` whose bytes are not
// valid UTF-8, descending into message fields; nullopt if none (or if `wire` does not parse
// even without a schema).
std::optional<std::string> FindInvalidUtf8(std::string_view wire, const Descriptor& type,
                                           const std::string& prefix) {
  UnknownFieldSet fields;
  if (wire.size() > static_cast<size_t>(std::numeric_limits<int>::max()) ||
      !fields.ParseFromArray(wire.data(), static_cast<int>(wire.size()))) {
    return std::nullopt;
  }
  for (int i = 0; i < fields.field_count(); ++i) {
    const UnknownField& f = fields.field(i);
    if (f.type() != UnknownField::TYPE_LENGTH_DELIMITED) continue;
    const FieldDescriptor* fd = type.FindFieldByNumber(f.number());
    if (fd == nullptr) continue;
    const std::string path = absl::StrCat(prefix, ".", fd->name());
    if (fd->type() == FieldDescriptor::TYPE_STRING && !models::IsValidUtf8(f.length_delimited())) {
      return path;
    }
    if (fd->type() == FieldDescriptor::TYPE_MESSAGE) {
      if (std::optional<std::string> inner =
              FindInvalidUtf8(f.length_delimited(), *fd->message_type(), path)) {
        return inner;
      }
    }
  }
  return std::nullopt;
}

}  // namespace

absl::Status ParseRequestMessage(std::string_view wire, google::protobuf::Message* message) {
  const Descriptor& type = *message->GetDescriptor();
  // Strings first, by our own check: protobuf's parser would also refuse them, but it writes an
  // error line to stderr for each (outside the server's log format), which any client could
  // repeat at will.
  if (std::optional<std::string> field = FindInvalidUtf8(wire, type, type.full_name())) {
    message->Clear();
    return absl::InvalidArgumentError(
        absl::StrCat(*field, " is not valid UTF-8 (protobuf string fields must be)"));
  }
  if (wire.size() <= static_cast<size_t>(std::numeric_limits<int>::max()) &&
      message->ParseFromArray(wire.data(), static_cast<int>(wire.size()))) {
    return absl::OkStatus();
  }
  message->Clear();
  return absl::InvalidArgumentError(absl::StrCat("the request is not a valid ", type.full_name(),
                                                 " (malformed protobuf encoding, ", wire.size(),
                                                 " bytes)"));
}

absl::Status ParseRequestMessage(const grpc::ByteBuffer& buffer,
                                 google::protobuf::Message* message) {
  std::vector<grpc::Slice> slices;
  std::string wire;
  if (buffer.Valid()) {
    if (!buffer.Dump(&slices).ok()) {
      return absl::InvalidArgumentError("the request body could not be read");
    }
    for (const grpc::Slice& s : slices) {
      wire.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  return ParseRequestMessage(wire, message);
}

void SerializeResponse(const google::protobuf::Message& message, grpc::ByteBuffer* buffer) {
  grpc::Slice slice(message.SerializeAsString());
  *buffer = grpc::ByteBuffer(&slice, 1);
}

}  // namespace kitty::runtime
