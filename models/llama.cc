#include "models/llama.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "kernels/cpu/ops.h"
#include "kernels/kitty/kv_format.h"

namespace kitty::models {
namespace {

using kernels::cpu::Gemm;

absl::Status ReadInto(const SafetensorsModel& st, const std::string& name,
                      std::vector<int64_t> shape, std::vector<float>* out) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  out->resize(n);
  return st.ReadFloat32(name, shape, out->data());
}

// Deterministic pseudo-random fill for builtin/synthetic weights (splitmix64 → uniform with
// the variance of N(0, std^2)).
void FillRandom(std::vector<float>* v, int64_t n, float std, uint64_t* state) {
  v->resize(n);
  const float a = std * std::sqrt(3.0f);
  for (int64_t i = 0; i < n; ++i) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    const float u = static_cast<float>(z >> 40) * (1.0f / 16777216.0f);  // [0,1)
    (*v)[i] = (2.0f * u - 1.0f) * a;
  }
}

void FillNorm(std::vector<float>* v, int64_t n, uint64_t* state) {
  FillRandom(v, n, 0.1f, state);
  for (float& x : *v) x += 1.0f;
}

}  // namespace

std::vector<float> RopeInverseFrequencies(const ModelConfig& c) {
  const int half = c.head_dim / 2;
  std::vector<float> inv(half);
  for (int i = 0; i < half; ++i) {
    // HF: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), evaluated in float32.
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(c.head_dim);
    inv[i] = 1.0f / std::pow(static_cast<float>(c.rope_theta), exponent);
  }
  if (c.rope_scaling.type == RopeScalingType::kLlama3) {
    const RopeScaling& s = c.rope_scaling;
    const double old_ctx = s.original_max_position_embeddings;
    const double low_wavelen = old_ctx / s.low_freq_factor;
    const double high_wavelen = old_ctx / s.high_freq_factor;
    for (float& f : inv) {
      const double wavelen = 2.0 * std::numbers::pi / f;
      if (wavelen < high_wavelen) continue;
      if (wavelen > low_wavelen) {
        f = static_cast<float>(f / s.factor);
      } else {
        const double smooth =
            (old_ctx / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = static_cast<float>((1.0 - smooth) * f / s.factor + smooth * f);
      }
    }
  }
  return inv;
}

absl::StatusOr<std::unique_ptr<LlamaModel>> LlamaModel::Load(const ModelConfig& c,
                                                             const SafetensorsModel& st) {
  auto model = std::unique_ptr<LlamaModel>(new LlamaModel(c, RopeInverseFrequencies(c)));
  LlamaWeights& w = model->w_;
  const int64_t H = c.hidden_size, D = c.head_dim, Hq = c.num_heads, Hkv = c.num_kv_heads,
                I = c.intermediate_size, V = c.vocab_size;
  RETURN_IF_ERROR(ReadInto(st, "model.embed_tokens.weight", {V, H}, &w.embed));
  w.layers.resize(c.num_layers);
  for (int l = 0; l < c.num_layers; ++l) {
    LlamaLayerWeights& L = w.layers[l];
    const std::string p = absl::StrCat("model.layers.", l, ".");
    RETURN_IF_ERROR(ReadInto(st, p + "input_layernorm.weight", {H}, &L.attn_norm));
    RETURN_IF_ERROR(ReadInto(st, p + "self_attn.q_proj.weight", {Hq * D, H}, &L.wq));
    RETURN_IF_ERROR(ReadInto(st, p + "self_attn.k_proj.weight", {Hkv * D, H}, &L.wk));
    RETURN_IF_ERROR(ReadInto(st, p + "self_attn.v_proj.weight", {Hkv * D, H}, &L.wv));
    RETURN_IF_ERROR(ReadInto(st, p + "self_attn.o_proj.weight", {H, Hq * D}, &L.wo));
    if (c.attention_bias) {
      RETURN_IF_ERROR(ReadInto(st, p + "self_attn.q_proj.bias", {Hq * D}, &L.bq));
      RETURN_IF_ERROR(ReadInto(st, p + "self_attn.k_proj.bias", {Hkv * D}, &L.bk));
      RETURN_IF_ERROR(ReadInto(st, p + "self_attn.v_proj.bias", {Hkv * D}, &L.bv));
    }
    if (c.qk_norm) {
      RETURN_IF_ERROR(ReadInto(st, p + "self_attn.q_norm.weight", {D}, &L.q_norm));
      RETURN_IF_ERROR(ReadInto(st, p + "self_attn.k_norm.weight", {D}, &L.k_norm));
    }
    RETURN_IF_ERROR(ReadInto(st, p + "post_attention_layernorm.weight", {H}, &L.ffn_norm));
    RETURN_IF_ERROR(ReadInto(st, p + "mlp.gate_proj.weight", {I, H}, &L.w_gate));
    RETURN_IF_ERROR(ReadInto(st, p + "mlp.up_proj.weight", {I, H}, &L.w_up));
    RETURN_IF_ERROR(ReadInto(st, p + "mlp.down_proj.weight", {H, I}, &L.w_down));
  }
  RETURN_IF_ERROR(ReadInto(st, "model.norm.weight", {H}, &w.final_norm));
  if (!c.tie_word_embeddings) {
    RETURN_IF_ERROR(ReadInto(st, "lm_head.weight", {V, H}, &w.lm_head));
  }
  return model;
}

absl::StatusOr<std::unique_ptr<LlamaModel>> LlamaModel::Random(const ModelConfig& c,
                                                               uint64_t seed) {
  auto model = std::unique_ptr<LlamaModel>(new LlamaModel(c, RopeInverseFrequencies(c)));
  const int64_t params = [&] {
    const int64_t H = c.hidden_size, D = c.head_dim, Hq = c.num_heads, Hkv = c.num_kv_heads,
                  I = c.intermediate_size, V = c.vocab_size;
    const int64_t per_layer = 2 * H + (Hq + 2 * Hkv) * D * H + H * Hq * D + 3 * I * H;
    return V * H * (c.tie_word_embeddings ? 1 : 2) + c.num_layers * per_layer + H;
  }();
  if (params * 4 > (int64_t{16} << 30)) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "model %s has %.1fB parameters: too large for the CPU backend's float32 weights "
        "(use --device cuda)",
        c.architecture, params / 1e9));
  }
  LlamaWeights& w = model->w_;
  uint64_t s = seed;
  const int64_t H = c.hidden_size, D = c.head_dim, Hq = c.num_heads, Hkv = c.num_kv_heads,
                I = c.intermediate_size, V = c.vocab_size;
  const float in_h = 1.0f / std::sqrt(static_cast<float>(H));
  FillRandom(&w.embed, V * H, 1.0f, &s);
  w.layers.resize(c.num_layers);
  for (auto& L : w.layers) {
    FillNorm(&L.attn_norm, H, &s);
    FillRandom(&L.wq, Hq * D * H, in_h, &s);
    FillRandom(&L.wk, Hkv * D * H, in_h, &s);
    FillRandom(&L.wv, Hkv * D * H, in_h, &s);
    FillRandom(&L.wo, H * Hq * D, 1.0f / std::sqrt(static_cast<float>(Hq * D)), &s);
    if (c.attention_bias) {
      FillRandom(&L.bq, Hq * D, 0.1f, &s);
      FillRandom(&L.bk, Hkv * D, 0.1f, &s);
      FillRandom(&L.bv, Hkv * D, 0.1f, &s);
    }
    if (c.qk_norm) {
      FillNorm(&L.q_norm, D, &s);
      FillNorm(&L.k_norm, D, &s);
    }
    FillNorm(&L.ffn_norm, H, &s);
    FillRandom(&L.w_gate, I * H, in_h, &s);
    FillRandom(&L.w_up, I * H, in_h, &s);
    FillRandom(&L.w_down, H * I, 1.0f / std::sqrt(static_cast<float>(I)), &s);
  }
  FillNorm(&w.final_norm, H, &s);
  if (!c.tie_word_embeddings) FillRandom(&w.lm_head, V * H, 4.0f * in_h, &s);
  return model;
}

