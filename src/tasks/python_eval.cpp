// Bounded arithmetic evaluator with CPython 3.11 semantics (see python_eval.h). The numeric rules
// follow CPython's Objects/longobject.c (long_true_divide, long_pow), floatobject.c (float_pow,
// _float_div_mod) and complexobject.c (_Py_c_pow, c_powi, _Py_c_quot); the syntax limits follow its
// tokenizer (MAXLEVEL), PEG parser (MAXSTACK) and AST optimiser recursion limit.
#include "tinyzero/tasks/python_eval.h"

#include <cerrno>
#include <cfloat>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace tinyzero {
namespace {

constexpr int kMaxParenLevel = 200;            // tokenizer MAXLEVEL
constexpr int kMaxParserLevel = 5975;          // PEG parser MAXSTACK (6000) less the frames above the atom
constexpr int kParenParserCost = 28;           // parser frames per parenthesised expression
constexpr int kPowParserCost = 2;              // parser frames per `**` right operand
constexpr int kMaxAstDepth = 2990;             // nested operator nodes the AST optimiser accepts
constexpr size_t kMaxIntLiteralDigits = 4300;  // sys.int_info.default_max_str_digits

struct EvalError {
  const char* what;
};

[[noreturn]] void fail(const char* what) { throw EvalError{what}; }

enum class Tok { kInt, kFloat, kPlus, kMinus, kStar, kSlash, kDSlash, kDStar, kLParen, kRParen, kEnd };

struct Token {
  Tok kind;
  size_t begin = 0, end = 0;  // literal text
};

using Kind = PyNumber::Kind;

// A float literal ("1.5", "1.", ".5"; digits and one dot), correctly rounded as CPython's
// PyOS_string_to_double; too large gives inf. from_chars ignores the C locale (strtod would read
// "1.5" as 1 under a locale with a decimal comma).
double parse_float(std::string_view text) {
#if defined(__cpp_lib_to_chars) && __cpp_lib_to_chars >= 201611L
  double value = 0;
  const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
  if (result.ec == std::errc()) return value;
    // Out of range (overflow -> inf, underflow -> 0 or a subnormal): strtod gives those as CPython does.
#endif
  const std::string s(text);
  return std::strtod(s.c_str(), nullptr);
}

struct Complex {
  double re, im;
};

bool is_odd_integer(double x) { return std::fmod(std::fabs(x), 2.0) == 1.0; }

Complex c_prod(Complex a, Complex b) { return {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re}; }

// _Py_c_quot; sets *edom on division by zero.
Complex c_quot(Complex a, Complex b, bool* edom) {
  const double abs_breal = b.re < 0 ? -b.re : b.re;
  const double abs_bimag = b.im < 0 ? -b.im : b.im;
  if (abs_breal >= abs_bimag) {
    if (abs_breal == 0.0) {
      *edom = true;
      return {0.0, 0.0};
    }
    const double ratio = b.im / b.re;
    const double denom = b.re + b.im * ratio;
    return {(a.re + a.im * ratio) / denom, (a.im - a.re * ratio) / denom};
  }
  if (abs_bimag >= abs_breal) {
    const double ratio = b.re / b.im;
    const double denom = b.re * ratio + b.im;
    return {(a.re * ratio + a.im) / denom, (a.im * ratio - a.re) / denom};
  }
  return {NAN, NAN};
}

Complex c_powu(Complex x, long n) {
  Complex r{1.0, 0.0}, p = x;
  long mask = 1;
  while (mask > 0 && n >= mask) {
    if (n & mask) r = c_prod(r, p);
    mask <<= 1;
    p = c_prod(p, p);
  }
  return r;
}

// complex_pow: small integral exponents by repeated multiplication, others through polar form.
Complex complex_pow(Complex a, Complex b) {
  bool edom = false;
  Complex p;
  if (b.im == 0.0 && b.re == std::floor(b.re) && std::fabs(b.re) <= 100.0) {
    const long n = static_cast<long>(b.re);
    p = n > 0 ? c_powu(a, n) : c_quot({1.0, 0.0}, c_powu(a, -n), &edom);
  } else if (b.re == 0.0 && b.im == 0.0) {
    p = {1.0, 0.0};
  } else if (a.re == 0.0 && a.im == 0.0) {
    if (b.im != 0.0 || b.re < 0.0) edom = true;
    p = {0.0, 0.0};
  } else {
    const double vabs = std::hypot(a.re, a.im);
    double len = std::pow(vabs, b.re);
    const double at = std::atan2(a.im, a.re);
    double phase = at * b.re;
    if (b.im != 0.0) {
      len /= std::exp(at * b.im);
      phase += b.im * std::log(vabs);
    }
    p = {len * std::cos(phase), len * std::sin(phase)};
  }
  if (edom) fail("ZeroDivisionError: 0.0 to a negative or complex power");
  if (std::isinf(p.re) || std::isinf(p.im)) fail("OverflowError: complex exponentiation");
  return p;
}

PyNumber make_int(BigInt v) {
  PyNumber n;
  n.kind = Kind::kInt;
  n.integer = std::move(v);
  return n;
}

PyNumber make_float(double v) {
  PyNumber n;
  n.kind = Kind::kFloat;
  n.real = v;
  return n;
}

PyNumber make_complex(Complex c) {
  PyNumber n;
  n.kind = Kind::kComplex;
  n.real = c.re;
  n.imag = c.im;
  return n;
}

double int_to_double(const BigInt& v) {
  double d;
  if (!v.to_double(&d)) fail("OverflowError: int too large to convert to float");
  return d;
}

double as_double(const PyNumber& v) { return v.kind == Kind::kInt ? int_to_double(v.integer) : v.real; }

Complex as_complex(const PyNumber& v) {
  if (v.kind == Kind::kComplex) return {v.real, v.imag};
  return {as_double(v), 0.0};
}

// float_pow of CPython, including its special cases; a negative base with a fractional exponent goes
// to complex_pow.
PyNumber float_pow(double iv, double iw) {
  if (iw == 0) return make_float(1.0);
  if (std::isnan(iv)) return make_float(iv);
  if (std::isnan(iw)) return make_float(iv == 1.0 ? 1.0 : iw);
  if (std::isinf(iw)) {
    iv = std::fabs(iv);
    if (iv == 1.0) return make_float(1.0);
    if ((iw > 0.0) == (iv > 1.0)) return make_float(std::fabs(iw));
    return make_float(0.0);
  }
  if (std::isinf(iv)) {
    const bool odd = is_odd_integer(iw);
    if (iw > 0.0) return make_float(odd ? iv : std::fabs(iv));
    return make_float(odd ? std::copysign(0.0, iv) : 0.0);
  }
  if (iv == 0.0) {
    const bool odd = is_odd_integer(iw);
    if (iw < 0.0) fail("ZeroDivisionError: 0.0 cannot be raised to a negative power");
    return make_float(odd ? iv : 0.0);
  }
  bool negate = false;
  if (iv < 0.0) {
    if (iw != std::floor(iw)) return make_complex(complex_pow({iv, 0.0}, {iw, 0.0}));
    iv = -iv;
    negate = is_odd_integer(iw);
  }
  if (iv == 1.0) return make_float(negate ? -1.0 : 1.0);
  double ix = std::pow(iv, iw);
  if (std::isinf(ix)) fail("OverflowError: (34, 'Numerical result out of range')");
  return make_float(negate ? -ix : ix);
}

// _float_div_mod's quotient (float floor division).
double float_floordiv(double vx, double wx) {
  if (wx == 0.0) fail("ZeroDivisionError: float floor division by zero");
  double mod = std::fmod(vx, wx);
  double div = (vx - mod) / wx;
  if (mod) {
    if ((wx < 0) != (mod < 0)) div -= 1.0;
  }
  double floordiv;
  if (div) {
    floordiv = std::floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
  } else {
    floordiv = std::copysign(0.0, vx / wx);
  }
  return floordiv;
}

class Evaluator {
 public:
  Evaluator(std::string_view text, const PyEvalLimits& limits) : text_(text), limits_(limits) {}

