// File: models/tokenizer.cc
// -----------------------------------------------------------------------------
// The HF tokenizers pipeline: added-token split -> normalizer -> pre-tokenizer -> BPE model ->
// post-processor, and ids -> tokens -> decoder chain. Each stage mirrors the Rust crate
// (tokenizers 0.22) closely enough to reproduce its ids; see tokenizer.h for what is supported.
#include "models/tokenizer.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <deque>
#include <fstream>
#include <queue>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "base/status_macros.h"
#include "models/tokenizer_unicode.h"
#include "nlohmann/json.hpp"
#include "re2/re2.h"

namespace kitty::models {
namespace tokenizer_internal {
namespace {

using Json = nlohmann::json;

// Debian's Abseil is built without std::string_view aliasing, so convert at the boundary.
absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// ---- small helpers ----------------------------------------------------------------------------

// A loading error; the caller prefixes the file name.
absl::Status Invalid(std::string_view what) { return absl::InvalidArgumentError(Av(what)); }
absl::Status Unsupported(std::string_view what) { return absl::UnimplementedError(Av(what)); }

std::string GetString(const Json& j, const char* key, std::string dflt = "") {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : dflt;
}
bool GetBool(const Json& j, const char* key, bool dflt) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : dflt;
}
std::string TypeOf(const Json& j) { return j.is_object() ? GetString(j, "type") : ""; }

// Byte length of the UTF-8 character at s[i] (1 for an invalid byte).
size_t CharLen(std::string_view s, size_t i) {
  const size_t n = Utf8SeqLen(s, i);
  return n == 0 ? 1 : n;
}

// Byte offset of the start of the last character of non-empty s.
size_t LastCharStart(std::string_view s) {
  size_t i = s.size() - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80 && s.size() - i < 4) --i;
  return Utf8SeqLen(s, i) == s.size() - i ? i : s.size() - 1;
}

bool IsWhitespaceAt(std::string_view s, size_t i, size_t* len) {
  const size_t n = Utf8SeqLen(s, i);
  *len = n == 0 ? 1 : n;
  return n != 0 && IsUnicodeWhitespace(Utf8Decode(s, i, n));
}

// ---- regex ------------------------------------------------------------------------------------

// An RE2 translation of an HF (Oniguruma) split pattern. See tokenizer.h for the rewrites.
class SplitRegex {
 public:
  static absl::StatusOr<std::unique_ptr<SplitRegex>> Create(std::string_view pattern) {
    std::string pat(pattern);
    bool lookahead_ws = false;
    static constexpr std::string_view kLookahead = R"(\s+(?!\S))";
    if (size_t pos = pat.find(kLookahead); pos != std::string::npos) {
      pat.replace(pos, kLookahead.size(), R"((?P<kitty_ws>\s+))");
      lookahead_ws = true;
    }
    for (const char* la : {"(?=", "(?!", "(?<=", "(?<!"}) {
      if (pat.find(la) != std::string::npos) {
        return Unsupported(absl::StrCat("regex look-around is not supported: ", Av(pattern)));
      }
    }
    auto re = std::make_unique<RE2>(UnicodeWhitespace(pat), RE2::Quiet);
    if (!re->ok()) {
      return Invalid(absl::StrCat("cannot compile regex ", Av(pattern), ": ", re->error()));
    }
    auto out = std::unique_ptr<SplitRegex>(new SplitRegex());
    out->re_ = std::move(re);
    if (lookahead_ws) out->ws_group_ = out->re_->NamedCapturingGroups().at("kitty_ws");
    return out;
  }
  static std::unique_ptr<SplitRegex> Literal(std::string_view s) {
    auto out = std::unique_ptr<SplitRegex>(new SplitRegex());
    out->re_ = std::make_unique<RE2>(RE2::QuoteMeta(s));
    return out;
  }

  // Appends the [start, end) byte ranges of all non-empty, non-overlapping matches.
  void FindAll(std::string_view text, std::vector<std::pair<size_t, size_t>>* out) const {
    const int ngroups = ws_group_ + 1;
    std::vector<re2::StringPiece> groups(std::max(ngroups, 1));
    size_t pos = 0;
    while (pos <= text.size()) {
      if (!re_->Match(re2::StringPiece(text.data(), text.size()), pos, text.size(), RE2::UNANCHORED,
                      groups.data(), std::max(ngroups, 1))) {
        break;
      }
      size_t start = groups[0].data() - text.data();
      size_t end = start + groups[0].size();
      if (ws_group_ > 0 && groups[ws_group_].data() != nullptr) {
        // `\s+(?!\S)`: give back the last whitespace character when a non-space follows.
        const size_t g_start = groups[ws_group_].data() - text.data();
        const size_t g_end = g_start + groups[ws_group_].size();
        size_t next_len;
        if (g_end == end && g_end < text.size() && !IsWhitespaceAt(text, g_end, &next_len)) {
          const size_t last = g_start + LastCharStart(text.substr(g_start, g_end - g_start));
          if (last > g_start) end = last;
        }
      }
      if (end == start) {  // empty match: step over one character
        pos = start + (start < text.size() ? CharLen(text, start) : 1);
        continue;
      }
      out->emplace_back(start, end);
      pos = end;
    }
  }

 private:
  SplitRegex() = default;

  // Rewrites `\s` / `\S` to Unicode White_Space (RE2's are ASCII-only).
  static std::string UnicodeWhitespace(std::string_view p) {
    static constexpr std::string_view kWs = R"(\t-\r\x{85}\p{Z})";
    std::string out;
    bool in_class = false;
    size_t class_start = 0;
    for (size_t i = 0; i < p.size(); ++i) {
      const char c = p[i];
      if (c == '\\' && i + 1 < p.size()) {
        const char e = p[i + 1];
        ++i;
        if (e == 's') {
          out += in_class ? std::string(kWs) : absl::StrCat("[", Av(kWs), "]");
        } else if (e == 'S' && !in_class) {
          out += absl::StrCat("[^", Av(kWs), "]");
        } else {
          out += c;
          out += e;
        }
        continue;
      }
      if (!in_class && c == '[') {
        in_class = true;
        class_start = out.size() + 1;
        if (i + 1 < p.size() && p[i + 1] == '^') {
          out += "[^";
          ++i;
          class_start = out.size();
        } else {
          out += c;
        }
        continue;
      }
      if (in_class && c == ']' && out.size() > class_start) in_class = false;
      out += c;
    }
    return out;
  }

