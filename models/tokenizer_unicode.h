// File: models/tokenizer_unicode.h
// -----------------------------------------------------------------------------
// Unicode helpers for the tokenizer (internal to kitty::models; not a public API):
// UTF-8 decoding that tolerates invalid bytes, Unicode NFC normalization (no ICU: the tables in
// tokenizer_nfc_data.inc are generated from Python's unicodedata, Unicode 14.0), and the GPT-2
// byte <-> printable-character map used by byte-level BPE.
#ifndef KITTY_MODELS_TOKENIZER_UNICODE_H_
#define KITTY_MODELS_TOKENIZER_UNICODE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kitty::models::tokenizer_internal {

// Length in bytes of the UTF-8 sequence starting at s[i] if it is a complete, valid sequence
// (1..4); 0 if s[i] starts no valid sequence (invalid or truncated).
size_t Utf8SeqLen(std::string_view s, size_t i);

// Decodes the valid sequence of length `len` (from Utf8SeqLen) at s[i].
char32_t Utf8Decode(std::string_view s, size_t i, size_t len);

// Appends the UTF-8 encoding of cp.
void AppendUtf8(char32_t cp, std::string* out);

// True if s is entirely valid UTF-8.
bool IsValidUtf8(std::string_view s);

// Number of trailing bytes of s that form the beginning of a valid but incomplete UTF-8
// sequence (0 when s ends on a character boundary or in bytes that can never become valid).
size_t IncompleteUtf8Tail(std::string_view s);

// Replaces every invalid byte sequence with U+FFFD (like Rust's String::from_utf8_lossy).
std::string Utf8Lossy(std::string_view s);

// Unicode White_Space (what Rust's regex `\s` matches).
bool IsUnicodeWhitespace(char32_t cp);

// Canonical composition (NFC). Invalid UTF-8 bytes are passed through unchanged and block
// composition across them.
std::string NfcNormalize(std::string_view s);

// GPT-2 bytes_to_unicode: byte b is represented by the UTF-8 string ByteToUnicode()[b].
const std::array<std::string, 256>& ByteToUnicode();
// Inverse: returns the byte for a code point of that alphabet, or -1.
int UnicodeToByte(char32_t cp);

}  // namespace kitty::models::tokenizer_internal

#endif  // KITTY_MODELS_TOKENIZER_UNICODE_H_
