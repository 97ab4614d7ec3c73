// Evaluation of a model (a checkpoint or any Hugging Face directory) on a task's problems: `samples`
// responses per problem, greedy or sampled, scored by the task's rule; success rate, format rate,
// pass@k, and every response as JSONL. Runs on every rank of a torchrun / SLURM job: each rank takes a
// contiguous run of whole generate batches, and the results are gathered in problem order, so that
// 1 rank and N ranks give the same responses.
//
//   EvalOptions o;  o.samples = 8;  o.temperature = 1.0;
//   EvalResult r = evaluate(config, o);            // config.model.path is the model
//   r.summary["pass@8"], r.jsonl (rank 0: every rank's rows)
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tinyzero/core/config.h"

namespace tinyzero {

struct EvalOptions {
  // Problems: a JSONL file of the task (dataset.h's format); empty: the config's held-out set
  // (data.val_files, else data.val_size problems generated from data.seed, as training validates on).
  std::string data_file;
  int64_t limit = 0;        // evaluate the first `limit` problems only (0: all)
  int64_t samples = 1;      // responses per problem
  double temperature = 0;   // 0: greedy (samples must then be 1)
  std::vector<int64_t> ks;  // pass@k to report (each 1..samples); empty: 1, 2, 4, ... and samples
  uint64_t seed = 0;        // of the sampler streams (sample j of problem i: keyed by (seed, i, j))
  bool progress = true;     // the progress bar on a terminal (rank 0)
};

struct EvalResult {
  // Over all ranks: problems, samples, score_mean, success_rate (share of correct responses),
  // format_rate, pass@<k> for each k, response_tokens_mean, truncated_rate, seconds, tokens_per_s.
  std::map<std::string, double> summary;
  std::string task;
  std::vector<int64_t> ks;
  // Rank 0: one JSON line per response, problem order then sample order (index, sample, problem, prompt,
  // response, score, correct, format_ok, truncated, response_tokens); other ranks: empty.
  std::string jsonl;
};

// pass@k of one problem from `n` responses of which `c` are correct: the chance that at least one of k
// responses drawn without replacement is correct, 1 - C(n-c, k) / C(n, k) (the unbiased estimator of
// Chen et al. 2021). Throws Error unless 0 <= c <= n and 1 <= k <= n.
double pass_at_k(int64_t n, int64_t c, int64_t k);

// The k values reported by default for `samples` responses: powers of two below it, and `samples`.
std::vector<int64_t> default_pass_ks(int64_t samples);

// Loads the model of config.model.path (tokenizer: model.tokenizer_path or the same directory), the
// problems, and evaluates them with data.max_prompt_length / max_response_length, rollout.top_k / top_p /
// stop / micro_batch_size (rows per generate call), model.dtype / autocast_bf16, trainer.device /
// threads, joining the process group of the job (distributed.*) when there are several ranks. Throws
// ConfigError for bad options or problems, IoError for unreadable files.
EvalResult evaluate(const TrainConfig& config, const EvalOptions& options);

}  // namespace tinyzero
