// The rollout engine: batched prefill + decode with a preallocated KV cache, sampling, stop conditions.
//
// Prompts are left-padded (B, P) with a mask; positions come from the mask. n samples per prompt share
// one prompt prefill (the cache rows are repeated after it). The decode loop does no host
// synchronisation per token: finished rows, stop checks and batch compaction are looked at every
// `check_every` steps. Rows that finished are filled with pad_id, as Hugging Face does.
// generate_reference() is the slow no-cache path the tests compare against.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <vector>

namespace tinyzero {

class CausalLMImpl;

enum class FinishReason { kLength, kEos, kStop };
const char* finish_reason_name(FinishReason r);  // "length" | "eos" | "stop"

struct SamplingParams {
  bool greedy = false;       // argmax; temperature/top-k/top-p are ignored
  double temperature = 1.0;  // > 0
  int64_t top_k = 0;         // keep the k most likely tokens; 0 = off
  double top_p = 1.0;        // nucleus: keep the smallest set with mass >= top_p; 1 = off
};

// Stop check supplied by the caller (e.g. stop strings through a tokenizer; the generator knows no
// tokenizer). Gets the tokens generated so far by each row still running and returns, per row, -1 to
// go on or the number of tokens to keep (the row stops there; later tokens become pad).
using StopCheck = std::function<std::vector<int64_t>(const std::vector<std::vector<int64_t>>& running_rows)>;

struct GenerateOptions {
  int64_t max_new_tokens = 128;
  SamplingParams sampling;
  std::vector<int64_t> eos_ids;  // a row stops after emitting any of these (kept in its output); empty = none
  int64_t pad_id = 0;            // fills a row after it stopped
  int64_t num_samples = 1;       // n per prompt; output row b * n + j is sample j of prompt b
  uint64_t seed = 0;             // seeds the sampler's own generator (runs are reproducible)
  StopCheck stop_check;          // optional, called every check_every steps
  int64_t check_every = 16;      // decode steps between host syncs (all finished? stop check? compact?)
  bool compact = true;           // at a check, drop finished rows when at least half have finished
  bool fuse_weights = true;      // concatenated q/k/v and gate/up weight copies during the call (faster;
                                 // costs one more copy of those weights in memory)
  int64_t row_workers = 0;       // CPU: prompts split into this many groups, each generated on its own
                                 // thread with one intra-op thread; 0 = the intra-op thread count, 1 = off.
                                 // Group g samples with seed + g * 0x9E3779B97F4A7C15 (group 0: seed), so
                                 // sampled rows depend on the group count; greedy ones do not
};

struct GenerateResult {
  at::Tensor ids;       // (B*n, N) int64 on the model's device; N = longest row; pad after a row's end
  at::Tensor logprobs;  // (B*n, N) fp32: log-prob of each token under the distribution sampled from
                        // (after temperature, top-k, top-p; the raw softmax when greedy), 0 after the end
  at::Tensor lengths;   // (B*n) int64: tokens generated, the EOS included
  std::vector<FinishReason> finish;  // per row
  int64_t steps = 0;                 // decode steps run (forwards after the prefill + 1)
};

// prompt_ids (B, P) int64, prompt_mask (B, P) (1 = token, 0 = left padding; every row must end with a
// real token). Runs under no-grad; honours an active autocast.
GenerateResult generate(CausalLMImpl& model, const at::Tensor& prompt_ids, const at::Tensor& prompt_mask,
                        const GenerateOptions& options);

// The same without a KV cache and without compaction: re-runs the whole sequence every step. Draws
// the same random numbers as generate() with compact = false, so both give the same samples.
GenerateResult generate_reference(CausalLMImpl& model, const at::Tensor& prompt_ids,
                                  const at::Tensor& prompt_mask, const GenerateOptions& options);

}  // namespace tinyzero
