// The timing cache file (builder/timing_cache.h): round trip, equal bytes for equal caches, and
// every kind of bad file (truncated, flipped, edited, foreign, not a cache) reported and ignored,
// never a crash and never a silently wrong entry.
#include "builder/timing_cache.h"

#include "builder/autotuner.h"
#include "plan/plan_data.h"
#include "runtime/backend.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <random>

#include "common/file.h"
#include "kiln/kiln.h"
#include "ops/conv.h"

namespace kiln {
namespace {

using ::testing::HasSubstr;

const char* kDevice = "NVIDIA H100 80GB HBM3 | cc 9.0 | CUDA 13.0 | cuDNN 9.14.0 | cuBLASLt 13.1.0";

TimingCache sample() {
  TimingCache c(kDevice);
  c.put(timing_key("cuda.cudnn_conv|Conv|x:float16[128,56,56,64]"), {"legacy algo 1 ws 0", 0.0421, 9});
  c.put(timing_key("cuda.cublaslt_matmul|MatMul|a:float32[7,13]"), {"heuristic #2 tile %x", 1.5, 4});
  c.put(timing_key("weird"), {"spaces and\nnewlines \xff%", 123456.789, 1});
  return c;
}

TEST(TimingCache, RoundTripGivesEqualEntriesAndBytes) {
  TimingCache a = sample();
  std::string bytes = a.serialize();
  TimingCache b(kDevice);
  TimingCache::Load l = b.load_bytes(bytes);
  EXPECT_TRUE(l.read) << l.problem;
  EXPECT_EQ(l.problem, "");
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b.entries(), a.entries());
  EXPECT_EQ(b.serialize(), bytes);
  const TimingEntry* e = b.find(timing_key("weird"));
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->choice, "spaces and\nnewlines \xff%");
  EXPECT_EQ(b.added(), 0u);   // read entries are not new
  EXPECT_EQ(b.find(timing_key("absent")), nullptr);
}

TEST(TimingCache, KeysAreSha256OfTheSignature) {
  EXPECT_EQ(timing_key(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(timing_key("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(TimingCache, SaveAndLoadAFile) {
  std::string path = testing::TempDir() + "kiln_timing_cache_test.txt";
  sample().save(path);
  TimingCache b(kDevice);
  EXPECT_TRUE(b.load(path).read);
  EXPECT_EQ(b.size(), 3u);
  TimingCache missing(kDevice);
  TimingCache::Load l = missing.load(path + ".absent");
  EXPECT_FALSE(l.read);
  EXPECT_EQ(l.problem, "");   // no file: an empty cache, not a problem
  std::remove(path.c_str());
}

TEST(TimingCache, ForeignDeviceIsReportedAndIgnored) {
  std::string bytes = sample().serialize();
  TimingCache other("NVIDIA H200 | cc 9.0 | CUDA 13.0 | cuDNN 9.14.0 | cuBLASLt 13.1.0");
  TimingCache::Load l = other.load_bytes(bytes);
  EXPECT_FALSE(l.read);
  EXPECT_THAT(l.problem, HasSubstr("made for another device"));
  EXPECT_THAT(l.problem, HasSubstr("H100"));
  EXPECT_EQ(other.size(), 0u);
}

TEST(TimingCache, EveryTruncationAndByteFlipIsReportedNeverTaken) {
  const std::string bytes = sample().serialize();
  for (size_t n = 0; n < bytes.size(); ++n) {
    TimingCache c(kDevice);
    TimingCache::Load l = c.load_bytes(bytes.substr(0, n));
    EXPECT_FALSE(l.read) << n;
    EXPECT_THAT(l.problem, HasSubstr("corrupt")) << n;
    EXPECT_EQ(c.size(), 0u);
  }
  std::mt19937 rng(5);
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] = static_cast<char>(bad[i] ^ (1 + rng() % 255));
    TimingCache c(kDevice);
    TimingCache::Load l = c.load_bytes(bad);
    EXPECT_FALSE(l.read) << "byte " << i << " flipped and the cache was still taken";
    EXPECT_FALSE(l.problem.empty()) << i;
    EXPECT_EQ(c.size(), 0u) << i;
  }
}

TEST(TimingCache, EditedEntriesAreCaughtByTheChecksum) {
  // A person (or a tool) changes a choice but not the checksum: refused.
  std::string bytes = sample().serialize();
  size_t at = bytes.find("legacy%20algo%201");
  ASSERT_NE(at, std::string::npos) << bytes;
  bytes[at + std::string("legacy%20algo%20").size()] = '2';
  TimingCache c(kDevice);
  TimingCache::Load l = c.load_bytes(bytes);
  EXPECT_FALSE(l.read);
  EXPECT_THAT(l.problem, HasSubstr("checksum mismatch"));
}

TEST(TimingCache, NotACacheAndOtherVersions) {
  for (std::string bad : {std::string(""), std::string("hello\n"),
                          std::string("kiln-timing-cache 2\ndevice x\nend 0 00000000\n"),
                          std::string("KILNPLAN\0\0\0", 11)}) {
    TimingCache c(kDevice);
    TimingCache::Load l = c.load_bytes(bad);
    EXPECT_FALSE(l.read);
    EXPECT_THAT(l.problem, HasSubstr("corrupt"));
  }
}

}  // namespace
}  // namespace kiln

