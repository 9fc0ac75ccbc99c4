#include "models/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "base/strings.h"
#include "nlohmann/json.hpp"

namespace kitty::models {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; big-endian hosts would need byte swaps");

using json = nlohmann::json;

constexpr char kSingleFile[] = "model.safetensors";
constexpr char kIndexFile[] = "model.safetensors.index.json";
// The safetensors reference implementation refuses headers above 100 MB.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr uint64_t kProgressThresholdBytes = 1'000'000'000;

template <typename... Args>
std::string Cat(const Args&... args) {
  return kitty::StrCat(args...);
}

absl::Status Error(absl::StatusCode code, std::string_view path, std::string_view message) {
  return absl::Status(code, Cat(path, ": ", message));
}

std::string ShapeString(absl::Span<const int64_t> shape) {
  return Cat("[", absl::StrJoin(shape, ","), "]");
}

std::string JoinPath(const std::string& dir, std::string_view name) {
  return (std::filesystem::path(dir) / std::filesystem::path(name)).string();
}

// One line rendering of a JSON value for error messages.
std::string Show(const json& value) {
  std::string s = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

absl::Status ErrnoError(int err, std::string_view path, std::string_view what) {
  absl::StatusCode code = absl::StatusCode::kInternal;
  if (err == ENOENT || err == ENOTDIR) code = absl::StatusCode::kNotFound;
  if (err == EACCES || err == EPERM) code = absl::StatusCode::kPermissionDenied;
  return Error(code, path, Cat(what, ": ", std::strerror(err)));
}

// A read-only private mapping of a whole file; unmapped on destruction unless released.
class FileMapping {
 public:
  static absl::StatusOr<FileMapping> Map(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoError(errno, path, "cannot open");
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      return ErrnoError(err, path, "cannot stat");
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      return Error(absl::StatusCode::kInvalidArgument, path, "not a regular file");
    }
    FileMapping m;
    m.size_ = static_cast<size_t>(st.st_size);
    if (m.size_ > 0) {
      void* p = ::mmap(nullptr, m.size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        const int err = errno;
        ::close(fd);
        return ErrnoError(err, path, "mmap failed");
      }
      m.base_ = static_cast<const uint8_t*>(p);
    }
    ::close(fd);
    return m;
  }

  FileMapping() = default;
  FileMapping(FileMapping&& o) noexcept
      : base_(std::exchange(o.base_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  FileMapping& operator=(FileMapping&& o) noexcept {
    if (this != &o) {
      Unmap();
      base_ = std::exchange(o.base_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  ~FileMapping() { Unmap(); }

  const uint8_t* base() const { return base_; }
  size_t size() const { return size_; }
  std::string_view text() const {
    return std::string_view(reinterpret_cast<const char*>(base_), size_);
  }
  // Gives up ownership; the caller munmaps.
  const uint8_t* Release() {
    size_ = 0;
    return std::exchange(base_, nullptr);
  }

 private:
  void Unmap() {
    if (base_ != nullptr) ::munmap(const_cast<uint8_t*>(base_), size_);
    base_ = nullptr;
  }
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
};

std::optional<uint64_t> AsUint(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0)
    return static_cast<uint64_t>(v.get<int64_t>());
  return std::nullopt;
}

std::optional<kernels::DType> ParseDType(std::string_view name) {
  if (name == "F32") return kernels::DType::kFloat32;
  if (name == "F16") return kernels::DType::kFloat16;
  if (name == "BF16") return kernels::DType::kBFloat16;
  if (name == "I32") return kernels::DType::kInt32;
  if (name == "U8") return kernels::DType::kUInt8;
  return std::nullopt;
}

// Parses and checks one header entry; `data` / `data_size` describe the bytes after the header
// and `data_start` is their offset in the file.
absl::StatusOr<TensorInfo> ParseTensorEntry(const std::string& path, const std::string& name,
                                            const json& entry, const uint8_t* data,
                                            uint64_t data_start, uint64_t file_size) {
  const std::string tensor = Cat("tensor \"", name, "\"");
  auto invalid = [&](std::string_view problem) {
    return Error(absl::StatusCode::kInvalidArgument, path, Cat(tensor, " ", problem));
  };
  if (!entry.is_object())
    return invalid(Cat("header entry must be an object (got ", Show(entry), ")"));

  auto dtype_it = entry.find("dtype");
  if (dtype_it == entry.end() || !dtype_it->is_string()) return invalid("has no string \"dtype\"");
  const std::string dtype_name = dtype_it->get<std::string>();

  auto shape_it = entry.find("shape");
  if (shape_it == entry.end() || !shape_it->is_array()) return invalid("has no \"shape\" list");
  TensorInfo info;
  info.name = name;
  info.file = path;
  uint64_t elements = 1;
  bool overflow = false;
  for (const json& d : *shape_it) {
    std::optional<uint64_t> dim = AsUint(d);
    if (!dim.has_value() || *dim > static_cast<uint64_t>(INT64_MAX)) {
      return invalid(Cat("has a bad \"shape\" ", Show(*shape_it),
                         " (dimensions must be non-negative integers)"));
    }
    info.shape.push_back(static_cast<int64_t>(*dim));
    overflow |= __builtin_mul_overflow(elements, *dim, &elements);
  }

  auto offsets_it = entry.find("data_offsets");
  if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
      !AsUint((*offsets_it)[0]).has_value() || !AsUint((*offsets_it)[1]).has_value()) {
    return invalid("has no \"data_offsets\" [begin, end] of non-negative integers");
  }
  const uint64_t begin = *AsUint((*offsets_it)[0]);
  const uint64_t end = *AsUint((*offsets_it)[1]);
  if (begin > end) {
    return invalid(Cat("has \"data_offsets\" [", begin, ",", end, ") with begin > end"));
  }
  const uint64_t data_size = file_size - data_start;
  if (end > data_size) {
    // Report file offsets (header included) so they can be compared with the file size.
    const uint64_t abs_begin = data_start + begin;
    return invalid(Cat("data [", abs_begin, ",", data_start + end, ") exceeds file size ",
                       file_size, " (truncated?)"));
  }

  std::optional<kernels::DType> dtype = ParseDType(dtype_name);
  if (!dtype.has_value()) {
    return Error(absl::StatusCode::kUnimplemented, path,
                 Cat(tensor, " has dtype \"", dtype_name,
                     "\", which is not supported (supported: F32, F16, BF16, I32, U8)"));
  }
  info.dtype = *dtype;
  uint64_t expected_bytes = 0;
  overflow |= __builtin_mul_overflow(elements, static_cast<uint64_t>(kernels::DTypeSize(*dtype)),
                                     &expected_bytes);
  if (overflow || expected_bytes != end - begin) {
    return invalid(Cat("has ", end - begin, " bytes of data (data_offsets [", begin, ",", end,
                       ")) but dtype ", dtype_name, " with shape ", ShapeString(info.shape),
                       overflow ? " overflows" : Cat(" needs ", expected_bytes)));
  }
  info.data = data + begin;
  info.num_bytes = static_cast<size_t>(end - begin);
  return info;
}

}  // namespace

SafetensorsModel::~SafetensorsModel() {
  for (const Mapping& m : mappings_) {
    if (m.base != nullptr) ::munmap(const_cast<uint8_t*>(m.base), m.size);
  }
}

absl::Status SafetensorsModel::AddFile(const std::string& path) {
  ASSIGN_OR_RETURN(FileMapping file, FileMapping::Map(path));
  const uint64_t file_size = file.size();
  if (file_size < 8) {
    return Error(absl::StatusCode::kInvalidArgument, path,
                 Cat("file size ", file_size,
                     " is too small for a safetensors header (truncated or not safetensors?)"));
  }
  uint64_t header_size = 0;
  std::memcpy(&header_size, file.base(), 8);  // little-endian (static_assert above)
  if (header_size > file_size - 8) {
    return Error(absl::StatusCode::kInvalidArgument, path,
                 Cat("header size ", header_size, " exceeds file size ", file_size,
                     " (truncated or not safetensors?)"));
  }
  if (header_size > kMaxHeaderBytes) {
    return Error(absl::StatusCode::kInvalidArgument, path,
                 Cat("header size ", header_size, " exceeds the ", kMaxHeaderBytes,
                     "-byte limit (not safetensors?)"));
  }
  const char* header_begin = reinterpret_cast<const char*>(file.base()) + 8;
  const json header =
      json::parse(header_begin, header_begin + header_size, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) {
    return Error(absl::StatusCode::kInvalidArgument, path,
                 Cat("header (", header_size, " bytes) is not a valid JSON object (corrupt?)"));
  }
  const uint64_t data_start = 8 + header_size;
  std::vector<TensorInfo> infos;
  infos.reserve(header.size());
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    ASSIGN_OR_RETURN(TensorInfo info, ParseTensorEntry(path, name, entry, file.base() + data_start,
                                                       data_start, file_size));
    if (auto it = tensors_.find(info.name); it != tensors_.end()) {
      return Error(absl::StatusCode::kInvalidArgument, path,
                   Cat("tensor \"", info.name, "\" is also in ", it->second.file));
    }
    infos.push_back(std::move(info));
  }
  for (TensorInfo& info : infos) {
    std::string key = info.name;
    tensors_.emplace(std::move(key), std::move(info));
  }
  mappings_.push_back({path, file.base(), file.size()});
  file.Release();
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SafetensorsModel>> SafetensorsModel::Open(
    const std::string& model_dir) {
  std::error_code ec;
  const std::filesystem::file_status dir_status = std::filesystem::status(model_dir, ec);
  if (!std::filesystem::exists(dir_status)) {
    return Error(absl::StatusCode::kNotFound, model_dir, "model directory does not exist");
  }
  if (!std::filesystem::is_directory(dir_status)) {
    return Error(absl::StatusCode::kInvalidArgument, model_dir, "is not a directory");
  }

  // The shard files to map, and for sharded models the index's name → shard file.
  std::vector<std::string> files;
  std::map<std::string, std::string> weight_map;
  const std::string single = JoinPath(model_dir, kSingleFile);
  const std::string index_path = JoinPath(model_dir, kIndexFile);
  const bool sharded = !std::filesystem::exists(single, ec);
  if (!sharded) {
    files.push_back(single);
  } else {
    if (!std::filesystem::exists(index_path, ec)) {
      return Error(absl::StatusCode::kNotFound, model_dir,
                   Cat("no ", kSingleFile, " or ", kIndexFile, " in the model directory"));
    }
    ASSIGN_OR_RETURN(FileMapping index_file, FileMapping::Map(index_path));
    const std::string_view text = index_file.text();
    const json index = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (index.is_discarded() || !index.is_object()) {
      return Error(absl::StatusCode::kInvalidArgument, index_path, "not a valid JSON object");
    }
    auto map_it = index.find("weight_map");
    if (map_it == index.end() || !map_it->is_object()) {
      return Error(absl::StatusCode::kInvalidArgument, index_path,
                   "has no \"weight_map\" object (tensor name -> shard file)");
    }
    std::set<std::string> shard_names;
    for (const auto& [name, shard] : map_it->items()) {
      if (!shard.is_string()) {
        return Error(absl::StatusCode::kInvalidArgument, index_path,
                     Cat("\"weight_map\" entry for tensor \"", name, "\" must be a file name (got ",
                         Show(shard), ")"));
      }
      const std::string file = shard.get<std::string>();
      const std::filesystem::path p(file);
      if (file.empty() || p.is_absolute() ||
          std::any_of(p.begin(), p.end(), [](const auto& part) { return part == ".."; })) {
        return Error(absl::StatusCode::kInvalidArgument, index_path,
                     Cat("\"weight_map\" entry for tensor \"", name, "\" names \"", file,
                         "\", which is not a file inside the model directory"));
      }
      shard_names.insert(file);
      weight_map.emplace(name, JoinPath(model_dir, file));
    }
    if (shard_names.empty()) {
      return Error(absl::StatusCode::kInvalidArgument, index_path, "\"weight_map\" is empty");
    }
    for (const std::string& shard : shard_names) {
      const std::string path = JoinPath(model_dir, shard);
      if (!std::filesystem::exists(path, ec)) {
        return Error(absl::StatusCode::kNotFound, path,
                     Cat("shard listed in ", index_path, " is missing"));
      }
      files.push_back(path);
    }
  }

  uint64_t total_bytes = 0;
  for (const std::string& f : files) {
    const uintmax_t size = std::filesystem::file_size(f, ec);
    if (!ec) total_bytes += size;
  }
  const bool show_progress = total_bytes > kProgressThresholdBytes;

  auto model = std::unique_ptr<SafetensorsModel>(new SafetensorsModel(model_dir));
  uint64_t loaded_bytes = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    RETURN_IF_ERROR(model->AddFile(files[i]));
    loaded_bytes += model->mappings_.back().size;
    if (show_progress) {
      std::fprintf(stderr, "loading weights: %zu/%zu shards, %.1f/%.1f GB\n", i + 1, files.size(),
                   loaded_bytes / 1e9, total_bytes / 1e9);
    }
  }

  // Every tensor the index promises must be in the shard it names.
  for (const auto& [name, shard_path] : weight_map) {
    auto it = model->tensors_.find(name);
    if (it == model->tensors_.end() || it->second.file != shard_path) {
      return Error(absl::StatusCode::kInvalidArgument, index_path,
                   Cat("\"weight_map\" puts tensor \"", name, "\" in ", shard_path,
                       it == model->tensors_.end() ? ", which does not contain it"
                                                   : Cat(", but it is in ", it->second.file)));
    }
  }
  return model;
}

absl::StatusOr<const TensorInfo*> SafetensorsModel::Get(std::string_view name) const {
  auto it = tensors_.find(absl::string_view(name.data(), name.size()));
  if (it == tensors_.end()) {
    return Error(absl::StatusCode::kNotFound, model_dir_,
                 Cat("tensor \"", name, "\" not found (", tensors_.size(), " tensors)"));
  }
  return &it->second;
}

bool SafetensorsModel::Has(std::string_view name) const {
  return tensors_.contains(absl::string_view(name.data(), name.size()));
}

std::vector<std::string> SafetensorsModel::Names() const {
  std::vector<std::string> names;
  names.reserve(tensors_.size());
  for (const auto& [name, info] : tensors_) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

uint64_t SafetensorsModel::total_file_bytes() const {
  uint64_t total = 0;
  for (const Mapping& m : mappings_) total += m.size;
  return total;
}

absl::Status SafetensorsModel::ReadFloat32(std::string_view name,
                                           absl::Span<const int64_t> expected_shape,
                                           float* out) const {
  ASSIGN_OR_RETURN(const TensorInfo* t, Get(name));
  if (!std::equal(t->shape.begin(), t->shape.end(), expected_shape.begin(), expected_shape.end())) {
    return Error(absl::StatusCode::kInvalidArgument, t->file,
                 Cat("tensor \"", name, "\" has shape ", ShapeString(t->shape), ", expected ",
                     ShapeString(expected_shape)));
  }
  const size_t n = t->num_bytes / static_cast<size_t>(kernels::DTypeSize(t->dtype));
  switch (t->dtype) {
    case kernels::DType::kFloat32:
      if (n > 0) std::memcpy(out, t->data, n * sizeof(float));
      return absl::OkStatus();
    case kernels::DType::kFloat16:
    case kernels::DType::kBFloat16: {
      const bool half = t->dtype == kernels::DType::kFloat16;
      for (size_t i = 0; i < n; ++i) {
        uint16_t bits;
        std::memcpy(&bits, t->data + 2 * i, 2);
        out[i] = half ? kernels::HalfToFloat(bits) : kernels::BFloat16ToFloat(bits);
      }
      return absl::OkStatus();
    }
    default:
      return Error(absl::StatusCode::kInvalidArgument, t->file,
                   Cat("tensor \"", name, "\" has dtype ", kernels::DTypeName(t->dtype),
                       ", which cannot be read as float32 (need F32, F16 or BF16)"));
  }
}

}  // namespace kitty::models