  PyNumber run() {
    if (text_.size() > limits_.max_length) fail("expression longer than the evaluator's bound");
    tokenize();
    auto [value, depth] = parse_sum();
    (void)depth;
    if (peek() != Tok::kEnd) fail("SyntaxError: invalid syntax");
    return value;
  }

 private:
  // --- tokenizer ----------------------------------------------------------------------------------
  void tokenize() {
    const std::string_view s = text_;
    size_t i = 0;
    int level = 0;
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;  // eval() skips these
    while (i < s.size()) {
      const char c = s[i];
      if (c == ' ' || c == '\t' || c == '\f') {
        ++i;
      } else if (c == '\n' || c == '\r') {
        if (level == 0) {
          // A NEWLINE token: only more blank space may follow it in eval input.
          for (size_t j = i; j < s.size(); ++j)
            if (s[j] != ' ' && s[j] != '\t' && s[j] != '\f' && s[j] != '\n' && s[j] != '\r')
              fail("SyntaxError: invalid syntax (newline outside parentheses)");
          break;
        }
        ++i;  // implicit line joining inside parentheses
      } else if (c >= '0' && c <= '9') {
        size_t j = i;
        while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
        if (j < s.size() && s[j] == '.') {
          ++j;
          while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
          tokens_.push_back({Tok::kFloat, i, j});
        } else {
          bool nonzero = false;
          for (size_t k = i; k < j; ++k) nonzero |= s[k] != '0';
          if (s[i] == '0' && nonzero)
            fail("SyntaxError: leading zeros in decimal integer literals are not permitted");
          if (nonzero && j - i > kMaxIntLiteralDigits)
            fail("SyntaxError: Exceeds the limit (4300 digits) for integer string conversion");
          tokens_.push_back({Tok::kInt, i, j});
        }
        i = j;
      } else if (c == '.') {
        if (i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '9') {
          size_t j = i + 1;
          while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
          tokens_.push_back({Tok::kFloat, i, j});
          i = j;
        } else {
          fail("SyntaxError or TypeError: '.' or '...' outside a float literal");
        }
      } else if (c == '+') {
        tokens_.push_back({Tok::kPlus}), ++i;
      } else if (c == '-') {
        tokens_.push_back({Tok::kMinus}), ++i;
      } else if (c == '*') {
        const bool two = i + 1 < s.size() && s[i + 1] == '*';
        tokens_.push_back({two ? Tok::kDStar : Tok::kStar}), i += two ? 2 : 1;
      } else if (c == '/') {
        const bool two = i + 1 < s.size() && s[i + 1] == '/';
        tokens_.push_back({two ? Tok::kDSlash : Tok::kSlash}), i += two ? 2 : 1;
      } else if (c == '(') {
        if (level >= kMaxParenLevel) fail("SyntaxError: too many nested parentheses");
        ++level;
        tokens_.push_back({Tok::kLParen}), ++i;
      } else if (c == ')') {
        if (level == 0) fail("SyntaxError: unmatched ')'");
        --level;
        tokens_.push_back({Tok::kRParen}), ++i;
      } else {
        fail("SyntaxError: invalid character");
      }
    }
    if (level != 0) fail("SyntaxError: '(' was never closed");
    tokens_.push_back({Tok::kEnd});
  }

