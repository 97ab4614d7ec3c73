// model.autocast_bf16's auto setting: which CPUs count as having native bf16 matmul, which prefer it,
// and how the setting resolves per device.
#include "tinyzero/core/runtime.h"

#include <gtest/gtest.h>

#include "tinyzero/core/errors.h"

namespace tinyzero {
namespace {

TEST(Bf16Autocast, ReadsNativeBf16FromCpuinfoFlags) {
  // A 2-core AVX2 EPYC as seen on the development machine: no bf16 instructions.
  const std::string epyc =
      "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\n"
      "flags\t\t: fpu vme sse sse2 avx fma avx2 bmi2 sha_ni\nbugs\t\t: sysret_ss_attrs\n";
  EXPECT_FALSE(cpuinfo_has_native_bf16(epyc));
  // Sapphire Rapids (AMX) and Cooper Lake / Zen 4 (AVX-512 BF16).
  EXPECT_TRUE(cpuinfo_has_native_bf16("flags\t\t: fpu avx2 avx512f avx512bw amx_bf16 amx_tile amx_int8\n"));
  EXPECT_TRUE(cpuinfo_has_native_bf16("flags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n"));
  // AVX-512 without its bf16 extension (Skylake / Cascade Lake): oneDNN emulates, no faster than fp32.
  EXPECT_FALSE(cpuinfo_has_native_bf16("flags\t\t: fpu avx2 avx512f avx512bw avx512_vnni\n"));
  // Arm: Features line; bf16 as a whole word only.
  EXPECT_TRUE(cpuinfo_has_native_bf16("processor\t: 0\nFeatures\t: fp asimd sve i8mm bf16 sb\n"));
  EXPECT_FALSE(cpuinfo_has_native_bf16("Features\t: fp asimd svebf16x crc32\n"));
  // Only the first flags line counts; an unreadable or empty cpuinfo means no.
  EXPECT_FALSE(cpuinfo_has_native_bf16("flags\t: avx2\nflags\t: amx_bf16\n"));
  EXPECT_FALSE(cpuinfo_has_native_bf16(""));
}

TEST(Bf16Autocast, AutoPrefersBf16OnlyWithAmxOrArmBf16) {
  // AMX (Sapphire Rapids): bf16 matmuls beat fp32 ones.
  EXPECT_TRUE(cpuinfo_prefers_bf16("flags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"));
  // AVX-512 BF16 without AMX (Cooper Lake, or the Xeon this was measured on): native, but fp32 is faster.
  const std::string no_amx = "flags\t\t: fpu avx2 avx512f avx512_bf16 avx512_fp16 avx512_vnni\n";
  EXPECT_TRUE(cpuinfo_has_native_bf16(no_amx));
  EXPECT_FALSE(cpuinfo_prefers_bf16(no_amx));
  EXPECT_TRUE(cpuinfo_prefers_bf16("processor\t: 0\nFeatures\t: fp asimd sve i8mm bf16 sb\n"));
  EXPECT_FALSE(cpuinfo_prefers_bf16("flags\t\t: fpu avx2 fma\n"));
  EXPECT_FALSE(cpuinfo_prefers_bf16("flags\t: avx2\nflags\t: amx_bf16\n"));  // the first line decides
  EXPECT_FALSE(cpuinfo_prefers_bf16(""));
}

TEST(Bf16Autocast, ResolvesTrueFalseAndAutoPerDevice) {
  EXPECT_TRUE(resolve_autocast_bf16("true", "cpu"));
  EXPECT_FALSE(resolve_autocast_bf16("false", "cuda"));
  EXPECT_TRUE(resolve_autocast_bf16("auto", "cuda"));
  EXPECT_EQ(resolve_autocast_bf16("auto", "cpu"), cpu_prefers_bf16());
  EXPECT_THROW(resolve_autocast_bf16("yes", "cpu"), ConfigError);
}

}  // namespace
}  // namespace tinyzero
