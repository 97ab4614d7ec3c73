// Supervised fine-tuning data: JSONL lines {"prompt": "...", "response": "..."}.
#pragma once

#include <string>
#include <vector>

namespace tinyzero {

struct SftExample {
  std::string prompt, response;
};

// Reads one or more comma-separated JSONL files. Throws IoError naming the file and line of a bad line,
// a blank line included.
std::vector<SftExample> read_sft_examples(const std::string& paths);

}  // namespace tinyzero
