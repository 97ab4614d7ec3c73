// The rollout stage (see rollout_stage.h).
#include "trainer/rollout_stage.h"

#include <algorithm>

#include "tinyzero/core/errors.h"
#include "tinyzero/model/decode_memory.h"
#include "tinyzero/model/generator.h"
#include "tinyzero/rl/advantages.h"
#include "tinyzero/tokenizer/stop_strings.h"
#include "trainer/data_order.h"
#include "trainer/reward_stage.h"
#include "trainer/train_context.h"

namespace tinyzero {

Sampler sampler_of(TrainContext& ctx) {
  return Sampler{*ctx.actor,        *ctx.tokenizer, *ctx.task,  ctx.config,          ctx.device,
                 ctx.bf16_autocast, ctx.eos_ids,    ctx.pad_id, ctx.rollout_by_layer};
}

GenerationWeights::GenerationWeights(TrainContext& ctx) {
  if (ctx.rollout_by_layer && ctx.optimizer->host()) {
    lockstep_ = ctx.optimizer->host();
    lockstep_->start_lockstep();
  } else {
    whole_.emplace(ctx.optimizer.get());
  }
}

void GenerationWeights::finish() {
  if (lockstep_) {
    lockstep_->finish_lockstep();
    lockstep_->release_all();
  }
  whole_.reset();
}

std::vector<int64_t> stop_token_ids(const Tokenizer& tokenizer, const TransformerConfig& model,
                                    const std::string& tokenizer_dir, const std::string& model_dir) {
  std::vector<int64_t> ids;
  if (auto eos = tokenizer.eos_id()) ids.push_back(*eos);
  for (auto id : model.eos_token_ids)
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  if (ids.empty())
    throw ConfigError("neither the tokenizer in '" + tokenizer_dir + "' nor " + model_dir +
                      "/config.json names an EOS token; set eos_token in tokenizer_config.json");
  return ids;
}

std::vector<int64_t> encode_prompt(const Tokenizer& tokenizer, const std::string& text,
                                   int64_t max_prompt_length) {
  std::vector<int64_t> ids = tokenizer.encode(text, false);
  if (static_cast<int64_t>(ids.size()) > max_prompt_length)
    throw ConfigError("a prompt has " + std::to_string(ids.size()) +
                      " tokens, more than data.max_prompt_length = " + std::to_string(max_prompt_length) +
                      "; raise data.max_prompt_length");
  if (ids.empty()) throw Error("a prompt encodes to no token; check data.prompt_template");
  return ids;
}

namespace {

// The options of one generate call.
GenerateOptions generate_options(const Sampler& s, int64_t n, bool greedy, double temperature) {
  const TrainConfig& c = s.config;
  GenerateOptions opt;
  opt.max_new_tokens = c.data.max_response_length;
  opt.sampling.greedy = greedy || temperature == 0;
  opt.sampling.temperature = temperature > 0 ? temperature : 1.0;
  opt.sampling.top_k = greedy ? 0 : c.rollout.top_k;
  opt.sampling.top_p = greedy ? 1.0 : c.rollout.top_p;
  opt.eos_ids = s.eos_ids;
  opt.pad_id = s.pad_id;
  opt.num_samples = n;
  opt.cuda_graphs = c.rollout.cuda_graphs;  // the engine leaves them off while passes gather weights
  if (!c.rollout.stop.empty()) {
    const Tokenizer* tok = &s.tokenizer;
    const std::vector<std::string> stops = c.rollout.stop;
    opt.stop_check = [tok, stops](const std::vector<std::vector<int64_t>>& rows) {
      return stop_string_lengths(*tok, rows, stops);
    };
  }
  return opt;
}

}  // namespace

RolloutBatch generate_rollouts(const Sampler& s, const std::vector<Problem>& problems, int64_t n, bool greedy,
                               double temperature, uint64_t seed, ProgressBar* progress,
                               int64_t first_index) {
  std::vector<std::string> prompt_texts;
  std::vector<std::vector<int64_t>> prompt_ids;
  int64_t P = 0;
  for (const Problem& problem : problems) {
    prompt_texts.push_back(s.task.prompt(problem));
    prompt_ids.push_back(encode_prompt(s.tokenizer, prompt_texts.back(), s.config.data.max_prompt_length));
    P = std::max<int64_t>(P, static_cast<int64_t>(prompt_ids.back().size()));
  }
  s.model.eval();
  AutocastGuard autocast(s.device, s.bf16_autocast);
  GenerateOptions opt = generate_options(s, n, greedy, temperature);
  opt.seed = seed;
  opt.first_prompt = static_cast<uint64_t>(first_index);
  opt.max_active_rows = s.config.rollout.micro_batch_size;
  if (s.layer_by_layer) {  // every pass gathers: one engine; nothing whole to fuse
    opt.fuse_weights = false;
    opt.row_workers = 1;
  }
  // The rows decoding at once also fit in the memory left now (after weights, optimizer state and
  // whatever the phases before left allocated): a longer max_response_length gets fewer rows, not an
  // out-of-memory error.
  opt.memory_budget_bytes = available_device_bytes(s.device) * s.config.rollout.memory_utilization;
  if (progress) opt.on_rows_done = [progress](int64_t rows) { progress->advance(rows); };
  GenerateResult gen = generate(s.model, prompt_ids, opt);

  // Prompt + response rows: the prompts left-padded to the longest.
  const int64_t B = static_cast<int64_t>(prompt_ids.size()), rows = B * n;
  at::Tensor ids = torch::full({B, P}, s.pad_id, torch::kLong);
  at::Tensor mask = torch::zeros({B, P}, torch::kLong);
  for (int64_t b = 0; b < B; ++b) {
    const auto& p = prompt_ids[static_cast<size_t>(b)];
    const int64_t len = static_cast<int64_t>(p.size());
    ids[b].narrow(0, P - len, len).copy_(torch::tensor(p, torch::kLong));
    mask[b].narrow(0, P - len, len).fill_(1);
  }
  RolloutBatch r;
  const int64_t R = gen.ids.size(1);
  at::Tensor lengths = gen.lengths.to(torch::kCPU);
  at::Tensor rmask = (torch::arange(R).unsqueeze(0) < lengths.unsqueeze(1)).to(torch::kFloat);  // (rows, R)
  r.prompt_len = P;
  r.input_ids = torch::cat({ids.to(s.device).repeat_interleave(n, 0), gen.ids}, 1);
  r.attention_mask =
      torch::cat({mask.to(s.device).repeat_interleave(n, 0), rmask.to(torch::kLong).to(s.device)}, 1);
  r.response_mask = rmask.to(s.device);
  r.sample_log_probs = gen.logprobs;  // (rows, R)
  r.rows_at_once = gen.rows_at_once;
  at::Tensor resp_cpu = gen.ids.to(torch::kCPU);
  auto acc = resp_cpu.accessor<int64_t, 2>();
  auto len_acc = lengths.accessor<int64_t, 1>();
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t b = row / n;
    std::vector<int64_t> resp_ids(acc[row].data(), acc[row].data() + len_acc[row]);
    r.group.push_back(b);
    r.truncated.push_back(gen.finish[static_cast<size_t>(row)] == FinishReason::kLength);
    r.prompts.push_back(prompt_texts[static_cast<size_t>(b)]);
    r.responses.push_back(s.tokenizer.decode(resp_ids, false));
  }
  return r;
}