  std::unique_ptr<RE2> re_;
  int ws_group_ = -1;
};

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// HF NormalizedString::split on one piece.
void SplitPiece(const std::string& s, const SplitRegex& re, SplitBehavior behavior, bool invert,
                std::vector<std::string>* out) {
  std::vector<std::pair<size_t, size_t>> matches;
  re.FindAll(s, &matches);
  struct Span {
    size_t start, end;
    bool is_match;
  };
  std::vector<Span> spans;
  size_t prev = 0;
  for (const auto& [start, end] : matches) {
    if (prev != start) spans.push_back({prev, start, invert});
    spans.push_back({start, end, !invert});
    prev = end;
  }
  if (prev != s.size()) spans.push_back({prev, s.size(), invert});

  std::vector<Span> merged;
  switch (behavior) {
    case SplitBehavior::kIsolated:
      merged = std::move(spans);
      break;
    case SplitBehavior::kRemoved:
      for (const Span& sp : spans) {
        if (!sp.is_match) merged.push_back(sp);
      }
      break;
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Span& sp : spans) {
        if (sp.is_match && !previous_match && !merged.empty()) {
          merged.back().end = sp.end;
        } else {
          merged.push_back(sp);
        }
        previous_match = sp.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous_match = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !merged.empty()) {
          merged.back().start = it->start;
        } else {
          merged.push_back(*it);
        }
        previous_match = it->is_match;
      }
      std::reverse(merged.begin(), merged.end());
      break;
    }
    case SplitBehavior::kContiguous: {
      bool previous_match = false;
      for (const Span& sp : spans) {
        if (sp.is_match == previous_match && !merged.empty()) {
          merged.back().end = sp.end;
        } else {
          merged.push_back(sp);
        }
        previous_match = sp.is_match;
      }
      break;
    }
  }
  for (const Span& sp : merged) {
    if (sp.end > sp.start) out->push_back(s.substr(sp.start, sp.end - sp.start));
  }
}

absl::StatusOr<std::unique_ptr<SplitRegex>> ParsePattern(const Json& j) {
  if (j.is_object() && j.contains("Regex") && j["Regex"].is_string()) {
    return SplitRegex::Create(j["Regex"].get<std::string>());
  }
  if (j.is_object() && j.contains("String") && j["String"].is_string()) {
    return SplitRegex::Literal(j["String"].get<std::string>());
  }
  return Invalid("pattern must be {\"String\": ...} or {\"Regex\": ...}");
}

// ---- normalizers ------------------------------------------------------------------------------

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void Normalize(std::string* s) const = 0;
};

class NfcNormalizer : public Normalizer {
 public:
  void Normalize(std::string* s) const override { *s = NfcNormalize(*s); }
};

class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string p) : prepend_(std::move(p)) {}
  void Normalize(std::string* s) const override {
    if (!s->empty()) s->insert(0, prepend_);
  }

 private:
  std::string prepend_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(std::unique_ptr<SplitRegex> re, std::string literal, std::string content)
      : re_(std::move(re)), literal_(std::move(literal)), content_(std::move(content)) {}
  void Normalize(std::string* s) const override { *s = Apply(*s); }
  std::string Apply(const std::string& s) const {
    if (!literal_.empty()) return absl::StrReplaceAll(s, {{literal_, content_}});
    std::vector<std::pair<size_t, size_t>> matches;
    re_->FindAll(s, &matches);
    std::string out;
    size_t prev = 0;
    for (const auto& [start, end] : matches) {
      out.append(s, prev, start - prev);
      out += content_;
      prev = end;
    }
    out.append(s, prev, std::string::npos);
    return out;
  }

 private:
  std::unique_ptr<SplitRegex> re_;  // used when literal_ is empty
  std::string literal_;
  std::string content_;
};

class StripNormalizer : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void Normalize(std::string* s) const override {
    size_t begin = 0, end = s->size(), len;
    while (left_ && begin < end && IsWhitespaceAt(*s, begin, &len)) begin += len;
    while (right_ && end > begin) {
      const size_t last = LastCharStart(std::string_view(*s).substr(0, end));
      if (!IsWhitespaceAt(*s, last, &len)) break;
      end = last;
    }
    *s = s->substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> n) : n_(std::move(n)) {}
  void Normalize(std::string* s) const override {
    for (const auto& n : n_) n->Normalize(s);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> n_;
};

absl::StatusOr<std::unique_ptr<Normalizer>> ParseNormalizer(const Json& j) {
  const std::string type = TypeOf(j);
  if (type == "NFC") return std::make_unique<NfcNormalizer>();
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(GetString(j, "prepend"));
  if (type == "Replace") {
    const Json& p = j.contains("pattern") ? j["pattern"] : Json();
    std::string content = GetString(j, "content");
    if (p.is_object() && p.contains("String") && p["String"].is_string() &&
        !p["String"].get<std::string>().empty()) {
      return std::make_unique<ReplaceNormalizer>(nullptr, p["String"].get<std::string>(),
                                                 std::move(content));
    }
    ASSIGN_OR_RETURN(auto re, ParsePattern(p));
    return std::make_unique<ReplaceNormalizer>(std::move(re), "", std::move(content));
  }
  if (type == "Strip") {
    return std::make_unique<StripNormalizer>(GetBool(j, "strip_left", true),
                                             GetBool(j, "strip_right", true));
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> seq;
    if (!j.contains("normalizers") || !j["normalizers"].is_array()) {
      return Invalid("normalizer Sequence without a \"normalizers\" array");
    }
    for (const Json& n : j["normalizers"]) {
      ASSIGN_OR_RETURN(auto one, ParseNormalizer(n));
      seq.push_back(std::move(one));
    }
    return std::make_unique<SequenceNormalizer>(std::move(seq));
  }
  return Unsupported(absl::StrCat("unsupported normalizer type \"", type, "\""));
}

