#include "builder/autotuner.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <random>

#include "common/error.h"
#include "common/log.h"

namespace kiln {

namespace {

// Random data for a timed run (never zeros: some kernels are faster on zeros than on real data);
// integers stay small, as indices and counts usually are.
Tensor random_tensor(DataType t, const Dims& dims, std::mt19937_64& rng) {
  Tensor x(t, dims);
  if (dtype_is_float(t)) {
    std::uniform_real_distribution<double> u(-1, 1);
    for (int64_t i = 0; i < x.numel(); ++i) x.set_f64(i, u(rng));
  } else {
    std::uniform_int_distribution<int64_t> u(0, 3);
    for (int64_t i = 0; i < x.numel(); ++i) x.set_i64(i, u(rng));
  }
  return x;
}

// The processor a host backend's timings belong to (/proc/cpuinfo's model name, where there is
// one): a cache made on another machine times other caches and cores.
std::string host_cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  return "unknown processor";
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void check_concrete(const Node& n) {
  for (const Value* v : n.inputs)
    KILN_EXPECT(!v || v->shape.fully_known(), StatusCode::kInternal, "autotuner: ", n.label(),
                " input '", v->name, "' has shape ", v->shape.str());
  for (const Value* v : n.outputs)
    KILN_EXPECT(v->shape.fully_known(), StatusCode::kInternal, "autotuner: ", n.label(),
                " output '", v->name, "' has shape ", v->shape.str());
}

}  // namespace

Autotuner::Autotuner(const Backend& backend, TimingCache* cache, int warmup, int repeats)
    : backend_(backend), cache_(cache), warmup_(std::max(0, warmup)),
      repeats_(std::max(1, repeats)) {}

std::string Autotuner::device_identity(const Backend& backend) {
  const DeviceApi* d = backend.device();
  if (!d) return cat(backend.name(), " | ", host_cpu_model(), " | kiln ", KILN_VERSION);
  DeviceInfo i = d->info();
  return cat(backend.name(), " | ", i.gpu_name, " | cc ", i.compute_capability, " | CUDA ",
             i.cuda_version, " | cuDNN ", i.cudnn_version, " | cuBLASLt ", i.cublaslt_version,
             " | kiln ", KILN_VERSION);
}

std::string Autotuner::signature(const Tactic& tactic, const Node& node) {
  std::string s = cat(tactic.id(), "|", node.op(), "|", node.attrs ? node.attrs->str() : "", "|in");
  for (const Value* v : node.inputs) {
    if (!v) {
      s += "|-";
      continue;
    }
    s += cat("|", dtype_name(v->dtype), v->shape.str(), v->is_constant() ? "c" : "");
  }
  s += "|out";
  for (const Value* v : node.outputs) s += cat("|", dtype_name(v->dtype), v->shape.str());
  return s;
}

TuneResult Autotuner::tune(const Tactic& tactic, const Node& node, bool time_default) {
  std::vector<std::string> cands = tactic.candidates(node);
  TuneResult r;
  if (cands.empty() && time_default) cands = {""};
  if (cands.empty()) return r;
  const std::string key = timing_key(signature(tactic, node));
  if (cache_) {
    if (const TimingEntry* e = cache_->find(key);
        e && std::find(cands.begin(), cands.end(), e->choice) != cands.end()) {
      ++hits_;
      r.choice = e->choice;
      r.ms = e->ms;
      r.cached = true;
      return r;
    }
  }
  check_concrete(node);
  double best = 0;
  std::string failures;
  for (const std::string& c : cands) {
    double ms = 0;
    try {
      ms = time_candidate(tactic, node, c);
    } catch (const Error& e) {
      failures += cat("\n  ", c, ": ", e.message());
      log(LogLevel::kInfo, "autotuner: ", node.label(), ": ", tactic.id(), " candidate '", c,
          "' failed: ", e.message());
      continue;
    }
    ++r.timed;
    ++timed_;
    // Ties keep the earlier candidate (the tactic lists its heuristic's choice first).
    if (r.timed == 1 || ms < best) {
      best = ms;
      r.choice = c;
    }
  }
  KILN_EXPECT(r.timed > 0, StatusCode::kUnsupported, "every candidate of ", tactic.id(),
              " failed for ", node.label(), ":", failures);
  r.ms = best;
  if (cache_) cache_->put(key, {r.choice, r.ms, r.timed});
  return r;
}

double Autotuner::time_candidate(const Tactic& tactic, const Node& node, const std::string& choice) {
  std::string state = tactic.prepare_choice(node, choice);
  std::unique_ptr<Kernel> kernel = tactic.instantiate(node, state);
  return backend_.device() ? time_on_device(node, *kernel) : time_on_host(node, *kernel);
}

double Autotuner::time_on_host(const Node& node, Kernel& kernel) {
  std::mt19937_64 rng(1);
  std::vector<Tensor> ins(node.inputs.size()), outs(node.outputs.size());
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    const Value* v = node.inputs[i];
    if (!v) continue;
    ins[i] = v->is_constant() ? v->data : random_tensor(v->dtype, v->shape.concrete(), rng);
  }
  for (size_t k = 0; k < node.outputs.size(); ++k)
    outs[k] = Tensor(node.outputs[k]->dtype, node.outputs[k]->shape.concrete());
  ComputeArgs args{node, ins, outs};
  for (int i = 0; i < warmup_; ++i) kernel.run(args);
  std::vector<double> ms;
  for (int i = 0; i < repeats_; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    kernel.run(args);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                     .count());
  }
  return median(ms);
}