// ---- The autotuner through the Builder (CPU: --opt-level 3 tunes the GEMM tactics) -------------

namespace kiln {
namespace {

// Steps that differ only in real-valued attributes (quantization scales) share one tuning
// result; a geometric difference (strides) or another shape does not.
TEST(Autotuner, SignatureKeysOnStructureNotOnScales) {
  auto conv_sig = [](double x_scale, Floats w_scale, Ints strides, int64_t width) {
    Graph g;
    Value* x = g.add_value("x", DataType::kInt8, Shape::from(Dims{2, 16, width, width}));
    Value* w = g.add_value("w", DataType::kInt8, Shape::from(Dims{16, 16, 3, 3}));
    Value* y = g.add_value("y", DataType::kFloat16, Shape::from(Dims{2, 16, width, width}));
    auto a = std::make_unique<ConvAttrs>();
    a->strides = strides;
    a->q_x_scale = x_scale;
    a->q_w_scale = w_scale;
    a->q_out = DataType::kFloat16;
    Node* n = g.add_node("Conv", {x, w}, {y}, std::move(a), "conv");
    return Autotuner::signature(*cpu_backend().tactics().front(), *n);
  };
  const std::string base = conv_sig(0.5, {0.1, 0.2}, {1, 1}, 9);
  EXPECT_EQ(base, conv_sig(0.25, {0.3, 0.7}, {1, 1}, 9));
  EXPECT_NE(base, conv_sig(0.5, {0.1}, {1, 1}, 9)) << "per-tensor against per-channel scales";
  EXPECT_NE(base, conv_sig(0, {0.1, 0.2}, {1, 1}, 9)) << "quantized against not";
  EXPECT_NE(base, conv_sig(0.5, {0.1, 0.2}, {2, 2}, 9));
  EXPECT_NE(base, conv_sig(0.5, {0.1, 0.2}, {1, 1}, 11));
}

struct Built {
  std::string bytes;
  std::vector<std::string> lines;
};

Built build_demo(int level, const std::string& cache) {
  Built b;
  BuildOptions o;
  o.device = "cpu";
  o.opt_level = level;
  o.timing_cache = cache;
  o.input_shapes["image"] = {4, 1, 28, 28};
  o.progress = [&](const std::string& s) { b.lines.push_back(s); };
  std::shared_ptr<Plan> plan;
  Status s = Builder(o).build_from_onnx(KILN_SOURCE_DIR "/models/fashion_cnn.onnx", plan);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  if (plan) b.bytes = plan->serialize();
  return b;
}

bool has_line(const Built& b, const std::string& needle) {
  for (const auto& l : b.lines)
    if (l.find(needle) != std::string::npos) return true;
  return false;
}

std::string temp_cache(const char* name) {
  std::string p = testing::TempDir() + name;
  std::remove(p.c_str());
  return p;
}

TEST(Autotuner, AWarmCacheTimesNothingAndGivesTheSameBytes) {
  std::string cache = temp_cache("kiln_tc_warm.txt");
  Built cold = build_demo(3, cache);
  EXPECT_TRUE(has_line(cold, "candidates timed, 0 results from the timing cache")) << cold.lines.back();
  EXPECT_FALSE(has_line(cold, " 0 candidates timed"));
  ASSERT_TRUE(file_exists(cache));
  TimingCache c(Autotuner::device_identity(cpu_backend()));
  ASSERT_TRUE(c.load(cache).read);
  EXPECT_GE(c.size(), 10u);   // 9 convolutions, the matmul and the reference steps at level 3
  Built warm = build_demo(3, cache);
  EXPECT_TRUE(has_line(warm, "tuned 14 steps: 0 candidates timed")) << warm.lines.back();
  EXPECT_TRUE(warm.bytes == cold.bytes) << "a warm cache must give the cold build's plan";
  std::remove(cache.c_str());
}

TEST(Autotuner, StepsKeepTheChosenCandidate) {
  std::string cache = temp_cache("kiln_tc_choice.txt");
  BuildOptions o;
  o.device = "cpu";
  o.opt_level = 3;
  o.timing_cache = cache;
  o.input_shapes["image"] = {4, 1, 28, 28};
  std::shared_ptr<Plan> plan;
  ASSERT_TRUE(Builder(o).build_from_onnx(KILN_SOURCE_DIR "/models/fashion_cnn.onnx", plan).is_ok());
  int gemm_steps = 0;
  for (const Step& s : plan->data().steps)
    if (s.tactic == "cpu.conv_im2col" || s.tactic == "cpu.matmul_gemm") {
      ++gemm_steps;
      EXPECT_THAT(s.state, ::testing::MatchesRegex("k[0-9]+n[0-9]+")) << s.tactic;
    }
  EXPECT_GE(gemm_steps, 2);
  std::remove(cache.c_str());
}

TEST(Autotuner, LevelOneTimesNothing) {
  std::string cache = temp_cache("kiln_tc_level1.txt");
  Built b = build_demo(1, cache);
  EXPECT_FALSE(has_line(b, "tuned"));
  EXPECT_FALSE(file_exists(cache));
  // Level 2 tunes device steps only: a CPU build at the default level times nothing either.
  Built b2 = build_demo(2, cache);
  EXPECT_FALSE(has_line(b2, "tuned"));
  EXPECT_FALSE(file_exists(cache));
  EXPECT_TRUE(b2.bytes == b.bytes);
}

TEST(Autotuner, CorruptOrForeignCachesAreReportedAndRewritten) {
  std::string cache = temp_cache("kiln_tc_bad.txt");
  for (std::string bad : {std::string("not a cache at all\n"),
                          TimingCache("cuda | some other GPU").serialize()}) {
    write_file(cache, bad);
    Built b = build_demo(3, cache);
    EXPECT_TRUE(has_line(b, "ignored: it ")) << (b.lines.empty() ? "" : b.lines[0]);
    EXPECT_FALSE(b.bytes.empty());
    TimingCache c(Autotuner::device_identity(cpu_backend()));
    TimingCache::Load l = c.load(cache);
    EXPECT_TRUE(l.read) << l.problem;   // rewritten for this machine
    EXPECT_GE(c.size(), 10u);
  }
  std::remove(cache.c_str());
}

}  // namespace
}  // namespace kiln
