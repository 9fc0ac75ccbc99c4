#include "models/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/strings.h"
#include "nlohmann/json.hpp"

namespace kitty::models {
namespace {

using json = nlohmann::json;

struct Family {
  std::string_view architecture;
  std::string_view model_type;
};
constexpr std::array<Family, 4> kFamilies = {{
    {"LlamaForCausalLM", "llama"},
    {"Qwen2ForCausalLM", "qwen2"},
    {"Qwen3ForCausalLM", "qwen3"},
    {"MistralForCausalLM", "mistral"},
}};

constexpr size_t kMaxConfigBytes = 16 << 20;

constexpr char kSupportedArchitectures[] =
    "LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, MistralForCausalLM";
constexpr char kSupportedModelTypes[] = "llama, qwen2, qwen3, mistral";

template <typename... Args>
std::string Cat(const Args&... args) {
  return kitty::StrCat(args...);
}

absl::Status Error(absl::StatusCode code, std::string_view path, std::string_view message) {
  return absl::Status(code, Cat(path, ": ", message));
}

// Where and why `text` fails to parse, e.g. "parse error at line 3, column 1: syntax error
// while parsing object - unexpected end of input; expected string literal".
std::string JsonParseError(std::string_view text) {
  struct ErrorSax : nlohmann::json_sax<json> {
    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t) override { return true; }
    bool number_unsigned(number_unsigned_t) override { return true; }
    bool number_float(number_float_t, const string_t&) override { return true; }
    bool string(string_t&) override { return true; }
    bool binary(binary_t&) override { return true; }
    bool start_object(std::size_t) override { return true; }
    bool key(string_t&) override { return true; }
    bool end_object() override { return true; }
    bool start_array(std::size_t) override { return true; }
    bool end_array() override { return true; }
    bool parse_error(std::size_t, const std::string&,
                     const nlohmann::detail::exception& ex) override {
      message = ex.what();
      return false;
    }
    std::string message;
  };
  ErrorSax sax;
  json::sax_parse(text.begin(), text.end(), &sax);
  // Drop the "[json.exception.parse_error.101] " prefix.
  const size_t bracket = sax.message.find("] ");
  if (bracket != std::string::npos) sax.message.erase(0, bracket + 2);
  return sax.message.empty() ? "invalid JSON" : sax.message;
}

// A short one-line rendering of a JSON value for error messages.
std::string Show(const json& value) {
  std::string s = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

// The member `key` of `obj`, or nullptr when it is absent or null.
const json* FindMember(const json& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

// An int from an integer JSON number (or a float with an integral value, e.g. 8192.0).
std::optional<int> AsInt(const json& v) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int>::max())) return std::nullopt;
    return static_cast<int>(u);
  }
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (i < std::numeric_limits<int>::min() || i > std::numeric_limits<int>::max()) {
      return std::nullopt;
    }
    return static_cast<int>(i);
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!std::isfinite(d) || d != std::trunc(d) || std::fabs(d) > std::numeric_limits<int>::max()) {
      return std::nullopt;
    }
    return static_cast<int>(d);
  }
  return std::nullopt;
}

// Reads typed members of one JSON object; `prefix` qualifies key names in messages
// ("rope_parameters." for nested ones).
class ObjectReader {
 public:
  ObjectReader(const json& obj, std::string_view path, std::string prefix = "")
      : obj_(obj), path_(path), prefix_(std::move(prefix)) {}

  const json* Find(std::string_view key) const { return FindMember(obj_, key); }

  absl::Status Invalid(std::string_view key, std::string_view problem) const {
    return Error(absl::StatusCode::kInvalidArgument, path_,
                 Cat("\"", prefix_, key, "\" ", problem));
  }

  // A positive int: `fallback` when absent or null (a missing required key is an error).
  absl::StatusOr<int> PositiveInt(std::string_view key, std::optional<int> fallback) const {
    const json* v = Find(key);
    if (v == nullptr) {
      if (fallback.has_value()) return *fallback;
      return Invalid(key, "is missing");
    }
    std::optional<int> i = AsInt(*v);
    if (!i.has_value() || *i <= 0) {
      return Invalid(key, Cat("must be a positive integer (got ", Show(*v), ")"));
    }
    return *i;
  }

  // A non-negative int, or nullopt when absent or null.
  absl::StatusOr<std::optional<int>> OptionalTokenId(std::string_view key) const {
    const json* v = Find(key);
    if (v == nullptr) return std::optional<int>();
    std::optional<int> i = AsInt(*v);
    if (!i.has_value() || *i < 0) {
      return Invalid(key, Cat("must be a non-negative integer (got ", Show(*v), ")"));
    }
    return i;
  }

