// The build's refusals: configuring against a LibTorch older than tinyzero supports, or one built with
// the old C++ ABI, stops CMake with a message naming the version or ABI and the fix. A stand-in
// TorchConfig.cmake (written here) supplies just the version and compile flags CMake checks first.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "support/cli.h"
#include "support/tiny_run.h"

namespace tinyzero {
namespace {

using testing::fresh_temp_dir;
using testing::run_shell;
using testing::shell_quote;

// Configures the source tree against a stand-in Torch of `version` whose flags set the C++ ABI to `abi`.
testing::CliResult configure_against(const std::string& dir, const std::string& version, int abi) {
  const std::string config_dir = dir + "/torch/share/cmake/Torch";
  std::filesystem::create_directories(config_dir);
  std::ofstream(config_dir + "/TorchConfig.cmake")
      << "set(TORCH_FOUND TRUE)\nset(TORCH_LIBRARIES \"\")\nset(TORCH_INCLUDE_DIRS \"\")\n"
      << "set(TORCH_CXX_FLAGS \"-D_GLIBCXX_USE_CXX11_ABI=" << abi << "\")\n";
  std::ofstream(config_dir + "/TorchConfigVersion.cmake")
      << "set(PACKAGE_VERSION \"" << version << "\")\nset(PACKAGE_VERSION_COMPATIBLE TRUE)\n";
  return run_shell("cmake -S " + shell_quote(TZ_SOURCE_DIR) + " -B " + shell_quote(dir + "/build") +
                   " -DCMAKE_PREFIX_PATH=" + shell_quote(dir + "/torch/share/cmake"));
}

TEST(BuildConfig, RefusesALibTorchOlderThanSupported) {
  const std::string dir = fresh_temp_dir("tz_build_old_torch");
  auto r = configure_against(dir, "2.1.0", 1);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("LibTorch 2.1.0"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("is older than 2.5"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("TINYZERO_PYTHON"), std::string::npos) << r.output;
}

TEST(BuildConfig, RefusesALibTorchWithTheOldCxxAbi) {
  const std::string dir = fresh_temp_dir("tz_build_old_abi");
  auto r = configure_against(dir, "2.6.0", 0);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("old C++ ABI (_GLIBCXX_USE_CXX11_ABI=0)"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace tinyzero
