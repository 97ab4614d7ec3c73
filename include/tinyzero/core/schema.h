// Config schema: the one place where a config field's name, default, help text and check live.
//
// Each config section has `void describe(Schema& s)` that lists its fields:
//   s.field("lr", &lr, 1e-6, "peak learning rate", Check::positive());
//   s.section("optim", &optim, "optimizer of the actor");
// From that list everything else is derived: defaults, YAML parsing, overrides, range checks,
// `--print-config` (YAML with comments) and the config reference in docs/config-reference.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace tinyzero {

// Value types a config field may have.
using FieldValue = std::variant<bool, int64_t, double, std::string, std::vector<int64_t>, std::vector<double>,
                                std::vector<std::string>>;
using FieldPtr = std::variant<bool*, int64_t*, double*, std::string*, std::vector<int64_t>*,
                              std::vector<double>*, std::vector<std::string>*>;

// A constraint on one field's value, checked after parsing. Default-constructed: no constraint.
struct Check {
  std::optional<double> min;  // lower bound (numbers, and every element of number lists)
  std::optional<double> max;  // upper bound
  bool min_exclusive = false;
  bool max_exclusive = false;
  std::vector<std::string> choices;  // allowed values of a string field (empty = any)
  bool allow_other = false;          // with choices: other strings are allowed too (e.g. a path)
  std::string other_help;            // with allow_other: what another string means

  static Check none() { return {}; }
  // Bounds; `lo_exclusive`/`hi_exclusive` make them strict.
  static Check bounds(std::optional<double> lo, std::optional<double> hi, bool lo_exclusive = false,
                      bool hi_exclusive = false) {
    Check c;
    c.min = lo, c.max = hi, c.min_exclusive = lo_exclusive, c.max_exclusive = hi_exclusive;
    return c;
  }
  static Check positive() { return bounds(0.0, std::nullopt, true); }
  static Check non_negative() { return bounds(0.0, std::nullopt); }
  static Check at_least(double lo) { return bounds(lo, std::nullopt); }
  static Check range(double lo, double hi) { return bounds(lo, hi); }
  static Check one_of(std::vector<std::string> values);
  // One of `values`, or any other string meaning `other` (e.g. "auto | off | a checkpoint path").
  static Check one_of_or(std::vector<std::string> values, std::string other);

  // Empty when `value` passes, otherwise a description of what is allowed ("must be > 0").
  std::string violation(const FieldValue& value) const;
  // "> 0", "in [0, 1]", "one of: a, b" (empty when unconstrained).
  std::string describe() const;
};

// One field of the schema, bound to a live config object.
struct FieldInfo {
  std::string path;  // dotted path, e.g. "actor.optim.lr"
  FieldPtr ptr;      // where the value lives
  FieldValue default_value;
  std::string help;
  Check check;
};

struct SectionInfo {
  std::string path;  // dotted path of the section, e.g. "actor.optim"
  std::string help;
};

// Collects the fields of a config tree. Sections call back into it from describe().
class Schema {
 public:
  template <class T>
  void field(const char* name, T* ptr, T default_value, const char* help, Check check = {}) {
    add(name, FieldPtr(ptr), FieldValue(std::move(default_value)), help, std::move(check));
  }
  // Convenience overloads so literals need no casts.
  void field(const char* name, int64_t* ptr, int default_value, const char* help, Check check = {}) {
    field<int64_t>(name, ptr, int64_t{default_value}, help, std::move(check));
  }
  void field(const char* name, std::string* ptr, const char* default_value, const char* help,
             Check check = {}) {
    field<std::string>(name, ptr, std::string(default_value), help, std::move(check));
  }

  template <class S>
  void section(const char* name, S* sub, const char* help) {
    begin_section(name, help);
    sub->describe(*this);
    end_section();
  }

  // By value on a temporary (`config.schema().fields()`), so a range-for over it cannot dangle.
  const std::vector<FieldInfo>& fields() const& { return fields_; }
  std::vector<FieldInfo> fields() && { return std::move(fields_); }
  const std::vector<SectionInfo>& sections() const& { return sections_; }
  std::vector<SectionInfo> sections() && { return std::move(sections_); }
  const FieldInfo* find(const std::string& path) const;
  bool is_section(const std::string& path) const;

  // Assigns every field its default.
  void apply_defaults() const;

 private:
  void add(const char* name, FieldPtr ptr, FieldValue default_value, const char* help, Check check);
  void begin_section(const char* name, const char* help);
  void end_section();

  std::vector<std::string> prefix_;
  std::vector<FieldInfo> fields_;
  std::vector<SectionInfo> sections_;
};

// Sets the defaults of a standalone section object (used by section constructors).
template <class S>
void apply_section_defaults(S* section) {
  Schema schema;
  section->describe(schema);
  schema.apply_defaults();
}

// Text forms of values, as YAML scalars/flow sequences that parse back to the same value.
std::string format_value(const FieldValue& value);
FieldValue read_value(const FieldPtr& ptr);
void write_value(const FieldPtr& ptr, const FieldValue& value);
// "bool", "int", "float", "string", "list of int", ...
std::string type_name(const FieldPtr& ptr);

}  // namespace tinyzero
