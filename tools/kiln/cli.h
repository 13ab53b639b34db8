// Shared by the kiln tool's source files: main.cc (parsing, help, info, build, run, inspect, ops,
// main), compare.cc (compare, debug precision) and bench.cc (bench, trtexec's exports).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kiln/kiln.h"

namespace kiln_cli {

using kiln::Status;

struct Args {
  std::string command;
  std::vector<std::string> positional;
  std::string output, device, output_dir;
  std::map<std::string, std::vector<int64_t>> shapes;
  std::map<std::string, std::string> input_files;
  int64_t batch = 0;
  int opt_level = 2;
  int64_t workspace_mib = 0;
  std::string timing_cache;
  uint64_t seed = 1;
  int warmup = 3, iterations = 20;
  double duration = 0;
  bool profile = false, quiet = false;
  bool fp16 = false, tf32 = false, cuda_graph = true;
  bool int8 = false, fp8 = false;
  // compare: the reference ("cpu": the CPU's reference tactics, accumulating in double;
  // "fp32": a float32 plan on the same device) and the thresholds that fail it (exit 3).
  std::string reference = "cpu";
  double atol = -1, rtol = -1, top1 = -1;
  std::string calib_dir, calib_algo = "entropy", calib_cache;
  double calib_percentile = 99.99;
  std::vector<std::pair<std::string, std::string>> layer_precisions;
  std::string precision_constraints = "prefer";
  std::vector<std::string> excluded_tactics;
  std::vector<std::string> plugins;     // --plugin LIB.so, loaded before the command runs
  std::vector<kiln::OptimizationProfile> profiles;
  int min_count = 0, opt_count = 0, max_count = 0;
  size_t opt_profile = 0;
  int contexts = 1;
  bool contexts_given = false;  // --contexts N, even 1: the lanes' method, to compare N with 1
  bool help = false, verbose = false, best = false, trtexec = false, markdown = false;
  bool all_tensors = false;                // compare: every intermediate tensor too
  // trtexec's exports (bench): per-iteration times, the outputs, the per-step profile, as JSON.
  std::string export_times, export_output, export_profile;
  std::string trace;  // bench --trace FILE: a Chrome trace of one profiled run
  std::vector<std::string> mark_outputs;   // BuildOptions::mark_outputs
  double warmup_ms = 0;  // trtexec's --warmUp: warm up for this long (ms) before timing
  std::string json;
};

struct Session {
  std::shared_ptr<kiln::Engine> engine;
  std::unique_ptr<kiln::ExecutionContext> ctx;
  std::map<std::string, kiln::Tensor> inputs;
};

struct Stats {
  double min = 0, mean = 0, median = 0, p90 = 0, p95 = 0, p99 = 0, max = 0;
};

// The body of a JSON string (escaped; bytes that are not UTF-8 become U+FFFD).
std::string json_escape(const std::string& x);

// A small JSON writer: it places the commas and indentation; containers opened compact keep
// everything inside them on one line.
class JsonWriter {
 public:
  JsonWriter& begin_object(bool compact = false) { return open('{', compact); }
  JsonWriter& end_object() { return close('}'); }
  JsonWriter& begin_array(bool compact = false) { return open('[', compact); }
  JsonWriter& end_array() { return close(']'); }
  JsonWriter& key(const std::string& k) {
    element();
    out_ += "\"" + json_escape(k) + "\": ";
    after_key_ = true;
    return *this;
  }
  JsonWriter& str(const std::string& v) { return raw("\"" + json_escape(v) + "\""); }
  JsonWriter& num(int64_t v) { return raw(std::to_string(v)); }
  JsonWriter& num(size_t v) { return raw(std::to_string(v)); }
  JsonWriter& num(int v) { return raw(std::to_string(v)); }
  JsonWriter& num(double v) {
    if (!std::isfinite(v)) return null();
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return raw(buf);
  }
  JsonWriter& boolean(bool v) { return raw(v ? "true" : "false"); }
  JsonWriter& null() { return raw("null"); }
  JsonWriter& strings(const std::vector<std::string>& v) {
    begin_array(true);
    for (const auto& x : v) str(x);
    return end_array();
  }
  std::string text() const { return out_ + "\n"; }

 private:
  struct Level { bool first = true; bool compact = false; };
  bool compact() const { return !levels_.empty() && levels_.back().compact; }
  void element() {
    if (after_key_) { after_key_ = false; return; }
    if (levels_.empty()) return;
    if (!levels_.back().first) out_ += compact() ? ", " : ",";
    if (!compact()) out_ += "\n" + std::string(2 * levels_.size(), ' ');
    levels_.back().first = false;
  }
  JsonWriter& raw(const std::string& v) {
    element();
    out_ += v;
    return *this;
  }
  JsonWriter& open(char c, bool compact_inside) {
    element();
    out_ += c;
    levels_.push_back({true, compact_inside || compact()});
    return *this;
  }
  JsonWriter& close(char c) {
    Level l = levels_.back();
    levels_.pop_back();
    if (!l.first && !l.compact) out_ += "\n" + std::string(2 * levels_.size(), ' ');
    out_ += c;
    return *this;
  }
  std::string out_;
  std::vector<Level> levels_;
  bool after_key_ = false;
};

[[noreturn]] void die(const std::string& msg);        // exit 1
[[noreturn]] void bad_usage(const std::string& msg);  // exit 2
void check(const Status& s);                         // die() unless ok
int usage();
bool is_onnx(const std::string& path);
Session open_session(const Args& a);
std::string host_steps_line(const std::string& device, const std::vector<kiln::PlanStep>& steps);
void print_profile(const std::vector<kiln::StepTiming>& prof, int runs,
                   const std::vector<kiln::PlanStep>& steps);
std::vector<kiln::StepTiming> add_profiles(std::vector<kiln::StepTiming> sum,
                                           const std::vector<kiln::StepTiming>& p);
Stats stats_of(const std::vector<double>& v);
void print_stats(const char* what, const Stats& s);
std::string json_stats(const Stats& s);
void write_json(const Args& a, const std::string& body);

int cmd_compare(const Args& a);
int cmd_debug(const Args& a);
int cmd_bench(const Args& a);

}  // namespace kiln_cli
