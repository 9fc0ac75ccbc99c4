// File: models/tokenizer_unicode.cc
// -----------------------------------------------------------------------------
// NFC follows UAX #15: full canonical decomposition (table + Hangul arithmetic), canonical
// ordering by combining class, then canonical composition of primary composites.
//
// tokenizer_nfc_data.inc was generated with this Python 3.11 script (unicodedata 14.0.0):
//   for cp in range(0x110000) (skipping surrogates):
//     ccc     = unicodedata.combining(chr(cp))            -> kCccRanges (runs of equal ccc)
//     raw     = unicodedata.decomposition(chr(cp))        (canonical only: no '<tag>')
//     kDecomp = unicodedata.normalize('NFD', chr(cp))     (full decomposition; Hangul excluded)
//     kComp   = (raw[0], raw[1]) -> cp  when len(raw) == 2 and NFC(chr(cp)) == chr(cp)
#include "models/tokenizer_unicode.h"

#include <algorithm>
#include <vector>

namespace kitty::models::tokenizer_internal {
namespace {

struct CccRange {
  char32_t first;
  char32_t last;
  uint8_t ccc;
};
struct DecompEntry {
  char32_t cp;
  uint16_t offset;
  uint8_t len;
};
struct CompEntry {
  char32_t first;
  char32_t second;
  char32_t composite;
};

#include "models/tokenizer_nfc_data.inc"

constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr int kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
              kSCount = kLCount * kNCount;
// Marks an invalid input byte kept as is; never composes and has combining class 0.
constexpr char32_t kRawByteFlag = 0x80000000u;

int Ccc(char32_t cp) {
  if (cp < 0x300 || (cp & kRawByteFlag)) return 0;
  auto it = std::upper_bound(std::begin(kCccRanges), std::end(kCccRanges), cp,
                             [](char32_t c, const CccRange& r) { return c < r.first; });
  if (it == std::begin(kCccRanges)) return 0;
  --it;
  return cp <= it->last ? it->ccc : 0;
}

void Decompose(char32_t cp, std::vector<char32_t>* out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const int s = cp - kSBase;
    out->push_back(kLBase + s / kNCount);
    out->push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out->push_back(kTBase + s % kTCount);
    return;
  }
  if (cp >= 0xC0 && !(cp & kRawByteFlag)) {
    auto it = std::lower_bound(std::begin(kDecomp), std::end(kDecomp), cp,
                               [](const DecompEntry& e, char32_t c) { return e.cp < c; });
    if (it != std::end(kDecomp) && it->cp == cp) {
      out->insert(out->end(), kDecompData + it->offset, kDecompData + it->offset + it->len);
      return;
    }
  }
  out->push_back(cp);
}

// Returns the primary composite of (a, b) or 0.
char32_t Compose(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  }
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount) {
    return a + (b - kTBase);
  }
  auto it =
      std::lower_bound(std::begin(kComp), std::end(kComp), std::make_pair(a, b),
                       [](const CompEntry& e, const std::pair<char32_t, char32_t>& k) {
                         return e.first < k.first || (e.first == k.first && e.second < k.second);
                       });
  if (it != std::end(kComp) && it->first == a && it->second == b) return it->composite;
  return 0;
}

}  // namespace

size_t Utf8SeqLen(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return 1;
  size_t len;
  char32_t min;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
  }
  const char32_t cp = Utf8Decode(s, i, len);
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

