// File: models/cuda_runner.cc
// -----------------------------------------------------------------------------
// See cuda_runner.h. Compiles to nothing without the CUDA runner.
//
// One forward step (all on the runner's stream, one host sync at the end for the logits):
//   upload metadata (one H2D copy) → embedding → RoPE table → per layer:
//     RMSNorm → fused q/k/v GEMM (fp32 out) → epilogue (bias, q/k norm, RoPE → fp16/bf16)
//     → attention over the state BEFORE the step + the new tokens (Kitty or generic kernel)
//     → KV append: copy segments (sink fill, tail writes, staging of sealing pages)
//       → pack K/V jobs (staging → pages) → copy segments (staging → final tails)
//     → o-proj GEMM accumulating into the fp32 residual (beta = 1) → RMSNorm
//     → fused gate/up GEMM → SiLU-and-mul → down GEMM into the residual
//   → final RMSNorm of the logit rows → lm_head GEMM (fp32 logits) → D2H copy.
//
// KV append: the host replays the AppendKv rule per sequence (checked against
// AdvanceKvCounters). A sequence whose K (or V) tail seals pages this step gets a staging
// buffer holding its whole K (V) stream since the last sealed page (old tail + new tokens), so
// every page is packed from one strided source and the remainder becomes the new tail: the
// page bytes depend only on their 128 tokens, as on the CPU.
//
// Sink mirror: the Kitty kernels index the sink and the tails of a sequence with ONE slot
// (KittySeqDesc::slot), while the block manager hands out sink blocks (shared by prefix hits)
// and tail slots separately. The runner keeps the sink pool (by sink block) and a mirror of
// each tail slot's sink (by tail slot) that the kernels read; a (block, generation) key per
// tail slot says when the mirror must be refreshed from the pool.
#ifdef KITTY_HAVE_CUDA_RUNNER

#include "models/cuda_runner.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/graph_cache.h"
#include "kernels/cuda/kitty_kernels.h"
#include "kernels/cuda/model_ops_host.h"
#include "kernels/cuda/sampling.h"
#include "kernels/cuda/step_profiler.h"
#include "kernels/kitty/kv_cache.h"
#include "models/kv_cache.h"
#include "models/llama.h"
#include "models/safetensors.h"

namespace kitty::models {
namespace {

namespace kc = kernels::cuda;
using kc::CudaStatus;
using kc::DeviceBuffer;
using kernels::DType;
using kernels::KvCacheSpec;
using kernels::SeqKvCounters;

constexpr int kP = KvCacheSpec::kPageTokens;
constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ull;

size_t Align(size_t x, size_t a = 256) { return (x + a - 1) / a * a; }

// ---- host random weights (exactly LlamaModel::Random's FillRandom / FillNorm) -----------------

float RandomValue(uint64_t* state, float a) {
  uint64_t z = (*state += kGolden);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  const float u = static_cast<float>(z >> 40) * (1.0f / 16777216.0f);
  return (2.0f * u - 1.0f) * a;
}
std::vector<float> HostRandom(int64_t n, float std, uint64_t* state) {
  std::vector<float> v(n);
  const float a = std * std::sqrt(3.0f);
  for (int64_t i = 0; i < n; ++i) v[i] = RandomValue(state, a);
  return v;
}
std::vector<float> HostNorm(int64_t n, uint64_t* state) {
  std::vector<float> v = HostRandom(n, 0.1f, state);
  for (float& x : v) x += 1.0f;
  return v;
}

struct LayerW {
  float* attn_norm = nullptr;
  void* wqkv = nullptr;   // [(Hq + 2 Hkv) D][H]
  float* bqkv = nullptr;  // [(Hq + 2 Hkv) D] or null
  float* q_norm = nullptr;
  float* k_norm = nullptr;
  void* wo = nullptr;  // [H][Hq D]
  float* ffn_norm = nullptr;
  void* w_gate_up = nullptr;  // [2 I][H]
  void* w_down = nullptr;     // [H][I]
};

// Bump allocator over one device buffer (weights): offsets first, then one cudaMalloc.
class Arena {
 public:
  size_t Add(size_t bytes) {
    const size_t off = size_;
    size_ = Align(size_ + bytes);
    return off;
  }
  size_t size() const { return size_; }

 private:
  size_t size_ = 0;
};

// Per-step metadata packed into one pinned buffer, uploaded with one copy.
class MetaBuilder {
 public:
  template <typename T>
  size_t Put(const std::vector<T>& v) {
    const size_t off = bytes_.size();
    bytes_.resize(Align(off + v.size() * sizeof(T), 16), 0);
    if (!v.empty()) std::memcpy(bytes_.data() + off, v.data(), v.size() * sizeof(T));
    return off;
  }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

class CudaRunner : public ModelRunner {
 public:
  CudaRunner(const LoadedModel& m, const CudaRunnerOptions& o) : m_(m), c_(m.config), opt_(o) {}
  ~CudaRunner() override {
    if (stream_ != nullptr) {
      cudaStreamSynchronize(stream_);
      gemm_.reset();
      cudaStreamDestroy(stream_);
    }
  }
  CudaRunner(const CudaRunner&) = delete;
  CudaRunner& operator=(const CudaRunner&) = delete;

  absl::Status Init();

  std::string device_name() const override { return device_name_; }
  DType kv_dtype() const override { return dt_; }
  int64_t AvailableKvBytes(double utilization, int max_batched_tokens) const override;
  int64_t weight_bytes() const override { return weight_bytes_; }
  double MeasureCopyBandwidth() override;
  double MeasureMatmulRate() override;
  GraphStats graph_stats() const override { return {graphs_.captures(), graphs_.replays()}; }

  absl::Status AllocateKv(const KvCacheSpec& spec, const KvPoolSizes& sizes) override;
  int64_t kv_bytes() const override { return kv_bytes_; }

  absl::Status Forward(absl::Span<const SequenceStep> batch, std::vector<float>* logits) override {
    return Run(batch, nullptr, nullptr, logits);
  }
  bool supports_device_sampling() const override { return true; }
  absl::Status ForwardAndSample(absl::Span<const SequenceStep> batch,
                                absl::Span<const RowSampling> rows, std::vector<RowSample>* samples,
                                std::vector<float>* host_logits) override {
    return Run(batch, &rows, samples, host_logits);
  }

  void CopySinkBlock(int32_t src, int32_t dst) override;
  void CopyTailSlot(int32_t src, int32_t dst) override;

 private:
  // The step: without `rows`, every output row's logits go to `logits`; with `rows`, the rows
  // are sampled on the device as ForwardAndSample says.
  absl::Status Run(absl::Span<const SequenceStep> batch, const absl::Span<const RowSampling>* rows,
                   std::vector<RowSample>* samples, std::vector<float>* logits);
  absl::Status LoadWeightsFromCheckpoint();
  absl::Status LoadRandomWeights();
  absl::Status UploadTensor(const SafetensorsModel& st, const std::string& name,
                            std::vector<int64_t> shape, void* dst, bool as_f32);
  size_t ActivationBytes(int64_t tokens) const;
  absl::Status ReserveActivations(int tokens, int rows_out, size_t k_stage_elems,
                                  size_t v_stage_elems);
  // The decode kernel (if `decode_kernel`, over `groups`) and the prefill kernel over `tiles`.
  absl::Status Attention(int layer, const kc::KittyAttentionBatch& b, bool decode_kernel,
                         const kc::KittyQueryGroups& groups, const kc::KittyQueryGroups& tiles,
                         void* ws, size_t ws_bytes, const kc::KittySplitPlan& plan);
  absl::Status Pack(bool k, const kc::KittyPackJob* jobs, int n);

  // Element offsets / strides of the pools (per layer).
  int64_t SinkLayerElems(int32_t blocks) const { return int64_t{blocks} * 2 * Hkv_ * S_ * D_; }
  int64_t KTailLayerElems() const { return int64_t{pools_.num_tail_slots} * Hkv_ * kP * D_; }
  int64_t VTailLayerElems() const { return int64_t{pools_.num_tail_slots} * Hkv_ * vcap_ * D_; }

  const LoadedModel& m_;
  const ModelConfig c_;
  CudaRunnerOptions opt_;
  DType dt_ = DType::kBFloat16;
  size_t es_ = 2;  // element size of dt_
  std::string device_name_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<kc::CublasGemm> gemm_;

  // Weights.
  DeviceBuffer weights_;
  int64_t weight_bytes_ = 0;
  void* embed_ = nullptr;
  void* lm_head_ = nullptr;
  float* final_norm_ = nullptr;
  float* inv_freq_ = nullptr;
  std::vector<LayerW> layers_;

