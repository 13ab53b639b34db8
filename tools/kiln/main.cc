// The kiln command-line tool: argument parsing and help, info, build, run, inspect, ops, and
// main(). compare.cc holds compare and debug precision, bench.cc bench (tools/kiln/cli.h).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "common/error.h"
#include "common/file.h"
#include "common/npy.h"
#include "kiln/kiln.h"
#include "onnx/importer.h"
#include "ops/op.h"
#include "ops/registry_gen.h"
#include "runtime/backend.h"
#include "runtime/engine_impl.h"

#include "cli.h"

namespace kiln_cli {

// The help text: usage lines, then options. An option's description names the commands it serves
// ("build:", "run/bench:"); one that names none serves every command that builds or runs.
const char* kHelp =
      "kiln %s: an inference optimizer and runtime for ONNX models\n"
      "\n"
      "usage:\n"
      "  kiln info MODEL.onnx                     inputs, outputs, op histogram, unsupported nodes\n"
      "  kiln build MODEL.onnx -o PLAN [options]  optimise and write a plan file\n"
      "  kiln run MODEL.onnx|PLAN [options]       run once; inputs from .npy or random\n"
      "  kiln bench MODEL.onnx|PLAN [options]     latency and throughput\n"
      "  kiln inspect PLAN [options]              steps: tactic, precision, layout, memory, origins\n"
      "  kiln compare MODEL.onnx [options]        the plan the options build against a reference,\n"
      "                                           on the same inputs; exit 3 past a tolerance\n"
      "  kiln ops [--markdown]                    ONNX ops and opsets; canonical ops and tactics\n"
      "  kiln debug precision MODEL.onnx --int8 [--calib DIR] --top1 F|--atol X [-o FILE]\n"
      "                                           the layers to keep in float32 to meet it\n"
      "\n"
      "options:\n"
      "  --device cpu|cuda          target device (default: the GPU when there is one)\n"
      "  --shapes NAME:AxBxC,...    fix input shapes (run/bench: dynamic dims not given take the\n"
      "                             profile's opt, else 1, and kiln says which)\n"
      "  --min-shapes NAME:AxB,...  build: an optimization profile's smallest shapes; with\n"
      "  --opt-shapes NAME:AxB,...  the shapes to optimize for and\n"
      "  --max-shapes NAME:AxB,...  the largest (repeat the three for more profiles)\n"
      "  --optimization-profile N   run/bench: the profile a context uses (default 0)\n"
      "  --batch N                  set the first dim of every input to N\n"
      "  --opt-level N              0 no graph rewriting; 1 rewrites, heuristics only (nothing\n"
      "                             timed); 2 (default) also tunes GPU steps; 3 tunes every step\n"
      "                             on any device and compares every tactic\n"
      "  --timing-cache FILE        build: read and extend this timing cache (reused tuning)\n"
      "  --workspace MiB            build: the most scratch memory one step may use (library\n"
      "                             algorithms that need more are not considered; default: each\n"
      "                             tactic's own bound, cuDNN 512 MiB, cuBLASLt 32 MiB)\n"
      "  --input NAME=FILE.npy      run: an input from a file (repeatable)\n"
      "  --seed N                   run/bench: seed for random inputs (default 1)\n"
      "  --output-dir DIR           run: write each output as DIR/<name>.npy\n"
      "  --warmup N                 bench, inspect --profile: warm-up runs (default 3)\n"
      "  --iterations N             bench: at least N timed runs; inspect --profile: N runs\n"
      "                             (default 20)\n"
      "  --duration S               bench: run at least S seconds (default 0)\n"
      "  --contexts N               bench: N execution contexts on N threads (and streams),\n"
      "                             each enqueue then wait, aggregate throughput (--contexts 1:\n"
      "                             the same loop on one context, to compare with)\n"
      "  --fp16                     build: store activations and weights in float16 where ops allow\n"
      "  --tf32                     build: allow TF32 tensor cores for float32 Conv/MatMul\n"
      "  --reference cpu|fp32       compare: the CPU reference (default) or a float32 plan\n"
      "  --atol X, --rtol Y         compare: fail (exit 3) where |got - want| > X + Y * |want|\n"
      "  --top1 F                   compare: fail when top-1 classes agree on less than F\n"
      "  --all-tensors              compare: every intermediate tensor too, naming the first whose\n"
      "                             error jumps (marking them outputs keeps them from fusing)\n"
      "  --int8                     build: quantize convolutions and linear layers to int8\n"
      "                             (post-training; needs --calib or a valid --calib-cache)\n"
      "  --fp8                      build: the same in float8 E4M3 (scales amax / 448; GPUs of\n"
      "                             compute capability 8.9 or newer, and the CPU)\n"
      "  --calib DIR                build: calibration batches, .npy (one input) or .npz files\n"
      "  --calib-cache FILE         build: read calibration scales from FILE when it was made\n"
      "                             for this model and algorithm, else calibrate and write it\n"
      "  --calib-algo ALGO          build: entropy (default, TensorRT's), percentile or minmax\n"
      "  --calib-percentile P       build: the percentile for --calib-algo percentile (99.99)\n"
      "  --layer-precision NAME:P   build: P (fp32, fp16, int8, fp8) for the layers matching the glob\n"
      "                             NAME (repeatable, or comma-separated; the last match wins):\n"
      "                             fp32 keeps a layer strict float32, fp16 puts it in float16\n"
      "                             even without --fp16, int8 needs --int8\n"
      "  --precision-constraints C  build: prefer (default: a layer that cannot run as asked\n"
      "                             runs otherwise, with a warning) or obey (a build error)\n"
      "  --plugin LIB.so            load a plugin library (kiln/plugin.h; repeatable) before\n"
      "                             reading the model or plan: build, run, bench, inspect\n"
      "  --exclude-tactic ID        build: never choose tactic ID (repeatable), e.g. to time a\n"
      "                             device kernel against the host fallback\n"
      "  --json FILE                bench, inspect: also write the results as JSON\n"
      "  --no-cuda-graph            run/bench: enqueue every step instead of replaying a CUDA graph\n"
      "  --profile                  run/bench/inspect: per-step times, slowest first\n"
      "  --quiet                    less progress output\n"
      "  --verbose                  every log line (KILN_LOG_LEVEL=verbose)\n"
      "  --best                     build: every precision allowed (fp16, tf32; int8 too when\n"
      "                             calibration data or a cache is given)\n"
      "  --warmUp MS                bench: warm up for MS milliseconds before timing\n"
      "  --exportTimes FILE         bench: every timed iteration's times as JSON\n"
      "  --exportOutput FILE        bench: the outputs of one run as JSON\n"
      "  --exportProfile FILE       bench: each step's mean time and share as JSON\n"
      "  --trace FILE               bench: one run's steps as a timeline in the Chrome trace\n"
      "                             format (open in Perfetto or chrome://tracing)\n"
      "\n"
      "trtexec's spellings work too, as --name=value or --name value: --onnx, --saveEngine,\n"
      "--loadEngine, --minShapes/--optShapes/--maxShapes, --dumpProfile; with no command,\n"
      "`kiln --onnx=M.onnx [--saveEngine=P] [options]` builds (and saves) a plan and benchmarks it.\n"
      "`kiln COMMAND --help` lists the options of one command. Exit codes: 0 success, 1 error,\n"
      "2 usage, 3 an accuracy check failed.\n";

int usage() {
  std::fprintf(stderr, kHelp, kiln::version().c_str());
  return 2;
}

// `kiln COMMAND --help`: the command's usage lines and the options that serve it (the options
// marked "build:" serve every command that builds a model on the way).
int command_help(const std::string& cmd) {
  std::string text = kiln::cat(kHelp);
  const size_t pct = text.find("%s");
  if (pct != std::string::npos) text.replace(pct, 2, kiln::version());
  std::vector<std::string> lines;
  for (size_t p = 0; p < text.size();) {
    size_t nl = text.find('\n', p);
    if (nl == std::string::npos) nl = text.size();
    lines.push_back(text.substr(p, nl - p));
    p = nl + 1;
  }
  const bool builds = cmd == "build" || cmd == "run" || cmd == "bench" || cmd == "compare" ||
                      cmd == "debug";
  auto serves = [&](const std::string& entry) {
    // Descriptions start at column 29.
    const std::string d = entry.size() > 29 ? entry.substr(29) : "";
    const size_t colon = d.find(':');
    const std::string head = colon == std::string::npos ? "" : d.substr(0, colon);
    // Marked: the description starts with the commands it serves ("bench, inspect --profile:").
    const std::string first_word = head.substr(0, head.find_first_of(" /,"));
    const bool marked = first_word == "build" || first_word == "run" || first_word == "bench" ||
                        first_word == "inspect" || first_word == "compare" || first_word == "info";
    if (!marked) return builds;
    if (head.find(cmd) != std::string::npos) return true;
    return builds && head.find("build") != std::string::npos;
  };
  bool known = false;
  for (const std::string& l : lines) known |= l.rfind("  kiln " + cmd + " ", 0) == 0;
  if (!known) {
    std::fprintf(stderr, "kiln: unknown command '%s' (kiln --help lists them)\n", cmd.c_str());
    return 2;
  }
  std::printf("kiln %s\n\nusage:\n", cmd.c_str());
  bool in_options = false, keep = false;
  for (const std::string& l : lines) {
    if (l == "options:") {
      in_options = true;
      std::printf("\noptions:\n");
      continue;
    }
    if (!in_options) {
      if (l.rfind("  kiln " + cmd + " ", 0) == 0) {
        keep = true;
      } else if (l.rfind("  kiln ", 0) == 0 || l.empty()) {
        keep = false;
      }
      if (keep) std::printf("%s\n", l.c_str());
      continue;
    }
    if (l.rfind("  --", 0) == 0) keep = serves(l);
    if (keep) std::printf("%s\n", l.c_str());
  }
  std::printf("\nexit codes: 0 success, 1 error, 2 usage, 3 an accuracy check failed\n");
  return 0;
}


[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "kiln: error: %s\n", msg.c_str());
  std::exit(1);
}

