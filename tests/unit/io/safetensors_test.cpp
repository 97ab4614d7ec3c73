// Tests of the safetensors reader and writer: byte-exact format, round trips, and every corruption
// the reader must refuse with an IoError (plus a randomised corruption run that must never crash).
#include "tinyzero/io/safetensors.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cctype>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "tinyzero/core/errors.h"
#include "unit/io/test_util.h"

namespace tinyzero {
namespace {

using ::testing::HasSubstr;
using testing_io::header_length;
using testing_io::raw_safetensors;
using testing_io::read_bytes;
using testing_io::TempDir;
using testing_io::write_bytes;

// Opening `bytes` must throw an IoError whose message names the file and contains `expected`.
void expect_corrupt(const std::string& bytes, const std::string& expected) {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  write_bytes(path, bytes);
  try {
    SafetensorsFile::open(path);
    ADD_FAILURE() << "opened a corrupt file; expected an error containing '" << expected << "'";
  } catch (const IoError& e) {
    EXPECT_THAT(e.what(), HasSubstr(path));
    EXPECT_THAT(e.what(), HasSubstr(expected));
  }
}

// Raw bytes of a float32 array, little-endian (the host order, checked by the reader at compile time).
std::string f32_bytes(std::initializer_list<float> values) {
  std::string out;
  for (float v : values) out.append(reinterpret_cast<const char*>(&v), 4);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading files built byte by byte here (independent of our writer)

TEST(SafetensorsRead, HandBuiltFileGivesItsValues) {
  const std::string header =
      R"({"__metadata__":{"format":"pt","note":"x"},"b":{"dtype":"F32","shape":[3],"data_offsets":[8,20]},)"
      R"("a":{"dtype":"F32","shape":[2,1],"data_offsets":[0,8]},)"
      R"("e":{"dtype":"F16","shape":[0,4],"data_offsets":[20,20]}})";
  TempDir dir;
  const std::string path = dir.file("x.safetensors");
  write_bytes(path, raw_safetensors(header, f32_bytes({1.5f, -2.0f, 3.0f, 0.25f, 1e30f})));
  SafetensorsFile f = SafetensorsFile::open(path);
  ASSERT_EQ(f.entries().size(), 3u);
  EXPECT_EQ(f.entries()[0].name, "a");  // ordered by offsets
  EXPECT_EQ(f.entries()[1].name, "b");
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("note"), "x");
  EXPECT_EQ(f.find("missing"), nullptr);
  ASSERT_NE(f.find("b"), nullptr);
  EXPECT_EQ(f.find("b")->shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(f.find("b")->begin, 8u);
  EXPECT_EQ(f.find("b")->end, 20u);

  at::Tensor a = f.tensor("a");
  EXPECT_EQ(a.scalar_type(), at::kFloat);
  EXPECT_EQ(a.sizes().vec(), (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(a[0][0].item<float>(), 1.5f);
  EXPECT_EQ(a[1][0].item<float>(), -2.0f);
  at::Tensor b = f.tensor("b");
  EXPECT_EQ(b[0].item<float>(), 3.0f);
  EXPECT_EQ(b[1].item<float>(), 0.25f);
  EXPECT_EQ(b[2].item<float>(), 1e30f);
  at::Tensor e = f.tensor("e");
  EXPECT_EQ(e.scalar_type(), at::kHalf);
  EXPECT_EQ(e.sizes().vec(), (std::vector<int64_t>{0, 4}));
  EXPECT_THROW(f.tensor("missing"), IoError);
}

TEST(SafetensorsRead, Bf16AndF16BitPatterns) {
  // bf16 0x3FC0 = 1.5, 0xC000 = -2; f16 0x3E00 = 1.5, 0xC000 = -2.
  const std::string header = R"({"h":{"dtype":"F16","shape":[2],"data_offsets":[4,8]},)"
                             R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})";
  const std::string data("\xC0\x3F\x00\xC0\x00\x3E\x00\xC0", 8);
  TempDir dir;
  write_bytes(dir.file("x.safetensors"), raw_safetensors(header, data));
  SafetensorsFile f = SafetensorsFile::open(dir.file("x.safetensors"));
  at::Tensor b = f.tensor("b");
  EXPECT_EQ(b.scalar_type(), at::kBFloat16);
  EXPECT_EQ(b.to(at::kFloat)[0].item<float>(), 1.5f);
  EXPECT_EQ(b.to(at::kFloat)[1].item<float>(), -2.0f);
  at::Tensor h = f.tensor("h");
  EXPECT_EQ(h.scalar_type(), at::kHalf);
  EXPECT_EQ(h.to(at::kFloat)[0].item<float>(), 1.5f);
  EXPECT_EQ(h.to(at::kFloat)[1].item<float>(), -2.0f);
}

TEST(SafetensorsRead, UnalignedTensorIsCopiedCorrectly) {
  // An F32 tensor at data offset 2 (legal, if unusual): values must still come out right.
  const std::string header = R"({"p":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                             R"("f":{"dtype":"F32","shape":[2],"data_offsets":[2,10]}})";
  TempDir dir;
  write_bytes(dir.file("x.safetensors"), raw_safetensors(header, "\x07\x09" + f32_bytes({4.0f, -0.5f})));
  SafetensorsFile f = SafetensorsFile::open(dir.file("x.safetensors"));
  at::Tensor t = f.tensor("f");
  EXPECT_EQ(t[0].item<float>(), 4.0f);
  EXPECT_EQ(t[1].item<float>(), -0.5f);
  EXPECT_EQ(f.tensor("p")[1].item<uint8_t>(), 9);
}

TEST(SafetensorsRead, TensorOutlivesFileAndWritesDoNotReachDisk) {
  TempDir dir;
  const std::string path = dir.file("x.safetensors");
  const std::string bytes =
      raw_safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", f32_bytes({1.0f, 2.0f}));
  write_bytes(path, bytes);
  at::Tensor a;
  {
    SafetensorsFile f = SafetensorsFile::open(path);
    a = f.tensor("a");
  }
  // The file object is gone; the mapping lives on in the tensor.
  EXPECT_EQ(a[1].item<float>(), 2.0f);
  a.mul_(10.0f);  // copy-on-write pages: the file keeps its bytes
  EXPECT_EQ(a[1].item<float>(), 20.0f);
  EXPECT_EQ(read_bytes(path), bytes);
  EXPECT_EQ(SafetensorsFile::open(path).tensor("a")[1].item<float>(), 2.0f);
}

// ---------------------------------------------------------------------------------------------
// One named test per corruption

const char* kGoodEntry = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";

TEST(SafetensorsCorrupt, MissingFile) {
  TempDir dir;
  try {
    SafetensorsFile::open(dir.file("nope.safetensors"));
    ADD_FAILURE();
  } catch (const IoError& e) {
    EXPECT_THAT(e.what(), HasSubstr("nope.safetensors"));
    EXPECT_THAT(e.what(), HasSubstr("does not exist"));
  }
}

TEST(SafetensorsCorrupt, DirectoryIsNotAFile) {
  TempDir dir;
  EXPECT_THROW(SafetensorsFile::open(dir.path().string()), IoError);
}

TEST(SafetensorsCorrupt, ShorterThanEightBytes) {
  expect_corrupt("", "0 bytes long");
  expect_corrupt(std::string("\x02\x00\x00\x00\x00\x00\x00", 7), "7 bytes long");
}

TEST(SafetensorsCorrupt, HugeHeaderLength) {
  expect_corrupt(raw_safetensors("{}", "", 200'000'000), "larger than the 100 MB limit");
  expect_corrupt(raw_safetensors("{}", "", UINT64_MAX - 1), "larger than the 100 MB limit");
}

TEST(SafetensorsCorrupt, HeaderLengthPastEndOfFile) {
  expect_corrupt(raw_safetensors("{}", "", 1000), "runs past the end of the file");
  expect_corrupt(raw_safetensors("{}", "", 3), "runs past the end of the file");
}

TEST(SafetensorsCorrupt, HeaderNotJson) {
  expect_corrupt(raw_safetensors("{\"a\": ", ""), "not valid JSON");
  expect_corrupt(raw_safetensors(std::string("{\"\xff\xfe\":1}"), ""), "not valid JSON");
  expect_corrupt(raw_safetensors(std::string(16, '\0'), ""), "not valid JSON");
}

TEST(SafetensorsCorrupt, HeaderNotObject) {
  expect_corrupt(raw_safetensors("[1, 2, 3]", ""), "not an object");
  expect_corrupt(raw_safetensors("\"text\"", ""), "not an object");
}

TEST(SafetensorsCorrupt, EntryMissingFields) {
  expect_corrupt(raw_safetensors(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", f32_bytes({1, 2})),
                 "tensor 'a' lacks");
  expect_corrupt(raw_safetensors(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", f32_bytes({1, 2})),
                 "tensor 'a' lacks");
  expect_corrupt(raw_safetensors(R"({"a":{"dtype":"F32","shape":[2]}})", f32_bytes({1, 2})),
                 "tensor 'a' lacks");
  expect_corrupt(raw_safetensors(R"({"a":[1,2]})", ""), "tensor 'a' is not described by an object");
}

TEST(SafetensorsCorrupt, UnknownDtype) {
  expect_corrupt(
      raw_safetensors(R"({"a":{"dtype":"F13","shape":[2],"data_offsets":[0,8]}})", f32_bytes({1, 2})),
      "tensor 'a' has unknown dtype 'F13'");
  expect_corrupt(raw_safetensors(R"({"a":{"dtype":32,"shape":[2],"data_offsets":[0,8]}})", f32_bytes({1, 2})),
                 "tensor 'a' has a \"dtype\" that is not a string");
}

TEST(SafetensorsCorrupt, NegativeOrNonIntegerShape) {
  expect_corrupt(
      raw_safetensors(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", f32_bytes({1, 2})),
      "not a non-negative integer");
  expect_corrupt(
      raw_safetensors(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", f32_bytes({1, 2})),
      "not a non-negative integer");
  expect_corrupt(
      raw_safetensors(R"({"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", f32_bytes({1, 2})),
      "not a list");
}

TEST(SafetensorsCorrupt, OverflowingShape) {
  // 2^32 * 2^32 overflows uint64; 2^62 elements * 4 bytes overflows too.
  expect_corrupt(
      raw_safetensors(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})",
                      f32_bytes({1, 2})),
      "overflows");
  expect_corrupt(
      raw_safetensors(R"({"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,8]}})",
                      f32_bytes({1, 2})),
      "overflows");
  expect_corrupt(
      raw_safetensors(R"({"a":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,8]}})",
                      f32_bytes({1, 2})),
      "not a non-negative integer");
}

TEST(SafetensorsCorrupt, ReversedOffsets) {
  expect_corrupt(
      raw_safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", f32_bytes({1, 2})),
      "tensor 'a' has reversed data_offsets [8, 0]");
}

TEST(SafetensorsCorrupt, BadOffsetsShape) {
  expect_corrupt(
      raw_safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", f32_bytes({1, 2})),
      "expected [begin, end]");
  expect_corrupt(
      raw_safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", f32_bytes({1, 2})),
      "expected [begin, end]");
}

TEST(SafetensorsCorrupt, OffsetsOutsideDataSection) {
  expect_corrupt(
      raw_safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", f32_bytes({1, 2})),
      "tensor 'a' has data_offsets [8, 16] past the end of the data section (8 bytes)");
  expect_corrupt(
      raw_safetensors(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[9,9]}})", f32_bytes({1, 2})),
      "past the end of the data section");
  expect_corrupt(
      raw_safetensors(
          R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[18446744073709551608,18446744073709551615]}})",
          f32_bytes({1, 2})),
      "past the end");
}

