// kiln bench: latency and throughput as trtexec measures them (host, device, several contexts),
// the statistics and JSON they are reported in, and trtexec's exports.
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

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  double idx = p / 100.0 * static_cast<double>(v.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(idx)), hi = static_cast<size_t>(std::ceil(idx));
  return v[lo] + (v[hi] - v[lo]) * (idx - static_cast<double>(lo));
}


Stats stats_of(const std::vector<double>& v) {
  Stats s;
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  s.min = percentile(v, 0);
  s.median = percentile(v, 50);
  s.p90 = percentile(v, 90);
  s.p95 = percentile(v, 95);
  s.p99 = percentile(v, 99);
  s.max = percentile(v, 100);
  return s;
}

void print_stats(const char* what, const Stats& s) {
  std::printf("%s min %.4f  mean %.4f  median %.4f  p90 %.4f  p95 %.4f  p99 %.4f  max %.4f\n",
              what, s.min, s.mean, s.median, s.p90, s.p95, s.p99, s.max);
}

std::string json_stats(const Stats& s) {
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "{\"min\": %.6f, \"mean\": %.6f, \"median\": %.6f, \"p90\": %.6f, \"p95\": %.6f, "
                "\"p99\": %.6f, \"max\": %.6f}",
                s.min, s.mean, s.median, s.p90, s.p95, s.p99, s.max);
  return buf;
}