// ---- pre-tokenizers ---------------------------------------------------------------------------

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits / rewrites every piece in place. `at_text_start` is true when the first piece begins
  // at offset 0 of the original text (Metaspace prepend_scheme "first").
  virtual void PreTokenize(std::vector<std::string>* pieces, bool at_text_start) const = 0;
};

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(std::unique_ptr<SplitRegex> re, SplitBehavior b, bool invert)
      : re_(std::move(re)), behavior_(b), invert_(invert) {}
  void PreTokenize(std::vector<std::string>* pieces, bool) const override {
    std::vector<std::string> out;
    for (const std::string& p : *pieces) SplitPiece(p, *re_, behavior_, invert_, &out);
    *pieces = std::move(out);
  }

 private:
  std::unique_ptr<SplitRegex> re_;
  SplitBehavior behavior_;
  bool invert_;
};

constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::unique_ptr<SplitRegex> re)
      : add_prefix_space_(add_prefix_space), re_(std::move(re)) {}
  void PreTokenize(std::vector<std::string>* pieces, bool) const override {
    std::vector<std::string> split;
    for (std::string& p : *pieces) {
      if (add_prefix_space_ && !absl::StartsWith(p, " ")) p.insert(0, " ");
      if (re_ != nullptr) {
        SplitPiece(p, *re_, SplitBehavior::kIsolated, false, &split);
      } else {
        split.push_back(std::move(p));
      }
    }
    const auto& table = ByteToUnicode();
    for (std::string& p : split) {
      std::string mapped;
      mapped.reserve(p.size() * 2);
      for (char c : p) mapped += table[static_cast<unsigned char>(c)];
      p = std::move(mapped);
    }
    *pieces = std::move(split);
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<SplitRegex> re_;  // null when use_regex is false
};

class MetaspacePreTokenizer : public PreTokenizer {
 public:
  enum class Prepend { kAlways, kFirst, kNever };
  MetaspacePreTokenizer(std::string replacement, Prepend prepend, bool split)
      : replacement_(std::move(replacement)),
        prepend_(prepend),
        split_(split),
        re_(SplitRegex::Literal(replacement_)) {}
  void PreTokenize(std::vector<std::string>* pieces, bool at_text_start) const override {
    std::vector<std::string> out;
    for (size_t i = 0; i < pieces->size(); ++i) {
      std::string p = absl::StrReplaceAll((*pieces)[i], {{" ", replacement_}});
      const bool prepend =
          prepend_ == Prepend::kAlways || (prepend_ == Prepend::kFirst && i == 0 && at_text_start);
      if (prepend && !absl::StartsWith(p, replacement_)) p.insert(0, replacement_);
      if (split_) {
        SplitPiece(p, *re_, SplitBehavior::kMergedWithNext, false, &out);
      } else {
        out.push_back(std::move(p));
      }
    }
    *pieces = std::move(out);
  }

 private:
  std::string replacement_;
  Prepend prepend_;
  bool split_;
  std::unique_ptr<SplitRegex> re_;
};

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> p) : p_(std::move(p)) {}
  void PreTokenize(std::vector<std::string>* pieces, bool at_text_start) const override {
    for (const auto& p : p_) p->PreTokenize(pieces, at_text_start);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> p_;
};

