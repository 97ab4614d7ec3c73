#include "trainer/algorithm.h"

#include "tinyzero/core/errors.h"

namespace tinyzero {

Algorithm parse_algorithm(const std::string& name) {
  if (name == "ppo") return Algorithm::kPpo;
  if (name == "grpo") return Algorithm::kGrpo;
  if (name == "rloo") return Algorithm::kRloo;
  if (name == "sft") return Algorithm::kSft;
  throw ConfigError("algorithm.name '" + name + "' is not one of ppo, grpo, rloo, sft");
}

const char* algorithm_name(Algorithm a) {
  switch (a) {
    case Algorithm::kPpo:
      return "ppo";
    case Algorithm::kGrpo:
      return "grpo";
    case Algorithm::kRloo:
      return "rloo";
    case Algorithm::kSft:
      return "sft";
  }
  return "?";
}

}  // namespace tinyzero