TEST(SafetensorsCorrupt, SizeDisagreesWithShapeAndDtype) {
  // Wrong shape: [3] F32 needs 12 bytes, the offsets hold 8.
  expect_corrupt(
      raw_safetensors(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", f32_bytes({1, 2})),
      "tensor 'a' with dtype F32 and shape [3] needs 12 bytes but its data_offsets [0, 8] hold 8");
  // Wrong dtype: the same bytes declared BF16 would be 4 elements, not 2.
  expect_corrupt(
      raw_safetensors(R"({"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,8]}})", f32_bytes({1, 2})),
      "needs 4 bytes");
  expect_corrupt(
      raw_safetensors(R"({"a":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}})", f32_bytes({1, 2})),
      "needs 16 bytes");
}

TEST(SafetensorsCorrupt, OverlappingTensors) {
  expect_corrupt(raw_safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                 R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                 f32_bytes({1, 2, 3})),
                 "tensors 'a' and 'b' overlap");
  // The same range twice is an overlap too.
  expect_corrupt(raw_safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                 R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                                 f32_bytes({1, 2})),
                 "overlap");
}

TEST(SafetensorsCorrupt, DuplicateNames) {
  expect_corrupt(raw_safetensors(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                 R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                 f32_bytes({1, 2})),
                 "tensor 'a' appears twice");
}

