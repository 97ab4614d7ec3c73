// Evaluation of a model on a task's problems (see tinyzero/trainer/evaluation.h).
#include "tinyzero/trainer/evaluation.h"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "tinyzero/core/errors.h"
#include "tinyzero/core/log.h"
#include "tinyzero/core/runtime.h"
#include "tinyzero/model/weights.h"
#include "tinyzero/tasks/dataset.h"
#include "trainer/rank_stats.h"
#include "trainer/reward_stage.h"
#include "trainer/rollout_stage.h"
#include "trainer/train_context.h"

namespace tinyzero {

double pass_at_k(int64_t n, int64_t c, int64_t k) {
  if (n < 1 || c < 0 || c > n || k < 1 || k > n)
    throw Error("pass_at_k: need 0 <= c <= n and 1 <= k <= n, got n=" + std::to_string(n) +
                " c=" + std::to_string(c) + " k=" + std::to_string(k));
  if (n - c < k) return 1.0;
  // C(n-c, k) / C(n, k) = prod_{i = n-c+1}^{n} (1 - k / i), a product of numbers in [0, 1]: no overflow.
  double all_wrong = 1.0;
  for (int64_t i = n - c + 1; i <= n; ++i) all_wrong *= 1.0 - static_cast<double>(k) / static_cast<double>(i);
  return 1.0 - all_wrong;
}

std::vector<int64_t> default_pass_ks(int64_t samples) {
  std::vector<int64_t> ks;
  for (int64_t k = 1; k < samples; k *= 2) ks.push_back(k);
  ks.push_back(std::max<int64_t>(1, samples));
  return ks;
}

namespace {

void check_options(const EvalOptions& o, std::vector<int64_t>& ks) {
  if (o.samples < 1)
    throw ConfigError("--samples " + std::to_string(o.samples) + ": give at least 1 response per problem");
  if (o.temperature < 0)
    throw ConfigError("--temperature " + std::to_string(o.temperature) + " is negative; use 0 for greedy");
  if (o.temperature == 0 && o.samples > 1)
    throw ConfigError("--samples " + std::to_string(o.samples) +
                      " with greedy decoding (--temperature 0) gives the same response every time; sample "
                      "with --temperature 1 (or another value above 0)");
  if (o.limit < 0) throw ConfigError("--limit " + std::to_string(o.limit) + " is negative; 0 means all");
  ks = o.ks.empty() ? default_pass_ks(o.samples) : o.ks;
  for (int64_t k : ks)
    if (k < 1 || k > o.samples)
      throw ConfigError("--k " + std::to_string(k) + ": pass@k needs 1 <= k <= --samples (" +
                        std::to_string(o.samples) + "); raise --samples or lower k");
}

// The problems to evaluate: the file's, or the config's held-out set; the first `limit` of them.
std::vector<Problem> eval_problems(const TrainConfig& c, const Task& task, const EvalOptions& o,
                                   const Tokenizer& tokenizer) {
  TrainConfig settings = c;
  if (!o.data_file.empty()) settings.data.val_files = o.data_file;
  const DataConfig& data = settings.data;
  std::vector<Problem> problems = load_validation_problems(settings);
  if (problems.empty())
    throw ConfigError("no problems to evaluate: " +
                      (data.val_files.empty() ? std::string("data.val_size is 0; set it or give --data FILE")
                                              : data.val_files + " is empty"));
  if (o.limit > 0 && static_cast<size_t>(o.limit) < problems.size())
    problems.resize(static_cast<size_t>(o.limit));
  ProblemSets sets;
  sets.val = problems;
  check_problem_sets(sets, task, data, prompt_token_counter(tokenizer));
  return problems;
}

}  // namespace

EvalResult evaluate(const TrainConfig& config, const EvalOptions& options) {
  const TrainConfig& c = config;
  EvalResult result;
  check_options(options, result.ks);
  configure_threads(static_cast<int>(c.trainer.threads));
  const DistEnv env = detect_dist_env();
  const at::Device device = pick_device(c, env);
  auto pg = init_process_group(env, c.distributed.backend, device, c.distributed.timeout_s);
  const bool autocast = pick_autocast(c, device);
  const std::string tokenizer_dir = c.model.tokenizer_path.empty() ? c.model.path : c.model.tokenizer_path;
  const auto tokenizer = load_tokenizer(tokenizer_dir);
  const auto task = make_task(c.data, c.reward);
  result.task = task->name();
  const std::vector<Problem> problems = eval_problems(c, *task, options, *tokenizer);

  CausalLM model = load_causal_lm(c.model.path, parse_dtype(c.model.dtype), device);
  const std::vector<int64_t> eos = stop_token_ids(*tokenizer, model->config(), tokenizer_dir, c.model.path);
  const int64_t pad = tokenizer->pad_id().value_or(eos.front());
  const Sampler sampler{*model, *tokenizer, *task, c, device, autocast, eos, pad};

  // Each rank takes a contiguous share of the problems in one generate call; a sample's random stream
  // is keyed by its problem's index, so the responses are the same on any number of ranks.
  const int64_t n = options.samples;
  const auto total = static_cast<int64_t>(problems.size());
  const int64_t begin = total * pg->rank() / pg->world_size(),
                end = total * (pg->rank() + 1) / pg->world_size();
  if (options.temperature == 0)
    logging::info("eval: {} {} problems x {} response(s), greedy, on {} rank(s)", total, result.task, n,
                  pg->world_size());
  else
    logging::info("eval: {} {} problems x {} response(s), temperature {:g}, on {} rank(s)", total,
                  result.task, n, options.temperature, pg->world_size());

  const auto t0 = std::chrono::steady_clock::now();
  ProgressBar bar("eval", (end - begin) * n, options.progress && pg->is_main());
  RankStats sum(ReduceOp::kSum);
  double score = 0, correct = 0, format = 0, tokens = 0, truncated = 0;
  std::vector<double> pass(result.ks.size(), 0.0);
  std::string jsonl;
  if (begin < end) {
    const std::vector<Problem> chunk(problems.begin() + begin, problems.begin() + end);
    RolloutBatch r = generate_rollouts(sampler, chunk, n, options.temperature == 0, options.temperature,
                                       options.seed, &bar, begin);
    score_rollouts(*task, chunk, r);
    const std::vector<int64_t> lengths = response_lengths(r);
    auto scores = r.scores.accessor<float, 1>();
    for (size_t p = 0; p < chunk.size(); ++p) {
      int64_t right = 0;
      for (int64_t j = 0; j < n; ++j) {
        const auto row = static_cast<int64_t>(p) * n + j;
        right += r.correct[row];
        score += scores[row], correct += r.correct[row], format += r.format_ok[row];
        tokens += static_cast<double>(lengths[row]), truncated += r.truncated[row];
        nlohmann::json line{{"index", begin + static_cast<int64_t>(p)},
                            {"sample", j},
                            {"problem", task->describe(chunk[p])},
                            {"prompt", r.prompts[row]},
                            {"response", r.responses[row]},
                            {"score", scores[row]},
                            {"correct", static_cast<bool>(r.correct[row])},
                            {"format_ok", static_cast<bool>(r.format_ok[row])},
                            {"truncated", static_cast<bool>(r.truncated[row])},
                            {"response_tokens", lengths[row]}};
        if (!chunk[p].source.empty()) line["source"] = chunk[p].source;
        jsonl += line.dump() + "\n";
      }
      for (size_t i = 0; i < result.ks.size(); ++i) pass[i] += pass_at_k(n, right, result.ks[i]);
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  sum.add("score", score).add("correct", correct).add("format_ok", format);
  sum.add("tokens", tokens).add("truncated", truncated);
  for (size_t i = 0; i < result.ks.size(); ++i) sum.add("pass@" + std::to_string(result.ks[i]), pass[i]);
  sum.reduce(*pg);
  const double slowest = pg->all_reduce(seconds, ReduceOp::kMax);
  const std::vector<std::string> parts = pg->all_gather_strings(jsonl);
  if (pg->is_main())
    for (const auto& part : parts) result.jsonl += part;

  const double responses = static_cast<double>(total * n);
  auto& s = result.summary;
  s["problems"] = static_cast<double>(total);
  s["samples"] = static_cast<double>(n);
  s["score_mean"] = sum["score"] / responses;
  s["success_rate"] = sum["correct"] / responses;
  s["format_rate"] = sum["format_ok"] / responses;
  s["truncated_rate"] = sum["truncated"] / responses;
  s["response_tokens_mean"] = sum["tokens"] / responses;
  for (int64_t k : result.ks) s["pass@" + std::to_string(k)] = sum["pass@" + std::to_string(k)] / total;
  s["seconds"] = slowest;
  s["tokens_per_s"] = slowest > 0 ? sum["tokens"] / slowest : 0;
  s["world_size"] = pg->world_size();
  return result;
}

}  // namespace tinyzero