// A command line kiln cannot act on (an unknown option, a missing or malformed value): exit 2.
[[noreturn]] void bad_usage(const std::string& msg) {
  std::fprintf(stderr, "kiln: error: %s\n", msg.c_str());
  std::exit(2);
}

void check(const Status& s) {
  if (!s) die(s.to_string());
}

// Every option kiln knows, for "did you mean" (trtexec's spellings included).
const std::vector<std::string>& known_options() {
  static const std::vector<std::string> v = {
      "--output", "--device", "--output-dir", "--opt-level", "--workspace", "--seed", "--warmup",
      "--iterations", "--batch", "--duration", "--profile", "--fp16", "--tf32", "--int8", "--fp8",
      "--best", "--reference", "--atol", "--rtol", "--top1", "--calib", "--calib-cache",
      "--calib-algo", "--calib-percentile", "--layer-precision", "--precision-constraints",
      "--precisionConstraints", "--layerPrecisions", "--exclude-tactic", "--plugin",
      "--timing-cache", "--contexts", "--no-cuda-graph", "--json", "--quiet", "--shapes",
      "--min-shapes", "--opt-shapes", "--max-shapes", "--optimization-profile", "--input",
      "--onnx", "--saveEngine", "--loadEngine", "--verbose", "--warmUp", "--dumpProfile",
      "--minShapes", "--optShapes", "--maxShapes", "--help", "--markdown", "--all-tensors",
      "--exportTimes", "--exportOutput", "--exportProfile", "--trace"};
  return v;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> d(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) d[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = d[0];
    d[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = d[j];
      d[j] = std::min({d[j] + 1, d[j - 1] + 1, diag + (std::tolower(a[i - 1]) != std::tolower(b[j - 1]))});
      diag = up;
    }
  }
  return d[b.size()];
}

std::string did_you_mean(const std::string& flag) {
  std::string best;
  size_t best_d = 4;  // farther than 3 edits is no suggestion
  for (const std::string& o : known_options()) {
    const size_t dist = edit_distance(flag, o);
    if (dist < best_d) {
      best_d = dist;
      best = o;
    }
  }
  return best.empty() ? std::string() : " (did you mean " + best + "?)";
}

std::vector<int64_t> parse_dims(const std::string& s, const std::string& what) {
  std::vector<int64_t> d;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t x = s.find('x', pos);
    std::string part = s.substr(pos, x == std::string::npos ? std::string::npos : x - pos);
    char* end = nullptr;
    long long v = std::strtoll(part.c_str(), &end, 10);
    if (part.empty() || *end || v <= 0) bad_usage("bad shape '" + s + "' in " + what + " (use e.g. 1x3x224x224)");
    d.push_back(v);
    if (x == std::string::npos) break;
    pos = x + 1;
  }
  return d;
}