  absl::StatusOr<double> PositiveDouble(std::string_view key,
                                        std::optional<double> fallback) const {
    const json* v = Find(key);
    if (v == nullptr) {
      if (fallback.has_value()) return *fallback;
      return Invalid(key, "is missing");
    }
    if (!v->is_number() || !std::isfinite(v->get<double>()) || v->get<double>() <= 0) {
      return Invalid(key, Cat("must be a positive number (got ", Show(*v), ")"));
    }
    return v->get<double>();
  }

  absl::StatusOr<bool> Bool(std::string_view key, bool fallback) const {
    const json* v = Find(key);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) {
      return Invalid(key, Cat("must be true or false (got ", Show(*v), ")"));
    }
    return v->get<bool>();
  }

  // A string, or nullopt when absent or null.
  absl::StatusOr<std::optional<std::string>> OptionalString(std::string_view key) const {
    const json* v = Find(key);
    if (v == nullptr) return std::optional<std::string>();
    if (!v->is_string()) {
      return Invalid(key, Cat("must be a string (got ", Show(*v), ")"));
    }
    return std::optional<std::string>(v->get<std::string>());
  }

 private:
  const json& obj_;
  std::string_view path_;
  std::string prefix_;
};

// Fills architecture and model_type from "architectures" (first entry) and "model_type".
absl::Status ParseArchitecture(const ObjectReader& r, std::string_view path, ModelConfig& c) {
  std::optional<std::string> architecture;
  if (const json* archs = r.Find("architectures"); archs != nullptr) {
    if (!archs->is_array() || archs->empty() || !(*archs)[0].is_string()) {
      return r.Invalid("architectures",
                       Cat("must be a non-empty list of strings (got ", Show(*archs), ")"));
    }
    architecture = (*archs)[0].get<std::string>();
  }
  ASSIGN_OR_RETURN(std::optional<std::string> model_type, r.OptionalString("model_type"));

  const Family* family = nullptr;
  if (architecture.has_value()) {
    for (const Family& f : kFamilies) {
      if (f.architecture == *architecture) family = &f;
    }
    if (family == nullptr) {
      return Error(absl::StatusCode::kInvalidArgument, path,
                   Cat("unsupported architecture \"", *architecture,
                       "\" (supported: ", kSupportedArchitectures, ")"));
    }
    if (model_type.has_value() && *model_type != family->model_type) {
      return Error(absl::StatusCode::kInvalidArgument, path,
                   Cat("\"model_type\" \"", *model_type, "\" does not match architecture \"",
                       *architecture, "\" (expected \"", family->model_type, "\")"));
    }
  } else if (model_type.has_value()) {
    for (const Family& f : kFamilies) {
      if (f.model_type == *model_type) family = &f;
    }
    if (family == nullptr) {
      return Error(absl::StatusCode::kInvalidArgument, path,
                   Cat("unsupported architecture: model_type \"", *model_type,
                       "\" (supported: ", kSupportedModelTypes, ")"));
    }
  } else {
    return Error(absl::StatusCode::kInvalidArgument, path,
                 "neither \"architectures\" nor \"model_type\" is given");
  }
  c.architecture = std::string(family->architecture);
  c.model_type = std::string(family->model_type);
  return absl::OkStatus();
}

