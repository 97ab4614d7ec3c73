// The tiny demo's warm-up corpus as a whole: problems of their own seed that are none of a training
// config's held-out problems, and warm-up examples of them (warmup.h) in that config's prompt
// template, serialised as SFT JSONL ({"prompt", "response"} per line) and, for a tokenizer's corpus, as
// plain text. What `tinyzero-train data countdown-sft` and the recipe's corpus stages write.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tinyzero/tasks/warmup.h"

namespace tinyzero {

struct DataConfig;

struct WarmupCorpusOptions {
  int64_t problems = 4000;            // distinct problems, none of them held out
  int64_t examples = 0;               // examples, cycling over the problems; 0 = one per problem
  int64_t attempts = 8;               // attempts per trace (the most, with min_attempts)
  int64_t min_attempts = 0;           // fewest attempts per trace; 0 = attempts
  double stop_prob = 0;               // > 0: geometric trace lengths (WarmupOptions::stop_prob)
  bool answer_last = false;           // answer the last attempt; else a random one
  bool ordered = false;               // the fixed order's candidates; else random attempts
  bool compare = false;               // each attempt ends with its relation to the target
  bool compare_target_first = false;  // "50?26>" instead of "50>26"
  uint64_t seed = 0;                  // seed of the problems, attempts and answer picks
};

// Throws ConfigError naming the field (`where` says whose options they are, e.g. "stage warmup of
// configs/tiny/demo.yaml") when a count is out of range.
void validate_warmup_corpus_options(const WarmupCorpusOptions& options, const std::string& where);

struct WarmupCorpus {
  std::vector<WarmupExample> examples;
  size_t problems = 0;                 // distinct problems the examples cycle over
  size_t held_out = 0;                 // held-out problems of the config, none of which is among them
  double chance_hit_rate() const;      // share of examples whose answer hits the target by chance
  double mean_response_chars() const;  // mean response length in bytes
  std::string jsonl() const;           // {"prompt": ..., "response": ...} lines
  std::string text() const;            // prompt + response + "<|endoftext|>" lines (a tokenizer corpus)
};

// `count` problems of the countdown task of `data` (its ranges) from their own stream of `seed`, none of
// them among its held-out problems (generated from data.seed or read from data.val_files, as the
// trainer does); `held_out` (when given) receives how many those are. Throws ConfigError when
// data.task is not countdown or the ranges hold too few problems.
std::vector<Problem> warmup_problems(const DataConfig& data, size_t count, uint64_t seed,
                                     size_t* held_out = nullptr);

// The corpus for the countdown task of `data`: warmup_problems() and examples of them in
// data.prompt_template. Throws ConfigError as warmup_problems() does, or when an option is out of
// range.
WarmupCorpus make_countdown_warmup_corpus(const DataConfig& data, const WarmupCorpusOptions& options);

}  // namespace tinyzero
