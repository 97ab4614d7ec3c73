// Tests of Hugging Face checkpoint directories: reading the transformers-written fixtures (names,
// shapes, dtypes, values checked against the file's bytes and the reference embeddings), sharded and
// single-file round trips, atomic replacement, tokenizer copies, and every broken-index case.
#include "tinyzero/io/checkpoint.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>

#include "tinyzero/core/errors.h"
#include "tinyzero/core/files.h"
#include "unit/io/test_util.h"

namespace fs = std::filesystem;

namespace tinyzero {
namespace {

using ::testing::HasSubstr;
using testing_io::header_length;
using testing_io::read_bytes;
using testing_io::TempDir;
using testing_io::write_bytes;

const std::string kFixtures = std::string(TZ_TEST_DATA_DIR) + "/qwen2-tiny";

// Names and shapes of the fixture: vocab 700, hidden 96, intermediate 256, 3 layers, 6 heads of 16,
// 2 KV heads.
std::map<std::string, std::vector<int64_t>> expected_shapes(bool with_lm_head) {
  std::map<std::string, std::vector<int64_t>> s;
  s["model.embed_tokens.weight"] = {700, 96};
  s["model.norm.weight"] = {96};
  for (int l = 0; l < 3; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    s[p + "input_layernorm.weight"] = {96};
    s[p + "post_attention_layernorm.weight"] = {96};
    s[p + "self_attn.q_proj.weight"] = {96, 96};
    s[p + "self_attn.q_proj.bias"] = {96};
    s[p + "self_attn.k_proj.weight"] = {32, 96};
    s[p + "self_attn.k_proj.bias"] = {32};
    s[p + "self_attn.v_proj.weight"] = {32, 96};
    s[p + "self_attn.v_proj.bias"] = {32};
    s[p + "self_attn.o_proj.weight"] = {96, 96};
    s[p + "mlp.gate_proj.weight"] = {256, 96};
    s[p + "mlp.up_proj.weight"] = {256, 96};
    s[p + "mlp.down_proj.weight"] = {96, 256};
  }
  if (with_lm_head) s["lm_head.weight"] = {700, 96};
  return s;
}

void expect_fixture_layout(const HfWeights& w, bool with_lm_head, const std::string& dtype) {
  const auto shapes = expected_shapes(with_lm_head);
  std::vector<std::string> expected_names;
  for (const auto& [name, shape] : shapes) expected_names.push_back(name);
  EXPECT_EQ(w.names(), expected_names);
  for (const auto& [name, shape] : shapes) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(w.contains(name));
    EXPECT_EQ(w.find(name)->dtype, dtype);
    at::Tensor t = w.tensor(name);
    EXPECT_EQ(t.sizes().vec(), shape);
    EXPECT_EQ(t.scalar_type(), dtype == "F32" ? at::kFloat : at::kBFloat16);
  }
}

// Every tensor equals the bytes at its offsets, read here with plain file I/O.
void expect_tensors_match_file_bytes(const HfWeights& w, const std::string& file) {
  const std::string bytes = read_bytes(file);
  const uint64_t data_start = 8 + header_length(bytes);
  for (const auto& name : w.names()) {
    const TensorEntry* e = w.find(name);
    at::Tensor t = w.tensor(name);
    ASSERT_EQ(t.nbytes(), e->end - e->begin) << name;
    EXPECT_EQ(std::memcmp(t.data_ptr(), bytes.data() + data_start + e->begin, t.nbytes()), 0) << name;
  }
}

// The reference's first hidden state is the embedding lookup of sequence 0, computed by transformers:
// our embed_tokens rows (upcast to fp32) must equal it.
void expect_embeddings_match_reference(const HfWeights& w, const std::string& variant_dir) {
  const auto ref = nlohmann::json::parse(read_file(variant_dir + "/reference.json"));
  const auto& ids = ref["input_ids"][0];
  const auto& emb = ref["hidden_states_seq0"][0];                           // (T, hidden)
  at::Tensor table = w.tensor("model.embed_tokens.weight").to(at::kFloat);  // (V, hidden)
  ASSERT_EQ(ids.size(), emb.size());
  for (size_t t = 0; t < ids.size(); ++t) {
    at::Tensor row = table[ids[t].get<int64_t>()];
    for (size_t h = 0; h < 96; ++h) {
      ASSERT_EQ(row[static_cast<int64_t>(h)].item<float>(), emb[t][h].get<float>())
          << "t=" << t << " h=" << h;
    }
  }
}

TEST(HfWeightsFixture, TiedF32) {
  const std::string dir = kFixtures + "/tied-f32";
  HfWeights w = HfWeights::open(dir);
  expect_fixture_layout(w, /*with_lm_head=*/false, "F32");
  EXPECT_EQ(w.files().size(), 1u);
  EXPECT_EQ(w.files()[0].metadata().at("format"), "pt");
  expect_tensors_match_file_bytes(w, dir + "/model.safetensors");
  expect_embeddings_match_reference(w, dir);
  try {
    w.tensor("lm_head.weight");
    ADD_FAILURE() << "a tied checkpoint stores no lm_head";
  } catch (const IoError& e) {
    EXPECT_THAT(e.what(), HasSubstr("has no tensor 'lm_head.weight'"));
    EXPECT_THAT(e.what(), HasSubstr(dir));
  }
}

TEST(HfWeightsFixture, UntiedBf16) {
  const std::string dir = kFixtures + "/untied-bf16";
  HfWeights w = HfWeights::open(dir);
  expect_fixture_layout(w, /*with_lm_head=*/true, "BF16");
  expect_tensors_match_file_bytes(w, dir + "/model.safetensors");
  expect_embeddings_match_reference(w, dir);
  // An untied head is its own matrix.
  EXPECT_FALSE(at::equal(w.tensor("lm_head.weight"), w.tensor("model.embed_tokens.weight")));
}

// ---------------------------------------------------------------------------------------------
// Writing

HfCheckpoint fixture_checkpoint(const std::string& variant) {
  const std::string dir = kFixtures + "/" + variant;
  HfWeights w = HfWeights::open(dir);
  HfCheckpoint ckpt;
  ckpt.config = nlohmann::json::parse(read_file(dir + "/config.json"));
  ckpt.generation_config = nlohmann::json::parse(read_file(dir + "/generation_config.json"));
  for (const auto& name : w.names()) ckpt.tensors.emplace_back(name, w.tensor(name));
  return ckpt;
}

void expect_same_tensors(const HfCheckpoint& ckpt, const HfWeights& back) {
  ASSERT_EQ(back.names().size(), ckpt.tensors.size());
  for (const auto& [name, t] : ckpt.tensors) {
    at::Tensor got = back.tensor(name);
    EXPECT_EQ(got.scalar_type(), t.scalar_type()) << name;
    ASSERT_EQ(got.sizes(), t.sizes()) << name;
    EXPECT_EQ(std::memcmp(got.data_ptr(), t.data_ptr(), t.nbytes()), 0) << name;
  }
}

std::set<std::string> listing(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

TEST(HfCheckpointWrite, SingleFileRoundTrip) {
  for (const std::string variant : {"tied-f32", "untied-bf16"}) {
    SCOPED_TRACE(variant);
    TempDir tmp;
    const HfCheckpoint ckpt = fixture_checkpoint(variant);
    const std::string out = tmp.file("ckpt");
    save_hf_checkpoint(out, ckpt);
    EXPECT_EQ(listing(out),
              (std::set<std::string>{"config.json", "generation_config.json", "model.safetensors"}));
    EXPECT_EQ(nlohmann::json::parse(read_file(out + "/config.json")), ckpt.config);
    EXPECT_EQ(nlohmann::json::parse(read_file(out + "/generation_config.json")), ckpt.generation_config);
    HfWeights back = HfWeights::open(out);
    EXPECT_EQ(back.files()[0].metadata().at("format"), "pt");  // transformers refuses files without it
    expect_same_tensors(ckpt, back);
    EXPECT_EQ(listing(tmp.path()), (std::set<std::string>{"ckpt"}));  // no temporaries left
  }
}

TEST(HfCheckpointWrite, SameBytesAsTransformers) {
  // Our writer lays out a file exactly as transformers' save_pretrained does, so re-saving the fixture's
  // tensors (in any order) reproduces its model.safetensors byte for byte.
  for (const std::string variant : {"tied-f32", "untied-bf16"}) {
    SCOPED_TRACE(variant);
    TempDir tmp;
    HfCheckpoint ckpt = fixture_checkpoint(variant);
    std::reverse(ckpt.tensors.begin(), ckpt.tensors.end());
    save_hf_checkpoint(tmp.file("c"), ckpt);
    EXPECT_TRUE(read_bytes(tmp.file("c/model.safetensors")) ==
                read_bytes(kFixtures + "/" + variant + "/model.safetensors"));
  }
}

TEST(HfCheckpointWrite, ShardedRoundTrip) {
  TempDir tmp;
  HfCheckpoint ckpt = fixture_checkpoint("tied-f32");
  ckpt.max_shard_bytes =
      400'000;  // 1.45 MB of weights -> several shards; the 268,800-byte embedding fits one
  const std::string out = tmp.file("sharded");
  save_hf_checkpoint(out, ckpt);

  const auto index = nlohmann::json::parse(read_file(out + "/model.safetensors.index.json"));
  uint64_t total = 0;
  for (const auto& [name, t] : ckpt.tensors) total += t.nbytes();
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), total);
  ASSERT_EQ(index["weight_map"].size(), ckpt.tensors.size());
  std::set<std::string> shard_files;
  for (const auto& [name, file] : index["weight_map"].items()) shard_files.insert(file.get<std::string>());
  const size_t n = shard_files.size();
  ASSERT_GE(n, 4u);
  char expected_first[64];
  std::snprintf(expected_first, sizeof(expected_first), "model-00001-of-%05zu.safetensors", n);
  EXPECT_EQ(*shard_files.begin(), expected_first);
  EXPECT_FALSE(fs::exists(out + "/model.safetensors"));
  // No shard above the limit unless it holds a single tensor; every shard is a valid file.
  for (const auto& file : shard_files) {
    SafetensorsFile f = SafetensorsFile::open(out + "/" + file);
    EXPECT_TRUE(f.data_size() <= 400'000u || f.entries().size() == 1) << file;
    EXPECT_EQ(f.metadata().at("format"), "pt");
  }

  HfWeights back = HfWeights::open(out);
  EXPECT_EQ(back.files().size(), n);
  expect_same_tensors(ckpt, back);
}

TEST(HfCheckpointWrite, FetchedTensorsGiveTheSameFilesInTheAnnouncedOrder) {
  // Tensors that only describe themselves (meta device), their data fetched as they are written, as a
  // sharded model is saved: the same bytes as the direct write, each fetched once, in
  // hf_checkpoint_write_order, over several files.
  for (const int64_t limit : {int64_t{5'000'000'000}, int64_t{400'000}}) {
    SCOPED_TRACE(limit);
    TempDir tmp;
    HfCheckpoint direct = fixture_checkpoint("tied-f32");
    direct.max_shard_bytes = limit;
    save_hf_checkpoint(tmp.file("direct"), direct);
    HfCheckpoint fetched = direct;
    for (auto& [name, t] : fetched.tensors) t = at::empty(t.sizes(), t.options().device(at::kMeta));
    std::vector<size_t> calls;
    fetched.fetch = [&](size_t i) {
      calls.push_back(i);
      return direct.tensors[i].second;
    };
    save_hf_checkpoint(tmp.file("fetched"), fetched);
    EXPECT_EQ(calls, hf_checkpoint_write_order(fetched));
    EXPECT_EQ(calls.size(), direct.tensors.size());
    EXPECT_EQ(listing(tmp.file("direct")), listing(tmp.file("fetched")));
    for (const auto& file : listing(tmp.file("direct")))
      EXPECT_TRUE(read_bytes(tmp.file("direct/" + file)) == read_bytes(tmp.file("fetched/" + file))) << file;
    // A fetched tensor whose shape differs from the description is refused, and nothing is left.
    fetched.fetch = [&](size_t i) { return direct.tensors[i].second.reshape({-1}).narrow(0, 0, 1); };
    EXPECT_THROW(save_hf_checkpoint(tmp.file("bad"), fetched), Error);
    EXPECT_FALSE(fs::exists(tmp.file("bad")));
  }
}

TEST(HfCheckpointWrite, StoresInTheRequestedFloatDtype) {
  TempDir tmp;
  HfCheckpoint ckpt = fixture_checkpoint("tied-f32");
  ckpt.float_dtype = at::kBFloat16;
  ckpt.max_shard_bytes = 400'000;  // planned on the bf16 sizes: 0.73 MB -> 2-3 shards, not 4+
  save_hf_checkpoint(tmp.file("c"), ckpt);
  const auto index = nlohmann::json::parse(read_file(tmp.file("c/model.safetensors.index.json")));
  uint64_t total = 0;
  for (const auto& [name, t] : ckpt.tensors) total += t.numel() * 2;
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), total);
  HfWeights back = HfWeights::open(tmp.file("c"));
  EXPECT_LE(back.files().size(), 3u);
  for (const auto& [name, t] : ckpt.tensors) {
    EXPECT_EQ(back.find(name)->dtype, "BF16") << name;
    EXPECT_TRUE(at::equal(back.tensor(name), t.to(at::kBFloat16))) << name;
  }
  for (const auto& file : back.files()) EXPECT_LE(file.data_size(), 400'000u);
}