absl::StatusOr<std::unique_ptr<PreTokenizer>> ParsePreTokenizer(const Json& j) {
  const std::string type = TypeOf(j);
  if (type == "Split") {
    ASSIGN_OR_RETURN(auto re, ParsePattern(j.contains("pattern") ? j["pattern"] : Json()));
    static const auto* const kBehaviors = new absl::flat_hash_map<std::string, SplitBehavior>{
        {"Removed", SplitBehavior::kRemoved},
        {"Isolated", SplitBehavior::kIsolated},
        {"MergedWithPrevious", SplitBehavior::kMergedWithPrevious},
        {"MergedWithNext", SplitBehavior::kMergedWithNext},
        {"Contiguous", SplitBehavior::kContiguous}};
    const std::string b = GetString(j, "behavior", "Isolated");
    auto it = kBehaviors->find(b);
    if (it == kBehaviors->end()) return Invalid(absl::StrCat("unknown Split behavior ", b));
    return std::make_unique<SplitPreTokenizer>(std::move(re), it->second,
                                               GetBool(j, "invert", false));
  }
  if (type == "ByteLevel") {
    std::unique_ptr<SplitRegex> re;
    if (GetBool(j, "use_regex", true)) {
      ASSIGN_OR_RETURN(re, SplitRegex::Create(kGpt2Pattern));
    }
    return std::make_unique<ByteLevelPreTokenizer>(GetBool(j, "add_prefix_space", true),
                                                   std::move(re));
  }
  if (type == "Metaspace") {
    std::string scheme = GetString(j, "prepend_scheme");
    if (scheme.empty()) scheme = GetBool(j, "add_prefix_space", true) ? "always" : "never";
    MetaspacePreTokenizer::Prepend prepend;
    if (scheme == "always") {
      prepend = MetaspacePreTokenizer::Prepend::kAlways;
    } else if (scheme == "first") {
      prepend = MetaspacePreTokenizer::Prepend::kFirst;
    } else if (scheme == "never") {
      prepend = MetaspacePreTokenizer::Prepend::kNever;
    } else {
      return Invalid(absl::StrCat("unknown Metaspace prepend_scheme ", scheme));
    }
    return std::make_unique<MetaspacePreTokenizer>(GetString(j, "replacement", "\u2581"), prepend,
                                                   GetBool(j, "split", true));
  }
  if (type == "Digits") {
    ASSIGN_OR_RETURN(
        auto re,
        SplitRegex::Create(GetBool(j, "individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)"));
    return std::make_unique<SplitPreTokenizer>(std::move(re), SplitBehavior::kIsolated, false);
  }
  if (type == "WhitespaceSplit") {
    ASSIGN_OR_RETURN(auto re, SplitRegex::Create(R"(\s+)"));
    return std::make_unique<SplitPreTokenizer>(std::move(re), SplitBehavior::kRemoved, false);
  }
  if (type == "Sequence") {
    if (!j.contains("pretokenizers") || !j["pretokenizers"].is_array()) {
      return Invalid("pre_tokenizer Sequence without a \"pretokenizers\" array");
    }
    std::vector<std::unique_ptr<PreTokenizer>> seq;
    for (const Json& p : j["pretokenizers"]) {
      ASSIGN_OR_RETURN(auto one, ParsePreTokenizer(p));
      seq.push_back(std::move(one));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(seq));
  }
  return Unsupported(absl::StrCat("unsupported pre_tokenizer type \"", type, "\""));
}

// ---- BPE model --------------------------------------------------------------------------------

class BpeModel {
 public:
  static absl::StatusOr<std::unique_ptr<BpeModel>> Parse(const Json& j) {
    auto m = std::make_unique<BpeModel>();
    if (!j.contains("vocab") || !j["vocab"].is_object()) {
      return Invalid("model.vocab must be an object");
    }
    const Json& vocab = j["vocab"];
    m->vocab_.reserve(vocab.size());
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
      if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
          it.value().get<int64_t>() > (int64_t{1} << 30)) {
        return Invalid(absl::StrCat("model.vocab[\"", it.key(), "\"] is not a valid id"));
      }
      const auto id = it.value().get<int32_t>();
      m->vocab_.emplace(it.key(), id);
      if (static_cast<size_t>(id) >= m->id_to_token_.size()) m->id_to_token_.resize(id + 1);
      m->id_to_token_[id] = it.key();
    }
    if (j.contains("continuing_subword_prefix") && j["continuing_subword_prefix"].is_string()) {
      m->prefix_ = j["continuing_subword_prefix"].get<std::string>();
    }
    if (j.contains("end_of_word_suffix") && j["end_of_word_suffix"].is_string()) {
      m->suffix_ = j["end_of_word_suffix"].get<std::string>();
    }
    m->fuse_unk_ = GetBool(j, "fuse_unk", false);
    m->byte_fallback_ = GetBool(j, "byte_fallback", false);
    m->ignore_merges_ = GetBool(j, "ignore_merges", false);
    if (const std::string unk = GetString(j, "unk_token"); !unk.empty()) {
      auto it = m->vocab_.find(unk);
      if (it == m->vocab_.end()) {
        return Invalid(absl::StrCat("model.unk_token \"", unk, "\" is not in the vocabulary"));
      }
      m->unk_id_ = it->second;
    }
    m->byte_ids_.fill(-1);
    for (int b = 0; b < 256; ++b) {
      auto it = m->vocab_.find(absl::StrFormat("<0x%02X>", b));
      if (it != m->vocab_.end()) m->byte_ids_[b] = it->second;
    }

    if (!j.contains("merges") || !j["merges"].is_array()) {
      return Invalid("model.merges must be an array");
    }
    const Json& merges = j["merges"];
    m->merges_.reserve(merges.size());
    std::string merged;
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      const Json& mj = merges[rank];
      std::string_view a, b;
      if (mj.is_string()) {
        const std::string& s = mj.get_ref<const std::string&>();
        const size_t sp = s.find(' ', 1);
        if (sp == std::string::npos) return Invalid(absl::StrCat("bad merge \"", s, "\""));
        a = std::string_view(s).substr(0, sp);
        b = std::string_view(s).substr(sp + 1);
      } else if (mj.is_array() && mj.size() == 2 && mj[0].is_string() && mj[1].is_string()) {
        a = mj[0].get_ref<const std::string&>();
        b = mj[1].get_ref<const std::string&>();
      } else {
        return Invalid(absl::StrCat("bad merge #", rank));
      }
      auto ia = m->vocab_.find(Av(a));
      auto ib = m->vocab_.find(Av(b));
      merged.assign(a);
      merged.append(absl::StartsWith(Av(b), m->prefix_) ? b.substr(m->prefix_.size()) : b);
      auto im = m->vocab_.find(merged);
      if (ia == m->vocab_.end() || ib == m->vocab_.end() || im == m->vocab_.end()) {
        return Invalid(absl::StrCat("merge #", rank, " \"", Av(a), " ", Av(b),
                                    "\" uses a token that is not in the vocabulary"));
      }
      m->merges_.insert_or_assign(PairKey(ia->second, ib->second),
                                  Merge{static_cast<int32_t>(rank), im->second});
    }
    return m;
  }

  // Tokenizes one pre-tokenized word.
  void Tokenize(std::string_view word, std::vector<int32_t>* out) const {
    if (word.empty()) return;
    if (ignore_merges_) {
      if (auto it = vocab_.find(Av(word)); it != vocab_.end()) {
        out->push_back(it->second);
        return;
      }
    }
    std::vector<Symbol> symbols;
    symbols.reserve(word.size());
    const auto add = [&](int32_t id) {
      const int idx = static_cast<int>(symbols.size());
      symbols.push_back({id, idx - 1, idx + 1});
    };
    int32_t pending_unk = -1;  // HF keeps one unknown token pending to fuse runs of them
    std::string buf;
    for (size_t i = 0; i < word.size();) {
      const size_t n = CharLen(word, i);
      std::string_view ch = word.substr(i, n);
      const bool is_first = i == 0;
      i += n;
      const bool is_last = i == word.size();
      if ((!is_first && !prefix_.empty()) || (is_last && !suffix_.empty())) {
        buf = absl::StrCat(is_first ? "" : prefix_, Av(ch), is_last ? suffix_ : "");
        ch = buf;
      }
      if (auto it = vocab_.find(Av(ch)); it != vocab_.end()) {
        if (pending_unk >= 0) add(pending_unk);
        pending_unk = -1;
        add(it->second);
        continue;
      }
      if (byte_fallback_ && std::all_of(ch.begin(), ch.end(), [&](char c) {
            return byte_ids_[static_cast<unsigned char>(c)] >= 0;
          })) {
        if (pending_unk >= 0) add(pending_unk);
        pending_unk = -1;
        for (char c : ch) add(byte_ids_[static_cast<unsigned char>(c)]);
        continue;
      }
      if (unk_id_) {
        if (pending_unk >= 0 && !fuse_unk_) add(pending_unk);
        pending_unk = *unk_id_;
      }
    }
    if (pending_unk >= 0) add(pending_unk);
    if (symbols.empty()) return;
    symbols.back().next = -1;
    MergeAll(&symbols);
    for (const Symbol& s : symbols) {
      if (s.id >= 0) out->push_back(s.id);
    }
  }

  const absl::flat_hash_map<std::string, int32_t>& vocab() const { return vocab_; }
  const std::vector<std::string>& id_to_token() const { return id_to_token_; }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  struct Symbol {
    int32_t id;  // -1 once merged into its left neighbour
    int prev;
    int next;
  };
  static uint64_t PairKey(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  // HF Word::merge_all: repeatedly apply the lowest-rank merge, leftmost first.
  void MergeAll(std::vector<Symbol>* symbols_ptr) const {
    std::vector<Symbol>& sym = *symbols_ptr;
    struct Candidate {
      int32_t rank;
      int pos;
      int32_t new_id;
      bool operator>(const Candidate& o) const {
        return rank != o.rank ? rank > o.rank : pos > o.pos;
      }
    };
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
    const auto push_pair = [&](int left) {
      const int right = sym[left].next;
      if (right < 0) return;
      auto it = merges_.find(PairKey(sym[left].id, sym[right].id));
      if (it != merges_.end()) queue.push({it->second.rank, left, it->second.new_id});
    };
    for (int i = 0; i + 1 < static_cast<int>(sym.size()); ++i) push_pair(i);
    while (!queue.empty()) {
      const Candidate top = queue.top();
      queue.pop();
      Symbol& cur = sym[top.pos];
      if (cur.id < 0 || cur.next < 0) continue;
      const int right = cur.next;
      auto it = merges_.find(PairKey(cur.id, sym[right].id));
      if (it == merges_.end() || it->second.new_id != top.new_id) continue;  // stale entry
      cur.id = top.new_id;
      cur.next = sym[right].next;
      sym[right].id = -1;
      if (cur.next >= 0) sym[cur.next].prev = top.pos;
      if (cur.prev >= 0) push_pair(cur.prev);
      push_pair(top.pos);
    }
  }

  absl::flat_hash_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  absl::flat_hash_map<uint64_t, Merge> merges_;
  std::array<int32_t, 256> byte_ids_;
  std::optional<int32_t> unk_id_;
  std::string prefix_, suffix_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
};

