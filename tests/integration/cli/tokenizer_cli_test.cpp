// `tinyzero-train tokenizer ...` end to end: encode/decode the Qwen golden cases through the CLI,
// train a tokenizer and use it, and the messages and exit codes of user errors.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace {

using json = nlohmann::json;

const std::string kCli = TZ_CLI_PATH;
const std::string kQwen = std::string(TZ_TEST_DATA_DIR) + "/qwen-tokenizer";

struct Result {
  int code;
  std::string out;  // stdout and stderr
};
Result run(const std::string& args, const std::string& env = "") {
  std::string cmd = env + " '" + kCli + "' " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::vector<json> lines_of(const std::string& text) {
  std::vector<json> rows;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) rows.push_back(json::parse(line));
  return rows;
}

class TokenizerCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir() + "tz_tok_cli_" + std::to_string(::getpid());
    ASSERT_EQ(std::system(("mkdir -p '" + dir_ + "'").c_str()), 0);
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
  std::string dir_;
};

TEST_F(TokenizerCli, EncodeText) {
  auto r = run("tokenizer encode --tokenizer '" + kQwen + "' --text 'Hello, world!<|im_end|>'");
  ASSERT_EQ(r.code, 0) << r.out;
  auto rows = lines_of(r.out);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["text"], "Hello, world!<|im_end|>");
  EXPECT_EQ(rows[0]["ids"], json::parse("[9707, 11, 1879, 0, 151645]"));
}

TEST_F(TokenizerCli, GoldenCasesThroughEncodeAndDecode) {
  // All golden texts as JSONL input (strings and {"text": ...} objects alternately).
  std::ifstream golden(kQwen + "/golden.jsonl");
  std::vector<json> cases;
  std::string line;
  std::ofstream in(dir_ + "/in.jsonl"), ids(dir_ + "/ids.jsonl");
  while (std::getline(golden, line)) {
    if (line.empty()) continue;
    cases.push_back(json::parse(line));
    const json& c = cases.back();
    in << (cases.size() % 2 ? json(c["text"]) : json{{"text", c["text"]}}).dump() << "\n";
    ids << json{{"ids", c["ids"]}}.dump() << "\n";
  }
  in.close();
  ids.close();
  ASSERT_EQ(cases.size(), 321u);

  auto enc = run("tokenizer encode --tokenizer '" + kQwen + "' --input '" + dir_ + "/in.jsonl' --output '" +
                 dir_ + "/out.jsonl'");
  ASSERT_EQ(enc.code, 0) << enc.out;
  std::ifstream out_file(dir_ + "/out.jsonl");
  std::stringstream ss;
  ss << out_file.rdbuf();
  auto encoded = lines_of(ss.str());
  ASSERT_EQ(encoded.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(encoded[i]["ids"], cases[i]["ids"]) << cases[i]["text"].dump();
    EXPECT_EQ(encoded[i]["text"], cases[i]["text"]);
  }

  auto dec = run("tokenizer decode --tokenizer '" + kQwen + "' --input '" + dir_ + "/ids.jsonl'");
  ASSERT_EQ(dec.code, 0) << dec.out.substr(0, 500);
  auto decoded = lines_of(dec.out);
  ASSERT_EQ(decoded.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    json expected = cases[i].contains("decoded") ? cases[i]["decoded"] : cases[i]["text"];
    EXPECT_EQ(decoded[i]["text"], expected);
  }
}

