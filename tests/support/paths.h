// Where the tests find the source tree, their data and the CLI binary. The paths are compiled into one
// generated file (tests/support/paths.cpp.in), not into every test, so that a clone in another folder
// rebuilds only that file (the tests themselves come from the compiler cache). TZ_SOURCE_DIR,
// TZ_TEST_DATA_DIR and TZ_CLI_PATH (set by tests/CMakeLists.txt) call these.
//
// TINYZERO_TEST_SOURCE_DIR, when set, replaces the compiled-in source tree (and its tests/data): for
// test binaries copied to another machine, such as the GPU check's (scripts/gpu-check.sh).
#pragma once

namespace tinyzero::test_paths {

const char* source_dir();  // the repository root
const char* data_dir();    // <source>/tests/data
const char* cli_path();    // the tinyzero-train binary of this build

}  // namespace tinyzero::test_paths