  Tok peek() const { return tokens_[pos_].kind; }

  // --- parser: sum -> term -> factor -> power -> primary ------------------------------------------
  using Result = std::pair<PyNumber, int>;  // value, depth of nested operator nodes

  static void check_depth(int depth) {
    if (depth > kMaxAstDepth) fail("RecursionError: maximum recursion depth exceeded during compilation");
  }

  Result parse_sum() {
    Result left = parse_term();
    while (peek() == Tok::kPlus || peek() == Tok::kMinus) {
      const Tok op = tokens_[pos_++].kind;
      Result right = parse_term();
      left.first =
          op == Tok::kPlus ? add(left.first, right.first, false) : add(left.first, right.first, true);
      left.second = std::max(left.second, right.second) + 1;
      check_depth(left.second);
    }
    return left;
  }

  Result parse_term() {
    Result left = parse_factor();
    while (peek() == Tok::kStar || peek() == Tok::kSlash || peek() == Tok::kDSlash) {
      const Tok op = tokens_[pos_++].kind;
      Result right = parse_factor();
      if (op == Tok::kStar) {
        left.first = mul(left.first, right.first);
      } else if (op == Tok::kSlash) {
        left.first = truediv(left.first, right.first);
      } else {
        left.first = floordiv(left.first, right.first);
      }
      left.second = std::max(left.second, right.second) + 1;
      check_depth(left.second);
    }
    return left;
  }

