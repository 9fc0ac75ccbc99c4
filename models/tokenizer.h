// File: models/tokenizer.h
// -----------------------------------------------------------------------------
// HuggingFace `tokenizer.json` tokenizers (the subset that Llama-family models use) and a
// streaming detokenizer.
//
// Supported pipeline pieces (anything else is rejected at load time with kUnimplemented):
//   model:          BPE (byte-level or SentencePiece-style; merges as "a b" strings or [a, b]
//                   pairs; ignore_merges, byte_fallback (<0xXX> pieces), unk_token, fuse_unk,
//                   continuing_subword_prefix, end_of_word_suffix). dropout is ignored.
//   normalizer:     NFC, Prepend, Replace (String or Regex), Strip, Sequence.
//   pre_tokenizer:  Split (String or Regex; Isolated / Removed / MergedWithPrevious /
//                   MergedWithNext / Contiguous; invert), ByteLevel, Metaspace, Digits,
//                   WhitespaceSplit, Sequence.
//   post_processor: TemplateProcessing (single), ByteLevel, BertProcessing, RobertaProcessing,
//                   Sequence.
//   decoder:        ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence.
//   added_tokens:   split out of the raw text before normalization (leftmost, then longest
//                   match), honouring lstrip / rstrip / single_word / normalized.
//
// Regex split patterns run on RE2, which differs from the Rust `regex`/`fancy-regex` crates:
//   * RE2 has no look-ahead. The pattern `\s+(?!\S)` (GPT-2 / Llama 3 / Qwen) is rewritten to a
//     capturing `(\s+)`; when that group matches a whitespace run of 2+ characters followed by a
//     non-space, the last character is given back, which is exactly what the look-ahead does.
//     Other look-arounds fail to load with kUnimplemented.
//   * RE2's `\s`/`\S` are ASCII-only; they are rewritten to Unicode White_Space, as in Rust.
//
// Deviation from HF: Decode keeps invalid UTF-8 (a byte-fallback or byte-level token sequence
// cut in the middle of a character) as raw bytes instead of U+FFFD, so that callers can stream;
// IncrementalDetokenizer always returns valid UTF-8.
//
// Thread safety: a loaded Tokenizer is immutable; all const methods may be called concurrently.
#ifndef KITTY_MODELS_TOKENIZER_H_
#define KITTY_MODELS_TOKENIZER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace kitty::models {

namespace tokenizer_internal {
class TokenizerImpl;
}  // namespace tokenizer_internal

class Tokenizer {
 public:
  // Loads a HuggingFace tokenizer.json. Errors name the file and the problem: kNotFound for a
  // missing file, kInvalidArgument for malformed JSON / fields, kUnimplemented for pipeline
  // components that are not supported.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromFile(const std::string& path);
  // Same, from the JSON text; `name` is used in error messages.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJson(std::string_view json,
                                                             const std::string& name);

  // The built-in byte tokenizer of the embedded `builtin:tiny` model: ids 0..255 are raw bytes,
  // 256 = BOS "<s>", 257 = EOS "</s>" (vocab 258). Encode maps every input byte to its id (the
  // text "<s>" is not split as a special token) and prepends BOS when add_special_tokens.
  static std::unique_ptr<Tokenizer> ByteLevelBuiltin();

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Tokenizes `text` exactly like HF tokenizers' `encode(text, add_special_tokens)`. Added /
  // special tokens appearing literally in `text` are always split out (HF default
  // split_special_tokens=false); add_special_tokens only controls the post-processor (BOS).
  std::vector<int32_t> Encode(std::string_view text, bool add_special_tokens) const;

  // Like HF `decode(ids, skip_special_tokens)`. Ids that are out of range are skipped. Invalid
  // UTF-8 in the result is kept as bytes (the incremental detokenizer handles streaming).
  std::string Decode(absl::Span<const int32_t> ids, bool skip_special_tokens) const;

  // max id + 1 over model vocab and added tokens.
  int32_t vocab_size() const;
  // The token the post-processor template puts first (e.g. `<s> $A`); failing that, an added
  // token (not a plain vocabulary piece) named <|begin_of_text|>, <s>, <bos> or <|startoftext|>.
  // nullopt if none (Qwen3).
  // Note that Encode only adds BOS when the post-processor does.
  std::optional<int32_t> bos_token_id() const;
  // The first of "</s>", "<|endoftext|>", "<|end_of_text|>", "<eos>", "<|eos|>" that is an added
  // token (model-vocabulary pieces with those spellings are ignored). Chat models may stop on
  // other tokens too (generation_config.json / tokenizer_config.json).
  std::optional<int32_t> eos_token_id() const;
  // True for added tokens flagged `special` (what skip_special_tokens removes).
  bool IsSpecial(int32_t id) const;
  // Added tokens first, then the model vocabulary (strings as stored, e.g. "Ġhello").
  std::optional<int32_t> TokenToId(std::string_view token) const;
  // The stored string of a token (added token or model vocabulary); nullopt if out of range.
  std::optional<std::string> IdToToken(int32_t id) const;

 private:
  explicit Tokenizer(std::unique_ptr<tokenizer_internal::TokenizerImpl> impl);
  std::unique_ptr<tokenizer_internal::TokenizerImpl> impl_;
};

// Streaming detokenizer: feed generated ids one by one; returns only complete, stable text
// (never half a UTF-8 character; handles SentencePiece leading-space stripping and byte-fallback
// pieces that form one character across several tokens). Same approach as HF TGI / vLLM: decode
// a window of prefix + new ids and emit the new suffix once it does not end in an incomplete
// UTF-8 sequence. The concatenation of all Append() results and Flush() equals
// Decode(generated ids) whenever that decode is valid UTF-8; every returned piece is valid UTF-8
// (invalid bytes become U+FFFD). `tok` must outlive this object. Not thread-safe.
class IncrementalDetokenizer {
 public:
  IncrementalDetokenizer(const Tokenizer& tok, absl::Span<const int32_t> prompt_ids,
                         bool skip_special_tokens);
  // Returns the newly stable text (may be empty).
  std::string Append(int32_t id);
  // Returns anything held back (an unfinished UTF-8 sequence, as U+FFFD).
  std::string Flush();

 private:
  const Tokenizer& tok_;
  const bool skip_special_tokens_;
  std::vector<int32_t> ids_;
  size_t prefix_offset_;
  size_t read_offset_;
};

// True if `s` is entirely valid UTF-8 (no overlong forms, surrogates or code points above
// U+10FFFF): what protobuf string fields require.
bool IsValidUtf8(std::string_view s);

}  // namespace kitty::models

#endif  // KITTY_MODELS_TOKENIZER_H_