TEST(HfCheckpointWrite, TensorLargerThanShardLimitGetsItsOwnShard) {
  TempDir tmp;
  HfCheckpoint ckpt;
  ckpt.config = {{"model_type", "qwen2"}};
  ckpt.tensors = {{"a", at::ones({10})}, {"big", at::ones({100})}, {"b", at::ones({10})}};
  ckpt.max_shard_bytes = 100;  // "big" is 400 bytes
  save_hf_checkpoint(tmp.file("c"), ckpt);
  const auto index = nlohmann::json::parse(read_file(tmp.file("c/model.safetensors.index.json")));
  EXPECT_EQ(index["weight_map"]["a"], "model-00001-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"]["big"], "model-00002-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"]["b"], "model-00003-of-00003.safetensors");
  EXPECT_FALSE(fs::exists(tmp.file("c/generation_config.json")));  // null: not written
  expect_same_tensors(ckpt, HfWeights::open(tmp.file("c")));
}

TEST(HfCheckpointWrite, ReplacesAnExistingCheckpointWhole) {
  TempDir tmp;
  const std::string out = tmp.file("ckpt");
  HfCheckpoint sharded = fixture_checkpoint("tied-f32");
  sharded.max_shard_bytes = 400'000;
  save_hf_checkpoint(out, sharded);
  // Keep a view into the old files: replacing the directory must not invalidate it.
  HfWeights old = HfWeights::open(out);
  at::Tensor old_embed = old.tensor("model.embed_tokens.weight");
  const at::Tensor expected_old = old_embed.clone();

  HfCheckpoint single = fixture_checkpoint("untied-bf16");
  save_hf_checkpoint(out + "/", single);  // a trailing slash names the same directory
  EXPECT_EQ(listing(out),
            (std::set<std::string>{"config.json", "generation_config.json", "model.safetensors"}));
  expect_same_tensors(single, HfWeights::open(out));
  EXPECT_EQ(listing(tmp.path()), (std::set<std::string>{"ckpt"}));
  EXPECT_TRUE(at::equal(old_embed, expected_old));

  // Saving a checkpoint over the directory its tensors are mapped from works too.
  HfCheckpoint again = fixture_checkpoint("tied-f32");
  HfWeights current = HfWeights::open(out);
  again.tensors.clear();
  for (const auto& name : current.names()) again.tensors.emplace_back(name, current.tensor(name));
  save_hf_checkpoint(out, again);
  expect_same_tensors(single, HfWeights::open(out));
}

