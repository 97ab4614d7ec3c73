// The tiny demo's model from nothing downloaded: a byte-level BPE tokenizer trained on generated
// Countdown text, and a randomly initialised model of a given shape with it. The recipe's tiny-model
// stage; scripts/make-tiny-model.sh runs that stage alone.
//
// The tokenizer's corpus has two parts, each over problems of a training config's ranges, in its
// prompt template, none of them held out by it:
//   1. one line per problem answered with a random expression over its numbers in prompt order
//      ("... <think> 3 * 7 + 5 </think> <answer>3 * 7 + 5</answer><|endoftext|>"): the smoke run's
//      prompts and the characters of an answer (the problems and operators those of the shell script
//      this replaced, so the demo's spec gives its tokenizer and model byte for byte);
//   2. one warm-up example per problem (tasks/warmup.h: random attempts, each worked out) with
//      <|endoftext|> after it: the demo's prompts and the layout of its thinking traces.
#pragma once

#include <cstdint>
#include <string>

#include "tinyzero/core/config.h"

namespace tinyzero {

struct TinyModelSpec {
  std::string model_config;    // the shape: a Hugging Face config.json (e.g. configs/tiny/model.json)
  int64_t vocab_size = 512;    // ids of the tokenizer: 256 bytes + merges + special tokens
  DataConfig expression_data;  // part 1's ranges and template
  int64_t expression_problems = 4000;
  DataConfig trace_data;  // part 2's ranges and template
  int64_t trace_problems = 1000;
  uint64_t seed = 11;      // the corpus' problems and answers
  uint64_t init_seed = 1;  // the weights
};

// The tokenizer's training text; a pure function of the spec.
std::string tiny_model_tokenizer_corpus(const TinyModelSpec& spec);

struct TinyModelResult {
  int64_t vocab_size = 0, merges = 0, parameters = 0;
};

// Writes OUT/tokenizer (tokenizer.json, tokenizer_config.json) and OUT/model (a Hugging Face directory
// with the tokenizer's files), all of OUT at once (io/atomic_dir.h): OUT is there complete or not at
// all. An existing OUT is replaced only when it holds model/config.json. Throws ConfigError for a bad
// spec.
TinyModelResult make_tiny_model(const TinyModelSpec& spec, const std::string& out);

}  // namespace tinyzero
