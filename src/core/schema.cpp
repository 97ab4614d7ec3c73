// Config schema: field registry, value formatting and per-field checks.
#include "tinyzero/core/schema.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tinyzero/core/errors.h"

namespace tinyzero {

namespace {

// Shortest decimal text that parses back to exactly `v`.
std::string format_double(double v) {
  if (std::isnan(v)) return ".nan";
  if (std::isinf(v)) return v > 0 ? ".inf" : "-.inf";
  char buf[64];
  if (std::fabs(v) >= 1 && std::fabs(v) < 1e15 && v == std::floor(v)) {
    std::snprintf(buf, sizeof buf, "%.1f", v);  // 600.0, not 6e+02
    return buf;
  }
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string s = buf;
  // Keep floats recognisable as floats in YAML ("1" would read back as an int; fine for us, but
  // "1.0" tells a reader the field is a float).
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

std::string format_string(const std::string& s) { return nlohmann::json(s).dump(); }

std::string format_number(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  return format_double(v);
}

}  // namespace

namespace {

struct ValueFormatter {
  std::string operator()(bool b) const { return b ? "true" : "false"; }
  std::string operator()(int64_t i) const { return std::to_string(i); }
  std::string operator()(double d) const { return format_double(d); }
  std::string operator()(const std::string& s) const { return format_string(s); }
  template <class T>
  std::string operator()(const std::vector<T>& list) const {
    std::string out = "[";
    for (size_t i = 0; i < list.size(); ++i) {
      if (i) out += ", ";
      out += (*this)(list[i]);
    }
    return out + "]";
  }
};

}  // namespace

std::string format_value(const FieldValue& value) { return std::visit(ValueFormatter{}, value); }

FieldValue read_value(const FieldPtr& ptr) {
  return std::visit([](auto* p) { return FieldValue(*p); }, ptr);
}

void write_value(const FieldPtr& ptr, const FieldValue& value) {
  std::visit(
      [&](auto* p) {
        using T = std::remove_pointer_t<decltype(p)>;
        *p = std::get<T>(value);
      },
      ptr);
}

std::string type_name(const FieldPtr& ptr) {
  struct Visitor {
    std::string operator()(bool*) const { return "bool"; }
    std::string operator()(int64_t*) const { return "int"; }
    std::string operator()(double*) const { return "float"; }
    std::string operator()(std::string*) const { return "string"; }
    std::string operator()(std::vector<int64_t>*) const { return "list of int"; }
    std::string operator()(std::vector<double>*) const { return "list of float"; }
    std::string operator()(std::vector<std::string>*) const { return "list of string"; }
  };
  return std::visit(Visitor{}, ptr);
}

Check Check::one_of(std::vector<std::string> values) {
  Check c;
  c.choices = std::move(values);
  return c;
}

Check Check::one_of_or(std::vector<std::string> values, std::string other) {
  Check c = one_of(std::move(values));
  c.allow_other = true;
  c.other_help = std::move(other);
  return c;
}

std::string Check::describe() const {
  std::string out;
  if (!choices.empty()) {
    out = "one of: ";
    for (size_t i = 0; i < choices.size(); ++i) out += (i ? ", " : "") + choices[i];
    if (allow_other) out += ", or " + other_help;
    return out;
  }
  if (min && max) {
    return std::string("in ") + (min_exclusive ? "(" : "[") + format_number(*min) + ", " +
           format_number(*max) + (max_exclusive ? ")" : "]");
  }
  if (min) return std::string(min_exclusive ? "> " : ">= ") + format_number(*min);
  if (max) return std::string(max_exclusive ? "< " : "<= ") + format_number(*max);
  return out;
}

std::string Check::violation(const FieldValue& value) const {
  auto number_ok = [&](double v) {
    if (!std::isfinite(v)) return false;
    if (min && (min_exclusive ? v <= *min : v < *min)) return false;
    if (max && (max_exclusive ? v >= *max : v > *max)) return false;
    return true;
  };
  bool ok = true;
  if (auto* i = std::get_if<int64_t>(&value)) ok = number_ok(static_cast<double>(*i));
  if (auto* d = std::get_if<double>(&value)) ok = number_ok(*d);
  if (auto* l = std::get_if<std::vector<int64_t>>(&value))
    for (auto v : *l) ok = ok && number_ok(static_cast<double>(v));
  if (auto* l = std::get_if<std::vector<double>>(&value))
    for (auto v : *l) ok = ok && number_ok(v);
  if (auto* s = std::get_if<std::string>(&value); s && !choices.empty() && !allow_other) {
    ok = false;
    for (const auto& c : choices) ok = ok || c == *s;
  }
  if (ok) return "";
  return "must be " + describe();
}

void Schema::add(const char* name, FieldPtr ptr, FieldValue default_value, const char* help, Check check) {
  std::string path;
  for (const auto& p : prefix_) path += p + ".";
  path += name;
  fields_.push_back(FieldInfo{path, ptr, std::move(default_value), help, std::move(check)});
}

void Schema::begin_section(const char* name, const char* help) {
  prefix_.emplace_back(name);
  std::string path;
  for (size_t i = 0; i < prefix_.size(); ++i) path += (i ? "." : "") + prefix_[i];
  sections_.push_back(SectionInfo{path, help});
}

void Schema::end_section() { prefix_.pop_back(); }

const FieldInfo* Schema::find(const std::string& path) const {
  for (const auto& f : fields_)
    if (f.path == path) return &f;
  return nullptr;
}

bool Schema::is_section(const std::string& path) const {
  for (const auto& s : sections_)
    if (s.path == path) return true;
  return false;
}

void Schema::apply_defaults() const {
  for (const auto& f : fields_) write_value(f.ptr, f.default_value);
}

}  // namespace tinyzero