// The body of a JSON string: quotes, backslashes and control characters escaped, and bytes that
// are not UTF-8 (names come from untrusted models) replaced by U+FFFD.
std::string json_escape(const std::string& x) {
  std::string o;
  for (size_t i = 0; i < x.size();) {
    unsigned char c = static_cast<unsigned char>(x[i]);
    if (c < 0x80) {
      switch (c) {
        case '"': o += "\\\""; break;
        case '\\': o += "\\\\"; break;
        case '\n': o += "\\n"; break;
        case '\t': o += "\\t"; break;
        case '\r': o += "\\r"; break;
        default:
          if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            o += buf;
          } else {
            o += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    size_t len = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    bool ok = len > 0 && i + len <= x.size();
    uint32_t cp = 0;
    if (ok) {
      cp = c & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
      for (size_t k = 1; k < len && ok; ++k) {
        unsigned char cc = static_cast<unsigned char>(x[i + k]);
        ok = (cc & 0xC0) == 0x80;
        cp = (cp << 6) | (cc & 0x3F);
      }
      // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
      ok = ok && !(len == 3 && cp < 0x800) && !(len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) &&
           !(cp >= 0xD800 && cp <= 0xDFFF);
    }
    if (ok) {
      o.append(x, i, len);
      i += len;
    } else {
      o += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return o;
}


void write_json(const Args& a, const std::string& body) {
  if (a.json.empty()) return;
  std::FILE* f = std::fopen(a.json.c_str(), "w");
  if (!f) die("cannot write " + a.json);
  std::fputs(body.c_str(), f);
  std::fclose(f);
  std::printf("wrote %s\n", a.json.c_str());
}

std::vector<kiln::StepTiming> add_profiles(std::vector<kiln::StepTiming> sum,
                                           const std::vector<kiln::StepTiming>& p) {
  if (sum.empty()) return p;
  for (size_t i = 0; i < p.size() && i < sum.size(); ++i) sum[i].ms += p[i].ms;
  return sum;
}

// trtexec's --exportTimes: one JSON object per timed iteration, each named series a field.
void export_times(const Args& a, const std::vector<std::pair<std::string, const std::vector<double>*>>& series) {
  if (a.export_times.empty()) return;
  std::string j = "[\n";
  const size_t n = series.empty() ? 0 : series[0].second->size();
  for (size_t i = 0; i < n; ++i) {
    j += "  {";
    for (size_t k = 0; k < series.size(); ++k)
      j += kiln::cat(k ? ", " : "", "\"", series[k].first, "\": ", (*series[k].second)[i]);
    j += i + 1 < n ? "},\n" : "}\n";
  }
  j += "]\n";
  kiln::write_file(a.export_times, j);
  std::printf("wrote %s (%zu iterations)\n", a.export_times.c_str(), n);
}

// trtexec's --exportProfile: each step's mean time and share of the total.
void export_profile(const Args& a, const std::vector<kiln::StepTiming>& prof) {
  if (a.export_profile.empty()) return;
  double total = 0;
  for (const auto& s : prof) total += s.ms;
  std::string j = "[\n";
  for (size_t i = 0; i < prof.size(); ++i)
    j += kiln::cat("  {\"name\": \"", json_escape(prof[i].step), "\", \"op\": \"", prof[i].op,
                   "\", \"tactic\": \"", prof[i].tactic, "\", \"averageMs\": ", prof[i].ms,
                   ", \"percentage\": ", total > 0 ? 100.0 * prof[i].ms / total : 0.0, "}",
                   i + 1 < prof.size() ? ",\n" : "\n");
  j += "]\n";
  kiln::write_file(a.export_profile, j);
  std::printf("wrote %s (%zu steps)\n", a.export_profile.c_str(), prof.size());
}

// --trace FILE: one profiled run as a timeline in the Chrome trace event format (Perfetto,
// chrome://tracing): one complete ("X") event per step at its measured start and duration, on
// one track per context stream, with the op and tactic as arguments.
void export_trace(const Args& a, const std::string& device,
                  const std::vector<std::vector<kiln::StepTiming>>& streams) {
  if (a.trace.empty()) return;
  std::string j = "{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n";
  size_t events = 0;
  j += kiln::cat("  {\"name\": \"process_name\", \"ph\": \"M\", \"pid\": 1, \"args\": {\"name\": \"kiln ",
                 json_escape(device), "\"}}");
  for (size_t t = 0; t < streams.size(); ++t) {
    j += kiln::cat(",\n  {\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": 1, \"tid\": ", t,
                   ", \"args\": {\"name\": \"", device == "cpu" ? "host" : "stream", " ", t, "\"}}");
    for (const auto& s : streams[t]) {
      char ts[64], dur[64];
      std::snprintf(ts, sizeof ts, "%.3f", s.start_ms * 1e3);
      std::snprintf(dur, sizeof dur, "%.3f", s.ms * 1e3);
      j += kiln::cat(",\n  {\"name\": \"", json_escape(s.step), "\", \"cat\": \"", json_escape(s.op),
                     "\", \"ph\": \"X\", \"pid\": 1, \"tid\": ", t, ", \"ts\": ", ts,
                     ", \"dur\": ", dur, ", \"args\": {\"op\": \"", json_escape(s.op),
                     "\", \"tactic\": \"", json_escape(s.tactic), "\"}}");
      ++events;
    }
  }
  j += "\n]}\n";
  kiln::write_file(a.trace, j);
  std::printf("wrote %s (%zu step events on %zu track%s)\n", a.trace.c_str(), events,
              streams.size(), streams.size() == 1 ? "" : "s");
}

// trtexec's --exportOutput: one run's outputs, with their dims and values.
void export_output(const Args& a, Session& session) {
  if (a.export_output.empty()) return;
  std::map<std::string, kiln::Tensor> out;
  check(session.ctx->run(session.inputs, out));
  std::string j = "[\n";
  size_t k = 0;
  for (const auto& d : session.engine->outputs()) {
    const kiln::Tensor& t = out.at(d.name);
    j += kiln::cat("  {\"name\": \"", json_escape(d.name), "\", \"dtype\": \"",
                   kiln::dtype_name(t.dtype()), "\", \"dimensions\": [");
    for (size_t i = 0; i < t.rank(); ++i) j += kiln::cat(i ? ", " : "", t.dim(i));
    j += "], \"values\": [";
    for (int64_t i = 0; i < t.numel(); ++i) {
      char buf[40];
      std::snprintf(buf, sizeof buf, "%.9g", t.get_f64(i));
      j += (i ? ", " : "") + std::string(buf);
    }
    j += ++k < session.engine->outputs().size() ? "]},\n" : "]}\n";
  }
  j += "]\n";
  kiln::write_file(a.export_output, j);
  std::printf("wrote %s\n", a.export_output.c_str());
}

int bench_host(const Args& a, Session& session, int64_t batch) {
  auto& engine = session.engine;
  auto& ctx = session.ctx;
  auto& inputs = session.inputs;
  std::map<std::string, kiln::Tensor> outputs;
  for (int i = 0; i < a.warmup; ++i) check(ctx->run(inputs, outputs));
  std::vector<double> lat;
  std::vector<kiln::StepTiming> prof_sum;
  ctx->set_profiling(a.profile);
  auto start = std::chrono::steady_clock::now();
  while (true) {
    auto t0 = std::chrono::steady_clock::now();
    check(ctx->run(inputs, outputs));
    auto t1 = std::chrono::steady_clock::now();
    lat.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    if (a.profile) prof_sum = add_profiles(prof_sum, ctx->last_profile());
    double elapsed = std::chrono::duration<double>(t1 - start).count();
    if (static_cast<int>(lat.size()) >= a.iterations && elapsed >= a.duration) break;
  }
  double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Stats l = stats_of(lat);
  double tput = lat.size() * static_cast<double>(batch) / total_s;
  std::printf("device: %s, batch %lld, %zu iterations in %.2f s\n", engine->device().c_str(),
              static_cast<long long>(batch), lat.size(), total_s);
  std::printf("throughput: %.2f inferences/s (%.1f samples/s)\n", lat.size() / total_s, tput);
  std::printf("%s\n", host_steps_line(engine->device(), engine->impl().plan->steps()).c_str());
  std::printf("latency ms: min %.3f  mean %.3f  median %.3f  p90 %.3f  p95 %.3f  p99 %.3f  max %.3f\n",
              l.min, l.mean, l.median, l.p90, l.p95, l.p99, l.max);
  write_json(a, kiln::cat("{\"device\": \"", engine->device(), "\", \"batch\": ", batch,
                          ", \"iterations\": ", lat.size(), ", \"throughput_samples_per_s\": ", tput,
                          ", \"latency_ms\": ", json_stats(l), "}\n"));
  if (a.profile) {
    for (auto& s : prof_sum) s.ms /= static_cast<double>(lat.size());
    print_profile(prof_sum, static_cast<int>(lat.size()), engine->impl().plan->steps());
  }
  export_times(a, {{"latencyMs", &lat}});
  export_profile(a, prof_sum);
  if (!a.trace.empty()) {
    ctx->set_profiling(true);
    check(ctx->run(inputs, outputs));
    export_trace(a, engine->device(), {ctx->last_profile()});
  }
  export_output(a, session);
  return 0;
}

// The GPU benchmark, as trtexec measures: per iteration, inputs are copied from page-locked host
// memory (H2D), the engine is enqueued on a stream (GPU compute), and outputs are copied back
// (D2H), each span timed with CUDA events; latency is the host time of the whole iteration and
// enqueue time the host time of the enqueue() call. A second loop enqueues back to back with the
// data already on the device: that is the compute throughput that peers report.
int bench_device(const Args& a, Session& session, int64_t batch) {
  auto& engine = session.engine;
  auto& ctx = session.ctx;
  const kiln::DeviceApi& dev = *engine->impl().device;
  void* stream = dev.create_stream();
  struct Buf { std::string name; void* host = nullptr; void* dev = nullptr; size_t bytes = 0; };
  std::vector<Buf> ins, outs;
  for (const auto& d : engine->inputs()) {
    const kiln::Tensor& t = session.inputs.at(d.name);
    check(ctx->set_input_shape(d.name, t.dims()));
    Buf b{d.name, dev.alloc_host(t.nbytes()), dev.alloc(t.nbytes()), t.nbytes()};
    if (b.bytes) std::memcpy(b.host, t.raw(), b.bytes);
    check(ctx->set_tensor_address(d.name, b.dev));
    ins.push_back(b);
  }
  for (const auto& d : engine->outputs()) {
    kiln::Dims dims;
    check(ctx->output_dims(d.name, dims));
    size_t bytes = static_cast<size_t>(kiln::dims_volume(dims)) * kiln::dtype_size(d.dtype);
    Buf b{d.name, dev.alloc_host(bytes), dev.alloc(bytes), bytes};
    check(ctx->set_tensor_address(d.name, b.dev));
    outs.push_back(b);
  }
  void* ev[4];
  for (auto& e : ev) e = dev.create_event();
  auto iteration = [&](double* enqueue_ms) {
    dev.record_event(ev[0], stream);
    for (auto& b : ins) dev.copy_to_device(b.dev, b.host, b.bytes, stream);
    dev.record_event(ev[1], stream);
    auto t0 = std::chrono::steady_clock::now();
    check(ctx->enqueue(stream));
    auto t1 = std::chrono::steady_clock::now();
    if (enqueue_ms) *enqueue_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
    dev.record_event(ev[2], stream);
    for (auto& b : outs) dev.copy_to_host(b.host, b.dev, b.bytes, stream);
    dev.record_event(ev[3], stream);
    dev.synchronize(stream);
  };
  {
    // At least --warmup runs (2: CUDA graph capture), and for --warmUp MS milliseconds.
    const auto w0 = std::chrono::steady_clock::now();
    for (int i = 0; i < std::max(a.warmup, 2) ||
                    std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - w0)
                            .count() < a.warmup_ms;
         ++i)
      iteration(nullptr);
  }
  std::vector<double> lat, h2d, compute, d2h, enq;
  auto start = std::chrono::steady_clock::now();
  while (true) {
    auto t0 = std::chrono::steady_clock::now();
    double e = 0;
    iteration(&e);
    auto t1 = std::chrono::steady_clock::now();
    lat.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    enq.push_back(e);
    h2d.push_back(dev.elapsed_ms(ev[0], ev[1]));
    compute.push_back(dev.elapsed_ms(ev[1], ev[2]));
    d2h.push_back(dev.elapsed_ms(ev[2], ev[3]));
    double elapsed = std::chrono::duration<double>(t1 - start).count();
    if (static_cast<int>(lat.size()) >= a.iterations && elapsed >= a.duration) break;
  }
  double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Back-to-back enqueues, data resident: GPU throughput without transfers. The median of 10
  // event-timed loops.
  int per_loop = std::max(5, a.iterations / 5);
  std::vector<double> loops;
  for (int r = 0; r < 10; ++r) {
    dev.record_event(ev[0], stream);
    for (int i = 0; i < per_loop; ++i) check(ctx->enqueue(stream));
    dev.record_event(ev[1], stream);
    loops.push_back(dev.elapsed_ms(ev[0], ev[1]) / per_loop);
  }
  double b2b_ms = percentile(loops, 50);
  Stats L = stats_of(lat), H = stats_of(h2d), C = stats_of(compute), D = stats_of(d2h),
        E = stats_of(enq);
  double e2e_tput = lat.size() * static_cast<double>(batch) / total_s;
  double compute_tput = static_cast<double>(batch) / (b2b_ms / 1000.0);
  const kiln::BuildInfo& bi = engine->impl().plan->data().info;
  std::printf("device: cuda (%s), batch %lld, %zu iterations in %.2f s%s\n", bi.gpu_name.c_str(),
              static_cast<long long>(batch), lat.size(), total_s,
              a.cuda_graph ? ", CUDA graphs on" : "");
  std::printf("throughput: %.1f samples/s end to end (with transfers), %.1f samples/s GPU compute "
              "(back-to-back enqueues, %.4f ms each)\n", e2e_tput, compute_tput, b2b_ms);
  std::printf("%s\n", host_steps_line("cuda", engine->impl().plan->steps()).c_str());
  print_stats("latency ms:", L);
  print_stats("GPU compute ms:", C);
  print_stats("H2D ms:", H);
  print_stats("D2H ms:", D);
  print_stats("enqueue ms:", E);
  std::string j = kiln::cat(
      "{\"device\": \"cuda\", \"gpu\": \"", json_escape(bi.gpu_name), "\", \"batch\": ", batch,
      ", \"iterations\": ", lat.size(), ", \"precision\": \"",
      bi.extra.count("precision") ? bi.extra.at("precision") : std::string("fp32"),
      "\", \"cuda_graphs\": ", a.cuda_graph ? "true" : "false",
      ", \"throughput_samples_per_s\": ", e2e_tput,
      ", \"compute_throughput_samples_per_s\": ", compute_tput, ", \"compute_ms_back_to_back\": ",
      b2b_ms, ", \"latency_ms\": ", json_stats(L), ", \"gpu_compute_ms\": ", json_stats(C),
      ", \"h2d_ms\": ", json_stats(H), ", \"d2h_ms\": ", json_stats(D), ", \"enqueue_ms\": ",
      json_stats(E), "}\n");
  write_json(a, j);
  if (a.profile) {
    ctx->set_profiling(true);
    std::vector<kiln::StepTiming> prof_sum;
    int runs = std::max(1, std::min(a.iterations, 20));
    for (int i = 0; i < runs; ++i) {
      check(ctx->enqueue(stream));
      dev.synchronize(stream);
      prof_sum = add_profiles(prof_sum, ctx->last_profile());
    }
    for (auto& s : prof_sum) s.ms /= runs;
    print_profile(prof_sum, runs, engine->impl().plan->steps());
    export_profile(a, prof_sum);
  }
  if (!a.trace.empty()) {
    // One more run, profiled: its steps' CUDA-event times on the context's stream.
    ctx->set_profiling(true);
    check(ctx->enqueue(stream));
    dev.synchronize(stream);
    export_trace(a, engine->device(), {ctx->last_profile()});
    ctx->set_profiling(false);
  }
  export_times(a, {{"latencyMs", &lat}, {"h2dMs", &h2d}, {"computeMs", &compute},
                   {"d2hMs", &d2h}, {"enqueueMs", &enq}});
  export_output(a, session);
  for (auto& b : ins) { dev.free(b.dev); dev.free_host(b.host); }
  for (auto& b : outs) { dev.free(b.dev); dev.free_host(b.host); }
  for (auto& e : ev) dev.destroy_event(e);
  dev.destroy_stream(stream);
  return 0;
}

// Several execution contexts of one engine, each on its own thread (and, on a GPU, its own
// stream and buffers, with the data resident), as TensorRT users run concurrent requests. Each
// thread warms up (CUDA graph capture included), then all start together and run `iterations`
// inferences each; the aggregate is every inference over the wall time of the slowest thread.
int bench_contexts(const Args& a, Session& session, int64_t batch) {
  const int n = a.contexts;
  auto& engine = session.engine;
  const kiln::DeviceApi* dev = engine->impl().device;
  std::vector<std::unique_ptr<kiln::ExecutionContext>> ctxs;
  ctxs.push_back(std::move(session.ctx));
  for (int i = 1; i < n; ++i) {
    std::unique_ptr<kiln::ExecutionContext> c;
    check(engine->create_context(c));
    if (a.opt_profile || !engine->impl().plan->profiles().empty())
      check(c->set_optimization_profile(a.opt_profile));
    c->set_cuda_graphs(a.cuda_graph);
    ctxs.push_back(std::move(c));
  }
  struct Lane {
    void* stream = nullptr;
    std::vector<void*> buffers;
    std::string error;
    double ms = 0;
    std::vector<kiln::StepTiming> trace;  // --trace: one profiled run, on the common clock
  };
  std::vector<Lane> lanes(n);
  // Device lanes: buffers with the inputs copied once, and the addresses set.
  if (dev) {
    for (int i = 0; i < n; ++i) {
      Lane& l = lanes[i];
      l.stream = dev->create_stream();
      for (const auto& d : engine->inputs()) {
        const kiln::Tensor& t = session.inputs.at(d.name);
        check(ctxs[i]->set_input_shape(d.name, t.dims()));
        void* p = dev->alloc(t.nbytes());
        l.buffers.push_back(p);
        dev->copy_to_device(p, t.raw(), t.nbytes(), l.stream);
        check(ctxs[i]->set_tensor_address(d.name, p));
      }
      for (const auto& d : engine->outputs()) {
        kiln::Dims dims;
        check(ctxs[i]->output_dims(d.name, dims));
        void* p = dev->alloc(static_cast<size_t>(kiln::dims_volume(dims)) * kiln::dtype_size(d.dtype));
        l.buffers.push_back(p);
        check(ctxs[i]->set_tensor_address(d.name, p));
      }
      dev->synchronize(l.stream);
    }
  }
  std::atomic<int> ready{0}, timed{0};
  std::atomic<bool> go{false};
  const auto trace_origin = std::chrono::steady_clock::now();
  auto lane = [&](int i) {
    Lane& l = lanes[i];
    kiln::ExecutionContext& ctx = *ctxs[i];
    std::map<std::string, kiln::Tensor> outs;
    auto once = [&]() -> bool {
      kiln::Status s = dev ? ctx.enqueue(l.stream) : ctx.run(session.inputs, outs);
      if (s && dev) dev->synchronize(l.stream);
      if (!s) l.error = s.to_string();
      return s.is_ok();
    };
    bool ok = true;
    for (int w = 0; w < std::max(a.warmup, 2) && ok; ++w) ok = once();   // 2: graph capture
    ++ready;
    while (!go) std::this_thread::yield();
    auto t0 = std::chrono::steady_clock::now();
    for (int it = 0; it < a.iterations && ok; ++it) ok = once();
    l.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!a.trace.empty()) {
      // --trace: once every lane has finished timing, one profiled run each, at the same time;
      // each step placed at its run's host start plus its offset within the run.
      ++timed;
      while (timed < n) std::this_thread::yield();
      ctx.set_profiling(true);
      const double at = std::chrono::duration<double, std::milli>(
                            std::chrono::steady_clock::now() - trace_origin).count();
      if (ok && once()) {
        l.trace = ctx.last_profile();
        for (auto& st : l.trace) st.start_ms += at;
      }
      ctx.set_profiling(false);
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) threads.emplace_back(lane, i);
  while (ready < n) std::this_thread::yield();
  auto t0 = std::chrono::steady_clock::now();
  go = true;
  for (auto& t : threads) t.join();
  double wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  for (auto& l : lanes) {
    if (dev) {
      for (void* p : l.buffers) dev->free(p);
      dev->destroy_stream(l.stream);
    }
    if (!l.error.empty()) die(l.error);
  }
  double total = static_cast<double>(n) * a.iterations;
  std::printf("device: %s, batch %lld, %d contexts on %d threads%s, %d iterations each in %.3f s\n",
              engine->device().c_str(), static_cast<long long>(batch), n, n,
              dev ? " and streams (data resident)" : "", a.iterations, wall_ms / 1000);
  std::printf("throughput: %.1f inferences/s, %.1f samples/s aggregate over %d contexts\n",
              total / (wall_ms / 1000), total * static_cast<double>(batch) / (wall_ms / 1000), n);
  for (int i = 0; i < n; ++i)
    std::printf("  context %d: %.4f ms per inference\n", i, lanes[i].ms / a.iterations);
  std::printf("%s\n", host_steps_line(engine->device(), engine->impl().plan->steps()).c_str());
  if (!a.trace.empty()) {
    std::vector<std::vector<kiln::StepTiming>> tracks;
    for (const auto& l : lanes) tracks.push_back(l.trace);
    export_trace(a, engine->device(), tracks);
  }
  write_json(a, kiln::cat("{\"device\": \"", engine->device(), "\", \"batch\": ", batch,
                          ", \"contexts\": ", n, ", \"iterations_per_context\": ", a.iterations,
                          ", \"wall_ms\": ", wall_ms, ", \"throughput_samples_per_s\": ",
                          total * static_cast<double>(batch) / (wall_ms / 1000), "}\n"));
  return 0;
}

int cmd_bench(const Args& a) {
  if (a.positional.size() != 1) return usage();
  Session session = open_session(a);
  int64_t batch = 1;
  for (const auto& d : session.engine->inputs()) {
    const kiln::Tensor& t = session.inputs.at(d.name);
    if (t.rank() > 0) { batch = t.dim(0); break; }
  }
  if (a.contexts_given) return bench_contexts(a, session, batch);
  if (session.engine->impl().device) return bench_device(a, session, batch);
  return bench_host(a, session, batch);
}

}  // namespace kiln_cli