char32_t Utf8Decode(std::string_view s, size_t i, size_t len) {
  const auto b = [&](size_t k) {
    return static_cast<char32_t>(static_cast<unsigned char>(s[i + k]));
  };
  switch (len) {
    case 1:
      return b(0);
    case 2:
      return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    case 3:
      return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    default:
      return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  }
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8SeqLen(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

size_t IncompleteUtf8Tail(std::string_view s) {
  // Look back at most 3 bytes for a lead byte whose sequence runs past the end.
  for (size_t back = 1; back <= 3 && back <= s.size(); ++back) {
    const auto b = static_cast<unsigned char>(s[s.size() - back]);
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    size_t need;
    if ((b & 0xE0) == 0xC0) {
      need = 2;
    } else if ((b & 0xF0) == 0xE0) {
      need = 3;
    } else if ((b & 0xF8) == 0xF0) {
      need = 4;
    } else {
      return 0;
    }
    if (need <= back) return 0;
    // The bytes present must still be able to start a valid sequence (no overlong form,
    // surrogate, or code point above U+10FFFF).
    const auto b1 = back >= 2 ? static_cast<unsigned char>(s[s.size() - back + 1]) : 0x80;
    if (b == 0xC0 || b == 0xC1 || b > 0xF4) return 0;
    if (back >= 2 && ((b == 0xE0 && b1 < 0xA0) || (b == 0xED && b1 > 0x9F) ||
                      (b == 0xF0 && b1 < 0x90) || (b == 0xF4 && b1 > 0x8F))) {
      return 0;
    }
    return back;
  }
  return 0;
}

std::string Utf8Lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8SeqLen(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

bool IsUnicodeWhitespace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

std::string NfcNormalize(std::string_view s) {
  if (std::all_of(s.begin(), s.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x80; })) {
    return std::string(s);
  }
  std::vector<char32_t> d;
  d.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8SeqLen(s, i);
    if (n == 0) {
      d.push_back(kRawByteFlag | static_cast<unsigned char>(s[i]));
      ++i;
      continue;
    }
    Decompose(Utf8Decode(s, i, n), &d);
    i += n;
  }
  // Canonical ordering: stable insertion sort of each run of non-starters by combining class.
  for (size_t i = 1; i < d.size(); ++i) {
    const int c = Ccc(d[i]);
    if (c == 0) continue;
    for (size_t j = i; j > 0; --j) {
      const int p = Ccc(d[j - 1]);
      if (p <= c) break;
      std::swap(d[j - 1], d[j]);
    }
  }
  // Canonical composition.
  if (!d.empty()) {
    size_t starter_pos = 0;
    char32_t starter = d[0];
    int last_class = Ccc(starter) != 0 ? 256 : 0;
    size_t out = 1;
    for (size_t i = 1; i < d.size(); ++i) {
      const char32_t ch = d[i];
      const int ch_class = Ccc(ch);
      const char32_t composite =
          (starter & kRawByteFlag) || (ch & kRawByteFlag) ? 0 : Compose(starter, ch);
      if (composite != 0 && (last_class < ch_class || last_class == 0)) {
        d[starter_pos] = composite;
        starter = composite;
        continue;
      }
      if (ch_class == 0) {
        starter_pos = out;
        starter = ch;
      }
      last_class = ch_class;
      d[out++] = ch;
    }
    d.resize(out);
  }
  std::string result;
  result.reserve(s.size());
  for (char32_t cp : d) {
    if (cp & kRawByteFlag) {
      result.push_back(static_cast<char>(cp & 0xFF));
    } else {
      AppendUtf8(cp, &result);
    }
  }
  return result;
}

const std::array<std::string, 256>& ByteToUnicode() {
  static const std::array<std::string, 256>* const table = [] {
    auto* t = new std::array<std::string, 256>();
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      AppendUtf8(cp, &(*t)[b]);
    }
    return t;
  }();
  return *table;
}

int UnicodeToByte(char32_t cp) {
  static const std::array<int16_t, 324>* const inverse = [] {
    auto* inv = new std::array<int16_t, 324>();
    inv->fill(-1);
    const auto& fwd = ByteToUnicode();
    for (int b = 0; b < 256; ++b) {
      const std::string& u = fwd[b];
      (*inv)[Utf8Decode(u, 0, u.size())] = static_cast<int16_t>(b);
    }
    return inv;
  }();
  return cp < inverse->size() ? (*inverse)[cp] : -1;
}

}  // namespace kitty::models::tokenizer_internal