// RoPE: transformers 5 writes "rope_parameters" {rope_type, rope_theta, factor, ...};
// transformers 4 writes "rope_theta" plus "rope_scaling" {rope_type or type, factor, ...}.
absl::Status ParseRope(const ObjectReader& r, std::string_view path, ModelConfig& c) {
  std::string key;  // which of the two spellings holds the scaling parameters
  const json* params = nullptr;
  for (std::string_view k : {"rope_parameters", "rope_scaling"}) {
    if (const json* v = r.Find(k); v != nullptr) {
      if (!v->is_object()) {
        return r.Invalid(k, Cat("must be an object or null (got ", Show(*v), ")"));
      }
      key = std::string(k);
      params = v;
      break;
    }
  }
  ASSIGN_OR_RETURN(c.rope_theta, r.PositiveDouble("rope_theta", 10000.0));
  c.rope_scaling = RopeScaling();
  if (params == nullptr) return absl::OkStatus();

  ObjectReader p(*params, path, key + ".");
  if (p.Find("rope_theta") != nullptr) {
    ASSIGN_OR_RETURN(c.rope_theta, p.PositiveDouble("rope_theta", std::nullopt));
  }
  ASSIGN_OR_RETURN(std::optional<std::string> type, p.OptionalString("rope_type"));
  if (!type.has_value()) {
    ASSIGN_OR_RETURN(type, p.OptionalString("type"));
  }
  if (!type.has_value()) {
    // transformers 5 nests per-layer-type parameters ({"full_attention": {...}, ...}).
    for (const auto& [name, value] : params->items()) {
      if (value.is_object()) {
        return Error(absl::StatusCode::kUnimplemented, path,
                     Cat("per-layer-type \"", key, "\" (\"", name, "\") are not supported"));
      }
    }
    type = "default";
  }
  if (*type == "default") return absl::OkStatus();
  if (*type != "llama3") {
    return Error(
        absl::StatusCode::kUnimplemented, path,
        Cat("rope scaling type \"", *type, "\" is not supported (supported: default, llama3)"));
  }
  RopeScaling& s = c.rope_scaling;
  s.type = RopeScalingType::kLlama3;
  ASSIGN_OR_RETURN(s.factor, p.PositiveDouble("factor", std::nullopt));
  ASSIGN_OR_RETURN(s.low_freq_factor, p.PositiveDouble("low_freq_factor", std::nullopt));
  ASSIGN_OR_RETURN(s.high_freq_factor, p.PositiveDouble("high_freq_factor", std::nullopt));
  ASSIGN_OR_RETURN(s.original_max_position_embeddings,
                   p.PositiveInt("original_max_position_embeddings", std::nullopt));
  return absl::OkStatus();
}

absl::Status ParseDType(const ObjectReader& r, std::string_view path, ModelConfig& c) {
  c.dtype = kernels::DType::kBFloat16;
  for (std::string_view key : {"dtype", "torch_dtype"}) {
    ASSIGN_OR_RETURN(std::optional<std::string> name, r.OptionalString(key));
    if (!name.has_value()) continue;
    if (*name == "float32") {
      c.dtype = kernels::DType::kFloat32;
    } else if (*name == "float16") {
      c.dtype = kernels::DType::kFloat16;
    } else if (*name == "bfloat16") {
      c.dtype = kernels::DType::kBFloat16;
    } else {
      return Error(absl::StatusCode::kUnimplemented, path,
                   Cat("\"", key, "\" \"", *name,
                       "\" is not supported (supported: float32, float16, bfloat16)"));
    }
    break;
  }
  return absl::OkStatus();
}

absl::Status ParseTokenIds(const ObjectReader& r, ModelConfig& c) {
  ASSIGN_OR_RETURN(c.bos_token_id, r.OptionalTokenId("bos_token_id"));
  c.eos_token_ids.clear();
  const json* eos = r.Find("eos_token_id");
  if (eos == nullptr) return absl::OkStatus();
  if (!eos->is_array()) {
    ASSIGN_OR_RETURN(std::optional<int> id, r.OptionalTokenId("eos_token_id"));
    c.eos_token_ids.push_back(*id);
    return absl::OkStatus();
  }
  for (const json& v : *eos) {
    std::optional<int> id = AsInt(v);
    if (!id.has_value() || *id < 0) {
      return r.Invalid("eos_token_id", Cat("must be a non-negative integer or a list of "
                                           "them (got ",
                                           Show(*eos), ")"));
    }
    c.eos_token_ids.push_back(*id);
  }
  return absl::OkStatus();
}