  // Unary operators before a power: returns their count and whether they negate.
  std::pair<int, bool> read_unary() {
    int count = 0;
    bool negate = false;
    while (peek() == Tok::kPlus || peek() == Tok::kMinus) {
      negate ^= peek() == Tok::kMinus;
      ++count, ++pos_;
    }
    return {count, negate};
  }

  Result parse_factor() {
    auto [count, negate] = read_unary();
    parser_level_ += count;
    Result r = parse_power();
    parser_level_ -= count;
    if (negate) r.first = neg(r.first);
    r.second += count;
    check_depth(r.second);
    return r;
  }

  // power: primary ['**' factor], right-associative; evaluated iteratively so that a long chain does
  // not recurse.
  Result parse_power() {
    struct Link {
      Result base;
      int unary_count;
      bool negate;
    };
    std::vector<Link> chain;
    chain.push_back({parse_primary(), 0, false});
    const int saved_level = parser_level_;
    while (peek() == Tok::kDStar) {
      ++pos_;
      parser_level_ += kPowParserCost;
      auto [count, negate] = read_unary();
      parser_level_ += count;
      chain.push_back({parse_primary(), count, negate});
    }
    parser_level_ = saved_level;
    Link& last = chain.back();
    Result r = last.base;
    if (last.negate) r.first = neg(r.first);
    r.second += last.unary_count;
    for (size_t i = chain.size() - 1; i-- > 0;) {
      r.first = power(chain[i].base.first, r.first);
      r.second = std::max(r.second, chain[i].base.second) + 1;
      if (i > 0) {
        if (chain[i].negate) r.first = neg(r.first);
        r.second += chain[i].unary_count;
      }
      check_depth(r.second);
    }
    return r;
  }

  Result parse_primary() {
    if (parser_level_ > kMaxParserLevel) fail("MemoryError: parser stack overflow (expression too complex)");
    Result r;
    const Token tok = tokens_[pos_];
    if (tok.kind == Tok::kInt || tok.kind == Tok::kFloat) {
      ++pos_;
      r = {literal(tok), 0};
    } else if (tok.kind == Tok::kLParen) {
      ++pos_;
      if (peek() == Tok::kRParen) fail("TypeError: () is an empty tuple, not a number");
      parser_level_ += kParenParserCost;
      r = parse_sum();
      parser_level_ -= kParenParserCost;
      if (peek() != Tok::kRParen) fail("SyntaxError: invalid syntax");
      ++pos_;
    } else {
      fail("SyntaxError: invalid syntax");
    }
    if (peek() == Tok::kLParen) fail("TypeError: object is not callable");
    return r;
  }

  PyNumber literal(const Token& tok) {
    const std::string_view digits = text_.substr(tok.begin, tok.end - tok.begin);
    if (tok.kind == Tok::kFloat) return make_float(parse_float(digits));
    BigInt v = BigInt::from_decimal(digits);
    charge(static_cast<int64_t>(digits.size() / 9 + 1) * static_cast<int64_t>(v.limbs() + 1));
    check_bits(v);
    return make_int(std::move(v));
  }

  // --- arithmetic ---------------------------------------------------------------------------------
  void charge(int64_t work) {
    work_ += work;
    if (work_ > limits_.max_work) fail("arithmetic beyond the evaluator's work bound");
  }

  void check_bits(const BigInt& v) const {
    if (v.bit_length() > limits_.max_int_bits) fail("int beyond the evaluator's size bound");
  }

  static PyNumber neg(const PyNumber& v) {
    switch (v.kind) {
      case Kind::kInt:
        return make_int(-v.integer);
      case Kind::kFloat:
        return make_float(-v.real);
      default:
        return make_complex({-v.real, -v.imag});
    }
  }

  PyNumber add(const PyNumber& a, const PyNumber& b, bool subtract) {
    if (a.kind == Kind::kComplex || b.kind == Kind::kComplex) {
      const Complex x = as_complex(a), y = as_complex(b);
      return make_complex(subtract ? Complex{x.re - y.re, x.im - y.im} : Complex{x.re + y.re, x.im + y.im});
    }
    if (a.kind == Kind::kFloat || b.kind == Kind::kFloat) {
      const double x = as_double(a), y = as_double(b);
      return make_float(subtract ? x - y : x + y);
    }
    charge(static_cast<int64_t>(std::max(a.integer.limbs(), b.integer.limbs())) + 1);
    BigInt r = subtract ? a.integer - b.integer : a.integer + b.integer;
    check_bits(r);
    return make_int(std::move(r));
  }

