// Text generation helpers of the CLI (see generation.h).
#include "cli/generation.h"

#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "tinyzero/core/errors.h"
#include "tinyzero/core/files.h"
#include "tinyzero/core/runtime.h"
#include "tinyzero/model/generator.h"
#include "tinyzero/model/qwen2.h"
#include "tinyzero/model/weights.h"
#include "tinyzero/tokenizer/stop_strings.h"

namespace tinyzero::cli {

bool has_tokenizer(const std::string& dir) {
  return std::filesystem::exists(dir + "/tokenizer.json") ||
         std::filesystem::exists(dir + "/tokenizer.model");
}

std::pair<at::Tensor, at::Tensor> left_pad(const std::vector<std::vector<int64_t>>& rows, int64_t pad) {
  size_t P = 0;
  for (const auto& r : rows) P = std::max(P, r.size());
  at::Tensor ids =
      torch::full({static_cast<int64_t>(rows.size()), static_cast<int64_t>(P)}, pad, torch::kLong);
  at::Tensor mask = torch::zeros_like(ids);
  for (size_t b = 0; b < rows.size(); ++b) {
    if (rows[b].empty())
      throw UsageError("prompt " + std::to_string(b) + " is empty: give at least one token");
    int64_t start = static_cast<int64_t>(P - rows[b].size());
    ids[b].narrow(0, start, rows[b].size()).copy_(torch::tensor(rows[b], torch::kLong));
    mask[b].narrow(0, start, rows[b].size()).fill_(1);
  }
  return {ids, mask};
}

GenerationIds generation_ids(const std::string& model_dir, const TransformerConfig& config,
                             const Tokenizer* tok, const std::vector<int64_t>& eos_ids,
                             const std::optional<int64_t>& pad_id, bool no_eos) {
  nlohmann::json gen_cfg;
  const std::string gen_path = model_dir + "/generation_config.json";
  if (std::filesystem::exists(gen_path)) {
    try {
      gen_cfg = nlohmann::json::parse(read_file(gen_path));
    } catch (const nlohmann::json::parse_error& e) {
      throw IoError(gen_path + " is not valid JSON: " + e.what());
    }
  }
  GenerationIds ids;
  ids.eos = eos_ids;
  if (ids.eos.empty() && !no_eos) {
    if (gen_cfg.contains("eos_token_id") && gen_cfg["eos_token_id"].is_number_integer()) {
      ids.eos.push_back(gen_cfg["eos_token_id"].get<int64_t>());
    } else if (gen_cfg.contains("eos_token_id") && gen_cfg["eos_token_id"].is_array()) {
      for (const auto& e : gen_cfg["eos_token_id"]) ids.eos.push_back(e.get<int64_t>());
    } else {
      ids.eos = config.eos_token_ids;
    }
    if (ids.eos.empty() && tok && tok->eos_id()) ids.eos.push_back(*tok->eos_id());
  }
  if (pad_id)
    ids.pad = *pad_id;
  else if (tok && tok->pad_id())
    ids.pad = *tok->pad_id();
  else if (gen_cfg.contains("pad_token_id") && gen_cfg["pad_token_id"].is_number_integer())
    ids.pad = gen_cfg["pad_token_id"].get<int64_t>();
  else if (config.pad_token_id)
    ids.pad = *config.pad_token_id;
  else if (!ids.eos.empty())
    ids.pad = ids.eos[0];
  return ids;
}

std::vector<std::string> generate_texts(const std::string& model_dir, const std::vector<std::string>& prompts,
                                        const TextGeneration& options) {
  if (!has_tokenizer(model_dir))
    throw UsageError("model directory " + model_dir + " has no tokenizer.json or tokenizer.model");
  const auto tok = load_tokenizer(model_dir);
  const TransformerConfig config = load_transformer_config(model_dir);
  const GenerationIds ids = generation_ids(model_dir, config, tok.get(), {}, std::nullopt, false);
  configure_threads(0);
  CausalLM model = load_causal_lm(model_dir, at::kFloat, at::Device(at::kCPU));
  model->eval();
  GenerateOptions o;
  o.max_new_tokens = options.max_new_tokens;
  o.sampling.greedy = options.greedy;
  o.sampling.temperature = options.temperature;
  o.seed = options.seed;
  o.eos_ids = ids.eos;
  o.pad_id = ids.pad;
  if (!options.stop.empty()) {
    const Tokenizer* t = tok.get();
    const std::vector<std::string> stops = options.stop;
    o.stop_check = [t, stops](const std::vector<std::vector<int64_t>>& rows) {
      return stop_string_lengths(*t, rows, stops);
    };
  }
  std::vector<std::string> texts;
  const size_t batch = static_cast<size_t>(std::max<int64_t>(1, options.batch_size));
  for (size_t begin = 0; begin < prompts.size(); begin += batch) {
    std::vector<std::vector<int64_t>> rows;
    for (size_t i = begin; i < std::min(prompts.size(), begin + batch); ++i)
      rows.push_back(tok->encode(prompts[i]));
    const auto [prompt_ids, mask] = left_pad(rows, ids.pad);
    o.seed = options.seed + begin;  // each batch its own sampler stream
    const GenerateResult r = generate(*model, prompt_ids, mask, o);
    const at::Tensor out = r.ids.to(at::kCPU), lengths = r.lengths.to(at::kCPU);
    for (int64_t row = 0; row < out.size(0); ++row) {
      const int64_t* data = out[row].data_ptr<int64_t>();
      texts.push_back(tok->decode(std::vector<int64_t>(data, data + lengths[row].item<int64_t>())));
    }
  }
  return texts;
}

}  // namespace tinyzero::cli