// ---- post-processors --------------------------------------------------------------------------

// Only the single-sequence case matters here: a post-processor is an id template around $A.
struct PostTemplate {
  std::vector<int32_t> before;
  std::vector<int32_t> after;
};

absl::Status ParsePostProcessor(const Json& j, PostTemplate* t) {
  if (j.is_null()) return absl::OkStatus();
  const std::string type = TypeOf(j);
  if (type == "ByteLevel") return absl::OkStatus();
  if (type == "Sequence") {
    if (!j.contains("processors") || !j["processors"].is_array()) {
      return Invalid("post_processor Sequence without a \"processors\" array");
    }
    for (const Json& p : j["processors"]) RETURN_IF_ERROR(ParsePostProcessor(p, t));
    return absl::OkStatus();
  }
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    for (const char* key : {"cls", "sep"}) {
      if (!j.contains(key) || !j[key].is_array() || j[key].size() != 2 ||
          !j[key][1].is_number_integer()) {
        return Invalid(absl::StrCat(type, ".", key, " must be [token, id]"));
      }
    }
    t->before.insert(t->before.begin(), j["cls"][1].get<int32_t>());
    t->after.push_back(j["sep"][1].get<int32_t>());
    return absl::OkStatus();
  }
  if (type == "TemplateProcessing") {
    if (!j.contains("single") || !j["single"].is_array()) {
      return Invalid("TemplateProcessing without a \"single\" array");
    }
    const Json& specials = j.contains("special_tokens") ? j["special_tokens"] : Json::object();
    std::vector<int32_t> before, after;
    bool seen_a = false;
    for (const Json& item : j["single"]) {
      if (item.contains("Sequence")) {
        seen_a = true;
        continue;
      }
      if (!item.contains("SpecialToken")) return Invalid("bad TemplateProcessing item");
      const std::string id = GetString(item["SpecialToken"], "id");
      if (!specials.contains(id) || !specials[id].contains("ids") ||
          !specials[id]["ids"].is_array()) {
        return Invalid(absl::StrCat("TemplateProcessing special token \"", id, "\" has no ids"));
      }
      for (const Json& v : specials[id]["ids"]) {
        if (!v.is_number_integer()) return Invalid("TemplateProcessing ids must be integers");
        (seen_a ? after : before).push_back(v.get<int32_t>());
      }
    }
    t->before.insert(t->before.begin(), before.begin(), before.end());
    t->after.insert(t->after.end(), after.begin(), after.end());
    return absl::OkStatus();
  }
  return Unsupported(absl::StrCat("unsupported post_processor type \"", type, "\""));
}

// ---- decoders ---------------------------------------------------------------------------------

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void DecodeChain(std::vector<std::string>* tokens) const = 0;
};

class ByteLevelDecoder : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>* tokens) const override {
    std::string out;
    for (const std::string& t : *tokens) {
      std::string bytes;
      bool all_mapped = true;
      for (size_t i = 0; i < t.size() && all_mapped;) {
        const size_t n = Utf8SeqLen(t, i);
        const int b = n == 0 ? -1 : UnicodeToByte(Utf8Decode(t, i, n));
        if (b < 0) {
          all_mapped = false;
        } else {
          bytes.push_back(static_cast<char>(b));
          i += n;
        }
      }
      out += all_mapped ? bytes : t;
    }
    *tokens = {std::move(out)};
  }
};

class ReplaceDecoder : public Decoder {
 public:
  explicit ReplaceDecoder(std::unique_ptr<ReplaceNormalizer> r) : r_(std::move(r)) {}
  void DecodeChain(std::vector<std::string>* tokens) const override {
    for (std::string& t : *tokens) t = r_->Apply(t);
  }

 private:
  std::unique_ptr<ReplaceNormalizer> r_;
};