StepRollouts collect_rollouts(TrainContext& ctx) {
  const TrainConfig& c = ctx.config;
  const int64_t n = c.rollout.n;
  // Every rank draws the same global batch from the data order and keeps its contiguous share.
  const auto [share_begin, share_end] = ctx.my_share(c.data.train_batch_size);
  const int64_t want_groups = share_end - share_begin;
  StepRollouts out;
  std::vector<RolloutBatch> kept;
  int64_t kept_groups = 0;
  GenerationWeights weights(ctx);  // ZeRO-3: gathered once for the phase, or a layer at a time
  while (kept_groups < want_groups) {
    std::vector<Problem> batch;
    const std::vector<int64_t> picks = ctx.cursor->next(c.data.train_batch_size);
    for (int64_t i = share_begin; i < share_end; ++i)
      batch.push_back(ctx.problems.train[static_cast<size_t>(picks[i])]);
    ProgressBar bar("rollout", static_cast<int64_t>(batch.size()) * n,
                    c.logging.progress && ctx.pg->is_main());
    const uint64_t seed =
        derive_seed(c.trainer.seed, static_cast<uint64_t>(ctx.step), static_cast<uint64_t>(out.rounds));
    RolloutBatch r =
        generate_rollouts(sampler_of(ctx), batch, n, false, c.rollout.temperature, seed, &bar, share_begin);
    score_rollouts(*ctx.task, batch, r);
    ++out.rounds;
    auto score_of = r.scores.accessor<float, 1>();
    for (int64_t i = 0; i < r.rows(); ++i) {
      out.scores.push_back(score_of[i]);
      out.correct.push_back(r.correct[i]);
      out.format_ok.push_back(r.format_ok[i]);
    }
    if (!c.algorithm.filter_groups) {
      kept.push_back(std::move(r));
      break;
    }
    // DAPO: keep the groups whose rewards differ.
    std::vector<bool> keep = dynamic_sampling_keep(r.scores, r.group);
    std::vector<int64_t> rows;
    for (int64_t row = 0; row < r.rows(); row += n) {
      if (!keep[row] || kept_groups >= want_groups) continue;
      for (int64_t j = 0; j < n; ++j) rows.push_back(row + j);
      ++kept_groups;
    }
    if (!rows.empty()) kept.push_back(select_rows(r, rows));
    if (c.algorithm.max_num_gen_batches > 0 && out.rounds >= c.algorithm.max_num_gen_batches) break;
  }
  weights.finish();
  out.empty = kept.empty();
  if (!out.empty) out.batch = concat_rollouts(kept, ctx.pad_id);
  return out;
}

}  // namespace tinyzero