  BigInt int_mul(const BigInt& a, const BigInt& b) {
    if (a.is_zero() || b.is_zero()) return BigInt();
    if (a.bit_length() + b.bit_length() - 1 > limits_.max_int_bits)
      fail("int beyond the evaluator's size bound");
    charge(static_cast<int64_t>(a.limbs()) * static_cast<int64_t>(b.limbs()) + 1);
    BigInt r = a * b;
    check_bits(r);
    return r;
  }

  PyNumber mul(const PyNumber& a, const PyNumber& b) {
    if (a.kind == Kind::kComplex || b.kind == Kind::kComplex)
      return make_complex(c_prod(as_complex(a), as_complex(b)));
    if (a.kind == Kind::kFloat || b.kind == Kind::kFloat) return make_float(as_double(a) * as_double(b));
    return make_int(int_mul(a.integer, b.integer));
  }

  PyNumber truediv(const PyNumber& a, const PyNumber& b) {
    if (a.kind == Kind::kComplex || b.kind == Kind::kComplex) {
      bool edom = false;
      const Complex q = c_quot(as_complex(a), as_complex(b), &edom);
      if (edom) fail("ZeroDivisionError: complex division by zero");
      return make_complex(q);
    }
    if (a.kind == Kind::kFloat || b.kind == Kind::kFloat) {
      const double x = as_double(a), y = as_double(b);
      if (y == 0.0) fail("ZeroDivisionError: float division by zero");
      return make_float(x / y);
    }
    return make_float(int_truediv(a.integer, b.integer));
  }

  // long_true_divide: a / b correctly rounded to a double.
  double int_truediv(const BigInt& a, const BigInt& b) {
    if (b.is_zero()) fail("ZeroDivisionError: division by zero");
    const bool negate = a.negative() != b.negative();
    if (a.is_zero()) return negate ? -0.0 : 0.0;
    const int64_t a_bits = a.bit_length(), b_bits = b.bit_length();
    if (a_bits <= DBL_MANT_DIG && b_bits <= DBL_MANT_DIG) {
      double x, y;
      a.to_double(&x), b.to_double(&y);
      return x / y;
    }
    const int64_t diff = a_bits - b_bits;
    if (diff > DBL_MAX_EXP) fail("OverflowError: integer division result too large for a float");
    if (diff < DBL_MIN_EXP - DBL_MANT_DIG - 1) return negate ? -0.0 : 0.0;
    const int64_t shift = std::max<int64_t>(diff, DBL_MIN_EXP) - DBL_MANT_DIG - 2;
    bool inexact = false;
    const BigInt abs_a = a.abs(), abs_b = b.abs();
    BigInt x = shift <= 0 ? abs_a.shifted_left(-shift) : abs_a.shifted_right(shift, &inexact);
    charge(static_cast<int64_t>(x.limbs()) * static_cast<int64_t>(abs_b.limbs()) + 1);
    BigInt q, r;
    BigInt::floor_divmod(x, abs_b, &q, &r);
    if (!r.is_zero()) inexact = true;
    const int64_t x_bits = q.bit_length();  // at most DBL_MANT_DIG + 3
    const int64_t extra_bits = std::max<int64_t>(x_bits, DBL_MIN_EXP - shift) - DBL_MANT_DIG;
    uint64_t qv = q.low_u64() | (inexact ? 1u : 0u);
    const uint64_t mask = uint64_t{1} << (extra_bits - 1);
    if ((qv & mask) && (qv & (3 * mask - 1))) qv += mask;
    qv &= ~(2 * mask - 1);
    const double dx = static_cast<double>(qv);
    if (shift + x_bits >= DBL_MAX_EXP &&
        (shift + x_bits > DBL_MAX_EXP || dx == std::ldexp(1.0, static_cast<int>(x_bits))))
      fail("OverflowError: integer division result too large for a float");
    const double result = std::ldexp(dx, static_cast<int>(shift));
    return negate ? -result : result;
  }