class ByteFallbackDecoder : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>* tokens) const override {
    std::vector<std::string> out;
    std::string bytes;
    bool in_bytes = false;
    for (std::string& t : *tokens) {
      int b = -1;
      if (t.size() == 6 && absl::StartsWith(t, "<0x") && t[5] == '>') b = ParseHexByte(t[3], t[4]);
      if (b >= 0) {
        bytes.push_back(static_cast<char>(b));
        in_bytes = true;
        continue;
      }
      if (in_bytes) out.push_back(std::move(bytes)), bytes.clear(), in_bytes = false;
      out.push_back(std::move(t));
    }
    if (in_bytes) out.push_back(std::move(bytes));
    *tokens = std::move(out);
  }

 private:
  static int ParseHexByte(char hi, char lo) {
    const auto hex = [](char c) {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    const int h = hex(hi), l = hex(lo);
    return h < 0 || l < 0 ? -1 : h * 16 + l;
  }
};

class FuseDecoder : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>* tokens) const override {
    *tokens = {absl::StrJoin(*tokens, "")};
  }
};

class StripDecoder : public Decoder {
 public:
  StripDecoder(std::string content, int start, int stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  void DecodeChain(std::vector<std::string>* tokens) const override {
    if (content_.empty()) return;
    for (std::string& t : *tokens) {
      std::string_view v = t;
      for (int i = 0; i < start_ && absl::StartsWith(Av(v), content_); ++i)
        v.remove_prefix(content_.size());
      for (int i = 0; i < stop_ && absl::EndsWith(Av(v), content_); ++i)
        v.remove_suffix(content_.size());
      t = std::string(v);
    }
  }

 private:
  std::string content_;
  int start_, stop_;
};

class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool strip_first)
      : replacement_(std::move(replacement)), strip_first_(strip_first) {}
  void DecodeChain(std::vector<std::string>* tokens) const override {
    for (size_t i = 0; i < tokens->size(); ++i) {
      (*tokens)[i] =
          absl::StrReplaceAll((*tokens)[i], {{replacement_, i == 0 && strip_first_ ? "" : " "}});
    }
  }

 private:
  std::string replacement_;
  bool strip_first_;
};

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> d) : d_(std::move(d)) {}
  void DecodeChain(std::vector<std::string>* tokens) const override {
    for (const auto& d : d_) d->DecodeChain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> d_;
};

absl::StatusOr<std::unique_ptr<Decoder>> ParseDecoder(const Json& j) {
  const std::string type = TypeOf(j);
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Replace") {
    ASSIGN_OR_RETURN(auto n, ParseNormalizer(j));
    return std::make_unique<ReplaceDecoder>(
        std::unique_ptr<ReplaceNormalizer>(static_cast<ReplaceNormalizer*>(n.release())));
  }
  if (type == "Strip") {
    auto num = [&](const char* key) {
      return j.contains(key) && j[key].is_number_integer() ? j[key].get<int>() : 0;
    };
    return std::make_unique<StripDecoder>(GetString(j, "content", " "), num("start"), num("stop"));
  }
  if (type == "Metaspace") {
    std::string scheme = GetString(j, "prepend_scheme");
    if (scheme.empty()) scheme = GetBool(j, "add_prefix_space", true) ? "always" : "never";
    return std::make_unique<MetaspaceDecoder>(GetString(j, "replacement", "\u2581"),
                                              scheme != "never");
  }
  if (type == "Sequence") {
    if (!j.contains("decoders") || !j["decoders"].is_array()) {
      return Invalid("decoder Sequence without a \"decoders\" array");
    }
    std::vector<std::unique_ptr<Decoder>> seq;
    for (const Json& d : j["decoders"]) {
      ASSIGN_OR_RETURN(auto one, ParseDecoder(d));
      seq.push_back(std::move(one));
    }
    return std::make_unique<SequenceDecoder>(std::move(seq));
  }
  return Unsupported(absl::StrCat("unsupported decoder type \"", type, "\""));
}

// ---- added tokens -----------------------------------------------------------------------------

struct AddedToken {
  int32_t id;
  std::string content;
  bool special;
  bool lstrip;
  bool rstrip;
  bool single_word;
  bool normalized;
};

// Finds added tokens in text: leftmost match first, longest at that position.
class AddedTokenMatcher {
 public:
  void Add(const AddedToken* t) {
    if (t->content.empty()) return;
    auto& list = by_first_byte_[static_cast<unsigned char>(t->content[0])];
    list.push_back(t);
    std::stable_sort(list.begin(), list.end(), [](const AddedToken* a, const AddedToken* b) {
      return a->content.size() > b->content.size();
    });
    empty_ = false;
  }
  bool empty() const { return empty_; }

  struct Segment {
    std::string_view text;  // used when token == nullptr
    const AddedToken* token;
    size_t offset;  // byte offset of text in the input
  };
  void Split(std::string_view s, std::vector<Segment>* out) const {
    size_t seg_start = 0;
    for (size_t i = 0; i < s.size();) {
      const AddedToken* hit = nullptr;
      for (const AddedToken* t : by_first_byte_[static_cast<unsigned char>(s[i])]) {
        if (s.compare(i, t->content.size(), t->content) == 0 && WordBoundaryOk(s, i, *t)) {
          hit = t;
          break;
        }
      }
      if (hit == nullptr) {
        ++i;
        continue;
      }
      size_t start = i, end = i + hit->content.size(), len;
      if (hit->lstrip) {
        while (start > seg_start) {
          const size_t prev = seg_start + LastCharStart(s.substr(seg_start, start - seg_start));
          if (!IsWhitespaceAt(s, prev, &len)) break;
          start = prev;
        }
      }
      if (hit->rstrip) {
        while (end < s.size() && IsWhitespaceAt(s, end, &len)) end += len;
      }
      if (start > seg_start)
        out->push_back({s.substr(seg_start, start - seg_start), nullptr, seg_start});
      out->push_back({{}, hit, start});
      seg_start = i = end;
    }
    if (seg_start < s.size()) out->push_back({s.substr(seg_start), nullptr, seg_start});
  }

 private:
  static bool IsWordByte(std::string_view s, size_t i) {
    const auto c = static_cast<unsigned char>(s[i]);
    return c >= 0x80 || std::isalnum(c) || c == '_';
  }
  static bool WordBoundaryOk(std::string_view s, size_t i, const AddedToken& t) {
    if (!t.single_word) return true;
    const size_t end = i + t.content.size();
    return (i == 0 || !IsWordByte(s, i - 1)) && (end >= s.size() || !IsWordByte(s, end));
  }