// "NAME:AxB,NAME2:C" (a name may itself hold ':'; the last one separates the dims).
std::map<std::string, std::vector<int64_t>> parse_shapes(const std::string& v, const std::string& flag) {
  std::map<std::string, std::vector<int64_t>> out;
  size_t pos = 0;
  while (pos < v.size()) {
    size_t comma = v.find(',', pos);
    std::string item = v.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t colon = item.rfind(':');
    if (colon == std::string::npos || colon == 0)
      bad_usage("bad " + flag + " item '" + item + "' (use NAME:AxB)");
    out[item.substr(0, colon)] = parse_dims(item.substr(colon + 1), flag);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

Args parse(int argc, char** argv) {
  Args a;
  if (argc < 2) std::exit(usage());
  a.command = argv[1];
  // trtexec's habit: no command, just options (`kiln --onnx=m.onnx --saveEngine=m.plan --fp16`)
  // builds (and saves) the plan and benchmarks it.
  int first = 2;
  if (a.command.size() > 2 && a.command.rfind("--", 0) == 0 && a.command != "--help") {
    a.command = "bench";
    a.trtexec = true;
    first = 1;
  }
  for (int i = first; i < argc; ++i) {
    std::string s = argv[i];
    // --name=value, as trtexec writes every option.
    std::optional<std::string> inline_value;
    if (s.rfind("--", 0) == 0 && s.find('=') != std::string::npos) {
      inline_value = s.substr(s.find('=') + 1);
      s = s.substr(0, s.find('='));
    }
    // trtexec's spellings.
    if (s == "--saveEngine") s = "--output";
    else if (s == "--dumpProfile") s = "--profile";
    else if (s == "--minShapes") s = "--min-shapes";
    else if (s == "--optShapes") s = "--opt-shapes";
    else if (s == "--maxShapes") s = "--max-shapes";
    else if (s == "--precisionConstraints") s = "--precision-constraints";
    else if (s == "--layerPrecisions") s = "--layer-precision";
    auto value = [&]() -> std::string {
      if (inline_value) {
        std::string v = *inline_value;
        inline_value.reset();
        return v;
      }
      if (i + 1 >= argc) bad_usage("option " + s + " needs a value");
      return argv[++i];
    };
    auto number = [&](const std::string& v) -> long long {
      char* end = nullptr;
      long long n = std::strtoll(v.c_str(), &end, 10);
      if (v.empty() || *end || n < 0) bad_usage("option " + s + " needs a non-negative integer, got '" + v + "'");
      return n;
    };
    if (s == "--help" || s == "-h") a.help = true;
    else if (s == "--markdown") a.markdown = true;
    else if (s == "--all-tensors") a.all_tensors = true;
    else if (s == "--exportTimes") a.export_times = value();
    else if (s == "--exportOutput") a.export_output = value();
    else if (s == "--trace") a.trace = value();
    else if (s == "--exportProfile") {
      a.export_profile = value();
      a.profile = true;
    }
    else if (s == "--onnx" || s == "--loadEngine") a.positional.push_back(value());
    else if (s == "--verbose" || s == "-v") a.verbose = true;
    else if (s == "--warmUp") a.warmup_ms = static_cast<double>(number(value()));
    else if (s == "--best") a.best = true;
    else if (s == "-o" || s == "--output") a.output = value();
    else if (s == "--device") a.device = value();
    else if (s == "--output-dir") a.output_dir = value();
    else if (s == "--opt-level") {
      a.opt_level = static_cast<int>(number(value()));
      if (a.opt_level > 3) bad_usage("--opt-level takes 0, 1, 2 or 3");
    }
    else if (s == "--workspace") {
      a.workspace_mib = number(value());
      if (a.workspace_mib < 1) bad_usage("--workspace takes a size in MiB, at least 1");
    }
    else if (s == "--seed") a.seed = static_cast<uint64_t>(number(value()));
    else if (s == "--warmup") a.warmup = static_cast<int>(number(value()));
    else if (s == "--iterations") a.iterations = std::max(1, static_cast<int>(number(value())));
    else if (s == "--batch") a.batch = number(value());
    else if (s == "--duration") a.duration = std::atof(value().c_str());
    else if (s == "--profile") a.profile = true;
    else if (s == "--fp16") a.fp16 = true;
    else if (s == "--tf32") a.tf32 = true;
    else if (s == "--int8") a.int8 = true;
    else if (s == "--fp8") a.fp8 = true;
    else if (s == "--reference") {
      a.reference = value();
      if (a.reference != "cpu" && a.reference != "fp32") bad_usage("--reference takes cpu or fp32");
    } else if (s == "--atol" || s == "--rtol" || s == "--top1") {
      std::string v = value();
      char* end = nullptr;
      double x = std::strtod(v.c_str(), &end);
      if (v.empty() || *end || !(x >= 0) || (s == "--top1" && x > 1))
        bad_usage("option " + s + " needs a non-negative number" + (s == "--top1" ? " up to 1" : "") +
            ", got '" + v + "'");
      (s == "--atol" ? a.atol : s == "--rtol" ? a.rtol : a.top1) = x;
    }
    else if (s == "--calib") a.calib_dir = value();
    else if (s == "--calib-cache") a.calib_cache = value();
    else if (s == "--calib-algo") {
      a.calib_algo = value();
      if (a.calib_algo != "entropy" && a.calib_algo != "percentile" && a.calib_algo != "minmax")
        bad_usage("--calib-algo takes entropy, percentile or minmax");
    } else if (s == "--calib-percentile") {
      std::string v = value();
      char* end = nullptr;
      a.calib_percentile = std::strtod(v.c_str(), &end);
      if (v.empty() || *end || !(a.calib_percentile > 0 && a.calib_percentile <= 100))
        bad_usage("--calib-percentile takes a number in (0, 100], got '" + v + "'");
    } else if (s == "--layer-precision") {
      // One NAME:P, or trtexec's comma-separated list of them.
      std::string all = value();
      for (size_t start = 0; start <= all.size();) {
        size_t comma = all.find(',', start);
        if (comma == std::string::npos) comma = all.size();
        std::string v = all.substr(start, comma - start);
        start = comma + 1;
        size_t colon = v.rfind(':');
        std::string prec = colon == std::string::npos ? "" : v.substr(colon + 1);
        if (colon == std::string::npos || colon == 0 ||
            (prec != "fp32" && prec != "fp16" && prec != "int8" && prec != "fp8"))
          bad_usage("--layer-precision takes NAME:fp32|fp16|int8|fp8 (NAME may be a glob), got '" + v +
                    "'");
        a.layer_precisions.emplace_back(v.substr(0, colon), prec);
      }
    } else if (s == "--precision-constraints") {
      a.precision_constraints = value();
      // trtexec's "none" is its default, which is "prefer" here.
      if (a.precision_constraints == "none") a.precision_constraints = "prefer";
      if (a.precision_constraints != "prefer" && a.precision_constraints != "obey")
        bad_usage("--precision-constraints takes obey or prefer, got '" + a.precision_constraints +
                  "'");
    }
    else if (s == "--exclude-tactic") a.excluded_tactics.push_back(value());
    else if (s == "--plugin") a.plugins.push_back(value());
    else if (s == "--timing-cache") a.timing_cache = value();
    else if (s == "--contexts") {
      a.contexts = static_cast<int>(number(value()));
      a.contexts_given = true;
      if (a.contexts < 1 || a.contexts > 256) bad_usage("--contexts takes 1 to 256");
    }
    else if (s == "--no-cuda-graph") a.cuda_graph = false;
    else if (s == "--json") a.json = value();
    else if (s == "--quiet" || s == "-q") a.quiet = true;
    else if (s == "--shapes") {
      a.shapes = parse_shapes(value(), s);
    } else if (s == "--min-shapes" || s == "--opt-shapes" || s == "--max-shapes") {
      int& n = s == "--min-shapes" ? a.min_count : s == "--opt-shapes" ? a.opt_count : a.max_count;
      if (a.profiles.size() <= static_cast<size_t>(n)) a.profiles.resize(n + 1);
      auto& p = a.profiles[n++];
      (s == "--min-shapes" ? p.min : s == "--opt-shapes" ? p.opt : p.max) = parse_shapes(value(), s);
    } else if (s == "--optimization-profile") {
      a.opt_profile = static_cast<size_t>(number(value()));
    } else if (s == "--input") {
      std::string v = value();
      size_t eq = v.find('=');
      if (eq == std::string::npos || eq == 0) bad_usage("bad --input '" + v + "' (use NAME=FILE.npy)");
      a.input_files[v.substr(0, eq)] = v.substr(eq + 1);
    } else if (!s.empty() && s[0] == '-') {
      bad_usage("unknown option '" + s + "'" + did_you_mean(s) + " (see kiln " + a.command +
                " --help)");
    } else {
      a.positional.push_back(s);
    }
  }
  if (a.min_count != a.opt_count || a.opt_count != a.max_count)
    bad_usage(kiln::cat("optimization profiles need --min-shapes, --opt-shapes and --max-shapes together (",
                  a.min_count, ", ", a.opt_count, " and ", a.max_count, " given)"));
  return a;
}

bool is_onnx(const std::string& path) {
  return path.size() > 5 && path.substr(path.size() - 5) == ".onnx";
}

void print_desc(const char* what, const std::vector<kiln::TensorDesc>& ds) {
  for (const auto& d : ds) std::printf("  %-7s %s\n", what, d.str().c_str());
}

// Loads a plan, or builds one from an ONNX model with the shapes the command needs.
std::shared_ptr<kiln::Plan> obtain_plan(const Args& a, const std::string& path,
                                        const std::map<std::string, kiln::Tensor>& given = {}) {
  std::shared_ptr<kiln::Plan> plan;
  if (!kiln::file_exists(path)) die("'" + path + "' does not exist");
  if (!is_onnx(path)) {
    check(kiln::Plan::load(path, plan));
    return plan;
  }
  kiln::BuildOptions o;
  o.device = a.device;
  o.opt_level = a.opt_level;
  o.max_workspace_mib = a.workspace_mib;
  o.input_shapes = a.shapes;
  o.fp16 = a.fp16 || a.best;
  // --best: int8 as well when there is something to calibrate with (trtexec calibrates with
  // made-up ranges; kiln does not make up accuracy).
  o.int8 = a.int8 || (a.best && (!a.calib_dir.empty() || !a.calib_cache.empty()));
  o.fp8 = a.fp8;
  o.calib_dir = a.calib_dir;
  o.calib_algo = a.calib_algo;
  o.calib_percentile = a.calib_percentile;
  o.calib_cache = a.calib_cache;
  o.layer_precisions = a.layer_precisions;
  o.precision_constraints = a.precision_constraints;
  o.mark_outputs = a.mark_outputs;
  o.tf32 = a.tf32 || a.best;
  o.excluded_tactics = a.excluded_tactics;
  o.profiles = a.profiles;
  o.timing_cache = a.timing_cache;
  if (!a.quiet) o.progress = [](const std::string& s) { std::fprintf(stderr, "kiln: %s\n", s.c_str()); };
  if (a.batch > 0 || a.command == "run" || a.command == "bench" || a.command == "compare") {
    kiln::ModelInfo info;
    check(kiln::inspect_onnx(path, info));
    for (const auto& in : info.inputs) {
      if (o.input_shapes.count(in.name)) continue;
      if (!o.profiles.empty() && o.profiles[0].min.count(in.name)) continue;  // profile-bounded
      auto g = given.find(in.name);
      if (g != given.end() && g->second.rank() == in.dims.size()) {
        // Build for the shape of the tensor the user supplies.
        o.input_shapes[in.name] = g->second.dims();
        continue;
      }
      std::vector<int64_t> dims = in.dims;
      bool dynamic = false;
      for (size_t i = 0; i < dims.size(); ++i) {
        if (i == 0 && a.batch > 0) { dims[i] = a.batch; continue; }
        if (dims[i] < 0) { dims[i] = 1; dynamic = true; }
      }
      // Never silent: the shape kiln picked for a dynamic dim decides what is built and timed.
      if (dynamic)
        std::fprintf(stderr, "kiln: input '%s' has dynamic dims; building for %s (set --shapes, "
                     "--batch or --min/--opt/--max-shapes)\n",
                     in.name.c_str(), kiln::dims_to_string(dims).c_str());
      if (!dims.empty()) o.input_shapes[in.name] = dims;
    }
  }
  kiln::Builder b(o);
  check(b.build_from_onnx(path, plan));
  return plan;
}

std::map<std::string, kiln::Tensor> read_input_files(const Args& a) {
  std::map<std::string, kiln::Tensor> t;
  for (const auto& [name, file] : a.input_files) {
    try {
      t[name] = kiln::read_npy(file);
    } catch (const kiln::Error& err) {
      die(err.message());
    }
  }
  return t;
}

// The shape random inputs get: --shapes, else the declared dims with dynamic ones set to --batch
// (the first), else to the selected optimization profile's opt, else 1; kiln says which.
std::vector<int64_t> input_dims(const Args& a, const kiln::TensorDesc& d, const kiln::Plan& plan) {
  std::vector<int64_t> dims = d.dims;
  auto sh = a.shapes.find(d.name);
  if (sh != a.shapes.end()) return sh->second;
  const std::vector<int64_t>* opt = nullptr;
  if (a.opt_profile < plan.profiles().size()) {
    auto it = plan.profiles()[a.opt_profile].opt.find(d.name);
    if (it != plan.profiles()[a.opt_profile].opt.end() && it->second.size() == dims.size())
      opt = &it->second;
  }
  std::string chosen;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] >= 0) continue;
    const char* why = "1: no --batch, --shapes or optimization profile";
    if (i == 0 && a.batch > 0) {
      dims[i] = a.batch;
      why = "--batch";
    } else if (opt) {
      dims[i] = (*opt)[i];
      why = "the optimization profile's opt";
    } else {
      dims[i] = 1;
    }
    chosen += kiln::cat(chosen.empty() ? "" : "; ", "dimension ", i,
                        d.dim_names[i].empty() ? "" : " (" + d.dim_names[i] + ")", " = ", dims[i],
                        " (", why, ")");
  }
  if (!chosen.empty())
    std::fprintf(stderr, "kiln: input '%s' is dynamic: running %s: %s\n", d.name.c_str(),
                 kiln::dims_to_string(dims).c_str(), chosen.c_str());
  return dims;
}