TEST(SafetensorsCorrupt, BadMetadata) {
  expect_corrupt(
      raw_safetensors(std::string(R"({"__metadata__":{"format":1},)") + kGoodEntry + "}", f32_bytes({1, 2})),
      "\"__metadata__\" value of 'format' is not a string");
  expect_corrupt(
      raw_safetensors(std::string(R"({"__metadata__":[1],)") + kGoodEntry + "}", f32_bytes({1, 2})),
      "\"__metadata__\" is not an object");
}

TEST(SafetensorsCorrupt, DeeplyNestedHeaderDoesNotOverflowTheStack) {
  const std::string header = std::string(1'000'000, '[') + std::string(1'000'000, ']');
  expect_corrupt(raw_safetensors(header, ""), "not an object");
}

TEST(SafetensorsCorrupt, DtypeWithoutTorchEquivalentFailsOnAccess) {
  // U16 is a valid safetensors dtype that this LibTorch cannot hold: the file opens, the tensor fails.
  TempDir dir;
  write_bytes(dir.file("x.safetensors"),
              raw_safetensors(R"({"u":{"dtype":"U16","shape":[2],"data_offsets":[0,4]}})", "abcd"));
  SafetensorsFile f = SafetensorsFile::open(dir.file("x.safetensors"));
  try {
    f.tensor("u");
    ADD_FAILURE();
  } catch (const IoError& e) {
    EXPECT_THAT(e.what(), HasSubstr("tensor 'u' has dtype U16"));
  }
}