  std::array<std::vector<const AddedToken*>, 256> by_first_byte_;
  bool empty_ = true;
};

}  // namespace

// ---- the tokenizer ----------------------------------------------------------------------------

class TokenizerImpl {
 public:
  static absl::StatusOr<std::unique_ptr<TokenizerImpl>> Parse(const Json& root) {
    auto t = std::make_unique<TokenizerImpl>();
    if (!root.is_object()) return Invalid("the top level is not a JSON object");
    if (!root.contains("model") || !root["model"].is_object()) {
      return Invalid("no \"model\" object");
    }
    const Json& model = root["model"];
    std::string type = GetString(model, "type");
    if (type.empty() && model.contains("merges")) type = "BPE";  // old files omit the type
    if (type != "BPE") {
      return Unsupported(absl::StrCat("unsupported model type \"", type, "\" (only BPE)"));
    }
    ASSIGN_OR_RETURN(t->model_, BpeModel::Parse(model));
    t->id_to_token_ = t->model_->id_to_token();

    if (root.contains("added_tokens") && root["added_tokens"].is_array()) {
      for (const Json& a : root["added_tokens"]) {
        if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() ||
            a["id"].get<int64_t>() < 0 || a["id"].get<int64_t>() > (int64_t{1} << 30)) {
          return Invalid("added_tokens entry without a valid id");
        }
        AddedToken tok{a["id"].get<int32_t>(),         GetString(a, "content"),
                       GetBool(a, "special", false),   GetBool(a, "lstrip", false),
                       GetBool(a, "rstrip", false),    GetBool(a, "single_word", false),
                       GetBool(a, "normalized", false)};
        t->added_.push_back(std::move(tok));
      }
    }
    for (const AddedToken& a : t->added_) {
      if (static_cast<size_t>(a.id) >= t->id_to_token_.size()) t->id_to_token_.resize(a.id + 1);
      t->id_to_token_[a.id] = a.content;
      t->added_by_content_[a.content] = a.id;
      if (a.special) t->special_ids_.push_back(a.id);
      (a.normalized ? t->normalized_matcher_ : t->raw_matcher_).Add(&a);
    }
    std::sort(t->special_ids_.begin(), t->special_ids_.end());

    if (root.contains("normalizer") && !root["normalizer"].is_null()) {
      ASSIGN_OR_RETURN(t->normalizer_, ParseNormalizer(root["normalizer"]));
    }
    if (root.contains("pre_tokenizer") && !root["pre_tokenizer"].is_null()) {
      ASSIGN_OR_RETURN(t->pre_tokenizer_, ParsePreTokenizer(root["pre_tokenizer"]));
    }
    if (root.contains("post_processor")) {
      RETURN_IF_ERROR(ParsePostProcessor(root["post_processor"], &t->post_));
    }
    if (root.contains("decoder") && !root["decoder"].is_null()) {
      ASSIGN_OR_RETURN(t->decoder_, ParseDecoder(root["decoder"]));
    }

    if (!t->post_.before.empty()) t->bos_ = t->post_.before.front();
    // Only added tokens count: byte-level vocabularies contain ordinary pieces such as "<s>".
    const auto added_id = [&](const char* name) -> std::optional<int32_t> {
      auto it = t->added_by_content_.find(name);
      if (it == t->added_by_content_.end()) return std::nullopt;
      return it->second;
    };
    for (const char* name : {"<|begin_of_text|>", "<s>", "<bos>", "<|startoftext|>"}) {
      if (!t->bos_) t->bos_ = added_id(name);
    }
    for (const char* name : {"</s>", "<|endoftext|>", "<|end_of_text|>", "<eos>", "<|eos|>"}) {
      if (!t->eos_) t->eos_ = added_id(name);
    }
    return t;
  }

  static std::unique_ptr<TokenizerImpl> Builtin() {
    auto t = std::make_unique<TokenizerImpl>();
    t->builtin_bytes_ = true;
    t->id_to_token_.resize(258);
    for (int b = 0; b < 256; ++b) t->id_to_token_[b] = std::string(1, static_cast<char>(b));
    t->id_to_token_[256] = "<s>";
    t->id_to_token_[257] = "</s>";
    t->added_by_content_ = {{"<s>", 256}, {"</s>", 257}};
    t->special_ids_ = {256, 257};
    t->post_.before = {256};
    t->bos_ = 256;
    t->eos_ = 257;
    return t;
  }

  std::vector<int32_t> Encode(std::string_view text, bool add_special_tokens) const {
    std::vector<int32_t> ids;
    if (builtin_bytes_) {
      for (char c : text) ids.push_back(static_cast<unsigned char>(c));
    } else {
      std::vector<AddedTokenMatcher::Segment> segments;
      raw_matcher_.Split(text, &segments);
      for (const auto& seg : segments) {
        if (seg.token != nullptr) {
          ids.push_back(seg.token->id);
          continue;
        }
        std::string normalized(seg.text);
        if (normalizer_) normalizer_->Normalize(&normalized);
        if (normalized_matcher_.empty()) {
          EncodeNormalized(normalized, seg.offset == 0, &ids);
          continue;
        }
        std::vector<AddedTokenMatcher::Segment> sub;
        normalized_matcher_.Split(normalized, &sub);
        for (const auto& s : sub) {
          if (s.token != nullptr) {
            ids.push_back(s.token->id);
          } else {
            EncodeNormalized(s.text, seg.offset == 0 && s.offset == 0, &ids);
          }
        }
      }
    }
    if (add_special_tokens && (!post_.before.empty() || !post_.after.empty())) {
      ids.insert(ids.begin(), post_.before.begin(), post_.before.end());
      ids.insert(ids.end(), post_.after.begin(), post_.after.end());
    }
    return ids;
  }

  std::string Decode(absl::Span<const int32_t> ids, bool skip_special_tokens) const {
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (int32_t id : ids) {
      if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size()) continue;
      if (skip_special_tokens && IsSpecial(id)) continue;
      tokens.push_back(id_to_token_[id]);
    }
    if (builtin_bytes_) return absl::StrJoin(tokens, "");
    if (decoder_ == nullptr) return absl::StrJoin(tokens, " ");
    decoder_->DecodeChain(&tokens);
    return absl::StrJoin(tokens, "");
  }

  int32_t vocab_size() const { return static_cast<int32_t>(id_to_token_.size()); }
  std::optional<int32_t> bos() const { return bos_; }
  std::optional<int32_t> eos() const { return eos_; }
  bool IsSpecial(int32_t id) const {
    return std::binary_search(special_ids_.begin(), special_ids_.end(), id);
  }
  std::optional<int32_t> TokenToId(std::string_view token) const {
    if (auto it = added_by_content_.find(Av(token)); it != added_by_content_.end())
      return it->second;
    if (model_ != nullptr) {
      if (auto it = model_->vocab().find(Av(token)); it != model_->vocab().end()) return it->second;
    }
    return std::nullopt;
  }
  std::optional<std::string> IdToToken(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size()) return std::nullopt;
    return id_to_token_[id];
  }

 private:
  void EncodeNormalized(std::string_view s, bool at_text_start, std::vector<int32_t>* ids) const {
    if (s.empty()) return;
    std::vector<std::string> pieces{std::string(s)};
    if (pre_tokenizer_) pre_tokenizer_->PreTokenize(&pieces, at_text_start);
    for (const std::string& p : pieces) model_->Tokenize(p, ids);
  }

  bool builtin_bytes_ = false;
  std::unique_ptr<BpeModel> model_;
  std::vector<std::string> id_to_token_;  // model vocab overlaid with added tokens
  std::deque<AddedToken> added_;          // stable addresses for the matchers
  absl::flat_hash_map<std::string, int32_t> added_by_content_;
  std::vector<int32_t> special_ids_;      // sorted
  AddedTokenMatcher raw_matcher_;         // normalized == false: matched on the raw text
  AddedTokenMatcher normalized_matcher_;  // normalized == true: matched after normalization
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  PostTemplate post_;
  std::unique_ptr<Decoder> decoder_;
  std::optional<int32_t> bos_, eos_;
};

}  // namespace tokenizer_internal