TEST(HfCheckpointWrite, RefusesToReplaceSomethingThatIsNotACheckpoint) {
  TempDir tmp;
  fs::create_directories(tmp.file("runs"));
  write_bytes(tmp.file("runs/notes.txt"), "precious");
  HfCheckpoint ckpt;
  ckpt.config = {{"model_type", "qwen2"}};
  ckpt.tensors = {{"a", at::ones({2})}};
  try {
    save_hf_checkpoint(tmp.file("runs"), ckpt);
    ADD_FAILURE();
  } catch (const IoError& e) {
    EXPECT_THAT(e.what(), HasSubstr("does not look like what is written there (no config.json)"));
  }
  EXPECT_EQ(read_bytes(tmp.file("runs/notes.txt")), "precious");
  write_bytes(tmp.file("file"), "x");
  EXPECT_THROW(save_hf_checkpoint(tmp.file("file"), ckpt), IoError);
  // An empty directory is fine to fill.
  fs::create_directories(tmp.file("empty"));
  save_hf_checkpoint(tmp.file("empty"), ckpt);
  EXPECT_TRUE(HfWeights::open(tmp.file("empty")).contains("a"));
  EXPECT_EQ(listing(tmp.path()), (std::set<std::string>{"runs", "file", "empty"}));
}