double Autotuner::time_on_device(const Node& node, Kernel& kernel) {
  const DeviceApi& dev = *backend_.device();
  std::mt19937_64 rng(1);
  // Everything allocated here is freed on every path out, errors included.
  std::vector<void*> owned;
  void* stream = nullptr;
  void* ev[2] = {nullptr, nullptr};
  auto release = [&] {
    try {
      if (stream) dev.synchronize(stream);
    } catch (const Error&) {
    }
    for (void* p : owned) dev.free(p);
    for (void* e : ev) dev.destroy_event(e);
    dev.destroy_stream(stream);
  };
  try {
    stream = dev.create_stream();
    ev[0] = dev.create_event();
    ev[1] = dev.create_event();
    std::unique_ptr<DeviceResources> res = dev.create_resources();
    std::vector<DeviceTensor> ins(node.inputs.size()), outs(node.outputs.size());
    std::vector<Tensor> host(node.inputs.size());
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      const Value* v = node.inputs[i];
      if (!v) continue;
      host[i] = v->is_constant() ? v->data : random_tensor(v->dtype, v->shape.concrete(), rng);
      ins[i] = {dev.alloc(host[i].nbytes()), v->dtype, host[i].dims()};
      owned.push_back(ins[i].data);
      dev.copy_to_device(ins[i].data, host[i].raw(), host[i].nbytes(), stream);
    }
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      const Value* v = node.outputs[k];
      outs[k] = {nullptr, v->dtype, v->shape.concrete()};
      outs[k].data = dev.alloc(outs[k].nbytes());
      owned.push_back(outs[k].data);
    }
    LaunchArgs shapes{node, ins, outs};
    shapes.resources = res.get();
    size_t ws_bytes = kernel.workspace_size(shapes);
    void* ws = ws_bytes ? dev.alloc(ws_bytes) : nullptr;
    if (ws) owned.push_back(ws);
    LaunchArgs a{node, ins, outs};
    a.stream = stream;
    a.workspace = ws;
    a.workspace_bytes = ws_bytes;
    a.resources = res.get();
    for (int i = 0; i < warmup_; ++i) kernel.enqueue(a);
    std::vector<double> ms;
    for (int i = 0; i < repeats_; ++i) {
      dev.record_event(ev[0], stream);
      kernel.enqueue(a);
      dev.record_event(ev[1], stream);
      ms.push_back(dev.elapsed_ms(ev[0], ev[1]));
    }
    dev.synchronize(stream);
    res.reset();
    release();
    return median(ms);
  } catch (...) {
    release();
    throw;
  }
}

}  // namespace kiln