// ---------------------------------------------------------------------------------------------
// Writer

std::vector<std::pair<std::string, at::Tensor>> sample_tensors() {
  at::manual_seed(7);
  return {
      {"f32", at::randn({3, 5, 7})},
      {"bf16", at::randn({33}).to(at::kBFloat16)},  // odd count: would misalign what follows
      {"f16", at::randn({4, 9}).to(at::kHalf)},
      {"f64", at::randn({2, 2}, at::kDouble)},
      {"i64", at::randint(-1000, 1000, {5}, at::kLong)},
      {"i32", at::randint(-1000, 1000, {5}, at::kInt)},
      {"u8", at::randint(0, 255, {3}, at::kByte)},
      {"bool", at::randint(0, 2, {4}, at::kLong).to(at::kBool)},
      {"scalar", at::scalar_tensor(3.25)},
      {"empty", at::empty({0, 3})},
  };
}

TEST(SafetensorsWrite, RoundTripIsBitIdentical) {
  TempDir dir;
  const std::string path = dir.file("rt.safetensors");
  const auto tensors = sample_tensors();
  save_safetensors(path, tensors, {{"step", "12"}});
  SafetensorsFile f = SafetensorsFile::open(path);
  EXPECT_EQ(f.entries().size(), tensors.size());
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("step"), "12");
  for (const auto& [name, expected] : tensors) {
    SCOPED_TRACE(name);
    at::Tensor got = f.tensor(name);
    EXPECT_EQ(got.scalar_type(), expected.scalar_type());
    EXPECT_EQ(got.sizes(), expected.sizes());
    ASSERT_EQ(got.nbytes(), expected.nbytes());
    if (got.nbytes() == 0) continue;
    EXPECT_EQ(std::memcmp(got.data_ptr(), expected.data_ptr(), got.nbytes()), 0);
    // Every tensor is aligned to its element size, so it is viewed in place, not copied.
    EXPECT_EQ(reinterpret_cast<uintptr_t>(got.data_ptr()) % got.element_size(), 0u);
    EXPECT_EQ(f.find(name)->dtype, safetensors_dtype_name(expected.scalar_type()));
  }
}