using tokenizer_internal::TokenizerImpl;

Tokenizer::Tokenizer(std::unique_ptr<TokenizerImpl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("tokenizer file ", path, ": cannot open"));
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("tokenizer file ", path, ": read error"));
  return FromJson(ss.str(), path);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(std::string_view json,
                                                               const std::string& name) {
  const auto annotate = [&](const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat("tokenizer file ", name, ": ", s.message()));
  };
  tokenizer_internal::Json root = tokenizer_internal::Json::parse(json, nullptr, false);
  if (root.is_discarded()) return annotate(absl::InvalidArgumentError("invalid JSON"));
  absl::StatusOr<std::unique_ptr<TokenizerImpl>> impl;
  try {
    impl = TokenizerImpl::Parse(root);
  } catch (const nlohmann::json::exception& e) {
    impl = absl::InvalidArgumentError(absl::StrCat("unexpected JSON structure: ", e.what()));
  }
  if (!impl.ok()) return annotate(impl.status());
  return std::unique_ptr<Tokenizer>(new Tokenizer(*std::move(impl)));
}

std::unique_ptr<Tokenizer> Tokenizer::ByteLevelBuiltin() {
  return std::unique_ptr<Tokenizer>(new Tokenizer(TokenizerImpl::Builtin()));
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool add_special_tokens) const {
  return impl_->Encode(text, add_special_tokens);
}
std::string Tokenizer::Decode(absl::Span<const int32_t> ids, bool skip_special_tokens) const {
  return impl_->Decode(ids, skip_special_tokens);
}
int32_t Tokenizer::vocab_size() const { return impl_->vocab_size(); }
std::optional<int32_t> Tokenizer::bos_token_id() const { return impl_->bos(); }
std::optional<int32_t> Tokenizer::eos_token_id() const { return impl_->eos(); }
bool Tokenizer::IsSpecial(int32_t id) const { return impl_->IsSpecial(id); }
std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  return impl_->TokenToId(token);
}
std::optional<std::string> Tokenizer::IdToToken(int32_t id) const { return impl_->IdToToken(id); }

bool IsValidUtf8(std::string_view s) { return tokenizer_internal::IsValidUtf8(s); }

// ---- IncrementalDetokenizer -------------------------------------------------------------------

namespace {
// How many prompt tokens the first decode window looks back (vLLM / TGI use 5).
constexpr size_t kInitialLookback = 5;
}  // namespace

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tok,
                                               absl::Span<const int32_t> prompt_ids,
                                               bool skip_special_tokens)
    : tok_(tok),
      skip_special_tokens_(skip_special_tokens),
      ids_(prompt_ids.begin(), prompt_ids.end()),
      prefix_offset_(prompt_ids.size() > kInitialLookback ? prompt_ids.size() - kInitialLookback
                                                          : 0),
      read_offset_(prompt_ids.size()) {}

std::string IncrementalDetokenizer::Append(int32_t id) {
  ids_.push_back(id);
  const absl::Span<const int32_t> all(ids_);
  const std::string prefix_text =
      tok_.Decode(all.subspan(prefix_offset_, read_offset_ - prefix_offset_), skip_special_tokens_);
  const std::string new_text = tok_.Decode(all.subspan(prefix_offset_), skip_special_tokens_);
  if (new_text.size() <= prefix_text.size() ||
      tokenizer_internal::IncompleteUtf8Tail(new_text) != 0) {
    return "";
  }
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  return tokenizer_internal::Utf8Lossy(std::string_view(new_text).substr(prefix_text.size()));
}

std::string IncrementalDetokenizer::Flush() {
  if (read_offset_ >= ids_.size()) return "";
  const absl::Span<const int32_t> all(ids_);
  const std::string prefix_text =
      tok_.Decode(all.subspan(prefix_offset_, read_offset_ - prefix_offset_), skip_special_tokens_);
  const std::string new_text = tok_.Decode(all.subspan(prefix_offset_), skip_special_tokens_);
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  if (new_text.size() <= prefix_text.size()) return "";
  return tokenizer_internal::Utf8Lossy(std::string_view(new_text).substr(prefix_text.size()));
}

}  // namespace kitty::models