std::string fmt_bytes(int64_t b) {
  char buf[32];
  if (b < 1024)
    std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(b));
  else if (b < (int64_t{1} << 20))
    std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  else if (b < (int64_t{1} << 30))
    std::snprintf(buf, sizeof buf, "%.2f MiB", b / 1048576.0);
  else
    std::snprintf(buf, sizeof buf, "%.2f GiB", b / 1073741824.0);
  return buf;
}

std::map<std::string, kiln::Tensor> make_inputs(const Args& a, const kiln::Engine& e,
                                                const std::map<std::string, kiln::Tensor>& given) {
  std::map<std::string, kiln::Tensor> inputs;
  std::mt19937_64 rng(a.seed);
  for (const auto& [name, file] : a.input_files) {
    bool known = false;
    for (const auto& d : e.inputs()) known |= d.name == name;
    if (!known) {
      std::string names;
      for (const auto& d : e.inputs()) names += (names.empty() ? "" : ", ") + d.name;
      die("--input names '" + name + "', which is not an input of the model (inputs: " + names + ")");
    }
  }
  for (const auto& d : e.inputs()) {
    auto it = given.find(d.name);
    if (it != given.end()) {
      inputs[d.name] = it->second;
      continue;
    }
    std::vector<int64_t> dims = input_dims(a, d, *e.impl().plan);
    // Check before allocating: a shape typed by hand can ask for more than any machine has.
    double bytes = static_cast<double>(kiln::dtype_size(d.dtype));
    for (int64_t x : dims) bytes *= static_cast<double>(x);
    const double have = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGE_SIZE);
    if (bytes > have)
      die(kiln::cat("input '", d.name, "' of shape ", kiln::dims_to_string(dims), " needs ",
                    fmt_bytes(static_cast<int64_t>(std::min(bytes, 9e18))), ", more than this machine's ",
                    fmt_bytes(static_cast<int64_t>(have)), " of memory"));
    kiln::Tensor t(d.dtype, dims);
    std::uniform_real_distribution<double> uf(-1.0, 1.0);
    std::uniform_int_distribution<int64_t> ui(0, 9);
    for (int64_t i = 0; i < t.numel(); ++i) {
      if (kiln::dtype_is_float(d.dtype)) t.set_f64(i, uf(rng));
      else if (d.dtype == kiln::DataType::kBool) t.set_i64(i, ui(rng) & 1);
      else t.set_i64(i, ui(rng));
    }
    inputs[d.name] = t;
  }
  return inputs;
}