TEST(HfCheckpointWrite, RefusesBadInputWithoutTouchingTheTarget) {
  TempDir tmp;
  HfCheckpoint ckpt;
  ckpt.config = nlohmann::json::array();
  EXPECT_THROW(save_hf_checkpoint(tmp.file("c"), ckpt), IoError);  // config not an object
  ckpt.config = {{"model_type", "qwen2"}};
  ckpt.tensors = {{"a", at::ones({2})}, {"a", at::ones({2})}};
  EXPECT_THROW(save_hf_checkpoint(tmp.file("c"), ckpt), IoError);  // duplicate name
  ckpt.tensors = {{"a", at::ones({2}, at::kComplexFloat)}};
  EXPECT_THROW(save_hf_checkpoint(tmp.file("c"), ckpt), IoError);  // dtype
  ckpt.tensors = {{"a", at::ones({2})}};
  ckpt.tokenizer_source_dir = tmp.file("missing");
  EXPECT_THROW(save_hf_checkpoint(tmp.file("c"), ckpt), IoError);  // tokenizer dir
  EXPECT_TRUE(fs::is_empty(tmp.path()));
}

TEST(HfCheckpointWrite, CopiesTokenizerFilesThatExist) {
  TempDir tmp;
  fs::create_directories(tmp.file("src"));
  write_bytes(tmp.file("src/tokenizer.json"), "{\"model\": {}}");
  write_bytes(tmp.file("src/merges.txt"), "a b\n");
  write_bytes(tmp.file("src/tokenizer_config.json"), "{}");
  write_bytes(tmp.file("src/model.safetensors"), "not copied");
  write_bytes(tmp.file("src/notes.txt"), "not copied");
  HfCheckpoint ckpt;
  ckpt.config = {{"model_type", "qwen2"}};
  ckpt.generation_config = {{"eos_token_id", 2}};
  ckpt.tensors = {{"a", at::ones({2})}};
  ckpt.tokenizer_source_dir = tmp.file("src");
  save_hf_checkpoint(tmp.file("out"), ckpt);
  EXPECT_EQ(listing(tmp.file("out")),
            (std::set<std::string>{"config.json", "generation_config.json", "model.safetensors",
                                   "tokenizer.json", "merges.txt", "tokenizer_config.json"}));
  EXPECT_EQ(read_bytes(tmp.file("out/merges.txt")), "a b\n");
  EXPECT_EQ(read_bytes(tmp.file("out/tokenizer.json")), "{\"model\": {}}");
}