int64_t LlamaModel::num_parameters() const {
  int64_t n = w_.embed.size() + w_.final_norm.size() + w_.lm_head.size();
  for (const auto& L : w_.layers) {
    n += L.attn_norm.size() + L.wq.size() + L.wk.size() + L.wv.size() + L.bq.size() + L.bk.size() +
         L.bv.size() + L.q_norm.size() + L.k_norm.size() + L.wo.size() + L.ffn_norm.size() +
         L.w_gate.size() + L.w_up.size() + L.w_down.size();
  }
  return n;
}

absl::Status LlamaModel::Forward(absl::Span<const SequenceStep> batch, KvCache& cache,
                                 std::vector<float>* logits,
                                 std::vector<kernels::SeqKvCounters>* counters_after) const {
  namespace cpu = kernels::cpu;
  const ModelConfig& c = config_;
  const int H = c.hidden_size, D = c.head_dim, Hq = c.num_heads, Hkv = c.num_kv_heads,
            I = c.intermediate_size, V = c.vocab_size;
  const int qdim = Hq * D, kvdim = Hkv * D;
  const kernels::KvCacheSpec& spec = cache.spec();
  if (spec.head_dim != D || spec.num_kv_heads != Hkv || cache.num_layers() != c.num_layers) {
    return absl::InvalidArgumentError("KV cache shape does not match the model");
  }

  // Token layout of the step: sequence s owns rows [row0[s], row0[s] + n_s).
  const int num_seqs = static_cast<int>(batch.size());
  std::vector<int> row0(num_seqs + 1, 0);
  std::vector<int32_t> tokens;
  std::vector<int32_t> positions;
  for (int s = 0; s < num_seqs; ++s) {
    const SequenceStep& st = batch[s];
    const int32_t start = CachedTokens(spec, st.kv->counters);
    for (size_t j = 0; j < st.token_ids.size(); ++j) {
      const int32_t id = st.token_ids[j];
      if (id < 0 || id >= V) {
        return absl::InvalidArgumentError(
            absl::StrFormat("token id %d is out of range [0, %d)", id, V));
      }
      tokens.push_back(id);
      positions.push_back(start + static_cast<int32_t>(j));
    }
    if (start + static_cast<int64_t>(st.token_ids.size()) > c.max_position_embeddings) {
      return absl::InvalidArgumentError(
          absl::StrFormat("sequence of %d tokens exceeds the model context of %d tokens",
                          start + st.token_ids.size(), c.max_position_embeddings));
    }
    row0[s + 1] = row0[s] + static_cast<int>(st.token_ids.size());
  }
  const int T = row0[num_seqs];
  if (T == 0) return absl::InvalidArgumentError("empty forward step");

  std::vector<float> x(static_cast<size_t>(T) * H), h(static_cast<size_t>(T) * H);
  std::vector<float> q(static_cast<size_t>(T) * qdim), k(static_cast<size_t>(T) * kvdim),
      v(static_cast<size_t>(T) * kvdim), attn(static_cast<size_t>(T) * qdim);
  std::vector<float> gate(static_cast<size_t>(T) * I), up(static_cast<size_t>(T) * I);
  for (int t = 0; t < T; ++t) {
    std::copy_n(w_.embed.data() + static_cast<int64_t>(tokens[t]) * H, H, x.data() + t * H);
  }
  std::vector<float> cos_t, sin_t;
  cpu::RopeTables(inv_freq_, positions, &cos_t, &sin_t);
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const float eps = static_cast<float>(c.rms_norm_eps);
  std::vector<kernels::SeqKvCounters> after(num_seqs);

  for (int l = 0; l < c.num_layers; ++l) {
    const LlamaLayerWeights& L = w_.layers[l];
    cpu::RmsNorm(x.data(), L.attn_norm.data(), T, H, eps, h.data());
    Gemm(h.data(), L.wq.data(), T, qdim, H, q.data());
    Gemm(h.data(), L.wk.data(), T, kvdim, H, k.data());
    Gemm(h.data(), L.wv.data(), T, kvdim, H, v.data());
    if (c.attention_bias) {
      cpu::AddBias(q.data(), L.bq.data(), T, qdim);
      cpu::AddBias(k.data(), L.bk.data(), T, kvdim);
      cpu::AddBias(v.data(), L.bv.data(), T, kvdim);
    }
    if (c.qk_norm) {
      cpu::RmsNorm(q.data(), L.q_norm.data(), T * Hq, D, eps, q.data());
      cpu::RmsNorm(k.data(), L.k_norm.data(), T * Hkv, D, eps, k.data());
    }
    cpu::ApplyRope(q.data(), T, Hq, D, cos_t.data(), sin_t.data());
    cpu::ApplyRope(k.data(), T, Hkv, D, cos_t.data(), sin_t.data());

    // Attention, then the append that seals pages (insert → attend → quantize, KITTY §1.4).
#pragma omp parallel for schedule(dynamic, 1) if (num_seqs > 1)
    for (int s = 0; s < num_seqs; ++s) {
      const SequenceStep& st = batch[s];
      const int n = row0[s + 1] - row0[s];
      std::vector<const uint8_t*> kp, vp;
      const kernels::SeqKvView view = cache.View(l, *st.kv, &kp, &vp);
      kernels::AttendCpu(spec, view, Hq, q.data() + static_cast<int64_t>(row0[s]) * qdim,
                         k.data() + static_cast<int64_t>(row0[s]) * kvdim,
                         v.data() + static_cast<int64_t>(row0[s]) * kvdim, n, scale,
                         attn.data() + static_cast<int64_t>(row0[s]) * qdim);
      std::vector<uint8_t*> kpw, vpw;
      const kernels::SeqKvBuffers buf = cache.Buffers(l, *st.kv, &kpw, &vpw);
      const kernels::SeqKvCounters a = kernels::AppendKv(
          spec, st.kv->counters, buf, k.data() + static_cast<int64_t>(row0[s]) * kvdim,
          v.data() + static_cast<int64_t>(row0[s]) * kvdim, n);
      if (l == 0) after[s] = a;
    }
    Gemm(attn.data(), L.wo.data(), T, H, qdim, h.data());
    cpu::Add(x.data(), h.data(), static_cast<int64_t>(T) * H);

    cpu::RmsNorm(x.data(), L.ffn_norm.data(), T, H, eps, h.data());
    Gemm(h.data(), L.w_gate.data(), T, I, H, gate.data());
    Gemm(h.data(), L.w_up.data(), T, I, H, up.data());
    cpu::SiluMul(gate.data(), up.data(), static_cast<int64_t>(T) * I);
    Gemm(gate.data(), L.w_down.data(), T, H, I, h.data());
    cpu::Add(x.data(), h.data(), static_cast<int64_t>(T) * H);
  }

  // Logits for the requested rows.
  std::vector<int> rows;
  for (int s = 0; s < num_seqs; ++s) {
    if (batch[s].all_logits) {
      for (int r = row0[s]; r < row0[s + 1]; ++r) rows.push_back(r);
    } else {
      rows.push_back(row0[s + 1] - 1);
    }
  }
  const int R = static_cast<int>(rows.size());
  std::vector<float> hr(static_cast<size_t>(R) * H);
  for (int i = 0; i < R; ++i) {
    std::copy_n(x.data() + static_cast<int64_t>(rows[i]) * H, H, hr.data() + i * H);
  }
  cpu::RmsNorm(hr.data(), w_.final_norm.data(), R, H, eps, hr.data());
  logits->resize(static_cast<size_t>(R) * V);
  const float* head = w_.lm_head.empty() ? w_.embed.data() : w_.lm_head.data();
  Gemm(hr.data(), head, R, V, H, logits->data());
  if (counters_after != nullptr) *counters_after = std::move(after);
  return absl::OkStatus();
}

}  // namespace kitty::models