// "a, b, c", or "a, b, … (+7)" when there are more than three.
std::string brief_list(const std::vector<std::string>& v) {
  std::string s;
  size_t shown = v.size() > 3 ? 2 : v.size();
  for (size_t i = 0; i < shown; ++i) s += (i ? ", " : "") + v[i];
  if (shown < v.size()) s += ", \u2026 (+" + std::to_string(v.size() - shown) + ")";
  return s;
}

// What the profile tables say a step covers: nothing when it is just the node of that name.
std::string covers_brief(const kiln::PlanStep& s) {
  if (s.origins.size() == 1 && s.origins[0] == s.name) return "";
  return std::to_string(s.origins.size()) + ": " + brief_list(s.origins);
}

// The per-step time table, slowest first (run, bench and inspect --profile). prof holds one
// entry per plan step, in step order, as last_profile() does.
// The line `kiln inspect` and `kiln bench` print about steps of a GPU plan that compute on the
// host (the host fallback: its op has no device kernel for that node).
std::string host_steps_line(const std::string& device, const std::vector<kiln::PlanStep>& steps) {
  if (device == "cpu") return "host steps: all (a CPU plan)";
  std::string list;
  size_t n = 0;
  for (const auto& s : steps)
    if (s.on_host) {
      if (n < 8) list += kiln::cat(n ? ", " : "", s.op, " '", s.name, "'");
      ++n;
    }
  if (n == 0) return kiln::cat("host steps: 0 of ", steps.size(), " (every step runs on the device)");
  return kiln::cat("host steps: ", n, " of ", steps.size(), " compute on the host (", list,
                   n > 8 ? ", ..." : "",
                   "): each copies its inputs to the host and back, and keeps the plan out of "
                   "CUDA graphs");
}

void print_profile(const std::vector<kiln::StepTiming>& prof, int runs,
                   const std::vector<kiln::PlanStep>& steps) {
  std::vector<size_t> order(prof.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return prof[x].ms > prof[y].ms; });
  double total = 0;
  for (auto& s : prof) total += s.ms;
  size_t wop = 2, wtac = 6, wstep = 4;
  for (auto& s : prof) {
    wop = std::max(wop, s.op.size());
    wtac = std::max(wtac, s.tactic.size());
    wstep = std::min<size_t>(std::max(wstep, s.step.size()), 40);
  }
  std::printf("\nper-step time (mean of %d run(s)), slowest first:\n", runs);
  std::printf("  %10s %6s  %-*s  %-*s  %-*s  %s\n", "ms", "%", static_cast<int>(wop), "op",
              static_cast<int>(wtac), "tactic", static_cast<int>(wstep), "step", "covers");
  for (size_t i : order) {
    const kiln::StepTiming& s = prof[i];
    std::string covers;
    if (i < steps.size() && steps[i].name == s.step) covers = covers_brief(steps[i]);
    char num[64];
    std::snprintf(num, sizeof num, "  %10.3f %5.1f%%", s.ms, total > 0 ? 100 * s.ms / total : 0);
    auto pad = [](const std::string& x, size_t w) {
      return x.size() < w ? x + std::string(w - x.size(), ' ') : x;
    };
    std::string l = std::string(num) + "  " + pad(s.op, wop) + "  " + pad(s.tactic, wtac) + "  " +
                    pad(s.step, wstep) + "  " + covers;
    while (!l.empty() && l.back() == ' ') l.pop_back();
    std::printf("%s\n", l.c_str());
  }
}

int cmd_info(const Args& a) {
  if (a.positional.size() != 1) return usage();
  if (!is_onnx(a.positional[0]) && kiln::file_exists(a.positional[0])) {
    // A plan: what it is, in brief (kiln inspect lists its steps).
    std::shared_ptr<kiln::Plan> plan;
    check(kiln::Plan::load(a.positional[0], plan));
    std::printf("%s(kiln inspect %s lists every step)\n", plan->describe().c_str(),
                a.positional[0].c_str());
    return 0;
  }
  kiln::ModelInfo info;
  check(kiln::inspect_onnx(a.positional[0], info));
  std::printf("model: %s\n  producer: %s, opset %lld, %zu nodes, %zu weights (%.2f MB)\n",
              a.positional[0].c_str(), info.producer.c_str(), static_cast<long long>(info.opset),
              info.num_nodes, info.num_weights, info.weight_bytes / 1e6);
  print_desc("input", info.inputs);
  print_desc("output", info.outputs);
  std::printf("  ops (count, and the opsets kiln imports each at):\n");
  std::vector<std::pair<std::string, int>> h(info.onnx_op_histogram.begin(), info.onnx_op_histogram.end());
  std::sort(h.begin(), h.end(), [](auto& x, auto& y) { return x.second != y.second ? x.second > y.second : x.first < y.first; });
  std::map<std::string, std::string> ranges;
  for (const auto& r : kiln::onnx::importer_ranges())
    if (r.domain.empty())
      ranges[r.op_type] = kiln::cat("opsets ", r.min_opset, "-", r.max_opset);
  for (auto& [op, n] : h)
    std::printf("    %-24s %-5d %s\n", op.c_str(), n,
                ranges.count(op) ? ranges[op].c_str() : "no importer");
  if (info.unsupported.empty()) {
    std::printf("  all nodes are supported\n");
  } else {
    std::printf("  %zu unsupported node(s):\n", info.unsupported.size());
    for (auto& u : info.unsupported) std::printf("    %s\n", u.c_str());
  }
  return info.unsupported.empty() ? 0 : 1;
}

int cmd_build(const Args& a) {
  if (a.positional.size() != 1) return usage();
  if (a.output.empty()) die("build needs -o PLAN");
  if (!is_onnx(a.positional[0])) die("build takes an .onnx model");
  auto t0 = std::chrono::steady_clock::now();
  auto plan = obtain_plan(a, a.positional[0]);
  check(plan->save(a.output));
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("wrote %s: %zu steps for %s, built in %.2f s\n", a.output.c_str(), plan->num_steps(),
              plan->device().c_str(), s);
  if (plan->num_host_steps() > 0)
    std::printf("%s\n", host_steps_line(plan->device(), plan->steps()).c_str());
  return 0;
}