// ---------------------------------------------------------------------------------------------
// Broken directories and indexes

// A sharded directory with tensors a (shard 1) and b (shard 2), written by us.
std::string make_sharded(const TempDir& tmp) {
  HfCheckpoint ckpt;
  ckpt.config = {{"model_type", "qwen2"}};
  ckpt.tensors = {{"a", at::ones({4})}, {"b", at::full({4}, 2.0f)}};
  ckpt.max_shard_bytes = 16;
  const std::string out = tmp.file("s");
  save_hf_checkpoint(out, ckpt);
  return out;
}

void expect_open_error(const std::string& dir, const std::string& expected) {
  try {
    HfWeights::open(dir);
    ADD_FAILURE() << "expected an error containing '" << expected << "'";
  } catch (const IoError& e) {
    EXPECT_THAT(e.what(), HasSubstr(expected));
  }
}

void write_index(const std::string& dir, const nlohmann::json& weight_map) {
  write_bytes(dir + "/model.safetensors.index.json",
              nlohmann::json{{"metadata", {{"total_size", 32}}}, {"weight_map", weight_map}}.dump());
}

TEST(HfWeightsBroken, NoWeights) {
  TempDir tmp;
  expect_open_error(tmp.file("nope"), "does not exist");
  fs::create_directories(tmp.file("empty"));
  expect_open_error(tmp.file("empty"), "has neither model.safetensors nor model.safetensors.index.json");
  fs::create_directories(tmp.file("bin"));
  write_bytes(tmp.file("bin/pytorch_model.bin"), "x");
  expect_open_error(tmp.file("bin"), "only PyTorch .bin weights");
}

