// docs/config-reference.md's generated part must be what the schema says (regenerate it with
// scripts/update-config-reference.sh).
#include <gtest/gtest.h>

#include "tinyzero/core/config.h"
#include "tinyzero/core/files.h"

namespace tinyzero {
namespace {

TEST(ConfigReferenceDoc, IsCurrent) {
  const std::string doc = read_file(std::string(TZ_SOURCE_DIR) + "/docs/config-reference.md");
  const std::string begin = "<!-- config-reference:begin -->\n";
  const std::string end = "<!-- config-reference:end -->";
  auto b = doc.find(begin);
  auto e = doc.find(end);
  ASSERT_NE(b, std::string::npos) << "docs/config-reference.md lacks the config-reference markers";
  ASSERT_NE(e, std::string::npos);
  const std::string in_doc = doc.substr(b + begin.size(), e - b - begin.size());
  EXPECT_EQ(in_doc, config_reference_markdown())
      << "docs/config-reference.md is stale: run scripts/update-config-reference.sh";
}

}  // namespace
}  // namespace tinyzero