std::string summary(const kiln::Tensor& t) {
  std::string s = std::string(kiln::dtype_name(t.dtype())) + kiln::dims_to_string(t.dims());
  int64_t n = std::min<int64_t>(t.numel(), 6);
  s += " [";
  for (int64_t i = 0; i < n; ++i) {
    char buf[32];
    if (kiln::dtype_is_float(t.dtype())) std::snprintf(buf, sizeof buf, "%s%.5g", i ? ", " : "", t.get_f64(i));
    else std::snprintf(buf, sizeof buf, "%s%lld", i ? ", " : "", static_cast<long long>(t.get_i64(i)));
    s += buf;
  }
  if (t.numel() > n) s += ", ...";
  return s + "]";
}

// What run and bench share: a plan (loaded or built for the given inputs), an engine, one
// context, and the inputs (from files or random).

Session open_session(const Args& a) {
  Session s;
  auto given = read_input_files(a);
  auto plan = obtain_plan(a, a.positional[0], given);
  // trtexec's --saveEngine while benchmarking a model: the plan that is timed is the one saved.
  if (a.command == "bench" && !a.output.empty() && is_onnx(a.positional[0])) {
    check(plan->save(a.output));
    std::printf("wrote %s\n", a.output.c_str());
  }
  check(kiln::Engine::create(plan, s.engine));
  check(s.engine->create_context(s.ctx));
  if (a.opt_profile || !plan->profiles().empty()) check(s.ctx->set_optimization_profile(a.opt_profile));
  s.ctx->set_cuda_graphs(a.cuda_graph);
  s.inputs = make_inputs(a, *s.engine, given);
  return s;
}


// kiln ops: the ONNX ops kiln imports (with the opsets each serves), and the canonical ops they
// lower to with the tactics that implement each on every backend compiled into this build.
// `--markdown` writes docs/operators.md (the ctest operators_doc checks that file is current).
int cmd_ops(const Args& a) {
  const bool md = a.markdown;
  std::printf(md ? "# Operators\n\nGenerated by `kiln ops --markdown > docs/operators.md` (kiln %s). "
                   "Importers lower ONNX ops to kiln's canonical ops (src/ops/); backends implement "
                   "those with tactics, tried in the order listed.\n\n## ONNX operators\n\n"
                   "| op | domain | opsets |\n|---|---|---|\n"
                 : "kiln %s: ONNX operators (op, domain, opsets)\n",
              kiln::version().c_str());
  for (const auto& r : kiln::onnx::importer_ranges()) {
    const std::string dom = r.domain.empty() ? "ai.onnx" : r.domain;
    if (md)
      std::printf("| %s | %s | %lld-%lld |\n", r.op_type.c_str(), dom.c_str(),
                  (long long)r.min_opset, (long long)r.max_opset);
    else
      std::printf("  %-28s %-10s %lld-%lld\n", r.op_type.c_str(), dom.c_str(),
                  (long long)r.min_opset, (long long)r.max_opset);
  }
  const std::vector<std::string> devices = {"cpu", "cuda"};
  std::map<std::string, std::map<std::string, std::vector<std::string>>> by_op;  // op -> dev -> ids
  std::map<std::string, std::vector<std::string>> any_op;                       // dev -> ids
  for (const std::string& d : devices)
    for (const kiln::Tactic* t : kiln::compiled_tactics(d)) {
      if (t->op().empty())
        any_op[d].emplace_back(t->id());
      else
        by_op[std::string(t->op())][d].emplace_back(t->id());
    }
  for (const kiln::OpDef* def : kiln::generated_op_defs()) by_op[std::string(def->name)];
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s.empty() ? std::string("-") : s;
  };
  const bool cuda = !kiln::compiled_tactics("cuda").empty();
  std::vector<std::string> no_reference;  // ops those tactics cannot take (Plugin)
  for (const kiln::OpDef* def : kiln::generated_op_defs())
    if (!def->compute) no_reference.emplace_back(def->name);
  if (md)
    std::printf("\nAn ONNX node of another domain imports as a plugin (include/kiln/plugin.h) when "
                "a plugin of that namespace and name is registered (`kiln --plugin LIB.so`).\n"
                "\n## Canonical ops and their tactics\n\nEvery op but %s also runs on `%s` (CPU)%s, "
                "which take any op with a reference compute.%s\n\n| op | CPU tactics | CUDA tactics |\n|---|---|---|\n",
                join(no_reference).c_str(), join(any_op["cpu"]).c_str(),
                cuda ? (" and `" + join(any_op["cuda"]) + "` (CUDA, computing on the host)").c_str() : "",
                cuda ? "" : " This build has no CUDA backend.");
  else
    std::printf("\ncanonical ops (op: CPU tactics | CUDA tactics); any op: %s | %s\n",
                join(any_op["cpu"]).c_str(), join(any_op["cuda"]).c_str());
  for (const auto& [op, devs] : by_op) {
    auto get = [&](const std::string& d) {
      auto it = devs.find(d);
      return it == devs.end() ? std::string("-") : join(it->second);
    };
    if (md)
      std::printf("| %s | %s | %s |\n", op.c_str(), get("cpu").c_str(), get("cuda").c_str());
    else
      std::printf("  %-16s %s | %s\n", op.c_str(), get("cpu").c_str(), get("cuda").c_str());
  }
  return 0;
}

int cmd_run(const Args& a) {
  if (a.positional.size() != 1) return usage();
  Session session = open_session(a);
  auto& engine = session.engine;
  auto& ctx = session.ctx;
  auto& inputs = session.inputs;
  ctx->set_profiling(a.profile);
  if (!a.output_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(a.output_dir, ec);
    if (ec) die("cannot create --output-dir " + a.output_dir + ": " + ec.message());
  }
  std::map<std::string, kiln::Tensor> outputs;
  std::set<std::string> used_names;
  auto t0 = std::chrono::steady_clock::now();
  check(ctx->run(inputs, outputs));
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("ran on %s in %.3f ms\n", engine->device().c_str(), ms);
  for (const auto& d : engine->outputs()) {
    const kiln::Tensor& t = outputs.at(d.name);
    std::printf("  %s: %s\n", d.name.c_str(), summary(t).c_str());
    if (!a.output_dir.empty()) {
      // A file name from the output's name: path separators and ':' become '_', and names that
      // then collide (a/b and a:b) get _2, _3... so that no output overwrites another.
      std::string safe = d.name;
      for (char& c : safe)
        if (c == '/' || c == '\\' || c == ':' || c == '\0') c = '_';
      if (safe.empty() || safe == "." || safe == "..") safe = "output";
      std::string base = safe;
      for (int k = 2; used_names.count(safe); ++k) safe = base + "_" + std::to_string(k);
      used_names.insert(safe);
      std::string f = kiln::join_path(a.output_dir, safe + ".npy");
      try {
        kiln::write_npy(f, t);
      } catch (const kiln::Error& e) {
        die(e.message());
      }
      std::printf("    wrote %s\n", f.c_str());
    }
  }
  if (a.profile) print_profile(ctx->last_profile(), 1, engine->impl().plan->steps());
  return 0;
}



// Mean per-step times of `runs` profiled runs that follow `warmup` unprofiled ones.
std::vector<kiln::StepTiming> mean_profile(kiln::ExecutionContext& ctx,
                                           const std::map<std::string, kiln::Tensor>& inputs,
                                           int warmup, int runs) {
  std::map<std::string, kiln::Tensor> outputs;
  ctx.set_profiling(false);
  for (int i = 0; i < warmup; ++i) check(ctx.run(inputs, outputs));
  ctx.set_profiling(true);
  std::vector<kiln::StepTiming> sum;
  for (int i = 0; i < runs; ++i) {
    check(ctx.run(inputs, outputs));
    sum = add_profiles(sum, ctx.last_profile());
  }
  ctx.set_profiling(false);
  for (auto& s : sum) s.ms /= runs;
  return sum;
}