// Features the forward pass does not implement: refuse rather than compute something else.
absl::Status CheckUnsupportedFeatures(const ObjectReader& r, std::string_view path) {
  if (r.Find("quantization_config") != nullptr) {
    return Error(absl::StatusCode::kUnimplemented, path,
                 "quantized checkpoints (\"quantization_config\") are not supported");
  }
  for (std::string_view key : {"hidden_act", "hidden_activation"}) {
    ASSIGN_OR_RETURN(std::optional<std::string> act, r.OptionalString(key));
    if (act.has_value() && *act != "silu") {
      return Error(absl::StatusCode::kUnimplemented, path,
                   Cat("\"", key, "\" \"", *act, "\" is not supported (only silu)"));
    }
  }
  ASSIGN_OR_RETURN(bool mlp_bias, r.Bool("mlp_bias", false));
  if (mlp_bias) {
    return Error(absl::StatusCode::kUnimplemented, path, "\"mlp_bias\": true is not supported");
  }
  if (const json* types = r.Find("layer_types"); types != nullptr) {
    if (!types->is_array()) return r.Invalid("layer_types", "must be a list");
    for (const json& t : *types) {
      if (!t.is_string() || t.get<std::string>() != "full_attention") {
        return Error(
            absl::StatusCode::kUnimplemented, path,
            Cat("\"layer_types\" entry ", Show(t), " is not supported (only \"full_attention\")"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ModelConfig> ParseModelConfig(std::string_view json_text,
                                             std::string_view path_for_errors) {
  const std::string_view path = path_for_errors;
  const json root = json::parse(json_text.begin(), json_text.end(), nullptr,
                                /*allow_exceptions=*/false);
  if (root.is_discarded()) {
    return Error(absl::StatusCode::kInvalidArgument, path,
                 Cat("not valid JSON: ", JsonParseError(json_text)));
  }
  if (!root.is_object()) {
    return Error(absl::StatusCode::kInvalidArgument, path,
                 Cat("top level must be a JSON object (got ", Show(root), ")"));
  }
  const ObjectReader r(root, path);
  ModelConfig c;
  RETURN_IF_ERROR(ParseArchitecture(r, path, c));
  RETURN_IF_ERROR(CheckUnsupportedFeatures(r, path));

  ASSIGN_OR_RETURN(c.hidden_size, r.PositiveInt("hidden_size", std::nullopt));
  ASSIGN_OR_RETURN(c.intermediate_size, r.PositiveInt("intermediate_size", std::nullopt));
  ASSIGN_OR_RETURN(c.num_layers, r.PositiveInt("num_hidden_layers", std::nullopt));
  ASSIGN_OR_RETURN(c.num_heads, r.PositiveInt("num_attention_heads", std::nullopt));
  ASSIGN_OR_RETURN(c.num_kv_heads, r.PositiveInt("num_key_value_heads", c.num_heads));
  if (r.Find("head_dim") == nullptr && c.hidden_size % c.num_heads != 0) {
    return Error(
        absl::StatusCode::kInvalidArgument, path,
        Cat("\"hidden_size\" (", c.hidden_size, ") is not divisible by \"num_attention_heads\" (",
            c.num_heads, ") and no \"head_dim\" is given"));
  }
  ASSIGN_OR_RETURN(c.head_dim, r.PositiveInt("head_dim", c.hidden_size / c.num_heads));
  ASSIGN_OR_RETURN(c.vocab_size, r.PositiveInt("vocab_size", std::nullopt));
  ASSIGN_OR_RETURN(c.max_position_embeddings,
                   r.PositiveInt("max_position_embeddings", std::nullopt));
  ASSIGN_OR_RETURN(c.rms_norm_eps, r.PositiveDouble("rms_norm_eps", 1e-6));
  RETURN_IF_ERROR(ParseRope(r, path, c));
  ASSIGN_OR_RETURN(c.tie_word_embeddings, r.Bool("tie_word_embeddings", false));

  const bool is_qwen = c.model_type == "qwen2" || c.model_type == "qwen3";
  if (c.model_type == "qwen2") {
    c.attention_bias = true;  // Qwen2 always has q/k/v bias; its configs don't say so.
  } else if (c.model_type == "mistral") {
    c.attention_bias = false;
  } else {
    ASSIGN_OR_RETURN(c.attention_bias, r.Bool("attention_bias", false));
  }
  c.qk_norm = c.model_type == "qwen3";

  RETURN_IF_ERROR(ParseDType(r, path, c));
  RETURN_IF_ERROR(ParseTokenIds(r, c));

  // Mistral's "sliding_window" applies whenever it is set; Qwen's only with
  // "use_sliding_window" (their configs carry a window size that is otherwise unused).
  bool use_sliding_window = c.model_type == "mistral";
  if (is_qwen) {
    ASSIGN_OR_RETURN(use_sliding_window, r.Bool("use_sliding_window", false));
  }
  if (use_sliding_window && r.Find("sliding_window") != nullptr) {
    ASSIGN_OR_RETURN(int window, r.PositiveInt("sliding_window", std::nullopt));
    c.sliding_window = window;
  }

  RETURN_IF_ERROR(ValidateModelConfig(c, path));
  return c;
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir) {
  std::error_code ec;
  const std::filesystem::path dir(model_dir);
  const std::filesystem::file_status dir_status = std::filesystem::status(dir, ec);
  if (!std::filesystem::exists(dir_status)) {
    return Error(absl::StatusCode::kNotFound, model_dir, "model directory does not exist");
  }
  if (!std::filesystem::is_directory(dir_status)) {
    return Error(absl::StatusCode::kInvalidArgument, model_dir,
                 "is not a directory (expected a model directory holding config.json)");
  }
  const std::string path = (dir / "config.json").string();

  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) {
      return Error(absl::StatusCode::kNotFound, path,
                   "no such file (the model has no config.json)");
    }
    return Error(err == EACCES ? absl::StatusCode::kPermissionDenied : absl::StatusCode::kInternal,
                 path, Cat("cannot open: ", std::strerror(err)));
  }
  std::string text;
  absl::Status status;
  char buf[64 << 10];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      status = Error(absl::StatusCode::kInternal, path, Cat("read failed: ", std::strerror(errno)));
      break;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxConfigBytes) {
      status = Error(absl::StatusCode::kInvalidArgument, path,
                     Cat("larger than ", kMaxConfigBytes, " bytes; not a config.json"));
      break;
    }
  }
  ::close(fd);
  RETURN_IF_ERROR(status);
  return ParseModelConfig(text, path);
}

absl::Status ValidateModelConfig(const ModelConfig& c, std::string_view path) {
  bool known = false;
  for (const Family& f : kFamilies) {
    if (f.architecture == c.architecture && f.model_type == c.model_type) known = true;
  }
  if (!known) {
    return Error(absl::StatusCode::kInvalidArgument, path,
                 Cat("unsupported architecture \"", c.architecture, "\" / model_type \"",
                     c.model_type, "\" (supported: ", kSupportedArchitectures, ")"));
  }
  const std::pair<std::string_view, int> sizes[] = {
      {"hidden_size", c.hidden_size},
      {"intermediate_size", c.intermediate_size},
      {"num_hidden_layers", c.num_layers},
      {"num_attention_heads", c.num_heads},
      {"num_key_value_heads", c.num_kv_heads},
      {"head_dim", c.head_dim},
      {"vocab_size", c.vocab_size},
      {"max_position_embeddings", c.max_position_embeddings},
  };
  for (const auto& [key, value] : sizes) {
    if (value <= 0) {
      return Error(absl::StatusCode::kInvalidArgument, path,
                   Cat("\"", key, "\" must be a positive integer (got ", value, ")"));
    }
  }
  if (c.num_heads % c.num_kv_heads != 0) {
    return Error(absl::StatusCode::kInvalidArgument, path,
                 Cat("\"num_attention_heads\" (", c.num_heads,
                     ") must be a multiple of \"num_key_value_heads\" (", c.num_kv_heads, ")"));
  }
  if (c.head_dim % 2 != 0) {
    return Error(absl::StatusCode::kInvalidArgument, path,
                 Cat("\"head_dim\" (", c.head_dim, ") must be even for RoPE"));
  }
  if (!(std::isfinite(c.rms_norm_eps) && c.rms_norm_eps > 0)) {
    return Error(absl::StatusCode::kInvalidArgument, path,
                 Cat("\"rms_norm_eps\" must be positive (got ", c.rms_norm_eps, ")"));
  }
  if (!(std::isfinite(c.rope_theta) && c.rope_theta > 0)) {
    return Error(absl::StatusCode::kInvalidArgument, path,
                 Cat("\"rope_theta\" must be positive (got ", c.rope_theta, ")"));
  }
  const RopeScaling& s = c.rope_scaling;
  if (s.type == RopeScalingType::kLlama3) {
    if (!(s.factor > 0 && s.low_freq_factor > 0 && s.high_freq_factor > s.low_freq_factor &&
          s.original_max_position_embeddings > 0)) {
      return Error(absl::StatusCode::kInvalidArgument, path,
                   Cat("invalid llama3 rope scaling: factor ", s.factor, ", low_freq_factor ",
                       s.low_freq_factor, ", high_freq_factor ", s.high_freq_factor,
                       ", original_max_position_embeddings ", s.original_max_position_embeddings,
                       " (need positive values and high_freq_factor > low_freq_factor)"));
    }
  }
  if (c.bos_token_id.has_value() && *c.bos_token_id < 0) {
    return Error(absl::StatusCode::kInvalidArgument, path,
                 Cat("\"bos_token_id\" must be non-negative (got ", *c.bos_token_id, ")"));
  }
  for (int id : c.eos_token_ids) {
    if (id < 0) {
      return Error(absl::StatusCode::kInvalidArgument, path,
                   Cat("\"eos_token_id\" must be non-negative (got ", id, ")"));
    }
  }
  if (c.sliding_window.has_value()) {
    if (*c.sliding_window <= 0) {
      return Error(absl::StatusCode::kInvalidArgument, path,
                   Cat("\"sliding_window\" must be positive (got ", *c.sliding_window, ")"));
    }
    if (*c.sliding_window < c.max_position_embeddings) {
      return Error(
          absl::StatusCode::kUnimplemented, path,
          Cat("sliding window attention is not supported (\"sliding_window\" ", *c.sliding_window,
              " < \"max_position_embeddings\" ", c.max_position_embeddings, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace kitty::models
