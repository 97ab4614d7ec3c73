// sentencepiece tokenizer (tokenizer.model: Llama-2, Mistral, spm_train output) through the
// sentencepiece library.
#pragma once

#include <memory>
#include <string>

#include "tinyzero/tokenizer/tokenizer.h"

namespace tinyzero {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  // Loads `model_path` (a tokenizer.model). `config_text` is tokenizer_config.json's content or empty:
  // eos/pad/bos names and add_bos_token (default true) / add_eos_token (default false), as
  // transformers' LlamaTokenizer; without it the model's own bos/eos/pad ids are used.
  SentencePieceTokenizer(const std::string& model_path, const std::string& config_text);
  static std::unique_ptr<SentencePieceTokenizer> from_dir(const std::string& dir);
  ~SentencePieceTokenizer() override;

  // Control pieces written in the text (`<s>`, `</s>`) are matched whole; the text between them is
  // encoded piece by piece (transformers' legacy behaviour).
  std::vector<int64_t> encode(std::string_view text, bool add_special_tokens = false) const override;
  // Control pieces are written out as their text unless skip_special_tokens.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = false) const override;
  std::optional<int64_t> token_to_id(std::string_view token) const override;
  std::string id_to_token(int64_t id) const override;
  int64_t vocab_size() const override;
  bool is_special(int64_t id) const override;
  std::string kind() const override { return "sentencepiece"; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tinyzero