void json_tensors(JsonWriter& j, const std::vector<kiln::TensorDesc>& ds) {
  j.begin_array();
  for (const auto& d : ds) {
    j.begin_object(true).key("name").str(d.name).key("dtype").str(kiln::dtype_name(d.dtype));
    j.key("dims").begin_array();
    for (size_t i = 0; i < d.dims.size(); ++i) {
      if (d.dims[i] >= 0) j.num(d.dims[i]);
      else j.str(i < d.dim_names.size() ? d.dim_names[i] : "?");
    }
    j.end_array().end_object();
  }
  j.end_array();
}

// `kiln inspect`: what trtexec's --dumpLayerInfo and engine inspectors show. The static columns
// come from the plan; workspace, memory and times need an engine, so the plan's device.
int cmd_inspect(const Args& a) {
  if (a.positional.size() != 1) return usage();
  const std::string& path = a.positional[0];
  if (!kiln::file_exists(path)) die("'" + path + "' does not exist");
  if (is_onnx(path))
    die("kiln inspect reads a plan; '" + path + "' is a model: build it first (kiln build " +
        path + " -o PLAN), or see its ops with kiln info");
  std::shared_ptr<kiln::Plan> plan;
  check(kiln::Plan::load(path, plan));
  const kiln::PlanData& pd = plan->data();
  const kiln::BuildInfo& bi = pd.info;
  const std::vector<kiln::PlanStep> steps = plan->steps();

  std::shared_ptr<kiln::Engine> engine;
  std::unique_ptr<kiln::ExecutionContext> ctx;
  std::string no_engine;
  Status st = kiln::Engine::create(plan, engine);
  if (st) st = engine->create_context(ctx);
  if (!st) {
    no_engine = st.message();
    ctx.reset();
    engine.reset();
  }
  std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;
  kiln::MemoryReport mem;
  bool have_mem = false;
  std::string no_mem;
  std::vector<kiln::StepTiming> prof;
  int runs = 0;
  if (ctx) {
    for (const auto& d : plan->inputs()) {
      shapes.emplace_back(d.name, input_dims(a, d, *plan));
      check(ctx->set_input_shape(d.name, shapes.back().second));
    }
    Status ms = ctx->memory_report(mem);
    if (!ms)
      no_mem = ms.message();
    else if (mem.steps.size() != steps.size())
      no_mem = kiln::cat("the report covers ", mem.steps.size(), " steps, the plan has ", steps.size());
    else
      have_mem = true;
    if (a.profile) {
      auto inputs = make_inputs(a, *engine, read_input_files(a));
      runs = a.iterations;
      prof = mean_profile(*ctx, inputs, a.warmup, runs);
      if (prof.size() != steps.size())
        die(kiln::cat("the profile has ", prof.size(), " entries for ", steps.size(), " steps"));
    }
  } else {
    no_mem = "no engine";
  }
  const bool profiled = !prof.empty();
  double total_ms = 0;
  for (const auto& p : prof) total_ms += p.ms;

  // Header: what built the plan, its inputs and outputs, its size.
  std::printf("kiln plan %s: built by kiln %s for %s", path.c_str(), bi.kiln_version.c_str(),
              bi.device.c_str());
  if (!bi.gpu_name.empty())
    std::printf(" (%s, compute capability %s, CUDA %s, cuDNN %s, cuBLASLt %s)", bi.gpu_name.c_str(),
                bi.compute_capability.c_str(), bi.cuda_version.c_str(), bi.cudnn_version.c_str(),
                bi.cublaslt_version.c_str());
  for (const auto& [k, v] : bi.extra) std::printf(", %s %s", k.c_str(), v.c_str());
  std::printf("\n");
  print_desc("input", plan->inputs());
  print_desc("output", plan->outputs());
  size_t weights = 0, wbytes = 0;
  for (const auto& v : pd.graph->values())
    if (v->is_constant()) { ++weights; wbytes += v->data.nbytes(); }
  std::printf("  %zu steps, %zu constant tensors (%s)\n", steps.size(), weights,
              fmt_bytes(static_cast<int64_t>(wbytes)).c_str());
  if (ctx) {
    std::string sh;
    for (const auto& [name, dims] : shapes)
      sh += (sh.empty() ? "" : ", ") + name + " " + kiln::dims_to_string(dims);
    std::printf("  engine on %s; memory for input shapes %s\n", engine->device().c_str(), sh.c_str());
  } else {
    std::printf("  no engine on this machine (%s): workspace, memory and times are not shown\n",
                no_engine.c_str());
  }

  // One row per step.
  std::vector<std::string> head = {"#", "op", "name", "tactic", "precision", "layout", "workspace"};
  if (profiled) head.insert(head.end(), {"mean ms", "share"});
  const std::vector<bool> right = {true, false, false, false, false, false, true, true, true};
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> tails;
  for (size_t i = 0; i < steps.size(); ++i) {
    const kiln::PlanStep& s = steps[i];
    std::string ws = "-";
    std::string tail = "covers: " + brief_list(s.origins);
    if (s.on_host) tail += "  [computes on the host]";
    if (have_mem) {
      const kiln::StepMemory& m = mem.steps[i];
      if (!m.runs) {
        tail += "  (view, no kernel" + (m.note.empty() ? std::string() : ": " + m.note) + ")";
      } else {
        ws = fmt_bytes(m.workspace_bytes);
        if (!m.note.empty()) tail += "  (" + m.note + ")";
      }
    }
    std::vector<std::string> r = {std::to_string(s.index), s.op, s.name, s.tactic, s.precision,
                                  s.layout, ws};
    if (profiled) {
      char t[32], sh[32];
      std::snprintf(t, sizeof t, "%.4f", prof[i].ms);
      std::snprintf(sh, sizeof sh, "%.1f%%", total_ms > 0 ? 100 * prof[i].ms / total_ms : 0.0);
      r.insert(r.end(), {t, sh});
    }
    rows.push_back(std::move(r));
    tails.push_back(std::move(tail));
  }
  std::vector<size_t> width(head.size());
  for (size_t c = 0; c < head.size(); ++c) {
    width[c] = head[c].size();
    for (const auto& r : rows) width[c] = std::max(width[c], r[c].size());
    if (c == 2) width[c] = std::min<size_t>(width[c], 40);  // long names overflow their cell
  }
  auto print_row = [&](const std::vector<std::string>& r, const std::string& tail) {
    std::string line = " ";
    for (size_t c = 0; c < r.size(); ++c) {
      std::string pad(width[c] > r[c].size() ? width[c] - r[c].size() : 0, ' ');
      line += "  " + (right[c] ? pad + r[c] : r[c] + pad);
    }
    line += "  " + tail;
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::printf("%s\n", line.c_str());
  };
  std::printf("\nsteps:\n");
  print_row(head, "");
  for (size_t i = 0; i < rows.size(); ++i) print_row(rows[i], tails[i]);

  // Summary: steps by op and by tactic, memory, time.
  std::map<std::string, int> by_op, by_tactic;
  size_t covered = 0;
  for (const auto& s : steps) {
    ++by_op[s.op];
    ++by_tactic[s.tactic];
    covered += s.origins.size();
  }
  auto histogram = [](const std::map<std::string, int>& h) {
    std::vector<std::pair<std::string, int>> v(h.begin(), h.end());
    std::stable_sort(v.begin(), v.end(), [](auto& x, auto& y) { return x.second > y.second; });
    return v;
  };
  std::string line;
  for (const auto& [op, n] : histogram(by_op)) line += kiln::cat(line.empty() ? "" : ", ", n, " ", op);
  std::printf("\nsummary: %zu steps: %s (covering %zu imported nodes)\n", steps.size(), line.c_str(),
              covered);
  line.clear();
  for (const auto& [t, n] : histogram(by_tactic)) line += kiln::cat(line.empty() ? "" : ", ", n, " ", t);
  std::printf("tactics: %s\n", line.c_str());
  std::printf("%s\n", host_steps_line(bi.device, steps).c_str());
  if (have_mem) {
    char ratio[32] = "-";
    if (mem.naive_bytes > 0)
      std::snprintf(ratio, sizeof ratio, "%.2f", static_cast<double>(mem.arena_bytes) / mem.naive_bytes);
    std::printf(
        "memory: arena %s vs naive sum %s (ratio %s), workspace %s, %lld views (%lld strided), "
        "%lld in place\n",
        fmt_bytes(mem.arena_bytes).c_str(), fmt_bytes(mem.naive_bytes).c_str(), ratio,
        fmt_bytes(mem.workspace_bytes).c_str(), static_cast<long long>(mem.views),
        static_cast<long long>(mem.strided), static_cast<long long>(mem.in_place));
  } else {
    std::printf("memory: not available (%s)\n", no_mem.c_str());
  }
  if (profiled) {
    std::printf("time: %.4f ms over all steps, mean of %d profiled run(s) after %d warm-up run(s)\n",
                total_ms, runs, a.warmup);
    print_profile(prof, runs, steps);
  } else if (a.profile) {
    std::printf("time: not available (no engine: %s)\n", no_engine.c_str());
  }

  if (!a.json.empty()) {
    JsonWriter j;
    j.begin_object();
    j.key("plan").str(path);
    j.key("build").begin_object();
    j.key("kiln_version").str(bi.kiln_version).key("device").str(bi.device);
    j.key("gpu_name").str(bi.gpu_name).key("compute_capability").str(bi.compute_capability);
    j.key("cuda_version").str(bi.cuda_version).key("cudnn_version").str(bi.cudnn_version);
    j.key("cublaslt_version").str(bi.cublaslt_version);
    j.key("extra").begin_object(true);
    for (const auto& [k, v] : bi.extra) j.key(k).str(v);
    j.end_object().end_object();
    j.key("inputs");
    json_tensors(j, plan->inputs());
    j.key("outputs");
    json_tensors(j, plan->outputs());
    j.key("constants").begin_object(true).key("count").num(weights).key("bytes").num(wbytes).end_object();
    j.key("engine").begin_object(true).key("available").boolean(ctx != nullptr);
    if (ctx) {
      j.key("device").str(engine->device()).key("input_shapes").begin_object();
      for (const auto& [name, dims] : shapes) {
        j.key(name).begin_array();
        for (int64_t d : dims) j.num(d);
        j.end_array();
      }
      j.end_object();
    } else {
      j.key("reason").str(no_engine);
    }
    j.end_object();
    j.key("steps").begin_array();
    for (size_t i = 0; i < steps.size(); ++i) {
      const kiln::PlanStep& s = steps[i];
      j.begin_object(true);
      j.key("index").num(s.index).key("name").str(s.name).key("op").str(s.op);
      j.key("tactic").str(s.tactic).key("precision").str(s.precision).key("layout").str(s.layout);
      j.key("origins").strings(s.origins);
      j.key("inputs").str(s.inputs).key("outputs").str(s.outputs);
      j.key("on_host").boolean(s.on_host);
      if (have_mem) {
        j.key("workspace_bytes").num(mem.steps[i].workspace_bytes);
        j.key("runs_kernel").boolean(mem.steps[i].runs).key("memory_note").str(mem.steps[i].note);
      } else {
        j.key("workspace_bytes").null();
      }
      if (profiled) {
        j.key("mean_ms").num(prof[i].ms);
        j.key("share").num(total_ms > 0 ? prof[i].ms / total_ms : 0.0);
      }
      j.end_object();
    }
    j.end_array();
    j.key("host_steps").num(plan->num_host_steps());
    j.key("steps_by_op").begin_object(true);
    for (const auto& [op, n] : histogram(by_op)) j.key(op).num(n);
    j.end_object();
    j.key("memory");
    if (have_mem) {
      j.begin_object(true);
      j.key("arena_bytes").num(mem.arena_bytes).key("naive_bytes").num(mem.naive_bytes);
      j.key("workspace_bytes").num(mem.workspace_bytes).key("views").num(mem.views);
      j.key("strided_views").num(mem.strided).key("in_place").num(mem.in_place).end_object();
    } else {
      j.null().key("memory_unavailable").str(no_mem);
    }
    j.key("profile");
    if (profiled)
      j.begin_object(true).key("runs").num(runs).key("warmup").num(a.warmup).key("total_ms").num(total_ms).end_object();
    else
      j.null();
    j.end_object();
    write_json(a, j.text());
  }
  if (a.profile && !profiled) {
    std::fprintf(stderr, "kiln: error: --profile needs the plan's device: %s\n", no_engine.c_str());
    return 1;
  }
  return 0;
}

}  // namespace kiln_cli

