// `tinyzero-train init | logits | generate`: make a random model of a given shape, run the model on
// given ids and write its logits, and generate from prompts (ids or text) with the rollout engine.
#include <torch/torch.h>

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/generation.h"
#include "cli/registry.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/core/files.h"
#include "tinyzero/core/runtime.h"
#include "tinyzero/io/safetensors.h"
#include "tinyzero/model/generator.h"
#include "tinyzero/model/qwen2.h"
#include "tinyzero/model/weights.h"
#include "tinyzero/recipe/random_model.h"
#include "tinyzero/tokenizer/stop_strings.h"
#include "tinyzero/tokenizer/tokenizer.h"

namespace tinyzero::cli {
namespace {

using json = nlohmann::json;

json read_json(const std::string& path) {
  try {
    return json::parse(read_file(path));
  } catch (const json::parse_error& e) {
    throw IoError(path + " is not valid JSON: " + e.what());
  }
}

// A list of lists of integers -> rows. Throws UsageError naming the field and file.
std::vector<std::vector<int64_t>> int_rows(const json& j, const std::string& field,
                                           const std::string& where) {
  auto bad = [&] {
    return UsageError("field \"" + field + "\" of " + where + " must be a list of lists of integers");
  };
  if (!j.is_array() || j.empty()) throw bad();
  std::vector<std::vector<int64_t>> rows;
  for (const auto& r : j) {
    if (!r.is_array()) throw bad();
    std::vector<int64_t> row;
    for (const auto& v : r) {
      if (!v.is_number_integer()) throw bad();
      row.push_back(v.get<int64_t>());
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

at::Tensor rows_to_tensor(const std::vector<std::vector<int64_t>>& rows, const std::string& field,
                          const std::string& where) {
  size_t T = rows[0].size();
  std::vector<int64_t> flat;
  for (const auto& r : rows) {
    if (r.size() != T || T == 0) {
      throw UsageError("field \"" + field + "\" of " + where + " has rows of different or zero lengths");
    }
    flat.insert(flat.end(), r.begin(), r.end());
  }
  return torch::tensor(flat, torch::kLong).view({static_cast<int64_t>(rows.size()), static_cast<int64_t>(T)});
}

struct RuntimeOptions {
  std::string device = "cpu";
  std::string dtype = "float32";
  int threads = 0;
  at::Device setup() const {
    configure_threads(threads);
    return at::Device(resolve_device(device));
  }
};

void add_runtime_options(CLI::App* cmd, RuntimeOptions& o) {
  cmd->add_option("--device", o.device, "auto | cpu | cuda")->capture_default_str();
  cmd->add_option("--dtype", o.dtype, "Parameter dtype: float32 | bfloat16")->capture_default_str();
  cmd->add_option("--threads", o.threads, "CPU threads (0 = all cores)")->capture_default_str();
}

// ---------------------------------------------------------------------------------------------------
struct InitArgs {
  std::string config, out, tokenizer, dtype = "float32";
  uint64_t seed = 0;
};

void run_init(const InitArgs& a) {
  const RandomModelInfo info = write_random_model({a.config, a.tokenizer, a.seed, a.dtype}, a.out);
  std::cout << "wrote " << a.out << ": " << info.architecture << ", " << info.parameters << " parameters, "
            << dtype_name(parse_dtype(a.dtype)) << ", seed " << a.seed << "\n";
}

// ---------------------------------------------------------------------------------------------------
struct LogitsArgs {
  std::string model, input, output;
  RuntimeOptions rt;
};

void run_logits(const LogitsArgs& a) {
  json in = read_json(a.input);
  if (!in.is_object() || !in.contains("input_ids")) {
    throw UsageError(a.input +
                     " must be a JSON object with \"input_ids\" (and optional \"attention_mask\", "
                     "\"position_ids\")");
  }
  at::Tensor ids = rows_to_tensor(int_rows(in["input_ids"], "input_ids", a.input), "input_ids", a.input);
  at::Tensor mask = in.contains("attention_mask")
                        ? rows_to_tensor(int_rows(in["attention_mask"], "attention_mask", a.input),
                                         "attention_mask", a.input)
                        : torch::ones_like(ids);
  at::Tensor pos =
      in.contains("position_ids")
          ? rows_to_tensor(int_rows(in["position_ids"], "position_ids", a.input), "position_ids", a.input)
          : at::Tensor();
  if (mask.sizes() != ids.sizes() || (pos.defined() && pos.sizes() != ids.sizes())) {
    throw UsageError("attention_mask/position_ids of " + a.input + " must have the shape of input_ids");
  }
  at::Device device = a.rt.setup();
  CausalLM model = load_causal_lm(a.model, parse_dtype(a.rt.dtype), device);
  int64_t vocab = model->config().vocab_size;
  if (ids.min().item<int64_t>() < 0 || ids.max().item<int64_t>() >= vocab) {
    throw UsageError("input_ids of " + a.input + " must be in [0, " + std::to_string(vocab) + ")");
  }
  model->eval();
  torch::NoGradGuard no_grad;
  at::Tensor logits = model->forward(ids.to(device), mask.to(device), pos.defined() ? pos.to(device) : pos);
  save_safetensors(a.output, {{"logits", logits.to(at::kCPU, at::kFloat).contiguous()}});
  std::cout << "wrote " << a.output << ": logits [" << logits.size(0) << ", " << logits.size(1) << ", "
            << logits.size(2) << "]\n";
}

// ---------------------------------------------------------------------------------------------------
struct GenerateArgs {
  std::string model, tokenizer, prompt, input, output;
  bool greedy = false;
  double temperature = 1.0, top_p = 1.0;
  int64_t top_k = 0, max_new_tokens = 0, num_samples = 1;
  uint64_t seed = 0;
  std::vector<int64_t> eos_ids;
  std::optional<int64_t> pad_id;
  std::vector<std::string> stop;
  bool no_eos = false;
  RuntimeOptions rt;
};

void run_generate(const GenerateArgs& a) {
  std::string tok_dir = a.tokenizer.empty() ? a.model : a.tokenizer;
  std::unique_ptr<Tokenizer> tok;
  if (has_tokenizer(tok_dir))
    tok = load_tokenizer(tok_dir);
  else if (!a.tokenizer.empty())
    throw UsageError("--tokenizer " + a.tokenizer + " has no tokenizer.json or tokenizer.model");
  if ((!a.prompt.empty() || !a.stop.empty()) && !tok) {
    throw UsageError(std::string(a.stop.empty() ? "--prompt" : "--stop") + " needs a tokenizer, and " +
                     tok_dir + " has none: give token ids with --input or a directory with --tokenizer");
  }
  TransformerConfig config = load_transformer_config(a.model);

  // EOS ids: --eos-id, else generation_config.json, else config.json, else the tokenizer's. Pad:
  // --pad-id, tokenizer, generation_config, config, first EOS, 0.
  const GenerationIds gen_ids = generation_ids(a.model, config, tok.get(), a.eos_ids, a.pad_id, a.no_eos);
  const std::vector<int64_t>& eos = gen_ids.eos;
  const int64_t pad = gen_ids.pad;

  // Prompts.
  at::Tensor ids, mask;
  if (!a.prompt.empty()) {
    std::tie(ids, mask) = left_pad({tok->encode(a.prompt)}, pad);
  } else {
    json in = read_json(a.input);
    if (in.is_object() && in.contains("prompts")) {
      if (!tok) throw UsageError("\"prompts\" in " + a.input + " are text and need a tokenizer");
      std::vector<std::vector<int64_t>> rows;
      for (const auto& p : in["prompts"]) {
        if (!p.is_string()) throw UsageError("\"prompts\" of " + a.input + " must be a list of strings");
        rows.push_back(tok->encode(p.get<std::string>()));
      }
      if (rows.empty()) throw UsageError("\"prompts\" of " + a.input + " is empty");
      std::tie(ids, mask) = left_pad(rows, pad);
    } else if (in.is_object() && in.contains("input_ids")) {
      auto rows = int_rows(in["input_ids"], "input_ids", a.input);
      if (in.contains("attention_mask")) {
        ids = rows_to_tensor(rows, "input_ids", a.input);
        mask = rows_to_tensor(int_rows(in["attention_mask"], "attention_mask", a.input), "attention_mask",
                              a.input);
        if (mask.sizes() != ids.sizes())
          throw UsageError("attention_mask of " + a.input + " must have the shape of input_ids");
      } else {
        std::tie(ids, mask) = left_pad(rows, pad);  // ragged rows are left-padded here
      }
    } else {
      throw UsageError(
          a.input +
          " must be a JSON object with \"input_ids\" (+ optional \"attention_mask\") or \"prompts\"");
    }
  }

  GenerateOptions o;
  o.max_new_tokens = a.max_new_tokens;
  o.sampling.greedy = a.greedy;
  o.sampling.temperature = a.temperature;
  o.sampling.top_k = a.top_k;
  o.sampling.top_p = a.top_p;
  o.seed = a.seed;
  o.eos_ids = eos;
  o.pad_id = pad;
  o.num_samples = a.num_samples;
  if (!a.stop.empty()) {
    const Tokenizer* t = tok.get();
    std::vector<std::string> stops = a.stop;
    o.stop_check = [t, stops](const std::vector<std::vector<int64_t>>& rows) {
      return stop_string_lengths(*t, rows, stops);
    };
  }

  at::Device device = a.rt.setup();
  CausalLM model = load_causal_lm(a.model, parse_dtype(a.rt.dtype), device);
  model->eval();
  GenerateResult r = generate(*model, ids, mask, o);

  at::Tensor out_ids = r.ids.to(at::kCPU), out_lp = r.logprobs.to(at::kCPU), lengths = r.lengths.to(at::kCPU);
  json out;
  out["new_ids"] = json::array();
  out["logprobs"] = json::array();
  out["lengths"] = json::array();
  out["finish_reasons"] = json::array();
  for (int64_t i = 0; i < out_ids.size(0); ++i) {
    std::vector<int64_t> row(out_ids[i].data_ptr<int64_t>(),
                             out_ids[i].data_ptr<int64_t>() + out_ids.size(1));
    std::vector<float> lp(out_lp[i].data_ptr<float>(), out_lp[i].data_ptr<float>() + out_lp.size(1));
    out["new_ids"].push_back(row);
    out["logprobs"].push_back(lp);
    out["lengths"].push_back(lengths[i].item<int64_t>());
    out["finish_reasons"].push_back(finish_reason_name(r.finish[i]));
    if (tok) {
      std::vector<int64_t> kept(row.begin(), row.begin() + lengths[i].item<int64_t>());
      out["text"].push_back(tok->decode(kept));
    }
  }
  out["eos_ids"] = eos;
  out["pad_id"] = pad;
  std::string text = out.dump() + "\n";
  if (a.output.empty())
    std::cout << text;
  else
    write_file_atomic(a.output, text);
}

CommandRegistration reg([](CLI::App& app) {
  auto init = std::make_shared<InitArgs>();
  auto* ci = app.add_subcommand("init", "Write a randomly initialised model of a given shape (HF directory)");
  ci->add_option("--model-config", init->config, "Hugging Face config.json (or its directory)")->required();
  ci->add_option("--out", init->out, "Output directory")->required();
  ci->add_option("--seed", init->seed, "Random seed")->capture_default_str();
  ci->add_option("--tokenizer", init->tokenizer, "Directory whose tokenizer files are copied in");
  ci->add_option("--dtype", init->dtype, "Saved dtype: float32 | bfloat16")->capture_default_str();
  ci->callback([init] { run_init(*init); });

  auto lg = std::make_shared<LogitsArgs>();
  auto* cl =
      app.add_subcommand("logits", "Run the model on given ids and write logits [B,T,V] (fp32 safetensors)");
  cl->add_option("--model", lg->model, "Hugging Face model directory")->required();
  cl->add_option("--input", lg->input,
                 "JSON: input_ids, attention_mask, optional position_ids (lists of lists)")
      ->required();
  cl->add_option("--output", lg->output, "Output .safetensors with one tensor \"logits\"")->required();
  add_runtime_options(cl, lg->rt);
  cl->callback([lg] { run_logits(*lg); });

  auto g = std::make_shared<GenerateArgs>();
  auto* cg =
      app.add_subcommand("generate", "Generate from prompts with the KV-cache rollout engine (JSON out)");
  cg->add_option("--model", g->model, "Hugging Face model directory")->required();
  auto* prompt = cg->add_option("--prompt", g->prompt, "Prompt text (needs a tokenizer)");
  auto* input = cg->add_option(
      "--input", g->input,
      "JSON: {\"input_ids\": [[..]], \"attention_mask\": [[..]]} (ragged rows are left-padded) "
      "or {\"prompts\": [\"text\", ..]}");
  prompt->excludes(input);
  cg->add_option("--tokenizer", g->tokenizer, "Tokenizer directory (default: the model directory)");
  auto* greedy = cg->add_flag("--greedy", g->greedy, "Argmax decoding");
  cg->add_option("--temperature", g->temperature, "Sampling temperature (> 0)")
      ->capture_default_str()
      ->excludes(greedy);
  cg->add_option("--top-p", g->top_p, "Nucleus mass in (0, 1]; 1 = off")
      ->capture_default_str()
      ->excludes(greedy);
  cg->add_option("--top-k", g->top_k, "Keep the k most likely tokens; 0 = off")
      ->capture_default_str()
      ->excludes(greedy);
  cg->add_option("--seed", g->seed, "Sampler seed")->capture_default_str();
  cg->add_option("--max-new-tokens", g->max_new_tokens, "Tokens to generate per row")->required();
  cg->add_option("--eos-id", g->eos_ids,
                 "Stop ids (repeatable; default: generation_config.json, config.json, tokenizer)");
  cg->add_flag("--no-eos", g->no_eos, "Never stop on EOS");
  cg->add_option("--pad-id", g->pad_id, "Pad id for finished rows (default: tokenizer, configs, first EOS)");
  cg->add_option("--num-samples", g->num_samples, "Samples per prompt")->capture_default_str();
  cg->add_option("--stop", g->stop, "Stop string (repeatable; needs a tokenizer)");
  cg->add_option("--output", g->output, "Write the JSON here instead of stdout");
  add_runtime_options(cg, g->rt);
  cg->callback([g, prompt, input] {
    if (prompt->count() == 0 && input->count() == 0)
      throw UsageError("generate: give --prompt TEXT or --input FILE.json");
    run_generate(*g);
  });
});

}  // namespace
}  // namespace tinyzero::cli
