// Python 3.11 string semantics used by the reward functions (see pytext.h).
#include "tinyzero/tasks/pytext.h"

#include <algorithm>
#include <iterator>

namespace tinyzero::pytext {
namespace {

// Code point of the digit zero of every run of ten Unicode decimal digits (category Nd) in
// Unicode 14.0, the version of Python 3.11; each run holds the digits 0-9 in order. Generated with
// [c for c in range(0x110000) if unicodedata.category(chr(c)) == 'Nd' and unicodedata.decimal(chr(c)) == 0].
constexpr char32_t kDigitZeros[] = {
    0x30,    0x660,   0x6f0,   0x7c0,   0x966,   0x9e6,   0xa66,   0xae6,   0xb66,   0xbe6,   0xc66,
    0xce6,   0xd66,   0xde6,   0xe50,   0xed0,   0xf20,   0x1040,  0x1090,  0x17e0,  0x1810,  0x1946,
    0x19d0,  0x1a80,  0x1a90,  0x1b50,  0x1bb0,  0x1c40,  0x1c50,  0xa620,  0xa8d0,  0xa900,  0xa9d0,
    0xa9f0,  0xaa50,  0xabf0,  0xff10,  0x104a0, 0x10d30, 0x11066, 0x110f0, 0x11136, 0x111d0, 0x112f0,
    0x11450, 0x114d0, 0x11650, 0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50, 0x11d50, 0x11da0, 0x16a60,
    0x16ac0, 0x16b50, 0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e950, 0x1fbf0};

constexpr size_t kMaxIntDigits = 4300;  // sys.int_info.default_max_str_digits of Python 3.11

}  // namespace

char32_t decode_utf8(std::string_view s, size_t& pos) {
  const auto b0 = static_cast<unsigned char>(s[pos]);
  if (b0 < 0x80) {
    ++pos;
    return b0;
  }
  int len = 0;
  char32_t cp = 0, min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    ++pos;
    return 0xFFFD;
  }
  if (pos + len > s.size()) {
    ++pos;
    return 0xFFFD;
  }
  for (int i = 1; i < len; ++i) {
    const auto b = static_cast<unsigned char>(s[pos + i]);
    if ((b & 0xC0) != 0x80) {
      ++pos;
      return 0xFFFD;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++pos;
    return 0xFFFD;
  }
  pos += len;
  return cp;
}

bool is_space(char32_t c) {
  if (c < 0x80) return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
  switch (c) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

int decimal_value(char32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') ? static_cast<int>(c - '0') : -1;
  const auto* it = std::upper_bound(std::begin(kDigitZeros), std::end(kDigitZeros), c);
  if (it == std::begin(kDigitZeros)) return -1;
  const char32_t zero = *(it - 1);
  return c - zero < 10 ? static_cast<int>(c - zero) : -1;
}

std::string_view strip(std::string_view s) {
  size_t begin = 0;
  while (begin < s.size()) {
    size_t next = begin;
    if (!is_space(decode_utf8(s, next))) break;
    begin = next;
  }
  // Walk back over whole code points: find the start of the last code point by skipping
  // continuation bytes, then decode it forward (a stray continuation byte is U+FFFD, not space).
  size_t end = s.size();
  while (end > begin) {
    size_t start = end - 1;
    while (start > begin && end - start < 4 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t next = start;
    const char32_t c = decode_utf8(s, next);
    if (next != end || !is_space(c)) break;
    end = start;
  }
  return s.substr(begin, end - begin);
}

std::optional<std::string_view> after_assistant_marker(std::string_view text, bool allow_im_start) {
  constexpr std::string_view kBase = "Assistant:";
  constexpr std::string_view kImStart = "<|im_start|>assistant";
  if (size_t p = text.find(kBase); p != std::string_view::npos) return text.substr(p + kBase.size());
  if (allow_im_start) {
    if (size_t p = text.find(kImStart); p != std::string_view::npos) return text.substr(p + kImStart.size());
  }
  return std::nullopt;
}

std::optional<std::string_view> last_answer(std::string_view text, bool dotall) {
  constexpr std::string_view kOpen = "<answer>";
  constexpr std::string_view kClose = "</answer>";
  std::optional<std::string_view> last;
  // The next "</answer>" and the next newline at or after the current content start. Starts only move
  // forward, so each is searched again only once the start has passed it: linear in the text, also for
  // thousands of "<answer>" whose lazy group would cross a newline (every one of them used to search
  // to the far "</answer>").
  size_t close = 0, newline = 0;
  bool close_known = false, newline_known = false;
  size_t pos = 0;
  while (true) {
    const size_t open = text.find(kOpen, pos);
    if (open == std::string_view::npos) break;
    const size_t content = open + kOpen.size();
    if (!close_known || (close != std::string_view::npos && close < content)) {
      close = text.find(kClose, content);
      close_known = true;
    }
    if (close == std::string_view::npos) break;  // no later start can match either
    if (!dotall) {
      if (!newline_known || (newline != std::string_view::npos && newline < content)) {
        newline = text.find('\n', content);
        newline_known = true;
      }
      if (newline != std::string_view::npos && newline < close) {
        pos = open + 1;  // the lazy group cannot cross the newline: the match fails at this start
        continue;
      }
    }
    last = text.substr(content, close - content);
    pos = close + kClose.size();
  }
  return last;
}

std::vector<std::optional<int64_t>> digit_runs(std::string_view s) {
  std::vector<std::optional<int64_t>> runs;
  size_t pos = 0;
  bool in_run = false, overflow = false;
  int64_t value = 0;
  auto finish = [&] {
    if (in_run) runs.push_back(overflow ? std::nullopt : std::optional<int64_t>(value));
    in_run = false, overflow = false, value = 0;
  };
  while (pos < s.size()) {
    const int d = decimal_value(decode_utf8(s, pos));
    if (d < 0) {
      finish();
      continue;
    }
    in_run = true;
    if (!overflow && (__builtin_mul_overflow(value, int64_t{10}, &value) ||
                      __builtin_add_overflow(value, int64_t{d}, &value)))
      overflow = true;
  }
  finish();
  return runs;
}

std::optional<std::string> python_int(std::string_view s) {
  // int() maps non-ASCII whitespace to ' ' and then strips C isspace(): unlike str.strip(), the ASCII
  // separators \x1c-\x1f are not whitespace to it.
  auto int_space = [](char32_t c) { return c < 0x80 ? (c == ' ' || (c >= 0x09 && c <= 0x0D)) : is_space(c); };
  while (!s.empty()) {
    size_t next = 0;
    if (!int_space(decode_utf8(s, next))) break;
    s.remove_prefix(next);
  }
  while (!s.empty()) {
    size_t start = s.size() - 1;
    while (start > 0 && s.size() - start < 4 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80)
      --start;
    size_t next = start;
    const char32_t c = decode_utf8(s, next);
    if (next != s.size() || !int_space(c)) break;
    s.remove_suffix(s.size() - start);
  }
  size_t pos = 0;
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    pos = 1;
  }
  std::string digits;
  bool last_was_digit = false;
  size_t count = 0;
  while (pos < s.size()) {
    const char32_t c = decode_utf8(s, pos);
    if (c == '_') {
      if (!last_was_digit) return std::nullopt;  // leading or doubled underscore
      last_was_digit = false;
      continue;
    }
    const int d = decimal_value(c);
    if (d < 0) return std::nullopt;
    ++count;
    last_was_digit = true;
    if (d == 0 && digits.empty()) continue;  // leading zero
    digits.push_back(static_cast<char>('0' + d));
  }
  if (count == 0 || !last_was_digit || count > kMaxIntDigits) return std::nullopt;
  if (digits.empty()) return std::string("0");
  return negative ? "-" + digits : digits;
}

std::string python_list(const std::vector<int64_t>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(values[i]);
  }
  return out + "]";
}

}  // namespace tinyzero::pytext