TEST(SafetensorsWrite, ExactBytesOfASmallFile) {
  TempDir dir;
  const std::string path = dir.file("small.safetensors");
  at::Tensor a = at::tensor({1.0f, 2.0f});
  save_safetensors(path, {{"a", a}});
  const std::string bytes = read_bytes(path);
  const uint64_t n = header_length(bytes);
  EXPECT_EQ(n % 8, 0u);  // header padded so that the data section is 8-aligned
  ASSERT_EQ(bytes.size(), 8 + n + 8);
  auto header = nlohmann::json::parse(bytes.substr(8, n));
  EXPECT_EQ(header, nlohmann::json::parse(R"({"__metadata__":{"format":"pt"},)"
                                          R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})"));
  EXPECT_EQ(bytes.substr(8 + n), std::string("\x00\x00\x80\x3f\x00\x00\x00\x40", 8));  // 1.0f, 2.0f LE
}

TEST(SafetensorsWrite, NonContiguousTensorsAreWrittenByValue) {
  TempDir dir;
  at::Tensor base = at::arange(12, at::kFloat).reshape({3, 4});
  at::Tensor t = base.t();                   // (4, 3), strided
  at::Tensor s = base.select(1, 2);          // (3,), stride 4
  at::Tensor g = base.requires_grad_(true);  // autograd state is ignored
  save_safetensors(dir.file("x.safetensors"), {{"t", t}, {"s", s}, {"g", g}});
  SafetensorsFile f = SafetensorsFile::open(dir.file("x.safetensors"));
  EXPECT_TRUE(at::equal(f.tensor("t"), t.detach()));
  EXPECT_TRUE(at::equal(f.tensor("s"), s.detach()));
  EXPECT_TRUE(at::equal(f.tensor("g"), g.detach()));
  EXPECT_EQ(f.find("t")->shape, (std::vector<int64_t>{4, 3}));
}

TEST(SafetensorsWrite, ConvertsFloatingTensorsWhenAsked) {
  TempDir dir;
  at::manual_seed(3);
  at::Tensor f = at::randn({5, 3});
  at::Tensor h = at::randn({4}).to(at::kHalf);
  at::Tensor i = at::arange(6, at::kLong);
  save_safetensors(dir.file("x.safetensors"), {{"f", f}, {"h", h}, {"i", i}}, {}, at::kBFloat16);
  SafetensorsFile file = SafetensorsFile::open(dir.file("x.safetensors"));
  EXPECT_EQ(file.find("f")->dtype, "BF16");
  EXPECT_EQ(file.find("h")->dtype, "BF16");
  EXPECT_EQ(file.find("i")->dtype, "I64");  // integers keep their dtype
  EXPECT_TRUE(at::equal(file.tensor("f"), f.to(at::kBFloat16)));
  EXPECT_TRUE(at::equal(file.tensor("h"), h.to(at::kBFloat16)));
  EXPECT_TRUE(at::equal(file.tensor("i"), i));
  EXPECT_THROW(save_safetensors(dir.file("y.safetensors"), {{"f", f}}, {}, at::kInt), IoError);
}

TEST(SafetensorsWrite, RefusesBadInputAndKeepsTheOldFile) {
  TempDir dir;
  const std::string path = dir.file("keep.safetensors");
  save_safetensors(path, {{"a", at::ones({2})}});
  const std::string before = read_bytes(path);
  EXPECT_THROW(save_safetensors(path, {{"a", at::ones({2})}, {"a", at::ones({3})}}), IoError);
  EXPECT_THROW(save_safetensors(path, {{"__metadata__", at::ones({2})}}), IoError);
  EXPECT_THROW(save_safetensors(path, {{"c", at::ones({2}, at::kComplexFloat)}}), IoError);
  EXPECT_THROW(save_safetensors(path, {{"u", at::Tensor()}}), IoError);
  EXPECT_EQ(read_bytes(path), before);
  EXPECT_THROW(save_safetensors(dir.file("no/such/dir/x.safetensors"), {{"a", at::ones({2})}}), IoError);
  // Nothing but the file itself is left in the directory (no temporaries).
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    (void)entry;
    ++count;
  }
  EXPECT_EQ(count, 1);
}

// ---------------------------------------------------------------------------------------------
// Truncation and random corruption of real files

