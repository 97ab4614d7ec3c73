// Shared helpers of the model tests: the qwen2-tiny fixture (Hugging Face reference outputs) as tensors.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cctype>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tinyzero/core/files.h"

namespace tinyzero::testing_fixture {

inline std::string fixture_dir(const std::string& variant) {
  return std::string(TZ_TEST_DATA_DIR) + "/qwen2-tiny/" + variant;
}

// Test-name suffix of a fixture variant, for INSTANTIATE_TEST_SUITE_P: "tied-f32" -> "tied_f32" (gtest
// names allow only letters, digits and '_').
inline std::string variant_test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
}

inline nlohmann::json reference(const std::string& variant) {
  return nlohmann::json::parse(read_file(fixture_dir(variant) + "/reference.json"));
}

// Nested JSON lists of numbers -> tensor of `dtype`.
inline at::Tensor to_tensor(const nlohmann::json& j, at::ScalarType dtype) {
  std::vector<int64_t> shape;
  const nlohmann::json* p = &j;
  while (p->is_array()) {
    shape.push_back(static_cast<int64_t>(p->size()));
    if (p->empty()) break;
    p = &(*p)[0];
  }
  std::vector<double> flat;
  std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& x) {
    if (x.is_array()) {
      for (const auto& e : x) walk(e);
    } else {
      flat.push_back(x.get<double>());
    }
  };
  walk(j);
  return torch::tensor(flat, torch::kDouble).view(shape).to(dtype);
}

inline double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

}  // namespace tinyzero::testing_fixture