TEST(HfWeightsBroken, SingleFileWinsOverAnIndexAsInTransformers) {
  TempDir tmp;
  const std::string dir = make_sharded(tmp);
  save_safetensors(dir + "/model.safetensors", {{"only", at::ones({1})}});
  HfWeights w = HfWeights::open(dir);
  EXPECT_EQ(w.names(), std::vector<std::string>{"only"});
}

TEST(HfWeightsBroken, MissingShard) {
  TempDir tmp;
  const std::string dir = make_sharded(tmp);
  fs::remove(dir + "/model-00002-of-00002.safetensors");
  expect_open_error(dir, "model-00002-of-00002.safetensors' listed in");
}

TEST(HfWeightsBroken, CorruptShardIsNamed) {
  TempDir tmp;
  const std::string dir = make_sharded(tmp);
  const std::string shard = dir + "/model-00002-of-00002.safetensors";
  const std::string bytes = read_bytes(shard);
  write_bytes(shard, bytes.substr(0, bytes.size() - 1));
  expect_open_error(dir, shard);
}

TEST(HfWeightsBroken, IndexListsATensorItsShardLacks) {
  TempDir tmp;
  const std::string dir = make_sharded(tmp);
  write_index(dir, {{"a", "model-00001-of-00002.safetensors"},
                    {"b", "model-00002-of-00002.safetensors"},
                    {"c", "model-00002-of-00002.safetensors"}});
  expect_open_error(dir, "lists tensor 'c' in shard");
  write_index(dir, {{"a", "model-00002-of-00002.safetensors"}, {"b", "model-00002-of-00002.safetensors"}});
  expect_open_error(dir, "lists tensor 'a' in shard");
}

TEST(HfWeightsBroken, TensorStoredInTwoShards) {
  TempDir tmp;
  const std::string dir = make_sharded(tmp);
  save_safetensors(dir + "/model-00002-of-00002.safetensors", {{"a", at::ones({4})}, {"b", at::ones({4})}});
  expect_open_error(dir, "tensor 'a' is stored twice");
}

TEST(HfWeightsBroken, BadIndex) {
  TempDir tmp;
  const std::string dir = make_sharded(tmp);
  write_bytes(dir + "/model.safetensors.index.json", "{\"weight_map\": ");
  expect_open_error(dir, "is not valid JSON");
  write_bytes(dir + "/model.safetensors.index.json", "{\"metadata\": {}}");
  expect_open_error(dir, "has no \"weight_map\" object");
  write_index(dir, nlohmann::json::object());
  expect_open_error(dir, "lists no tensors");
  write_index(dir, {{"a", "../outside.safetensors"}});
  expect_open_error(dir, "expected the file name of a shard in the same directory");
  write_index(dir, {{"a", 3}});
  expect_open_error(dir, "expected the file name of a shard");
}

}  // namespace
}  // namespace tinyzero