TEST_F(TokenizerCli, TrainThenEncode) {
  std::ofstream corpus(dir_ + "/corpus.txt");
  for (int i = 0; i < 2000; ++i)
    corpus << "<answer> (" << i % 97 << " + " << i % 13 << ") * " << i % 7 << " </answer><|endoftext|>\n";
  corpus.close();
  // This corpus has 11 pairs seen twice or more: 256 bytes + 11 merges + 3 special tokens = 270 ids.
  auto more =
      run("tokenizer train --input '" + dir_ + "/corpus.txt' --vocab-size 300 --out '" + dir_ + "/tok'");
  ASSERT_EQ(more.code, 0) << more.out;
  EXPECT_NE(more.out.find("vocab size 270 (merges ran out"), std::string::npos) << more.out;
  auto r = run("tokenizer train --input '" + dir_ + "/corpus.txt' --vocab-size 268 --out '" + dir_ + "/tok'");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("9 merges, vocab size 268\n"), std::string::npos) << r.out;
  auto info = run("tokenizer info --tokenizer '" + dir_ + "/tok'");
  ASSERT_EQ(info.code, 0) << info.out;
  EXPECT_NE(info.out.find("vocab_size: 268"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("eos: 265 \"<|endoftext|>\""), std::string::npos) << info.out;
  auto enc =
      run("tokenizer encode --tokenizer '" + dir_ + "/tok' --text '<answer> 12 </answer><|endoftext|>'");
  ASSERT_EQ(enc.code, 0) << enc.out;
  auto ids = lines_of(enc.out)[0]["ids"];
  EXPECT_EQ(ids.back(), 265);
  EXPECT_LT(ids.size(), 12u);  // "<answer>" and "</answer>" were merged
}

TEST_F(TokenizerCli, UserErrors) {
  auto missing = run("tokenizer encode --tokenizer '" + dir_ + "/none' --text hi");
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.out.find(dir_ + "/none does not exist"), std::string::npos) << missing.out;

  auto empty = run("tokenizer info --tokenizer '" + dir_ + "'");
  EXPECT_EQ(empty.code, 1);
  EXPECT_NE(empty.out.find("no tokenizer in"), std::string::npos) << empty.out;

  auto both = run("tokenizer encode --tokenizer '" + kQwen + "' --text hi --input x.jsonl");
  EXPECT_EQ(both.code, 2) << both.out;
  auto neither = run("tokenizer encode --tokenizer '" + kQwen + "'");
  EXPECT_EQ(neither.code, 2) << neither.out;

  std::ofstream(dir_ + "/bad.jsonl") << "\"ok\"\n{oops\n";
  auto bad = run("tokenizer encode --tokenizer '" + kQwen + "' --input '" + dir_ + "/bad.jsonl'");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("bad.jsonl:2 is not JSON"), std::string::npos) << bad.out;

  std::ofstream(dir_ + "/tok.json") << "{}";
  std::system(
      ("mkdir -p '" + dir_ + "/broken' && echo '{\"model\": 3}' > '" + dir_ + "/broken/tokenizer.json'")
          .c_str());
  auto broken = run("tokenizer info --tokenizer '" + dir_ + "/broken'");
  EXPECT_EQ(broken.code, 1);
  EXPECT_NE(broken.out.find("broken/tokenizer.json"), std::string::npos) << broken.out;
}

TEST_F(TokenizerCli, SentencePieceModelLoadsInTheBinary) {
  std::ofstream corpus(dir_ + "/c.txt");
  for (int i = 0; i < 200; ++i)
    corpus << "the numbers " << i << " and " << i * 3 << " make " << i * 4 << "\n";
  corpus.close();
  ASSERT_EQ(std::system(("spm_train --input='" + dir_ + "/c.txt' --model_prefix='" + dir_ +
                         "/tokenizer' --vocab_size=60 --model_type=bpe > /dev/null 2>&1")
                            .c_str()),
            0);
  auto ok = run("tokenizer info --tokenizer '" + dir_ + "'");
  EXPECT_EQ(ok.code, 0) << ok.out;
  EXPECT_NE(ok.out.find("kind: sentencepiece"), std::string::npos) << ok.out;
  std::ofstream(dir_ + "/tokenizer.model", std::ios::trunc) << "not a sentencepiece model";  // a clear error
  auto r = run("tokenizer info --tokenizer '" + dir_ + "'");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("cannot load sentencepiece model"), std::string::npos) << r.out;
}

TEST_F(TokenizerCli, BenchPrintsThroughput) {
  auto r = run("tokenizer bench --tokenizer '" + kQwen + "' --mb 0.2");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("MB/s"), std::string::npos) << r.out;
}

}  // namespace
