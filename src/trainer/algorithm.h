// The RL algorithm of a run (algorithm.name), as a type: what it needs besides the actor and how it
// turns rewards into advantages.
#pragma once

#include <string>

namespace tinyzero {

enum class Algorithm {
  kPpo,   // critic + GAE (TinyZero's recipe)
  kGrpo,  // group-normalised outcome advantages (optionally Dr. GRPO: no std normalisation)
  kRloo,  // leave-one-out baseline within each group
  kSft,   // supervised fine-tuning on prompt/response pairs, no rollouts
};

// The Algorithm of a config's algorithm.name (validated by the config schema); throws ConfigError for
// a name it does not know.
Algorithm parse_algorithm(const std::string& name);
const char* algorithm_name(Algorithm a);

}  // namespace tinyzero