int main(int argc, char** argv) {
  using namespace kiln_cli;
  if (argc >= 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 ||
                    std::strcmp(argv[1], "help") == 0))
    return usage() == 2 ? 0 : 0;
  if (argc >= 2 && std::strcmp(argv[1], "--version") == 0) {
    std::printf("kiln %s\n", kiln::version().c_str());
    return 0;
  }
  // No exception leaves the tool: the library reports errors as Status, and whatever the tool
  // itself meets (memory it cannot get) is a one-line error with exit code 1, never an abort.
  try {
    Args a = parse(argc, argv);
    if (a.help) return command_help(a.command == "bench" && a.trtexec ? "bench" : a.command);
    if (a.verbose) setenv("KILN_LOG_LEVEL", "verbose", 1);
    for (const std::string& lib : a.plugins) check(kiln::load_plugin_library(lib));
    if (a.command == "info") return cmd_info(a);
    if (a.command == "build") return cmd_build(a);
    if (a.command == "run") return cmd_run(a);
    if (a.command == "compare") return cmd_compare(a);
    if (a.command == "ops") return cmd_ops(a);
    if (a.command == "debug") return cmd_debug(a);
    if (a.command == "bench") return cmd_bench(a);
    if (a.command == "inspect") return cmd_inspect(a);
    std::fprintf(stderr, "kiln: unknown command '%s'\n\n", a.command.c_str());
    return usage();
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "kiln: error: out of memory\n");
  } catch (const kiln::Error& e) {
    std::fprintf(stderr, "kiln: error: %s\n", e.to_status().to_string().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kiln: error: %s\n", e.what());
  }
  return 1;
}