TEST(SafetensorsCorrupt, TruncatedFileAtEveryRegion) {
  TempDir dir;
  const std::string path = dir.file("full.safetensors");
  save_safetensors(path, sample_tensors());
  const std::string bytes = read_bytes(path);
  const uint64_t n = header_length(bytes);
  for (size_t len : {size_t{0}, size_t{4}, size_t{8}, size_t{9}, static_cast<size_t>(8 + n / 2),
                     static_cast<size_t>(8 + n - 1), static_cast<size_t>(8 + n + 1), bytes.size() - 1}) {
    SCOPED_TRACE(len);
    const std::string cut = dir.file("cut.safetensors");
    write_bytes(cut, bytes.substr(0, len));
    EXPECT_THROW(SafetensorsFile::open(cut), IoError);
  }
}

// Opens `path`; if it loads, reads every tensor fully. Returns whether it loaded.
bool open_and_touch(const std::string& path) {
  try {
    SafetensorsFile f = SafetensorsFile::open(path);
    for (const auto& e : f.entries()) {
      try {
        at::Tensor t = f.tensor(e.name);
        volatile double sink = t.to(at::kDouble).sum().item<double>();
        (void)sink;
      } catch (const IoError&) {
        // a dtype this LibTorch lacks: fine
      }
    }
    return true;
  } catch (const IoError&) {
    return false;
  }
}

TEST(SafetensorsCorrupt, RandomCorruptionNeverCrashes) {
  TempDir dir;
  const std::string good = dir.file("good.safetensors");
  save_safetensors(good, sample_tensors());
  const std::string bytes = read_bytes(good);
  const uint64_t n = header_length(bytes);
  std::mt19937_64 rng(1234);
  int loaded = 0, refused = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string b = bytes;
    const int kind = iter % 4;
    if (kind == 0) {  // flip a few random bits anywhere, mostly in the length and header
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < flips; ++k) {
        const size_t limit = (rng() % 4 == 0) ? b.size() : 8 + n;
        b[rng() % limit] ^= static_cast<char>(1u << (rng() % 8));
      }
    } else if (kind == 1) {  // set a header byte to a JSON-significant character or digit
      static const char kChars[] = "{}[]\",:0123456789-.eE \\";
      b[8 + rng() % n] = kChars[rng() % (sizeof(kChars) - 1)];
    } else if (kind == 2) {  // truncate
      b.resize(rng() % b.size());
    } else {  // overwrite a digit run in the header: offsets and shapes change value
      size_t pos = 8 + rng() % n;
      while (pos < 8 + n && !std::isdigit(static_cast<unsigned char>(b[pos]))) ++pos;
      if (pos < 8 + n) b[pos] = static_cast<char>('0' + rng() % 10);
    }
    // A fresh name each time: truncating and rewriting one file makes ext4 flush it on every close.
    const std::string path = dir.file("fuzz" + std::to_string(iter) + ".safetensors");
    write_bytes(path, b);
    (open_and_touch(path) ? loaded : refused)++;
    std::filesystem::remove(path);
  }
  // Both outcomes happen (a flip inside data or padding still loads), and nothing crashed.
  EXPECT_GT(loaded, 100);
  EXPECT_GT(refused, 1000);
}

TEST(SafetensorsCorrupt, RandomCorruptionOfTheFixtureHeader) {
  // The real checkpoint written by transformers: flip bytes of its header in place, in a copy.
  TempDir dir;
  const std::string path = dir.file("fixture.safetensors");
  std::filesystem::copy_file(std::string(TZ_TEST_DATA_DIR) + "/qwen2-tiny/tied-f32/model.safetensors", path);
  const std::string bytes = read_bytes(path);
  const uint64_t n = header_length(bytes);
  std::mt19937_64 rng(99);
  int refused = 0;
  for (int iter = 0; iter < 400; ++iter) {
    const size_t pos = rng() % (8 + n);
    const char original = bytes[pos];
    const char changed = static_cast<char>(original ^ (1u << (rng() % 8)));
    {
      std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(static_cast<std::streamoff>(pos));
      f.write(&changed, 1);
    }
    try {
      SafetensorsFile f = SafetensorsFile::open(path);
      for (const auto& e : f.entries()) (void)f.tensor(e.name).sum().item<float>();
    } catch (const IoError&) {
      ++refused;
    }
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(pos));
    f.write(&original, 1);
  }
  EXPECT_GT(refused, 200);
  EXPECT_EQ(read_bytes(path), bytes);
}

}  // namespace
}  // namespace tinyzero
