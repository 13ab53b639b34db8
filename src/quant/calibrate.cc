#include "quant/calibrate.h"

#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <thread>

#include "builder/build_plan.h"
#include "common/error.h"
#include "common/file.h"
#include "common/half.h"
#include "common/hash.h"
#include "common/log.h"
#include "kiln/engine.h"
#include "plan/plan_data.h"
#include "quant/calibration_cache.h"
#include "quant/histogram.h"

namespace kiln {

std::string calibration_model_hash(const Graph& g, const BuildOptions&) {
  // Layer precisions are not part of it: keeping layers in float only drops tensors from the
  // set quantized, and every other tensor's scale stays what it was.
  const std::string text = print_graph(g);
  return sha256_hex(text.data(), text.size());
}

namespace {

// One calibration plan per batch shape (the last batch is often smaller), built at opt level 1:
// nothing is tuned for a plan that runs a few hundred batches once.
struct Runner {
  std::shared_ptr<Engine> engine;
  std::unique_ptr<ExecutionContext> ctx;
  std::vector<std::string> targets;
};

std::string shape_key(const std::map<std::string, Tensor>& batch) {
  std::string k;
  for (const auto& [name, t] : batch) k += name + dims_to_string(t.dims()) + ";";
  return k;
}

Runner make_runner(const Graph& g, const BuildOptions& o,
                   const std::map<std::string, Tensor>& batch) {
  BuildOptions c;
  c.device = o.device;
  c.opt_level = std::min(o.opt_level, 1);
  c.layer_precisions = o.layer_precisions;
  for (const auto& [name, t] : batch) c.input_shapes[name] = t.dims();
  Runner r;
  auto pd = build_calibration_plan(g.clone(), c, r.targets);
  Status s = Engine::create(PlanAccess::make(std::move(pd)), r.engine);
  if (s) s = r.engine->create_context(r.ctx);
  if (!s) throw Error(s.code(), "calibration: " + s.message());
  return r;
}

}  // namespace

std::map<std::string, double> int8_scales(const Graph& g, const BuildOptions& o,
                                          const std::function<void(const std::string&)>& report) {
  // FP8 scales map amax (or a percentile) to float8's largest value, 448: entropy's search is
  // over int8's 128 levels and means nothing for float8's grid, so FP8 uses min-max in its place.
  // The cache's algorithm names the type, so that an int8 cache is never read as an FP8 one.
  CalibrationAlgo algo = parse_calibration_algo(o.calib_algo);
  if (o.fp8 && algo == parse_calibration_algo("entropy")) algo = parse_calibration_algo("minmax");
  const double levels = o.fp8 ? kFloat8E4M3Max : 127.0;
  const std::string algo_name = cat(calibration_algo_name(algo), o.fp8 ? " fp8" : "");
  const std::string model = calibration_model_hash(g, o);
  std::string cache_problem;
  if (!o.calib_cache.empty() && file_exists(o.calib_cache)) {
    CalibrationTable t;
    CalibrationLoad l = parse_calibration(read_file(o.calib_cache), algo_name, model, t);
    if (l.ok) {
      report(cat(o.fp8 ? "fp8: " : "int8: ", t.scales.size(), " scales from calibration cache ", o.calib_cache,
                 " (no calibration)"));
      return t.scales;
    }
    KILN_EXPECT(!l.corrupt, StatusCode::kInvalidArgument, "calibration cache ", o.calib_cache,
                " is ", l.problem, "; delete it to calibrate again");
    cache_problem = cat("calibration cache ", o.calib_cache, " is ", l.problem);
  }
  std::shared_ptr<Calibrator> cal = o.calibrator;
  if (!cal && !o.calib_dir.empty()) {
    std::unique_ptr<Calibrator> d;
    Status s = make_directory_calibrator(o.calib_dir, d);
    if (!s) throw Error(s.code(), s.message());
    cal = std::move(d);
  }
  KILN_EXPECT(cal != nullptr, StatusCode::kInvalidArgument,
              o.fp8 ? "FP8" : "INT8", " needs calibration data (--calib DIR, BuildOptions::calibrator) or a "
              "calibration cache made for this model (--calib-cache FILE)",
              cache_problem.empty() ? std::string() : "; " + cache_problem);
  if (!cache_problem.empty()) report(cache_problem + ": calibrating again");

  auto t0 = std::chrono::steady_clock::now();
  std::map<std::string, Runner> runners;
  std::map<std::string, AbsHistogram> hist;
  int64_t batches = 0, samples = 0;
  std::map<std::string, Tensor> batch;
  while (cal->next_batch(batch)) {
    if (batch.count("")) {  // an .npy batch: the model's one input
      KILN_EXPECT(g.inputs.size() == 1, StatusCode::kInvalidArgument,
                  "calibration batch ", batches + 1, " is one array, but the model has ",
                  g.inputs.size(), " inputs: give .npz batches with an array per input");
      Tensor t = std::move(batch[""]);
      batch.clear();
      batch[g.inputs[0]->name] = std::move(t);
    }
    for (const Value* in : g.inputs)
      KILN_EXPECT(batch.count(in->name), StatusCode::kInvalidArgument, "calibration batch ",
                  batches + 1, " has no array named '", in->name, "'");
    const std::string key = shape_key(batch);
    auto it = runners.find(key);
    if (it == runners.end()) it = runners.emplace(key, make_runner(g, o, batch)).first;
    Runner& r = it->second;
    std::map<std::string, Tensor> out;
    Status s = r.ctx->run(batch, out);
    if (!s) throw Error(s.code(), cat("calibration batch ", batches + 1, ": ", s.message()));
    // Each tensor's histogram is its own: they are filled in parallel, one tensor per task,
    // each in batch order, so the result does not depend on the threads. (ResNet-50 brings
    // about 400 million values per batch of 32; one core took most of a 97 s calibration.)
    std::vector<std::pair<AbsHistogram*, const Tensor*>> tasks;
    for (const std::string& name : r.targets) {
      const Tensor* t = out.count(name) ? &out[name] : batch.count(name) ? &batch[name] : nullptr;
      KILN_CHECK(t && t->dtype() == DataType::kFloat, "calibration: no float32 values for ", name);
      tasks.emplace_back(&hist[name], t);
    }
    std::atomic<size_t> next{0};
    std::mutex failed_mu;
    std::exception_ptr failed;
    auto work = [&] {
      try {
        for (size_t i; (i = next++) < tasks.size();)
          tasks[i].first->add(tasks[i].second->data<float>(), tasks[i].second->numel());
      } catch (...) {
        std::lock_guard<std::mutex> lock(failed_mu);
        if (!failed) failed = std::current_exception();
        next = tasks.size();
      }
    };
    const size_t n_threads =
        std::min<size_t>(tasks.size(), std::max(1u, std::thread::hardware_concurrency()));
    std::vector<std::thread> pool;
    for (size_t i = 1; i < n_threads; ++i) pool.emplace_back(work);
    work();
    for (auto& th : pool) th.join();
    if (failed) std::rethrow_exception(failed);
    ++batches;
    samples += batch.begin()->second.rank() > 0 ? batch.begin()->second.dim(0) : 1;
    const int64_t total = cal->batch_count();
    report(cat("calibration: batch ", batches, total > 0 ? cat("/", total) : std::string(), " (",
               samples, " samples, ", hist.size(), " tensors)"));
  }
  KILN_EXPECT(cal->error().empty(), StatusCode::kInvalidArgument, "calibration data: ",
              cal->error());
  KILN_EXPECT(batches > 0, StatusCode::kInvalidArgument, "the calibration data holds no batch");
  CalibrationTable table;
  table.algorithm = algo_name;
  table.model = model;
  for (const auto& [name, h] : hist) {
    const double threshold = calibration_threshold(h, algo, o.calib_percentile);
    // An all-zero tensor: any scale represents it; 1/levels keeps the grid finite and harmless.
    const double scale = threshold > 0 ? threshold / levels : 1.0 / levels;
    table.scales[name] = static_cast<double>(static_cast<float>(scale));
  }
  const double s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  report(cat("calibration: ", table.scales.size(), " tensors, ", table.algorithm, ", ", batches,
             " batches in ", static_cast<int64_t>(s * 1000), " ms"));
  if (!o.calib_cache.empty()) {
    write_file(o.calib_cache, serialize_calibration(table));
    report(cat("calibration cache ", o.calib_cache, ": wrote ", table.scales.size(), " scales"));
  }
  return table.scales;
}

}  // namespace kiln
