// File: models/safetensors.h
// -----------------------------------------------------------------------------
// Read-only, memory-mapped safetensors checkpoints: a model directory holding
// `model.safetensors`, or `model.safetensors.index.json` whose "weight_map" maps each tensor
// name to a shard file in the same directory.
//
//   ASSIGN_OR_RETURN(auto weights, SafetensorsModel::Open("/models/Llama-3.2-1B"));
//   std::vector<float> norm(config.hidden_size);
//   RETURN_IF_ERROR(weights->ReadFloat32("model.norm.weight", {config.hidden_size},
//                                        norm.data()));
//
// Format: an 8-byte little-endian header size N, N bytes of JSON header
// {name: {"dtype": "F32"|"F16"|"BF16"|..., "shape": [...], "data_offsets": [begin, end]},
//  "__metadata__": {...}}, then the data; offsets are relative to the first byte after the
// header. Open() validates every header entry (bounds, dtype size × shape product), so a
// TensorInfo it hands out always points at num_bytes readable bytes. Errors name the file and the
// problem on one line.
#ifndef KITTY_MODELS_SAFETENSORS_H_
#define KITTY_MODELS_SAFETENSORS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "kernels/dtype.h"

namespace kitty::models {

struct TensorInfo {
  std::string name;
  kernels::DType dtype;
  std::vector<int64_t> shape;
  // Points into the read-only mapping of `file`; valid while the SafetensorsModel lives.
  // Not necessarily aligned to the element size: read through memcpy (or ReadFloat32).
  const uint8_t* data;
  size_t num_bytes;
  std::string file;  // the shard's path, for error messages
};

// Memory-mapped (MAP_PRIVATE, PROT_READ) weights of one model directory; owns the mappings.
// Thread-safe for concurrent const use.
class SafetensorsModel {
 public:
  // Opens `model_dir`/model.safetensors, or, when that is absent,
  // `model_dir`/model.safetensors.index.json and every shard it lists. Prints a progress line
  // per shard on stderr ("loading weights: 3/7 shards, 4.2/15.0 GB") when the total is > 1 GB.
  static absl::StatusOr<std::unique_ptr<SafetensorsModel>> Open(const std::string& model_dir);

  SafetensorsModel(const SafetensorsModel&) = delete;
  SafetensorsModel& operator=(const SafetensorsModel&) = delete;
  ~SafetensorsModel();

  // NotFound naming the tensor and the directory when there is no such tensor.
  absl::StatusOr<const TensorInfo*> Get(std::string_view name) const;
  bool Has(std::string_view name) const;
  // All tensor names, sorted.
  std::vector<std::string> Names() const;

  // Copies tensor `name` (F32, F16 or BF16) to float32 after checking that its shape equals
  // `expected_shape` (InvalidArgument "file: tensor X has shape [a,b], expected [c,d]").
  // `out` must hold the product of `expected_shape` floats.
  absl::Status ReadFloat32(std::string_view name, absl::Span<const int64_t> expected_shape,
                           float* out) const;

  const std::string& model_dir() const { return model_dir_; }
  // Sum of the sizes of all mapped files, in bytes.
  uint64_t total_file_bytes() const;

 private:
  struct Mapping {
    std::string path;
    const uint8_t* base = nullptr;
    size_t size = 0;
  };

  explicit SafetensorsModel(std::string model_dir) : model_dir_(std::move(model_dir)) {}
  // Maps `path`, validates its header and adds its tensors.
  absl::Status AddFile(const std::string& path);

  std::string model_dir_;
  std::vector<Mapping> mappings_;
  absl::flat_hash_map<std::string, TensorInfo> tensors_;
};

}  // namespace kitty::models

#endif  // KITTY_MODELS_SAFETENSORS_H_
