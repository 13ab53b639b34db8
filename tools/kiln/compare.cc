// kiln compare and kiln debug precision: a plan against a reference on the same inputs.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "cli.h"
#include "common/error.h"
#include "common/file.h"
#include "runtime/backend.h"
#include "runtime/engine_impl.h"

namespace kiln_cli {

// The reference compare and debug precision measure against: the CPU's reference tactics
// (accumulating in double) or a float32 plan on the same device as `got`.
Session reference_session(const Args& a, const std::string& device) {
  Args r = a;
  r.int8 = false;
  r.fp16 = false;
  r.tf32 = false;
  r.layer_precisions.clear();
  r.excluded_tactics.clear();
  r.quiet = true;
  if (a.reference == "cpu") {
    r.device = "cpu";
    r.opt_level = 0;
    for (const kiln::Tactic* t : kiln::cpu_backend().tactics())
      if (t->id() != "cpu.reference") r.excluded_tactics.emplace_back(t->id());
  } else {
    r.device = device;
  }
  return open_session(r);
}

// How one run's outputs compare with the reference's: a line per output, and whether every
// tolerance given (--atol/--rtol element-wise, --top1 for [N, classes] outputs) holds.
bool compare_outputs(const Args& a, const kiln::Engine& engine,
                     const std::map<std::string, kiln::Tensor>& out_got,
                     const std::map<std::string, kiln::Tensor>& out_want, bool print,
                     size_t count = SIZE_MAX) {
  bool ok = true;
  std::vector<kiln::TensorDesc> outs = engine.outputs();
  if (outs.size() > count) outs.resize(count);  // the model's own outputs come first
  for (const auto& d : outs) {
    const kiln::Tensor& g = out_got.at(d.name);
    const kiln::Tensor& w = out_want.at(d.name);
    if (g.dims() != w.dims()) die("output " + d.name + ": shapes differ");
    double max_abs = 0, diff2 = 0, want2 = 0, got2 = 0, dot = 0;
    int64_t bad = 0;
    for (int64_t i = 0; i < g.numel(); ++i) {
      const double x = g.get_f64(i), y = w.get_f64(i), e = std::fabs(x - y);
      max_abs = std::max(max_abs, e);
      diff2 += e * e;
      want2 += y * y;
      got2 += x * x;
      dot += x * y;
      if ((a.atol >= 0 || a.rtol >= 0) &&
          !(e <= std::max(a.atol, 0.0) + std::max(a.rtol, 0.0) * std::fabs(y)))
        ++bad;
    }
    const double rel = std::sqrt(diff2 / std::max(want2, 1e-300));
    const double cosine = dot / std::max(std::sqrt(got2 * want2), 1e-300);
    char nums[160];
    std::snprintf(nums, sizeof nums, ": max abs %.4g, relative L2 %.4g, cosine %.6f", max_abs, rel,
                  cosine);
    std::string line = kiln::cat("  ", d.name, " ", kiln::dims_to_string(g.dims()), nums);
    if (a.atol >= 0 || a.rtol >= 0) {
      line += kiln::cat(", ", bad, " of ", g.numel(), " elements outside atol ",
                        std::max(a.atol, 0.0), " + rtol ", std::max(a.rtol, 0.0));
      ok &= bad == 0;
    }
    if (g.rank() == 2 && g.dim(1) > 1) {
      int64_t agree = 0;
      for (int64_t row = 0; row < g.dim(0); ++row) {
        int64_t bg = 0, bw = 0;
        for (int64_t j = 1; j < g.dim(1); ++j) {
          if (g.get_f64(row * g.dim(1) + j) > g.get_f64(row * g.dim(1) + bg)) bg = j;
          if (w.get_f64(row * g.dim(1) + j) > w.get_f64(row * g.dim(1) + bw)) bw = j;
        }
        agree += bg == bw;
      }
      const double frac = static_cast<double>(agree) / static_cast<double>(g.dim(0));
      char buf[96];
      std::snprintf(buf, sizeof buf, ", top-1 agreement %.4f (%lld/%lld)", frac,
                    (long long)agree, (long long)g.dim(0));
      line += buf;
      if (a.top1 >= 0 && frac < a.top1) ok = false;
    }
    if (print) std::printf("%s\n", line.c_str());
  }
  return ok;
}

// kiln compare: the plan the flags build against a reference on the same inputs (polygraphy's
// `run`, built in). Per output: the largest absolute difference, the relative L2 error, the
// cosine similarity and, for a [N, classes] output, how often the top-1 classes agree. Exit 3
// when --atol/--rtol (element-wise: |got - want| <= atol + rtol * |want|) or --top1 fails.
int cmd_compare(const Args& a) {
  if (a.positional.size() != 1) return usage();
  if (!is_onnx(a.positional[0])) die("kiln compare builds from a model: give MODEL.onnx");
  Args ag = a;
  if (a.all_tensors) ag.mark_outputs = {"*"};
  Session got = open_session(ag);
  Session want = reference_session(ag, got.engine->device());
  std::map<std::string, kiln::Tensor> out_got, out_want;
  check(got.ctx->run(got.inputs, out_got));
  check(want.ctx->run(got.inputs, out_want));
  // The model's own outputs come first among the plan's; marked tensors follow, in node order.
  kiln::ModelInfo info;
  check(kiln::inspect_onnx(a.positional[0], info));
  const size_t model_outputs = info.outputs.size();
  if (a.all_tensors) {
    // Every tensor of the model, in the order the reference computes them: its relative L2 error,
    // and the first one whose error jumps (ten times the largest before it, and above 1e-4).
    std::printf("compare: every tensor (relative L2 error against the reference):\n");
    double worst_before = 0;
    std::string first_jump;
    int shown = 0;
    const std::vector<kiln::TensorDesc> all = want.engine->outputs();
    for (size_t k = model_outputs; k < all.size(); ++k) {
      const kiln::TensorDesc& d = all[k];
      auto g = out_got.find(d.name);
      if (g == out_got.end() || g->second.dims() != out_want.at(d.name).dims()) continue;
      const kiln::Tensor& w = out_want.at(d.name);
      double diff2 = 0, want2 = 0;
      for (int64_t i = 0; i < w.numel(); ++i) {
        const double e = g->second.get_f64(i) - w.get_f64(i);
        diff2 += e * e;
        want2 += w.get_f64(i) * w.get_f64(i);
      }
      const double rel = std::sqrt(diff2 / std::max(want2, 1e-300));
      const bool jump = first_jump.empty() && rel > 1e-4 && rel > 10 * worst_before;
      if (jump) first_jump = d.name;
      if (jump || a.verbose || shown < 40) {
        std::printf("  %-48s %.3g%s\n", d.name.c_str(), rel, jump ? "   <- the error jumps here" : "");
        ++shown;
      }
      worst_before = std::max(worst_before, rel);
    }
    std::printf("compare: %s\n", first_jump.empty()
                                      ? "no tensor's error jumps (none above 1e-4 and ten times those before)"
                                      : ("the error first jumps at " + first_jump).c_str());
  }
  std::printf("compare: %s on %s against %s\n", a.positional[0].c_str(),
              got.engine->device().c_str(),
              a.reference == "cpu" ? "the CPU reference (double accumulation)"
                                   : ("a float32 plan on " + want.engine->device()).c_str());
  const bool ok = compare_outputs(a, *got.engine, out_got, out_want, true, model_outputs);
  if (!ok) {
    std::printf("compare: FAILED: outside the given tolerance\n");
    return 3;
  }
  std::printf("compare: passed%s\n",
              a.atol >= 0 || a.rtol >= 0 || a.top1 >= 0 ? "" : " (no tolerance given: nothing checked)");
  return 0;
}

// kiln debug precision (polygraphy's `debug precision`): which layers must stay in float for
// the plan the flags build (--int8) to meet the tolerance. Bisects over the quantized layers in
// execution order for the fewest leading layers kept in float32, and writes them as
// --layer-precision lines (-o FILE).
int cmd_debug(const Args& a) {
  if (a.positional.size() != 2 || a.positional[0] != "precision") return usage();
  Args b = a;
  b.positional = {a.positional[1]};
  if (!is_onnx(b.positional[0])) bad_usage("kiln debug precision builds from a model: give MODEL.onnx");
  if (!a.int8) bad_usage("kiln debug precision looks for layers to keep out of int8: give --int8");
  if (a.atol < 0 && a.rtol < 0 && a.top1 < 0)
    bad_usage("kiln debug precision needs a tolerance to meet: --atol, --rtol or --top1");
  b.quiet = true;
  // The calibration is made once and reused: keeping layers in float leaves the others' scales.
  const std::string cache = b.calib_cache.empty()
                                ? kiln::join_path(std::filesystem::temp_directory_path().string(),
                                                  "kiln_debug_precision_" + std::to_string(getpid()) + ".calib")
                                : b.calib_cache;
  b.calib_cache = cache;
  Session first = open_session(b);
  Session want = reference_session(b, first.engine->device());
  std::map<std::string, kiln::Tensor> out_want;
  check(want.ctx->run(first.inputs, out_want));
  std::vector<std::string> layers;
  for (const auto& st : first.engine->impl().plan->steps())
    if (st.precision.rfind("int8->", 0) == 0) layers.push_back(st.name);
  const std::map<std::string, kiln::Tensor> inputs = first.inputs;
  // Meets the tolerance with the first k quantized layers kept in float32?
  auto meets = [&](size_t k, const std::string& what) {
    Args t = b;
    for (size_t i = 0; i < k; ++i) t.layer_precisions.emplace_back(layers[i], "fp32");
    Session fresh;
    Session& s = k == 0 ? first : (fresh = open_session(t));
    std::map<std::string, kiln::Tensor> out;
    check(s.ctx->run(inputs, out));
    std::printf("debug precision: %s (%zu of %zu quantized layers in float32):\n", what.c_str(), k,
                layers.size());
    return compare_outputs(a, *s.engine, out, out_want, true);
  };
  auto done = [&](int rc) {
    if (b.calib_cache != a.calib_cache) std::remove(cache.c_str());
    return rc;
  };
  if (meets(0, "every layer in int8")) {
    std::printf("debug precision: every quantized layer meets the tolerance; none needs float\n");
    return done(0);
  }
  if (!meets(layers.size(), "every layer in float32")) {
    std::printf("debug precision: FAILED: even with every layer in float32 the tolerance is not met\n");
    return done(3);
  }
  // Invariant: keeping the first hi layers in float meets the tolerance, the first lo does not.
  size_t lo = 0, hi = layers.size();
  while (hi - lo > 1) {
    const size_t mid = (lo + hi) / 2;
    (meets(mid, "the first " + std::to_string(mid) + " in float32") ? hi : lo) = mid;
  }
  std::string list;
  for (size_t i = 0; i < hi; ++i) list += layers[i] + ":fp32\n";
  std::printf("debug precision: keep these %zu layers in float32 (--layer-precision NAME:fp32):\n%s",
              hi, list.c_str());
  if (!a.output.empty()) {
    kiln::write_file(a.output, list);
    std::printf("debug precision: wrote %s\n", a.output.c_str());
  }
  return done(0);
}

}  // namespace kiln_cli
