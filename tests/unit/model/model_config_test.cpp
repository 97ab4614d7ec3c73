// config.json parsing: the fixture's fields, Llama/Mistral biases, eos lists, and every refusal.
#include "tinyzero/model/model_config.h"

#include <gtest/gtest.h>

#include "tinyzero/core/errors.h"

namespace tinyzero {
namespace {

nlohmann::json qwen2() {
  return nlohmann::json::parse(R"({
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 700, "hidden_size": 96,
    "intermediate_size": 256, "num_hidden_layers": 3, "num_attention_heads": 6, "num_key_value_heads": 2,
    "rope_theta": 1000000.0, "rms_norm_eps": 1e-06, "tie_word_embeddings": true,
    "max_position_embeddings": 256, "bos_token_id": 699, "eos_token_id": 699, "hidden_act": "silu",
    "rope_scaling": null, "sliding_window": null,
    "use_sliding_window": false, "torch_dtype": "float32"})");
}

std::string error_of(const nlohmann::json& j) {
  try {
    parse_transformer_config(j, "cfg.json");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(TransformerConfig, ParsesTheFixture) {
  TransformerConfig c = load_transformer_config(std::string(TZ_TEST_DATA_DIR) + "/qwen2-tiny/tied-f32");
  EXPECT_EQ(c.architecture, "Qwen2ForCausalLM");
  EXPECT_EQ(c.vocab_size, 700);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  ASSERT_EQ(c.eos_token_ids.size(), 1u);
  EXPECT_EQ(c.eos_token_ids[0], 699);
  // 700*96 embed + 3 * (attn 96*96 + 2*96*32 + 96*96 + 96+64 biases + mlp 3*96*256 + 2*96 norms) + 96.
  int64_t layer = 96 * 96 + 2 * 96 * 32 + 96 * 96 + 96 + 64 + 3 * 96 * 256 + 2 * 96;
  EXPECT_EQ(c.num_parameters(), 700 * 96 + 3 * layer + 96);
}

TEST(TransformerConfig, LlamaBiasesEosListsAndHeadDim) {
  nlohmann::json j = qwen2();
  j["architectures"] = {"LlamaForCausalLM"};
  j["model_type"] = "llama";
  j["attention_bias"] = true;
  j["eos_token_id"] = {1, 2, 3};
  j["head_dim"] = 32;
  TransformerConfig c = parse_transformer_config(j, "cfg.json");
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_TRUE(c.o_bias);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(c.head_dim, 32);
  j.erase("attention_bias");
  j["architectures"] = {"MistralForCausalLM"};
  j["model_type"] = "mistral";
  c = parse_transformer_config(j, "cfg.json");
  EXPECT_FALSE(c.qkv_bias);
  // to_json round-trips.
  TransformerConfig back = parse_transformer_config(c.to_json(), "out.json");
  EXPECT_EQ(back.architecture, "MistralForCausalLM");
  EXPECT_EQ(back.eos_token_ids, c.eos_token_ids);
  EXPECT_EQ(back.head_dim, 32);
}

TEST(TransformerConfig, RefusesWhatWeDoNotImplement) {
  auto with = [](const std::string& key, const nlohmann::json& v) {
    nlohmann::json j = qwen2();
    j[key] = v;
    return j;
  };
  EXPECT_NE(error_of(with("architectures", {"GPT2LMHeadModel"})).find("GPT2LMHeadModel"), std::string::npos);
  EXPECT_NE(error_of(with("hidden_act", "gelu")).find("hidden_act"), std::string::npos);
  EXPECT_NE(error_of(with("rope_scaling", {{"type", "yarn"}, {"factor", 4.0}})).find("rope_scaling"),
            std::string::npos);
  nlohmann::json sw = with("use_sliding_window", true);
  sw["sliding_window"] = 128;
  EXPECT_NE(error_of(sw).find("use_sliding_window"), std::string::npos);
  sw["sliding_window"] = 4096;  // window >= max positions: equivalent to full attention
  EXPECT_EQ(error_of(sw), "");
  EXPECT_NE(error_of(with("num_key_value_heads", 4)).find("num_key_value_heads"), std::string::npos);
  EXPECT_NE(error_of(with("vocab_size", -3)).find("vocab_size"), std::string::npos);
  EXPECT_NE(error_of(with("hidden_size", "96")).find("hidden_size"), std::string::npos);
  EXPECT_NE(error_of(with("torch_dtype", "int8")).find("torch_dtype"), std::string::npos);
  nlohmann::json no_layers = qwen2();
  no_layers.erase("num_hidden_layers");
  std::string e = error_of(no_layers);
  EXPECT_NE(e.find("num_hidden_layers"), std::string::npos);
  EXPECT_NE(e.find("cfg.json"), std::string::npos);
  EXPECT_EQ(error_of(with("rope_scaling", {{"rope_type", "default"}})), "");
}

TEST(TransformerConfig, RefusesTokenIdsOutsideTheVocabularyAndOtherModels) {
  auto with = [](const std::string& key, const nlohmann::json& v) {
    nlohmann::json j = qwen2();
    j[key] = v;
    return j;
  };
  // vocab_size 700: ids 0..699. An EOS of 700 was accepted and trained with.
  EXPECT_NE(
      error_of(with("eos_token_id", 700))
          .find("field \"eos_token_id\" of cfg.json is 700: not a token id of this model (vocab_size 700, "
                "ids 0..699)"),
      std::string::npos);
  EXPECT_NE(error_of(with("eos_token_id", {699, 1000})).find("\"eos_token_id\" of cfg.json is 1000"),
            std::string::npos);
  EXPECT_NE(error_of(with("bos_token_id", -1)).find("\"bos_token_id\" of cfg.json is -1"), std::string::npos);
  EXPECT_NE(error_of(with("pad_token_id", 700)).find("\"pad_token_id\" of cfg.json is 700"),
            std::string::npos);
  EXPECT_EQ(error_of(with("pad_token_id", 0)), "");
  // model_type naming another model than "architectures" was accepted (architectures won).
  EXPECT_NE(
      error_of(with("model_type", "bert"))
          .find("field \"model_type\" of cfg.json is \"bert\", but \"architectures\" names Qwen2ForCausalLM "
                "(model_type \"qwen2\")"),
      std::string::npos);
  nlohmann::json no_type = qwen2();
  no_type.erase("model_type");
  EXPECT_EQ(error_of(no_type), "");
  nlohmann::json bert_only = qwen2();
  bert_only.erase("architectures");
  bert_only["model_type"] = "bert";
  EXPECT_NE(error_of(bert_only).find("field \"model_type\" of cfg.json is \"bert\": supported are"),
            std::string::npos);
  // A critic directory (what Critic::save writes) is not a causal LM.
  EXPECT_NE(error_of(with("architectures", {"Qwen2ForTokenClassification"})).find("a value model"),
            std::string::npos);
  EXPECT_NE(error_of(with("rope_theta", 0.0)).find("\"rope_theta\" of cfg.json is 0.0"), std::string::npos);
  EXPECT_NE(error_of(with("initializer_range", -0.02)).find("\"initializer_range\""), std::string::npos);
}

}  // namespace
}  // namespace tinyzero
