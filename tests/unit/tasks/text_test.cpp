// Tests of the Python string semantics (pytext.h) and of BigInt against 128-bit arithmetic.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>

#include "tinyzero/tasks/bigint.h"
#include "tinyzero/tasks/pytext.h"

namespace tinyzero {
namespace {

using pytext::after_assistant_marker;
using pytext::decimal_value;
using pytext::digit_runs;
using pytext::is_space;
using pytext::last_answer;
using pytext::python_int;
using pytext::strip;

TEST(PyText, SpaceSetIsPythons) {
  const char32_t spaces[] = {0x9,    0xa,    0xb,    0xc,    0xd,    0x1c,   0x1d,
                             0x1e,   0x1f,   0x20,   0x85,   0xa0,   0x1680, 0x2000,
                             0x2005, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000};
  for (char32_t c : spaces) EXPECT_TRUE(is_space(c)) << std::hex << static_cast<uint32_t>(c);
  for (char32_t c : {U'a', U'0', U'\x08', U'\x1b', U'\x7f', U'\u180e', U'\u200b', U'\ufeff', U'\u2060'})
    EXPECT_FALSE(is_space(c)) << std::hex << static_cast<uint32_t>(c);
}

TEST(PyText, DecimalDigitsAreUnicodeNd) {
  EXPECT_EQ(decimal_value(U'7'), 7);
  EXPECT_EQ(decimal_value(U'\u0663'), 3);      // ARABIC-INDIC DIGIT THREE
  EXPECT_EQ(decimal_value(U'\uff19'), 9);      // FULLWIDTH DIGIT NINE
  EXPECT_EQ(decimal_value(U'\U0001d7d8'), 0);  // MATHEMATICAL DOUBLE-STRUCK DIGIT ZERO
  EXPECT_EQ(decimal_value(U'\U0001fbf9'), 9);  // SEGMENTED DIGIT NINE (Unicode 13)
  EXPECT_EQ(decimal_value(U'\u00b2'), -1);     // superscript two: No, not Nd
  EXPECT_EQ(decimal_value(U'\u2460'), -1);     // circled one
  EXPECT_EQ(decimal_value(U'\u4e00'), -1);     // CJK "one" is not a decimal digit
  EXPECT_EQ(decimal_value(U'a'), -1);
}

TEST(PyText, StripRemovesUnicodeWhitespaceOnly) {
  EXPECT_EQ(strip("  1 + 2\t\n"), "1 + 2");
  EXPECT_EQ(strip("\u00a0\u20281+2\u3000\x1c"), "1+2");
  EXPECT_EQ(strip("\u200b1\u200b"), "\u200b1\u200b");  // zero-width space is not whitespace
  EXPECT_EQ(strip(" \xe3\x80"), "\xe3\x80");           // truncated UTF-8 is not whitespace
  EXPECT_EQ(strip("   "), "");
  EXPECT_EQ(strip(""), "");
}

TEST(PyText, AssistantMarkerFirstOccurrenceAndFallback) {
  EXPECT_EQ(*after_assistant_marker("a Assistant: b Assistant: c", true), " b Assistant: c");
  EXPECT_EQ(*after_assistant_marker("x<|im_start|>assistant\ny", true), "\ny");
  // "Assistant:" wins even when it comes after the im_start marker.
  EXPECT_EQ(*after_assistant_marker("<|im_start|>assistant Assistant: z", true), " z");
  EXPECT_FALSE(after_assistant_marker("x<|im_start|>assistant\ny", false));
  EXPECT_FALSE(after_assistant_marker("assistant: lower case", true));
}

TEST(PyText, LastAnswerFollowsLazyRegexSemantics) {
  EXPECT_EQ(*last_answer("<answer>1</answer> <answer>2</answer>"), "2");
  EXPECT_EQ(*last_answer("<answer>a<answer>b</answer>"), "a<answer>b");  // lazy from the first start
  EXPECT_EQ(*last_answer("<answer></answer>"), "");
  EXPECT_EQ(*last_answer("<answer>1</answer><answer>2"), "1");  // unclosed last tag
  EXPECT_FALSE(last_answer("<answer>1</ answer>"));
  EXPECT_FALSE(last_answer("<Answer>1</Answer>"));
  // `.` does not cross a newline: the first start fails, the second matches.
  EXPECT_EQ(*last_answer("<answer>1\n<answer>2</answer>"), "2");
  EXPECT_FALSE(last_answer("<answer>1\n</answer>"));
  EXPECT_EQ(*last_answer("<answer>1\n</answer>", true), "1\n");
  EXPECT_EQ(*last_answer("<answer>1\r</answer>"), "1\r");  // only \n stops `.`
}

// Seconds for last_answer over `text` (the best of 3).
double time_last_answer(const std::string& text, bool dotall) {
  double best = 1e9;
  for (int rep = 0; rep < 3; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    const auto answer = last_answer(text, dotall);
    volatile size_t used = answer ? answer->size() : 1;  // keeps the call
    (void)used;
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

// Many "<answer>" whose lazy group would cross a newline before the one "</answer>" at the end: every
// start used to search to that far tag (1 MB took 27.6 s). Ten times the text may take about ten
// times as long, not a hundred.
TEST(PyText, LastAnswerTakesTimeLinearInTheText) {
  auto text_of = [](int tags) {
    std::string text;
    for (int i = 0; i < tags; ++i) text += "<answer>7\n";
    return text + "</answer>";
  };
  const std::string small = text_of(10000), large = text_of(100000);  // ~100 KB, ~1 MB
  EXPECT_FALSE(last_answer(large));                                   // each start's group crosses a newline
  EXPECT_EQ(last_answer(large, true)->size(), large.size() - 8 - 9);  // the first start to the end
  for (bool dotall : {false, true}) {
    const double t_small = time_last_answer(small, dotall), t_large = time_last_answer(large, dotall);
    std::printf("last_answer dotall=%d: 100 KB %.5f s, 1 MB %.5f s\n", dotall, t_small, t_large);
    EXPECT_LT(t_large, 20 * t_small + 0.01) << "dotall " << dotall;  // quadratic would be 100x
    EXPECT_LT(t_large, 0.5) << "dotall " << dotall;
  }
}

TEST(PyText, DigitRunsUseUnicodeDigitsAndIntValues) {
  auto runs = digit_runs("12+\u0663*007 x 1\u0663");
  ASSERT_EQ(runs.size(), 4u);
  EXPECT_EQ(*runs[0], 12);
  EXPECT_EQ(*runs[1], 3);
  EXPECT_EQ(*runs[2], 7);
  EXPECT_EQ(*runs[3], 13);  // mixed scripts form one run
  auto big = digit_runs("99999999999999999999 1.5");
  ASSERT_EQ(big.size(), 3u);
  EXPECT_FALSE(big[0].has_value());
  EXPECT_EQ(*big[1], 1);
  EXPECT_EQ(*big[2], 5);
  EXPECT_TRUE(digit_runs("+-*/ ()").empty());
}

TEST(PyText, PythonIntParsing) {
  EXPECT_EQ(*python_int(" +1_000 "), "1000");
  EXPECT_EQ(*python_int("\u0661\u0662"), "12");
  EXPECT_EQ(*python_int("-0"), "0");
  EXPECT_EQ(*python_int("007"), "7");
  EXPECT_EQ(*python_int("-12"), "-12");
  EXPECT_EQ(*python_int("\u00a012\u2028"), "12");
  for (const char* bad : {"12.0", "1e3", "1__0", "_1", "1_", "+_1", "- 1", "", " ", "+", "0x10", "1 2",
                          "\x1c"
                          "1",
                          "\u00b2", "12\u200b"})
    EXPECT_FALSE(python_int(bad).has_value()) << bad;
  EXPECT_TRUE(python_int(std::string(4300, '1')).has_value());
  EXPECT_FALSE(python_int(std::string(4301, '1')).has_value());
  EXPECT_FALSE(python_int(std::string(4300, '0') + "5").has_value());  // leading zeros count as digits
}

TEST(PyText, PythonList) {
  EXPECT_EQ(pytext::python_list({44, 19, 35}), "[44, 19, 35]");
  EXPECT_EQ(pytext::python_list({}), "[]");
}

// --- BigInt -------------------------------------------------------------------------------------------

std::string i128_string(__int128 v) {
  if (v == 0) return "0";
  bool neg = v < 0;
  unsigned __int128 m = neg ? -static_cast<unsigned __int128>(v) : static_cast<unsigned __int128>(v);
  std::string s;
  while (m) s.insert(s.begin(), static_cast<char>('0' + static_cast<int>(m % 10))), m /= 10;
  return neg ? "-" + s : s;
}

TEST(BigIntTest, MatchesInt128OnRandomOperands) {
  std::mt19937_64 gen(7);
  for (int iter = 0; iter < 20000; ++iter) {
    const int64_t a = static_cast<int64_t>(gen()) >> (gen() % 63);
    const int64_t b = static_cast<int64_t>(gen()) >> (gen() % 63);
    const BigInt x(a), y(b);
    EXPECT_EQ((x + y).to_string(), i128_string(static_cast<__int128>(a) + b));
    EXPECT_EQ((x - y).to_string(), i128_string(static_cast<__int128>(a) - b));
    EXPECT_EQ((x * y).to_string(), i128_string(static_cast<__int128>(a) * b));
    EXPECT_EQ(compare(x, y), a < b ? -1 : a > b ? 1 : 0);
    if (b != 0) {
      BigInt q, r;
      BigInt::floor_divmod(x, y, &q, &r);
      __int128 qq = static_cast<__int128>(a) / b, rr = static_cast<__int128>(a) % b;
      if (rr != 0 && ((rr < 0) != (b < 0))) --qq, rr += b;  // Python floors
      EXPECT_EQ(q.to_string(), i128_string(qq)) << a << " // " << b;
      EXPECT_EQ(r.to_string(), i128_string(rr)) << a << " % " << b;
    }
  }
}

TEST(BigIntTest, MultiLimbDivisionIdentity) {
  std::mt19937_64 gen(11);
  for (int iter = 0; iter < 300; ++iter) {
    std::string da(1 + gen() % 120, '0'), db(1 + gen() % 60, '0');
    for (auto& c : da) c = static_cast<char>('0' + gen() % 10);
    for (auto& c : db) c = static_cast<char>('0' + gen() % 10);
    BigInt a = BigInt::from_decimal(da), b = BigInt::from_decimal(db);
    if (gen() & 1) a = -a;
    if (gen() & 1) b = -b;
    if (b.is_zero()) continue;
    BigInt q, r;
    BigInt::floor_divmod(a, b, &q, &r);
    EXPECT_EQ(q * b + r, a);
    EXPECT_TRUE(r.is_zero() || r.negative() == b.negative());
    EXPECT_LT(compare(r.abs(), b.abs()), 0);
  }
  // A case that needs Knuth's add-back step (qhat one too large).
  BigInt u = BigInt::from_decimal("340282366920938463463374607431768211455");  // 2^128 - 1
  BigInt v = BigInt::from_decimal("18446744073709551617");                     // 2^64 + 1
  BigInt q, r;
  BigInt::floor_divmod(u, v, &q, &r);
  EXPECT_EQ(q.to_string(), "18446744073709551615");
  EXPECT_EQ(r.to_string(), "0");
}

TEST(BigIntTest, DecimalRoundTripAndShifts) {
  const std::string d = "123456789012345678901234567890123456789";
  EXPECT_EQ(BigInt::from_decimal(d).to_string(), d);
  EXPECT_EQ(BigInt::from_decimal("000").to_string(), "0");
  EXPECT_EQ(BigInt(1).shifted_left(100).to_string(), "1267650600228229401496703205376");
  bool lost = false;
  EXPECT_EQ(BigInt(5).shifted_right(1, &lost).to_string(), "2");
  EXPECT_TRUE(lost);
  EXPECT_EQ(BigInt(4).shifted_right(2, &lost).to_string(), "1");
  EXPECT_FALSE(lost);
  EXPECT_EQ(BigInt(1).shifted_left(100).bit_length(), 101);
  EXPECT_EQ(BigInt::gcd(BigInt(-12), BigInt(18)).to_string(), "6");
}

TEST(BigIntTest, ToDoubleRoundsHalfToEvenAndOverflows) {
  double d;
  ASSERT_TRUE(BigInt::from_decimal("9007199254740993").to_double(&d));  // 2^53 + 1 -> 2^53 (tie to even)
  EXPECT_EQ(d, 9007199254740992.0);
  ASSERT_TRUE(BigInt::from_decimal("9007199254740995").to_double(&d));  // 2^53 + 3 -> 2^53 + 4
  EXPECT_EQ(d, 9007199254740996.0);
  // 2^1024 - 2^970 is the first value that rounds to 2^1024: overflow; one less fits.
  BigInt limit = BigInt(1).shifted_left(1024) - BigInt(1).shifted_left(970);
  EXPECT_FALSE(limit.to_double(&d));
  ASSERT_TRUE((limit - BigInt(1)).to_double(&d));
  EXPECT_EQ(d, std::ldexp(1.0, 1024 - 53) * (std::ldexp(1.0, 53) - 1));
  ASSERT_TRUE((-BigInt(1).shifted_left(200)).to_double(&d));
  EXPECT_EQ(d, -std::ldexp(1.0, 200));
}

}  // namespace
}  // namespace tinyzero