  PyNumber floordiv(const PyNumber& a, const PyNumber& b) {
    if (a.kind == Kind::kComplex || b.kind == Kind::kComplex)
      fail("TypeError: can't take floor of complex number");
    if (a.kind == Kind::kFloat || b.kind == Kind::kFloat)
      return make_float(float_floordiv(as_double(a), as_double(b)));
    if (b.integer.is_zero()) fail("ZeroDivisionError: integer division or modulo by zero");
    charge(static_cast<int64_t>(a.integer.limbs()) * static_cast<int64_t>(b.integer.limbs()) + 1);
    BigInt q;
    BigInt::floor_divmod(a.integer, b.integer, &q, nullptr);
    return make_int(std::move(q));
  }

  PyNumber power(const PyNumber& a, const PyNumber& b) {
    if (a.kind == Kind::kComplex || b.kind == Kind::kComplex)
      return make_complex(complex_pow(as_complex(a), as_complex(b)));
    if (a.kind == Kind::kFloat || b.kind == Kind::kFloat) return float_pow(as_double(a), as_double(b));
    const BigInt& base = a.integer;
    const BigInt& exp = b.integer;
    if (exp.negative()) return float_pow(int_to_double(base), int_to_double(exp));
    if (exp.is_zero()) return make_int(BigInt(1));
    if (base.is_zero() || base == BigInt(1)) return make_int(base);
    if (base == BigInt(-1)) return make_int(exp.is_odd() ? base : BigInt(1));
    // |base| >= 2: the result has more than (bits(base) - 1) * exp bits.
    if (exp.bit_length() > 40 || (base.bit_length() - 1) * exp.to_int64() >= limits_.max_int_bits)
      fail("int beyond the evaluator's size bound");
    uint64_t e = static_cast<uint64_t>(exp.to_int64());
    BigInt result(1), square = base;
    while (true) {
      if (e & 1) result = int_mul(result, square);
      e >>= 1;
      if (!e) break;
      square = int_mul(square, square);
    }
    return make_int(std::move(result));
  }

  std::string_view text_;
  PyEvalLimits limits_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int parser_level_ = 0;
  int64_t work_ = 0;
};

}  // namespace

std::optional<PyNumber> python_eval(std::string_view expr, const PyEvalLimits& limits, std::string* error) {
  try {
    Evaluator evaluator(expr, limits);
    PyNumber value = evaluator.run();
    if (error) error->clear();
    return value;
  } catch (const EvalError& e) {
    if (error) *error = e.what;
    return std::nullopt;
  }
}

bool python_close(const PyNumber& value, int64_t target, double tolerance) {
  switch (value.kind) {
    case Kind::kInt:
      return value.integer == BigInt(target);
    case Kind::kFloat:
      return std::fabs(value.real - static_cast<double>(target)) < tolerance;
    default: {
      const double re = value.real - static_cast<double>(target);
      const double im = value.imag - 0.0;
      if (std::isinf(re) || std::isinf(im) || std::isnan(re) || std::isnan(im)) return false;
      return std::hypot(re, im) < tolerance;  // an infinite hypot is OverflowError in Python
    }
  }
}

bool python_close(const PyNumber& a, const PyNumber& b, double tolerance) {
  if (a.kind == Kind::kInt && b.kind == Kind::kInt) return a.integer == b.integer;  // an exact difference
  // Mixed: the int becomes a float (OverflowError when it is too large for one), then float or
  // complex subtraction.
  double ar = a.real, ai = a.kind == Kind::kComplex ? a.imag : 0.0;
  double br = b.real, bi = b.kind == Kind::kComplex ? b.imag : 0.0;
  if (a.kind == Kind::kInt && !a.integer.to_double(&ar)) return false;
  if (b.kind == Kind::kInt && !b.integer.to_double(&br)) return false;
  if (a.kind != Kind::kComplex && b.kind != Kind::kComplex) return std::fabs(ar - br) < tolerance;
  const double re = ar - br, im = ai - bi;
  if (std::isinf(re) || std::isinf(im) || std::isnan(re) || std::isnan(im)) return false;
  return std::hypot(re, im) < tolerance;
}

std::string python_repr(const PyNumber& value) {
  char buf[64];
  switch (value.kind) {
    case Kind::kInt:
      return value.integer.to_string();
    case Kind::kFloat:
      std::snprintf(buf, sizeof(buf), "%.17g", value.real);
      return buf;
    default:
      std::snprintf(buf, sizeof(buf), "(%.17g%+.17gj)", value.real, value.imag);
      return buf;
  }
}

}  // namespace tinyzero
