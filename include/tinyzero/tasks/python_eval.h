// A bounded evaluator of arithmetic with Python 3.11 semantics: what TinyZero's Countdown reward gets
// from eval(equation, {"__builtins__": None}, {}) once its character check has passed (digits,
// + - * / ( ) . and whitespace). Model output is never given to an interpreter: this parser accepts
// integer and float literals, unary + -, binary + - * / // ** and parentheses, and computes as
// CPython does: unbounded ints, true division correctly rounded to a float, floor division,
// int ** negative int -> float, a negative float to a fractional power -> complex, float overflow to
// inf in * and /, OverflowError in ** and int -> float conversion.
//
// Everything Python rejects is an error here too (TinyZero scores every error alike): leading-zero
// integers ("01"), "()" (a tuple), "..." (Ellipsis), calls like "(2)(3)", a newline outside
// parentheses, whitespace other than space, tab and form feed, any non-ASCII character, more than 200
// nested parentheses, integer literals over 4300 digits, CPython's parser stack limit (28 per
// parenthesis + 1 per unary operator + 2 per `**` right operand, at most 5975) and its compiler
// recursion limit (2990 nested operators; CPython lowers it by 3 per Python frame of the caller).
//
// Bounds that Python does not have, which make it an error here (Python would compute on for
// seconds or hours): more than PyEvalLimits::max_length characters, an int of more than max_int_bits
// bits, more than max_work limb operations in total.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tinyzero/tasks/bigint.h"

namespace tinyzero {

// An int, float or complex result.
struct PyNumber {
  enum class Kind { kInt, kFloat, kComplex };
  Kind kind = Kind::kInt;
  BigInt integer;             // kInt
  double real = 0, imag = 0;  // kFloat: real; kComplex: real + imag j
};

struct PyEvalLimits {
  size_t max_length = 65536;            // characters of the expression
  int64_t max_int_bits = 65536;         // bits of any int value (Python: unbounded)
  int64_t max_work = int64_t{1} << 24;  // total 32-bit limb operations of int arithmetic
};

// The value of `expr` (already strip()ped, as TinyZero passes it; leading spaces and tabs are
// skipped as eval() does), or nullopt when Python would raise or a bound is hit; then `*error`
// (if given) says why.
std::optional<PyNumber> python_eval(std::string_view expr, const PyEvalLimits& limits = {},
                                    std::string* error = nullptr);

// abs(value - target) < tolerance, computed as Python does (false where Python raises).
bool python_close(const PyNumber& value, int64_t target, double tolerance = 1e-5);

// abs(a - b) < tolerance (tolerance <= 1), computed as Python does (false where Python raises, as when
// an int too large for a float meets a float).
bool python_close(const PyNumber& a, const PyNumber& b, double tolerance);

// Python's repr() of the value, e.g. "3", "0.5", "(1+2j)"; for tests and messages (floats are
// printed with 17 significant digits, not Python's shortest form).
std::string python_repr(const PyNumber& value);

}  // namespace tinyzero