  // KV cache.
  bool kv_ready_ = false;
  KvCacheSpec spec_;
  kc::KittyGeometry geo_;
  bool use_kitty_ = false;       // Kitty attention
  bool use_kitty_pack_ = false;  // Kitty pack
  int D_ = 0, Hkv_ = 0, S_ = 0, vcap_ = 0;
  KvPoolSizes pools_;
  DeviceBuffer k_pages_, v_pages_, sink_, mirror_, k_tail_, v_tail_;
  int64_t kv_bytes_ = 0;
  std::vector<uint64_t> sink_gen_;     // per sink block: bumped on every write / copy into it
  std::vector<int64_t> mirror_block_;  // per tail slot: sink block mirrored (-1: none)
  std::vector<uint64_t> mirror_gen_;   // per tail slot: generation mirrored

  // Activations (grown on demand).
  DeviceBuffer x_, h_, qkv_, q_, knew_, vnew_, attn_, gu_, act_, cos_sin_, logits_, kstage_,
      vstage_, attn_ws_, meta_, sample_out_;
  kc::PinnedBuffer meta_host_, logits_host_, sample_host_;
  kc::StepProfiler profiler_;  // KITTY_STEP_PROFILE=1
  kc::GraphCache graphs_;      // decode pieces by (padded batch, piece)
};

absl::Status CudaRunner::Init() {
  int dev = 0;
  RETURN_IF_ERROR(CudaStatus(cudaGetDevice(&dev), "cudaGetDevice"));
  cudaDeviceProp prop;
  RETURN_IF_ERROR(CudaStatus(cudaGetDeviceProperties(&prop, dev), "cudaGetDeviceProperties"));
  device_name_ = absl::StrCat("cuda:", dev, " (", prop.name, ")");
  if (c_.dtype == DType::kFloat16 || c_.dtype == DType::kBFloat16) {
    dt_ = c_.dtype;
  } else {
    dt_ = opt_.float32_as;
  }
  RETURN_IF_ERROR(kc::ModelElemOf(dt_).status());
  es_ = kernels::DTypeSize(dt_);
  if (c_.head_dim % 2 != 0 || c_.num_heads % c_.num_kv_heads != 0) {
    return absl::InvalidArgumentError("CUDA runner: odd head_dim or Hq % Hkv != 0");
  }
  RETURN_IF_ERROR(
      CudaStatus(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate"));
  if (const char* e = std::getenv("KITTY_STEP_PROFILE"); e != nullptr && std::string(e) == "1") {
    profiler_.Enable(m_.name);
  }
  ASSIGN_OR_RETURN(gemm_, kc::CublasGemm::Create(stream_));

  // Weight layout.
  const int64_t H = c_.hidden_size, D = c_.head_dim, Hq = c_.num_heads, Hkv = c_.num_kv_heads,
                I = c_.intermediate_size, V = c_.vocab_size, L = c_.num_layers;
  const int64_t qkv_rows = (Hq + 2 * Hkv) * D;
  Arena a;
  const size_t off_embed = a.Add(V * H * es_);
  const size_t off_head = c_.tie_word_embeddings ? off_embed : a.Add(V * H * es_);
  const size_t off_fnorm = a.Add(H * 4);
  const size_t off_inv = a.Add(D / 2 * 4);
  struct Off {
    size_t attn_norm, wqkv, bqkv, qn, kn, wo, ffn_norm, wgu, wd;
  };
  std::vector<Off> offs(L);
  for (auto& o : offs) {
    o.attn_norm = a.Add(H * 4);
    o.wqkv = a.Add(qkv_rows * H * es_);
    o.bqkv = c_.attention_bias ? a.Add(qkv_rows * 4) : SIZE_MAX;
    o.qn = c_.qk_norm ? a.Add(D * 4) : SIZE_MAX;
    o.kn = c_.qk_norm ? a.Add(D * 4) : SIZE_MAX;
    o.wo = a.Add(H * Hq * D * es_);
    o.ffn_norm = a.Add(H * 4);
    o.wgu = a.Add(2 * I * H * es_);
    o.wd = a.Add(H * I * es_);
  }
  RETURN_IF_ERROR(weights_.Allocate(a.size(), "weights"));
  weight_bytes_ = static_cast<int64_t>(a.size());
  uint8_t* base = weights_.as<uint8_t>();
  auto f32 = [&](size_t off) {
    return off == SIZE_MAX ? nullptr : reinterpret_cast<float*>(base + off);
  };
  embed_ = base + off_embed;
  lm_head_ = base + off_head;
  final_norm_ = f32(off_fnorm);
  inv_freq_ = f32(off_inv);
  layers_.resize(L);
  for (int64_t l = 0; l < L; ++l) {
    const Off& o = offs[l];
    LayerW& w = layers_[l];
    w.attn_norm = f32(o.attn_norm);
    w.wqkv = base + o.wqkv;
    w.bqkv = f32(o.bqkv);
    w.q_norm = f32(o.qn);
    w.k_norm = f32(o.kn);
    w.wo = base + o.wo;
    w.ffn_norm = f32(o.ffn_norm);
    w.w_gate_up = base + o.wgu;
    w.w_down = base + o.wd;
  }
  const std::vector<float> inv = RopeInverseFrequencies(c_);
  RETURN_IF_ERROR(CudaStatus(
      cudaMemcpy(inv_freq_, inv.data(), inv.size() * 4, cudaMemcpyHostToDevice), "upload rope"));
  const bool synthetic = m_.name.rfind("builtin:", 0) == 0 || m_.name.rfind("synthetic:", 0) == 0;
  if (synthetic) {
    RETURN_IF_ERROR(LoadRandomWeights());
  } else {
    RETURN_IF_ERROR(LoadWeightsFromCheckpoint());
  }
  return CudaStatus(cudaStreamSynchronize(stream_), "weights");
}

absl::Status CudaRunner::UploadTensor(const SafetensorsModel& st, const std::string& name,
                                      std::vector<int64_t> shape, void* dst, bool as_f32) {
  ASSIGN_OR_RETURN(const TensorInfo* info, st.Get(name));
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  const DType want = as_f32 ? DType::kFloat32 : dt_;
  if (info->dtype == want && info->shape == shape) {  // as stored: straight from the mmap
    return CudaStatus(
        cudaMemcpy(dst, info->data, n * kernels::DTypeSize(want), cudaMemcpyHostToDevice),
        "upload weight");
  }
  std::vector<float> f(n);
  RETURN_IF_ERROR(st.ReadFloat32(name, shape, f.data()));
  if (as_f32) {
    return CudaStatus(cudaMemcpy(dst, f.data(), n * 4, cudaMemcpyHostToDevice), "upload weight");
  }
  std::vector<uint16_t> h(n);
  for (int64_t i = 0; i < n; ++i) {
    h[i] = dt_ == DType::kFloat16 ? kernels::FloatToHalf(f[i]) : kernels::FloatToBFloat16(f[i]);
  }
  return CudaStatus(cudaMemcpy(dst, h.data(), n * 2, cudaMemcpyHostToDevice), "upload weight");
}

absl::Status CudaRunner::LoadWeightsFromCheckpoint() {
  ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsModel> st, SafetensorsModel::Open(m_.name));
  const int64_t H = c_.hidden_size, D = c_.head_dim, Hq = c_.num_heads, Hkv = c_.num_kv_heads,
                I = c_.intermediate_size, V = c_.vocab_size;
  uint8_t* e = static_cast<uint8_t*>(embed_);
  RETURN_IF_ERROR(UploadTensor(*st, "model.embed_tokens.weight", {V, H}, e, false));
  if (!c_.tie_word_embeddings) {
    RETURN_IF_ERROR(UploadTensor(*st, "lm_head.weight", {V, H}, lm_head_, false));
  }
  RETURN_IF_ERROR(UploadTensor(*st, "model.norm.weight", {H}, final_norm_, true));
  for (int l = 0; l < c_.num_layers; ++l) {
    const LayerW& w = layers_[l];
    const std::string p = absl::StrCat("model.layers.", l, ".");
    uint8_t* qkv = static_cast<uint8_t*>(w.wqkv);
    RETURN_IF_ERROR(UploadTensor(*st, p + "input_layernorm.weight", {H}, w.attn_norm, true));
    RETURN_IF_ERROR(UploadTensor(*st, p + "self_attn.q_proj.weight", {Hq * D, H}, qkv, false));
    RETURN_IF_ERROR(UploadTensor(*st, p + "self_attn.k_proj.weight", {Hkv * D, H},
                                 qkv + Hq * D * H * es_, false));
    RETURN_IF_ERROR(UploadTensor(*st, p + "self_attn.v_proj.weight", {Hkv * D, H},
                                 qkv + (Hq + Hkv) * D * H * es_, false));
    if (c_.attention_bias) {
      RETURN_IF_ERROR(UploadTensor(*st, p + "self_attn.q_proj.bias", {Hq * D}, w.bqkv, true));
      RETURN_IF_ERROR(
          UploadTensor(*st, p + "self_attn.k_proj.bias", {Hkv * D}, w.bqkv + Hq * D, true));
      RETURN_IF_ERROR(
          UploadTensor(*st, p + "self_attn.v_proj.bias", {Hkv * D}, w.bqkv + (Hq + Hkv) * D, true));
    }
    if (c_.qk_norm) {
      RETURN_IF_ERROR(UploadTensor(*st, p + "self_attn.q_norm.weight", {D}, w.q_norm, true));
      RETURN_IF_ERROR(UploadTensor(*st, p + "self_attn.k_norm.weight", {D}, w.k_norm, true));
    }
    RETURN_IF_ERROR(UploadTensor(*st, p + "self_attn.o_proj.weight", {H, Hq * D}, w.wo, false));
    RETURN_IF_ERROR(
        UploadTensor(*st, p + "post_attention_layernorm.weight", {H}, w.ffn_norm, true));
    uint8_t* gu = static_cast<uint8_t*>(w.w_gate_up);
    RETURN_IF_ERROR(UploadTensor(*st, p + "mlp.gate_proj.weight", {I, H}, gu, false));
    RETURN_IF_ERROR(UploadTensor(*st, p + "mlp.up_proj.weight", {I, H}, gu + I * H * es_, false));
    RETURN_IF_ERROR(UploadTensor(*st, p + "mlp.down_proj.weight", {H, I}, w.w_down, false));
  }
  return absl::OkStatus();
}

absl::Status CudaRunner::LoadRandomWeights() {
  const int64_t H = c_.hidden_size, D = c_.head_dim, Hq = c_.num_heads, Hkv = c_.num_kv_heads,
                I = c_.intermediate_size, V = c_.vocab_size;
  uint64_t s = kRandomWeightSeed;
  auto dev_fill = [&](void* dst, int64_t n, float std) -> absl::Status {
    RETURN_IF_ERROR(kc::RandomFill(dt_, dst, n, s, std, stream_));
    s += static_cast<uint64_t>(n) * kGolden;
    return absl::OkStatus();
  };
  auto host_put = [&](float* dst, const std::vector<float>& v) {
    return CudaStatus(cudaMemcpy(dst, v.data(), v.size() * 4, cudaMemcpyHostToDevice), "upload");
  };
  const float in_h = 1.0f / std::sqrt(static_cast<float>(H));
  RETURN_IF_ERROR(dev_fill(embed_, V * H, 1.0f));
  for (const LayerW& w : layers_) {
    RETURN_IF_ERROR(host_put(w.attn_norm, HostNorm(H, &s)));
    uint8_t* qkv = static_cast<uint8_t*>(w.wqkv);
    RETURN_IF_ERROR(dev_fill(qkv, Hq * D * H, in_h));
    RETURN_IF_ERROR(dev_fill(qkv + Hq * D * H * es_, Hkv * D * H, in_h));
    RETURN_IF_ERROR(dev_fill(qkv + (Hq + Hkv) * D * H * es_, Hkv * D * H, in_h));
    RETURN_IF_ERROR(dev_fill(w.wo, H * Hq * D, 1.0f / std::sqrt(static_cast<float>(Hq * D))));
    if (c_.attention_bias) {
      RETURN_IF_ERROR(host_put(w.bqkv, HostRandom(Hq * D, 0.1f, &s)));
      RETURN_IF_ERROR(host_put(w.bqkv + Hq * D, HostRandom(Hkv * D, 0.1f, &s)));
      RETURN_IF_ERROR(host_put(w.bqkv + (Hq + Hkv) * D, HostRandom(Hkv * D, 0.1f, &s)));
    }
    if (c_.qk_norm) {
      RETURN_IF_ERROR(host_put(w.q_norm, HostNorm(D, &s)));
      RETURN_IF_ERROR(host_put(w.k_norm, HostNorm(D, &s)));
    }
    RETURN_IF_ERROR(host_put(w.ffn_norm, HostNorm(H, &s)));
    uint8_t* gu = static_cast<uint8_t*>(w.w_gate_up);
    RETURN_IF_ERROR(dev_fill(gu, I * H, in_h));
    RETURN_IF_ERROR(dev_fill(gu + I * H * es_, I * H, in_h));
    RETURN_IF_ERROR(dev_fill(w.w_down, H * I, 1.0f / std::sqrt(static_cast<float>(I))));
  }
  RETURN_IF_ERROR(host_put(final_norm_, HostNorm(H, &s)));
  if (!c_.tie_word_embeddings) RETURN_IF_ERROR(dev_fill(lm_head_, V * H, 4.0f * in_h));
  return absl::OkStatus();
}

size_t CudaRunner::ActivationBytes(int64_t T) const {
  const int64_t H = c_.hidden_size, D = c_.head_dim, Hq = c_.num_heads, Hkv = c_.num_kv_heads,
                I = c_.intermediate_size, V = c_.vocab_size;
  const int64_t stage = Hkv * D * (T + 2 * kP) * 4;  // rough bound for K+V staging
  return Align(T * H * 4) + Align(T * std::max(H, Hq * D) * es_) +
         Align(T * (Hq + 2 * Hkv) * D * 4) + Align(T * Hq * D * es_) * 2 +
         Align(T * Hkv * D * es_) * 2 + Align(T * 2 * I * es_) + Align(T * I * es_) +
         Align(T * D * 4) + Align(T * V * 4) + stage * es_ +
         (size_t{64} << 20);  // attention workspace, metadata, cuBLAS
}

int64_t CudaRunner::AvailableKvBytes(double utilization, int max_batched_tokens) const {
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) return 0;
  const double used = static_cast<double>(total_b - free_b);
  double avail = utilization * static_cast<double>(total_b) - used -
                 static_cast<double>(ActivationBytes(std::max(max_batched_tokens, 1)));
  // The sink mirror (one sink per tail slot) is not in the block manager's units: keep 3%.
  avail *= 0.97;
  return avail > 0 ? static_cast<int64_t>(avail) : 0;
}

double CudaRunner::MeasureCopyBandwidth() {
  const size_t bytes = size_t{1} << 30;
  DeviceBuffer a, b;
  if (!a.Allocate(bytes, "bw").ok() || !b.Allocate(bytes, "bw").ok()) return 0;
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice, stream_);  // warm-up
  std::vector<float> ms;
  for (int i = 0; i < 5; ++i) {
    cudaEventRecord(e0, stream_);
    cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice, stream_);
    cudaEventRecord(e1, stream_);
    cudaEventSynchronize(e1);
    float t = 0;
    cudaEventElapsedTime(&t, e0, e1);
    ms.push_back(t);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2] > 0 ? 2.0 * bytes / (ms[ms.size() / 2] * 1e-3) : 0;
}

double CudaRunner::MeasureMatmulRate() {
  // 8192^3 in the weights' dtype on random data (zeros run faster: METHOD.md), fp32 accumulate.
  constexpr int n = 8192;
  const size_t bytes = size_t{1} * n * n * es_;
  DeviceBuffer a, b, c;
  if (!a.Allocate(bytes, "mm").ok() || !b.Allocate(bytes, "mm").ok() ||
      !c.Allocate(bytes, "mm").ok()) {
    return 0;
  }
  if (!kc::RandomFill(dt_, a.get(), int64_t{n} * n, 1, 1.0f, stream_).ok() ||
      !kc::RandomFill(dt_, b.get(), int64_t{n} * n, 2, 1.0f, stream_).ok()) {
    return 0;
  }
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  std::vector<float> ms;
  for (int i = 0; i < 8; ++i) {
    cudaEventRecord(e0, stream_);
    const bool ok = gemm_->Linear(dt_, a.get(), n, n, b.get(), n, dt_, c.get()).ok();
    cudaEventRecord(e1, stream_);
    cudaEventSynchronize(e1);
    float t = 0;
    cudaEventElapsedTime(&t, e0, e1);
    if (ok && i >= 3) ms.push_back(t);  // 3 warm-ups
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  if (ms.empty()) return 0;
  std::sort(ms.begin(), ms.end());
  const double med = ms[ms.size() / 2];
  return med > 0 ? 2.0 * n * n * double{n} / (med * 1e-3) : 0;
}

absl::Status CudaRunner::AllocateKv(const KvCacheSpec& spec, const KvPoolSizes& sizes) {
  if (spec.head_dim != c_.head_dim || spec.num_kv_heads != c_.num_kv_heads) {
    return absl::InvalidArgumentError("KV cache shape does not match the model");
  }
  spec_ = spec;
  D_ = spec.head_dim;
  Hkv_ = spec.num_kv_heads;
  S_ = spec.sink_tokens;
  vcap_ = spec.v_tail_capacity();
  const bool env_generic = [] {
    const char* e = std::getenv("KITTY_CUDA_GENERIC_ATTENTION");
    return e != nullptr && std::string(e) == "1";
  }();
  use_kitty_ = false;
  use_kitty_pack_ = false;
  if (!opt_.force_generic_attention && !env_generic) {
    absl::StatusOr<kc::KittyGeometry> g = kc::MakeKittyGeometry(spec, dt_, c_.num_heads);
    if (g.ok()) {
      geo_ = *g;
      use_kitty_ = !opt_.force_generic_attention_only;
      use_kitty_pack_ = !opt_.force_generic_pack_only;
    }
  }
  if (!use_kitty_ && !use_kitty_pack_) {
    kc::KittyGeometry& g = geo_;
    g = {};
    g.head_dim = D_;
    g.num_kv_heads = Hkv_;
    g.num_q_heads = c_.num_heads;
    g.sink_capacity = S_;
    g.v_tail_capacity = vcap_;
    g.boost_channels = spec.boost_channels;
    g.quantized = spec.quantized() ? 1 : 0;
    if (spec.quantized()) {
      const kernels::KHeadLayout k = kernels::GetKHeadLayout(spec);
      const kernels::VHeadLayout v = kernels::GetVHeadLayout(spec);
      g.k_head_bytes = static_cast<int32_t>(k.head_bytes);
      g.v_head_bytes = static_cast<int32_t>(v.head_bytes);
      g.k_sparse_offset = static_cast<int32_t>(k.sparse_offset);
      g.k_idx_offset = static_cast<int32_t>(k.idx_offset);
      g.k_meta_offset = static_cast<int32_t>(k.meta_offset);
      g.v_meta_offset = static_cast<int32_t>(v.meta_offset);
    } else {
      g.k_head_bytes = g.v_head_bytes = static_cast<int32_t>(kP * D_ * es_);
    }
    g.k_page_bytes = int64_t{g.k_head_bytes} * Hkv_;
    g.v_page_bytes = int64_t{g.v_head_bytes} * Hkv_;
  }
  pools_ = sizes;
  const int64_t L = c_.num_layers;
  const size_t kpb = geo_.k_page_bytes * L * std::max(sizes.num_k_pages, 1);
  const size_t vpb = geo_.v_page_bytes * L * std::max(sizes.num_v_pages, 1);
  const size_t sinkb = SinkLayerElems(std::max(sizes.num_sink_blocks, 1)) * L * es_;
  const size_t mirb = SinkLayerElems(std::max(sizes.num_tail_slots, 1)) * L * es_;
  const size_t ktb = int64_t{std::max(sizes.num_tail_slots, 1)} * Hkv_ * kP * D_ * L * es_;
  const size_t vtb = int64_t{std::max(sizes.num_tail_slots, 1)} * Hkv_ * vcap_ * D_ * L * es_;
  kv_ready_ = false;
  RETURN_IF_ERROR(k_pages_.Allocate(kpb, "K pages"));
  RETURN_IF_ERROR(v_pages_.Allocate(vpb, "V pages"));
  RETURN_IF_ERROR(sink_.Allocate(std::max<size_t>(sinkb, 16), "sink blocks"));
  RETURN_IF_ERROR(mirror_.Allocate(std::max<size_t>(mirb, 16), "sink mirror"));
  RETURN_IF_ERROR(k_tail_.Allocate(ktb, "K tails"));
  RETURN_IF_ERROR(v_tail_.Allocate(vtb, "V tails"));
  kv_bytes_ = static_cast<int64_t>(kpb + vpb + sinkb + mirb + ktb + vtb);
  sink_gen_.assign(std::max(sizes.num_sink_blocks, 1), 1);
  mirror_block_.assign(std::max(sizes.num_tail_slots, 1), -1);
  mirror_gen_.assign(std::max(sizes.num_tail_slots, 1), 0);
  kv_ready_ = true;
  return absl::OkStatus();
}

void CudaRunner::CopySinkBlock(int32_t src, int32_t dst) {
  KITTY_CHECK(kv_ready_);
  const size_t block = size_t{2} * Hkv_ * S_ * D_ * es_;
  const size_t pitch = SinkLayerElems(pools_.num_sink_blocks) * es_;
  uint8_t* base = sink_.as<uint8_t>();
  KITTY_CHECK(cudaMemcpy2DAsync(base + dst * block, pitch, base + src * block, pitch, block,
                                c_.num_layers, cudaMemcpyDeviceToDevice, stream_) == cudaSuccess);
  ++sink_gen_[dst];
}

void CudaRunner::CopyTailSlot(int32_t src, int32_t dst) {
  KITTY_CHECK(kv_ready_);
  auto copy = [&](DeviceBuffer& buf, size_t unit_bytes, size_t pitch) {
    uint8_t* base = buf.as<uint8_t>();
    KITTY_CHECK(cudaMemcpy2DAsync(base + dst * unit_bytes, pitch, base + src * unit_bytes, pitch,
                                  unit_bytes, c_.num_layers, cudaMemcpyDeviceToDevice,
                                  stream_) == cudaSuccess);
  };
  copy(k_tail_, size_t{1} * Hkv_ * kP * D_ * es_, KTailLayerElems() * es_);
  copy(v_tail_, size_t{1} * Hkv_ * vcap_ * D_ * es_, VTailLayerElems() * es_);
  copy(mirror_, size_t{2} * Hkv_ * S_ * D_ * es_, SinkLayerElems(pools_.num_tail_slots) * es_);
  mirror_block_[dst] = mirror_block_[src];
  mirror_gen_[dst] = mirror_gen_[src];
}

absl::Status CudaRunner::ReserveActivations(int T, int R, size_t k_stage_elems,
                                            size_t v_stage_elems) {
  const int64_t H = c_.hidden_size, D = c_.head_dim, Hq = c_.num_heads, Hkv = c_.num_kv_heads,
                I = c_.intermediate_size, V = c_.vocab_size;
  RETURN_IF_ERROR(x_.Reserve(T * H * 4, "activations"));
  RETURN_IF_ERROR(h_.Reserve(T * std::max(H, Hq * D) * es_, "activations"));
  RETURN_IF_ERROR(qkv_.Reserve(T * (Hq + 2 * Hkv) * D * 4, "activations"));
  RETURN_IF_ERROR(q_.Reserve(T * Hq * D * es_, "activations"));
  RETURN_IF_ERROR(knew_.Reserve(T * Hkv * D * es_, "activations"));
  RETURN_IF_ERROR(vnew_.Reserve(T * Hkv * D * es_, "activations"));
  RETURN_IF_ERROR(attn_.Reserve(T * Hq * D * es_, "activations"));
  RETURN_IF_ERROR(gu_.Reserve(T * 2 * I * es_, "activations"));
  RETURN_IF_ERROR(act_.Reserve(T * I * es_, "activations"));
  RETURN_IF_ERROR(cos_sin_.Reserve(T * D * 4, "activations"));
  RETURN_IF_ERROR(logits_.Reserve(int64_t{R} * V * 4, "logits"));
  RETURN_IF_ERROR(kstage_.Reserve(std::max<size_t>(k_stage_elems * es_, 16), "K staging"));
  RETURN_IF_ERROR(vstage_.Reserve(std::max<size_t>(v_stage_elems * es_, 16), "V staging"));
  return absl::OkStatus();
}

absl::Status CudaRunner::Attention(int layer, const kc::KittyAttentionBatch& b, bool decode_kernel,
                                   const kc::KittyQueryGroups& groups,
                                   const kc::KittyQueryGroups& tiles, void* ws, size_t ws_bytes,
                                   const kc::KittySplitPlan& plan) {
  (void)layer;
  if (use_kitty_) {
    if (tiles.num_groups > 0) {
      RETURN_IF_ERROR(kc::KittyPrefillAttention(spec_, dt_, c_.num_heads, b, tiles, stream_));
    }
    if (!decode_kernel) return absl::OkStatus();
    return kc::KittyAttention(spec_, dt_, c_.num_heads, b, plan, ws, ws_bytes, stream_, groups);
  }
  return kc::GenericAttention(geo_, dt_, b, stream_);
}

absl::Status CudaRunner::Pack(bool k, const kc::KittyPackJob* jobs, int n) {
  if (n == 0) return absl::OkStatus();
  if (use_kitty_pack_) {
    return k ? kc::KittyPackK(spec_, dt_, jobs, n, stream_)
             : kc::KittyPackV(spec_, dt_, jobs, n, stream_);
  }
  return k ? kc::GenericPackK(geo_, dt_, jobs, n, stream_)
           : kc::GenericPackV(geo_, dt_, jobs, n, stream_);
}

absl::Status CudaRunner::Run(absl::Span<const SequenceStep> batch,
                             const absl::Span<const RowSampling>* rows,
                             std::vector<RowSample>* samples, std::vector<float>* logits) {
  if (!kv_ready_) return absl::FailedPreconditionError("CUDA runner: AllocateKv first");
  bool decode_only = true;
  for (const SequenceStep& st : batch) decode_only = decode_only && st.token_ids.size() == 1;
  profiler_.BeginStep(stream_, decode_only ? "decode" : "prefill");
  const int H = c_.hidden_size, D = c_.head_dim, Hq = c_.num_heads, Hkv = c_.num_kv_heads,
            I = c_.intermediate_size, V = c_.vocab_size, L = c_.num_layers;
  const int qdim = Hq * D;
  const int B = static_cast<int>(batch.size());

  // ---- host plan ----
  struct SeqPlan {
    SeqKvCounters c0, c1;
    int row0 = 0, n = 0, n_sink = 0, nn = 0, sealed_k = 0, sealed_v = 0;
    int64_t kst = -1, vst = -1;  // staging element offsets (-1: none)
    int lk = 0, lv = 0;          // staged stream lengths
  };
  std::vector<SeqPlan> sp(B);
  std::vector<int32_t> ids, pos, rows_out;
  int64_t max_item_tokens = 1;
  size_t kst_elems = 0, vst_elems = 0;
  for (int s = 0; s < B; ++s) {
    const SequenceStep& st = batch[s];
    if (st.kv == nullptr) return absl::InvalidArgumentError("SequenceStep without kv slots");
    const SequenceKvSlots& kv = *st.kv;
    SeqPlan& p = sp[s];
    p.c0 = kv.counters;
    p.n = static_cast<int>(st.token_ids.size());
    p.row0 = static_cast<int>(ids.size());
    if (p.n == 0) return absl::InvalidArgumentError("SequenceStep without tokens");
    const int64_t start = p.c0.num_tokens();
    if (start + p.n > c_.max_position_embeddings) {
      return absl::InvalidArgumentError(
          absl::StrFormat("sequence of %d tokens exceeds the model context of %d tokens",
                          start + p.n, c_.max_position_embeddings));
    }
    for (int j = 0; j < p.n; ++j) {
      const int32_t id = st.token_ids[j];
      if (id < 0 || id >= V) {
        return absl::InvalidArgumentError(
            absl::StrFormat("token id %d is out of range [0, %d)", id, V));
      }
      ids.push_back(id);
      pos.push_back(static_cast<int32_t>(start + j));
    }
    max_item_tokens = std::max<int64_t>(max_item_tokens, start + p.n);
    p.c1 = kernels::AdvanceKvCounters(spec_, p.c0, p.n);
    if (kv.sink_block < 0 || kv.sink_block >= pools_.num_sink_blocks || kv.tail_slot < 0 ||
        kv.tail_slot >= pools_.num_tail_slots ||
        static_cast<int>(kv.k_pages.size()) < p.c1.num_k_pages ||
        static_cast<int>(kv.v_pages.size()) < p.c1.num_v_pages) {
      return absl::InvalidArgumentError(
          absl::StrCat("sequence ", s, ": slots do not cover the step (sink ", kv.sink_block,
                       ", tail ", kv.tail_slot, ", ", kv.k_pages.size(), "/", p.c1.num_k_pages,
                       " K pages, ", kv.v_pages.size(), "/", p.c1.num_v_pages, " V pages)"));
    }
    for (int32_t id : kv.k_pages) {
      if (id < 0 || id >= pools_.num_k_pages) return absl::InvalidArgumentError("bad K page id");
    }
    for (int32_t id : kv.v_pages) {
      if (id < 0 || id >= pools_.num_v_pages) return absl::InvalidArgumentError("bad V page id");
    }
    p.n_sink = std::clamp(S_ - p.c0.sink_tokens, 0, p.n);
    p.nn = p.n - p.n_sink;
    p.sealed_k = p.c1.num_k_pages - p.c0.num_k_pages;
    p.sealed_v = p.c1.num_v_pages - p.c0.num_v_pages;
    p.lk = p.c0.k_tail_tokens + p.nn;
    p.lv = p.c0.v_tail_tokens + p.nn;
    // The AppendKv rule, replayed: what stays in the tails after the sealed pages.
    const int k_rest = p.sealed_k > 0 ? p.lk - kP * p.sealed_k : p.c0.k_tail_tokens + p.nn;
    const int v_rest = p.sealed_v > 0 ? p.lv - kP * p.sealed_v : p.c0.v_tail_tokens + p.nn;
    if (p.c1.sink_tokens != p.c0.sink_tokens + p.n_sink || p.c1.k_tail_tokens != k_rest ||
        p.c1.v_tail_tokens != v_rest || k_rest < 0 || v_rest < 0) {
      return absl::InternalError(
          absl::StrCat("KV append plan disagrees with AdvanceKvCounters for "
                       "sequence ",
                       s));
    }
    if (p.sealed_k > 0) {
      p.kst = static_cast<int64_t>(kst_elems);
      kst_elems += size_t{1} * Hkv * p.lk * D;
    }
    if (p.sealed_v > 0) {
      p.vst = static_cast<int64_t>(vst_elems);
      vst_elems += size_t{1} * Hkv * p.lv * D;
    }
    if (st.all_logits) {
      for (int j = 0; j < p.n; ++j) rows_out.push_back(p.row0 + j);
    } else {
      rows_out.push_back(p.row0 + p.n - 1);
    }
  }
  const int T = static_cast<int>(ids.size());
  const int R = static_cast<int>(rows_out.size());
  if (T == 0) return absl::InvalidArgumentError("empty forward step");

  // Device sampling: the rows to sample, their penalty tokens, and the rows to download.
  DeviceSamplingPlan sp_plan;
  if (rows != nullptr) {
    if (static_cast<int>(rows->size()) != R) {
      return absl::InvalidArgumentError(
          absl::StrCat("ForwardAndSample: ", rows->size(), " row plans for ", R, " output rows"));
    }
    sp_plan = PlanDeviceSampling(*rows);
  } else {
    for (int r = 0; r < R; ++r) sp_plan.host_rows.push_back(r);
  }
  const std::vector<kc::SampleRowParams>& sparams = sp_plan.params;
  const std::vector<kc::PenaltyToken>& penalties = sp_plan.penalties;
  const std::vector<int32_t>& host_rows = sp_plan.host_rows;
  const std::vector<int32_t>& sampled_rows = sp_plan.sampled_rows;
  // Decode steps of up to cuda_graph_max_batch sequences replay CUDA graphs of the dense parts
  // between two attentions (norms, GEMMs, epilogue, MLP), captured per padded batch size P: rows
  // [T, P) compute on stale activations that nothing reads (every op there is row-wise). The
  // step profiler's events need the eager path.
  const bool use_graphs = decode_only && B <= opt_.cuda_graph_max_batch && !profiler_.enabled();
  const int P = use_graphs ? kc::GraphBatchSize(B, opt_.cuda_graph_max_batch) : T;
  RETURN_IF_ERROR(ReserveActivations(P, R, kst_elems, vst_elems));
  if (use_graphs) {
    graphs_.Validate({x_.get(), h_.get(), qkv_.get(), q_.get(), knew_.get(), vnew_.get(),
                      attn_.get(), gu_.get(), act_.get(), cos_sin_.get()});
  }

  // Sink mirrors that must be refreshed from the pool before the step.
  const size_t sink_unit = size_t{2} * Hkv_ * S_ * D_ * es_;
  const size_t sink_pitch = SinkLayerElems(pools_.num_sink_blocks) * es_;
  const size_t mirror_pitch = SinkLayerElems(pools_.num_tail_slots) * es_;
  for (int s = 0; s < B; ++s) {
    const SequenceKvSlots& kv = *batch[s].kv;
    const SeqPlan& p = sp[s];
    const int32_t blk = kv.sink_block, slot = kv.tail_slot;
    if (p.c0.sink_tokens > 0 &&
        (mirror_block_[slot] != blk || mirror_gen_[slot] != sink_gen_[blk])) {
      RETURN_IF_ERROR(
          CudaStatus(cudaMemcpy2DAsync(mirror_.as<uint8_t>() + slot * sink_unit, mirror_pitch,
                                       sink_.as<uint8_t>() + blk * sink_unit, sink_pitch, sink_unit,
                                       L, cudaMemcpyDeviceToDevice, stream_),
                     "sink mirror refresh"));
    }
    if (p.n_sink > 0) ++sink_gen_[blk];
    mirror_block_[slot] = blk;
    mirror_gen_[slot] = sink_gen_[blk];
  }

  // Descriptors, page ids, query items.
  std::vector<kc::KittySeqDesc> seqs(B);
  std::vector<int32_t> kids, vids;
  std::vector<kc::KittyQueryItem> items;
  items.reserve(T);
  for (int s = 0; s < B; ++s) {
    const SequenceKvSlots& kv = *batch[s].kv;
    const SeqPlan& p = sp[s];
    kc::KittySeqDesc& d = seqs[s];
    d.slot = kv.tail_slot;
    d.sink_tokens = p.c0.sink_tokens;
    d.num_k_pages = p.c0.num_k_pages;
    d.k_tail_tokens = p.c0.k_tail_tokens;
    d.num_v_pages = p.c0.num_v_pages;
    d.v_tail_tokens = p.c0.v_tail_tokens;
    d.page_offset = static_cast<int32_t>(kids.size());
    const size_t np = std::max(kv.k_pages.size(), kv.v_pages.size());
    for (size_t i = 0; i < np; ++i) {
      kids.push_back(i < kv.k_pages.size() ? kv.k_pages[i] : 0);
      vids.push_back(i < kv.v_pages.size() ? kv.v_pages[i] : 0);
    }
    for (int j = 0; j < p.n; ++j) items.push_back({s, j + 1, p.row0, 0});
  }
  if (kids.empty()) {
    kids.push_back(0);
    vids.push_back(0);
  }

  // KV append: copy segments (phase 1 before the packs, phase 2 after) and pack jobs.
  const int64_t row_elems = int64_t{Hkv} * D;  // one token row of k_new / v_new
  const int64_t sink_layer = SinkLayerElems(pools_.num_sink_blocks);
  const int64_t mirror_layer = SinkLayerElems(pools_.num_tail_slots);
  const int64_t kt_layer = KTailLayerElems(), vt_layer = VTailLayerElems();
  auto el = [&](const DeviceBuffer& b, int64_t elems) {
    return static_cast<uint8_t*>(b.get()) + elems * es_;
  };
  std::vector<kc::KvCopySegment> seg1, seg2;
  std::vector<kc::KittyPackJob> kjobs, vjobs;  // [L][nk], [L][nv]
  int blocks1 = 0, blocks2 = 0;                // copy blocks of seg1, seg2
  auto from_new = [&](const DeviceBuffer& nb, int row) {
    kc::KvCopySegment sg;
    sg.src = el(nb, row * row_elems);
    sg.src_layer_stride = 0;
    sg.src_head_stride = D;
    sg.src_token_stride = row_elems;
    return sg;
  };
  int nk_jobs = 0, nv_jobs = 0;
  for (const SeqPlan& p : sp) {
    nk_jobs += p.sealed_k;
    nv_jobs += p.sealed_v;
  }
  kjobs.resize(size_t{1} * L * nk_jobs);
  vjobs.resize(size_t{1} * L * nv_jobs);
  int kj = 0, vj = 0;
  for (int s = 0; s < B; ++s) {
    const SequenceKvSlots& kv = *batch[s].kv;
    const SeqPlan& p = sp[s];
    const int64_t slot = kv.tail_slot;
    // Sink fill (pool and mirror), K then V.
    for (int kvsel = 0; kvsel < 2; ++kvsel) {
      const DeviceBuffer& nb = kvsel == 0 ? knew_ : vnew_;
      for (int target = 0; target < 2; ++target) {
        kc::KvCopySegment sg = from_new(nb, p.row0);
        const int64_t unit = target == 0 ? int64_t{kv.sink_block} : slot;
        sg.dst = el(target == 0 ? sink_ : mirror_,
                    (unit * 2 + kvsel) * Hkv * S_ * D + int64_t{p.c0.sink_tokens} * D);
        sg.dst_layer_stride = target == 0 ? sink_layer : mirror_layer;
        sg.dst_head_stride = int64_t{S_} * D;
        sg.dst_token_stride = D;
        sg.rows = p.n_sink;
        kc::AppendKvCopySegment(&seg1, &blocks1, sg);
      }
    }
    // K and V tails.
    for (int kvsel = 0; kvsel < 2; ++kvsel) {
      const bool isk = kvsel == 0;
      const DeviceBuffer& nb = isk ? knew_ : vnew_;
      const DeviceBuffer& tail = isk ? k_tail_ : v_tail_;
      const int cap = isk ? kP : vcap_;
      const int64_t t_layer = isk ? kt_layer : vt_layer;
      const int64_t t_base = slot * Hkv * cap * D;
      const int old = isk ? p.c0.k_tail_tokens : p.c0.v_tail_tokens;
      const int sealed = isk ? p.sealed_k : p.sealed_v;
      const int len = isk ? p.lk : p.lv;
      if (sealed == 0) {
        kc::KvCopySegment sg = from_new(nb, p.row0 + p.n_sink);
        sg.dst = el(tail, t_base + int64_t{old} * D);
        sg.dst_layer_stride = t_layer;
        sg.dst_head_stride = int64_t{cap} * D;
        sg.dst_token_stride = D;
        sg.rows = p.nn;
        kc::AppendKvCopySegment(&seg1, &blocks1, sg);
        continue;
      }
      const DeviceBuffer& stage = isk ? kstage_ : vstage_;
      const int64_t st_base = isk ? p.kst : p.vst;
      // Old tail → staging rows [0, old).
      kc::KvCopySegment a;
      a.src = el(tail, t_base);
      a.src_layer_stride = t_layer;
      a.src_head_stride = int64_t{cap} * D;
      a.src_token_stride = D;
      a.dst = el(stage, st_base);
      a.dst_layer_stride = 0;
      a.dst_head_stride = int64_t{len} * D;
      a.dst_token_stride = D;
      a.rows = old;
      kc::AppendKvCopySegment(&seg1, &blocks1, a);
      // New rows → staging rows [old, len).
      kc::KvCopySegment b = from_new(nb, p.row0 + p.n_sink);
      b.dst = el(stage, st_base + int64_t{old} * D);
      b.dst_layer_stride = 0;
      b.dst_head_stride = int64_t{len} * D;
      b.dst_token_stride = D;
      b.rows = p.nn;
      kc::AppendKvCopySegment(&seg1, &blocks1, b);
      // Sealed pages from staging.
      const int first = isk ? p.c0.num_k_pages : p.c0.num_v_pages;
      const DeviceBuffer& pages = isk ? k_pages_ : v_pages_;
      const int64_t page_bytes = isk ? geo_.k_page_bytes : geo_.v_page_bytes;
      const int64_t npages = isk ? pools_.num_k_pages : pools_.num_v_pages;
      for (int j = 0; j < sealed; ++j) {
        const int32_t page = isk ? kv.k_pages[first + j] : kv.v_pages[first + j];
        for (int l = 0; l < L; ++l) {
          kc::KittyPackJob job;
          job.src = el(stage, st_base + int64_t{j} * kP * D);
          job.dst = pages.as<uint8_t>() + (int64_t{l} * npages + page) * page_bytes;
          job.head_stride = int64_t{len} * D;
          job.token_stride = D;
          if (isk) {
            kjobs[size_t{1} * l * nk_jobs + kj + j] = job;
          } else {
            vjobs[size_t{1} * l * nv_jobs + vj + j] = job;
          }
        }
      }
      if (isk) {
        kj += sealed;
      } else {
        vj += sealed;
      }
      // The rest of the stream → the tail rows [0, len - 128*sealed).
      kc::KvCopySegment c;
      c.src = el(stage, st_base + int64_t{sealed} * kP * D);
      c.src_layer_stride = 0;
      c.src_head_stride = int64_t{len} * D;
      c.src_token_stride = D;
      c.dst = el(tail, t_base);
      c.dst_layer_stride = t_layer;
      c.dst_head_stride = int64_t{cap} * D;
      c.dst_token_stride = D;
      c.rows = len - kP * sealed;
      kc::AppendKvCopySegment(&seg2, &blocks2, c);
    }
  }

  // ---- upload metadata ----
  MetaBuilder mb;
  const size_t o_ids = mb.Put(ids), o_pos = mb.Put(pos), o_rows = mb.Put(rows_out);
  const size_t o_seqs = mb.Put(seqs), o_kids = mb.Put(kids), o_vids = mb.Put(vids);
  const size_t o_items = mb.Put(items), o_seg1 = mb.Put(seg1), o_seg2 = mb.Put(seg2);
  const size_t o_kjobs = mb.Put(kjobs), o_vjobs = mb.Put(vjobs);
  const size_t o_sparams = mb.Put(sparams), o_pen = mb.Put(penalties);
  // Prefill chunks: runs of at least KITTY_PREFILL_MIN_RUN tokens of one chunk go to the
  // query-tiled prefill kernel (64 query rows per CTA); the other items (decode, short chunks)
  // share CTAs of the decode kernel, up to 8/g tokens each. Default 256 for quantized modes and
  // 128 for auto (H200, llama3-8b shapes, docs/PERFORMANCE.md: at 128-token chunks the tiles are
  // 1.22x the query groups in auto, 0.75x in kitty-pro, whose 8 tiles x 8 KV heads fill half
  // the SMs; from 256 tokens up they win in every mode). A/B: KITTY_PREFILL_MIN_RUN=0 turns the
  // tiles off, KITTY_ATTN_GROUPS=0 keeps one token per decode-kernel CTA.
  static const bool group_env = [] {
    const char* e = std::getenv("KITTY_ATTN_GROUPS");
    return e == nullptr || std::atoi(e) != 0;
  }();
  static const int min_run_env = [] {  // -1: not set
    const char* e = std::getenv("KITTY_PREFILL_MIN_RUN");
    if (e == nullptr) return -1;
    const int v = std::atoi(e);
    return v > 0 ? v : std::numeric_limits<int>::max();
  }();
  const int min_run = min_run_env > 0 ? min_run_env : (geo_.quantized ? 256 : 128);
  kc::QueryPartition part;
  if (use_kitty_ && static_cast<int>(items.size()) > B) {
    part = kc::PartitionQueryItems(items, Hq / Hkv, min_run);
    if (!group_env) {
      std::vector<kc::KittyQueryGroup> singles;
      for (const kc::KittyQueryGroup& gr : part.groups)
        for (int i = 0; i < gr.num_items; ++i) singles.push_back({gr.first_item + i, 1});
      part.groups = std::move(singles);
    }
  }
  const size_t o_groups = mb.Put(part.groups), o_tiles = mb.Put(part.tiles);
  // The attention's split plan, and in stream mode its piece table (uploaded with the rest).
  kc::KittySplitPlan plan;
  std::vector<int32_t> stream_ints;
  if (use_kitty_) {
    ASSIGN_OR_RETURN(plan, kc::MakeKittyAttentionPlan(spec_, dt_, Hq, T, max_item_tokens));
    ASSIGN_OR_RETURN(stream_ints, kc::KittyStreamPlan(plan, Hkv, items, seqs));
  }
  const size_t o_stream = mb.Put(stream_ints);
  const size_t meta_bytes = mb.bytes().size();
  RETURN_IF_ERROR(meta_.Reserve(meta_bytes, "step metadata"));
  RETURN_IF_ERROR(meta_host_.Reserve(meta_bytes, "step metadata"));
  std::memcpy(meta_host_.get(), mb.bytes().data(), meta_bytes);
  RETURN_IF_ERROR(CudaStatus(
      cudaMemcpyAsync(meta_.get(), meta_host_.get(), meta_bytes, cudaMemcpyHostToDevice, stream_),
      "metadata upload"));
  uint8_t* md = meta_.as<uint8_t>();
  auto dev = [&](size_t off) { return md + off; };
  const int32_t* d_ids = reinterpret_cast<const int32_t*>(dev(o_ids));
  const int32_t* d_pos = reinterpret_cast<const int32_t*>(dev(o_pos));
  const int32_t* d_rows = reinterpret_cast<const int32_t*>(dev(o_rows));
  const auto* d_seg1 = reinterpret_cast<const kc::KvCopySegment*>(dev(o_seg1));
  const auto* d_seg2 = reinterpret_cast<const kc::KvCopySegment*>(dev(o_seg2));
  const auto* d_kjobs = reinterpret_cast<const kc::KittyPackJob*>(dev(o_kjobs));
  const auto* d_vjobs = reinterpret_cast<const kc::KittyPackJob*>(dev(o_vjobs));

  // Attention batch (pools offset per layer below) and split plan.
  kc::KittyAttentionBatch ab;
  ab.seqs = reinterpret_cast<const kc::KittySeqDesc*>(dev(o_seqs));
  ab.k_page_ids = reinterpret_cast<const int32_t*>(dev(o_kids));
  ab.v_page_ids = reinterpret_cast<const int32_t*>(dev(o_vids));
  ab.items = reinterpret_cast<const kc::KittyQueryItem*>(dev(o_items));
  ab.num_items = T;
  ab.q = q_.get();
  ab.k_new = knew_.get();
  ab.v_new = vnew_.get();
  ab.out = attn_.get();
  ab.scale = 1.0f / std::sqrt(static_cast<float>(D));
  ab.max_item_tokens = max_item_tokens;
  // gq: the decode kernel's groups (default: every item alone); tq: the prefill tiles.
  kc::KittyQueryGroups gq, tq;
  const bool decode_kernel = part.tiles.empty() || !part.groups.empty();
  if (!part.tiles.empty()) {
    tq =
        kc::QueryGroupsView(part.tiles, reinterpret_cast<const kc::KittyQueryGroup*>(dev(o_tiles)));
  }
  if (!part.groups.empty() && (!part.tiles.empty() || part.groups.size() < items.size())) {
    gq = kc::QueryGroupsView(part.groups,
                             reinterpret_cast<const kc::KittyQueryGroup*>(dev(o_groups)));
  }
  if (use_kitty_) {
    if (!stream_ints.empty()) plan.stream_plan = reinterpret_cast<const int32_t*>(dev(o_stream));
    RETURN_IF_ERROR(attn_ws_.Reserve(plan.workspace_bytes, "attention workspace"));
  }

  // ---- the step ----
  const float eps = static_cast<float>(c_.rms_norm_eps);
  float* x = x_.as<float>();
  profiler_.Mark("host plan + upload");
  RETURN_IF_ERROR(kc::Embedding(dt_, embed_, d_ids, T, H, x, stream_));
  RETURN_IF_ERROR(kc::RopeTable(inv_freq_, d_pos, T, D / 2, cos_sin_.as<float>(), stream_));
  profiler_.Mark("embedding + rope");
  // The dense parts, on P rows: before layer l's attention (norm, q/k/v GEMM, epilogue) and
  // after it (o-proj, MLP). Piece i = after(i - 1) + before(i): what runs between attentions.
  auto before_attention = [&](int l) -> absl::Status {
    const LayerW& w = layers_[l];
    RETURN_IF_ERROR(
        kc::RmsNorm(dt_, x, nullptr, nullptr, w.attn_norm, P, H, eps, h_.get(), stream_));
    RETURN_IF_ERROR(gemm_->Linear(dt_, h_.get(), P, H, w.wqkv, (Hq + 2 * Hkv) * D, DType::kFloat32,
                                  qkv_.get()));
    profiler_.Mark("norm + qkv gemm");
    RETURN_IF_ERROR(kc::QkvEpilogue(dt_, qkv_.as<float>(), w.bqkv, w.q_norm, w.k_norm, eps,
                                    cos_sin_.as<float>(), P, Hq, Hkv, D, q_.get(), knew_.get(),
                                    vnew_.get(), stream_));
    profiler_.Mark("qkv epilogue");
    return absl::OkStatus();
  };
  auto after_attention = [&](int l) -> absl::Status {
    const LayerW& w = layers_[l];
    RETURN_IF_ERROR(gemm_->Linear(dt_, attn_.get(), P, qdim, w.wo, H, DType::kFloat32, x, 1.0f));
    profiler_.Mark("o-proj gemm");
    RETURN_IF_ERROR(
        kc::RmsNorm(dt_, x, nullptr, nullptr, w.ffn_norm, P, H, eps, h_.get(), stream_));
    RETURN_IF_ERROR(gemm_->Linear(dt_, h_.get(), P, H, w.w_gate_up, 2 * I, dt_, gu_.get()));
    RETURN_IF_ERROR(kc::SiluMul(dt_, gu_.get(), P, I, act_.get(), stream_));
    RETURN_IF_ERROR(gemm_->Linear(dt_, act_.get(), P, I, w.w_down, H, DType::kFloat32, x, 1.0f));
    profiler_.Mark("mlp (norm, gemms, silu)");
    return absl::OkStatus();
  };
  auto dense_piece = [&](int i) -> absl::Status {
    if (i > 0) RETURN_IF_ERROR(after_attention(i - 1));
    if (i < L) RETURN_IF_ERROR(before_attention(i));
    return absl::OkStatus();
  };
  auto run_piece = [&](int i) -> absl::Status {
    if (!use_graphs) return dense_piece(i);
    return graphs_.Run(P, i, stream_, [&] { return dense_piece(i); });
  };
  if (use_graphs) {
    // Time the pieces' GEMM shapes before a graph captures them (GemmTuner never times while
    // the stream captures); no-op once they are tuned.
    const LayerW& w = layers_[0];
    RETURN_IF_ERROR(gemm_->Prepare(dt_, h_.get(), P, H, w.wqkv, (Hq + 2 * Hkv) * D, DType::kFloat32,
                                   qkv_.get()));
    RETURN_IF_ERROR(gemm_->Prepare(dt_, attn_.get(), P, qdim, w.wo, H, DType::kFloat32, x, 1.0f));
    RETURN_IF_ERROR(gemm_->Prepare(dt_, h_.get(), P, H, w.w_gate_up, 2 * I, dt_, gu_.get()));
    RETURN_IF_ERROR(gemm_->Prepare(dt_, act_.get(), P, I, w.w_down, H, DType::kFloat32, x, 1.0f));
  }
  RETURN_IF_ERROR(run_piece(0));
  for (int l = 0; l < L; ++l) {
    ab.pools.k_pages = k_pages_.as<uint8_t>() + int64_t{l} * pools_.num_k_pages * geo_.k_page_bytes;
    ab.pools.v_pages = v_pages_.as<uint8_t>() + int64_t{l} * pools_.num_v_pages * geo_.v_page_bytes;
    ab.pools.sink = el(mirror_, int64_t{l} * mirror_layer);
    ab.pools.k_tail = el(k_tail_, int64_t{l} * kt_layer);
    ab.pools.v_tail = el(v_tail_, int64_t{l} * vt_layer);
    RETURN_IF_ERROR(
        Attention(l, ab, decode_kernel, gq, tq, attn_ws_.get(), attn_ws_.bytes(), plan));
    profiler_.Mark("attention");
    RETURN_IF_ERROR(kc::KvCopySegments(dt_, d_seg1, static_cast<int>(seg1.size()), blocks1, l, Hkv,
                                       D, stream_));
    RETURN_IF_ERROR(Pack(true, d_kjobs + size_t{1} * l * nk_jobs, nk_jobs));
    RETURN_IF_ERROR(Pack(false, d_vjobs + size_t{1} * l * nv_jobs, nv_jobs));
    RETURN_IF_ERROR(kc::KvCopySegments(dt_, d_seg2, static_cast<int>(seg2.size()), blocks2, l, Hkv,
                                       D, stream_));
    profiler_.Mark("kv append + pack");
    RETURN_IF_ERROR(run_piece(l + 1));
  }
  RETURN_IF_ERROR(kc::RmsNorm(dt_, x, nullptr, d_rows, final_norm_, R, H, eps, h_.get(), stream_));
  RETURN_IF_ERROR(gemm_->Linear(dt_, h_.get(), R, H, lm_head_, V, DType::kFloat32, logits_.get()));
  profiler_.Mark("lm_head");
  const int NS = static_cast<int>(sparams.size());
  if (NS > 0) {
    const size_t sbytes = sizeof(kc::SampleRowResult) * NS;
    RETURN_IF_ERROR(sample_out_.Reserve(sbytes, "sampling results"));
    RETURN_IF_ERROR(sample_host_.Reserve(sbytes, "sampling results"));
    auto* d_pen = reinterpret_cast<kc::PenaltyToken*>(dev(o_pen));
    RETURN_IF_ERROR(kc::SampleRows(logits_.as<float>(), V,
                                   reinterpret_cast<const kc::SampleRowParams*>(dev(o_sparams)), NS,
                                   d_pen, sample_out_.as<kc::SampleRowResult>(), stream_));
    RETURN_IF_ERROR(CudaStatus(cudaMemcpyAsync(sample_host_.get(), sample_out_.get(), sbytes,
                                               cudaMemcpyDeviceToHost, stream_),
                               "sampling results download"));
    profiler_.Mark("sampling");
  }
  const size_t row_bytes = size_t{1} * V * 4;
  const size_t lbytes = row_bytes * host_rows.size();
  if (lbytes > 0) {
    RETURN_IF_ERROR(logits_host_.Reserve(lbytes, "logits"));
    uint8_t* dst = logits_host_.as<uint8_t>();
    const uint8_t* src = logits_.as<uint8_t>();
    // Consecutive runs of rows in one copy each.
    for (size_t i = 0; i < host_rows.size();) {
      size_t j = i + 1;
      while (j < host_rows.size() && host_rows[j] == host_rows[j - 1] + 1) ++j;
      RETURN_IF_ERROR(CudaStatus(
          cudaMemcpyAsync(dst + i * row_bytes, src + size_t{1} * host_rows[i] * row_bytes,
                          (j - i) * row_bytes, cudaMemcpyDeviceToHost, stream_),
          "logits download"));
      i = j;
    }
  }
  RETURN_IF_ERROR(CudaStatus(cudaStreamSynchronize(stream_), "forward step"));
  profiler_.Mark("downloads + sync");
  profiler_.EndStep();
  logits->resize(lbytes / 4);
  if (lbytes > 0) std::memcpy(logits->data(), logits_host_.get(), lbytes);
  if (rows != nullptr) {
    samples->assign(R, RowSample{});
    const auto* res = sample_host_.as<kc::SampleRowResult>();
    for (int k = 0; k < NS; ++k) {
      RowSample& o = (*samples)[sampled_rows[k]];
      o.token_id = res[k].token;
      o.logprob = res[k].logprob;
      for (int t = 0; t < res[k].num_top; ++t) {
        o.top.emplace_back(res[k].top_ids[t], res[k].top_logprobs[t]);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

bool CudaDeviceAvailable() { return kc::CudaDeviceAvailable(); }

DeviceSamplingPlan PlanDeviceSampling(absl::Span<const RowSampling> rows) {
  DeviceSamplingPlan p;
  for (int r = 0; r < static_cast<int>(rows.size()); ++r) {
    const RowSampling& rs = rows[r];
    if (rs.where == RowSampling::Where::kHost) p.host_rows.push_back(r);
    if (rs.where != RowSampling::Where::kDevice) continue;
    kc::SampleRowParams q;
    q.row = r;
    q.num_logprobs = std::clamp(rs.num_logprobs, 0, kc::kMaxSampleLogprobs);
    q.temperature = rs.temperature;
    q.top_k = rs.top_k;
    q.top_p = rs.top_p;
    q.min_p = rs.min_p;
    q.uniform = rs.uniform;
    q.repetition_penalty = rs.repetition_penalty;
    q.presence_penalty = rs.presence_penalty;
    q.frequency_penalty = rs.frequency_penalty;
    q.penalty_offset = static_cast<int32_t>(p.penalties.size());
    q.num_penalty = static_cast<int32_t>(rs.penalty_tokens.size());
    for (const auto& [tok, cnt] : rs.penalty_tokens) {
      kc::PenaltyToken pt;
      pt.token = tok;
      pt.output_count = cnt;
      p.penalties.push_back(pt);
    }
    p.params.push_back(q);
    p.sampled_rows.push_back(r);
  }
  return p;
}

absl::StatusOr<std::unique_ptr<ModelRunner>> MakeCudaRunner(const LoadedModel& model,
                                                            const CudaRunnerOptions& options) {
  if (!CudaDeviceAvailable()) {
    return absl::FailedPreconditionError("--device cuda: no CUDA device is available");
  }
  auto r = std::make_unique<CudaRunner>(model, options);
  RETURN_IF_ERROR(r->Init());
  return std::unique_ptr<ModelRunner>(std::move(r));
}

absl::StatusOr<std::unique_ptr<ModelRunner>> MakeCudaRunner(const LoadedModel& model) {
  return MakeCudaRunner(model, CudaRunnerOptions{});
}

absl::StatusOr<std::unique_ptr<ModelRunner>> MakeCudaRunner(const LoadedModel& model,
                                                            int cuda_graph_max_batch) {
  CudaRunnerOptions o;
  o.cuda_graph_max_batch = cuda_graph_max_batch;
  return MakeCudaRunner(model, o);
}

}  // namespace kitty::models

#endif  // KITTY_HAVE_CUDA_RUNNER
