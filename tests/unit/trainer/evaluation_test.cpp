// pass@k's unbiased estimator and the default k values of `tinyzero-train eval`.
#include "tinyzero/trainer/evaluation.h"

#include <gtest/gtest.h>

#include "tinyzero/core/errors.h"

namespace tinyzero {
namespace {

// 1 - C(n - c, k) / C(n, k) from binomial coefficients computed directly.
double by_binomials(int64_t n, int64_t c, int64_t k) {
  auto choose = [](int64_t a, int64_t b) {
    if (b > a) return 0.0;
    double v = 1;
    for (int64_t i = 0; i < b; ++i) v = v * static_cast<double>(a - i) / static_cast<double>(i + 1);
    return v;
  };
  return 1.0 - choose(n - c, k) / choose(n, k);
}

TEST(PassAtK, MatchesTheBinomialFormula) {
  for (int64_t n : {1, 2, 5, 8, 16})
    for (int64_t c = 0; c <= n; ++c)
      for (int64_t k = 1; k <= n; ++k)
        EXPECT_NEAR(pass_at_k(n, c, k), by_binomials(n, c, k), 1e-12) << n << " " << c << " " << k;
}

TEST(PassAtK, KnownValues) {
  EXPECT_DOUBLE_EQ(pass_at_k(8, 0, 8), 0.0);
  EXPECT_DOUBLE_EQ(pass_at_k(8, 1, 8), 1.0);
  EXPECT_DOUBLE_EQ(pass_at_k(8, 2, 1), 0.25);   // pass@1 is the share of correct responses
  EXPECT_NEAR(pass_at_k(4, 1, 2), 0.5, 1e-15);  // 1 - C(3,2)/C(4,2) = 1 - 3/6
  EXPECT_NEAR(pass_at_k(200, 3, 100), 1 - (100.0 * 99 * 98) / (200.0 * 199 * 198), 1e-12);
  EXPECT_DOUBLE_EQ(pass_at_k(1000, 0, 500), 0.0);  // large n: a product of factors, no overflow
}

TEST(PassAtK, RefusesImpossibleCounts) {
  EXPECT_THROW(pass_at_k(4, 5, 1), Error);
  EXPECT_THROW(pass_at_k(4, -1, 1), Error);
  EXPECT_THROW(pass_at_k(4, 1, 5), Error);
  EXPECT_THROW(pass_at_k(4, 1, 0), Error);
  EXPECT_THROW(pass_at_k(0, 0, 1), Error);
}

TEST(PassAtK, DefaultKsArePowersOfTwoAndTheSampleCount) {
  EXPECT_EQ(default_pass_ks(1), (std::vector<int64_t>{1}));
  EXPECT_EQ(default_pass_ks(8), (std::vector<int64_t>{1, 2, 4, 8}));
  EXPECT_EQ(default_pass_ks(10), (std::vector<int64_t>{1, 2, 4, 8, 10}));
}

}  // namespace
}  // namespace tinyzero
