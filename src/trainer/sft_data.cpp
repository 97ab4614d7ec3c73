// SFT data reader (see sft_data.h).
#include "trainer/sft_data.h"

#include <nlohmann/json.hpp>
#include <sstream>

#include "tinyzero/core/errors.h"
#include "tinyzero/core/files.h"

namespace tinyzero {

std::vector<SftExample> read_sft_examples(const std::string& paths) {
  std::vector<SftExample> out;
  std::stringstream list(paths);
  for (std::string path; std::getline(list, path, ',');) {
    if (path.empty()) continue;
    for_each_line(
        path,
        [&](const std::string& line, const std::string& where) {
          nlohmann::json j;
          try {
            j = nlohmann::json::parse(line);
          } catch (const nlohmann::json::exception&) {
            throw IoError(where +
                          ": not a JSON object; expected {\"prompt\": \"...\", \"response\": \"...\"}");
          }
          if (!j.is_object() || !j.contains("prompt") || !j.contains("response") ||
              !j["prompt"].is_string() || !j["response"].is_string())
            throw IoError(where +
                          ": expected {\"prompt\": \"...\", \"response\": \"...\"} with string values");
          out.push_back({j["prompt"].get<std::string>(), j["response"].get<std::string>()});
        },
        BlankLines::kRefuse);
  }
  if (out.empty()) throw IoError("SFT data '" + paths + "' holds no example; check data.train_files");
  return out;
}

}  // namespace tinyzero
