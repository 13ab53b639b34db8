// ONNX backend node-test conformance runner.
//
// For every test directory (model.onnx + test_data_set_*/input_N.pb, output_N.pb) it builds a
// plan through the public Builder with the test's input shapes, runs it, and compares outputs
// with the ONNX tolerances (rtol 1e-3, atol 1e-7; exact for integers and bools; NaN == NaN).
// Each test runs in a forked child with a time limit, so one crash or hang cannot take the run
// down. Prints one line per test with --verbose, and last:
//   conformance: P passed, F failed, S skipped
// With --expected FILE it fails (exit 1) when a listed test does not pass. On a device (cuda) it
// also counts the passes whose plan has a step that computes on the host (the host fallback) and
// prints them apart: `P passed (D with every step on the device, H with a host step)`; with
// --host-allowed FILE a pass with a host step that the file does not list fails the run too.
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/file.h"
#include "kiln/kiln.h"
#include "onnx/importer.h"
#include "onnx/model.h"
#include "runtime/backend.h"

namespace {

struct Options {
  std::string data_dir = "/usr/share/libonnx-testdata/data/node";
  std::string filter;
  std::string expected;
  std::string write_expected;
  std::string device = "cpu";
  std::string except;   // tests of the expected list that differ on this device, with reasons
  std::string host_allowed;   // tests that may keep a host step on this device, with reasons
  bool verbose = false;
  int jobs = 2;
  int timeout_s = 120;
};

enum class Outcome { kPassed, kFailed, kSkipped };

struct Result {
  std::string name;
  Outcome outcome = Outcome::kFailed;
  std::string host;     // the ops of the steps that computed on the host ("" when none)
  std::string detail;
};

std::vector<std::string> list_dirs(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    out.push_back(n);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// ONNX 1.12's test data stores bfloat16 tensors as uint16 (numpy has no bfloat16): read those
// bits as the bfloat16 the model declares.
kiln::Tensor as_declared(const kiln::Tensor& t, kiln::DataType declared) {
  if (declared != kiln::DataType::kBFloat16 || t.dtype() != kiln::DataType::kUInt16) return t;
  kiln::Tensor r(kiln::DataType::kBFloat16, t.dims());
  std::memcpy(r.raw(), t.raw(), t.nbytes());
  return r;
}

bool close_enough(const kiln::Tensor& got, const kiln::Tensor& want, std::string& why) {
  using kiln::DataType;
  if (got.dtype() != want.dtype()) {
    why = kiln::cat("dtype ", kiln::dtype_name(got.dtype()), " != expected ",
                    kiln::dtype_name(want.dtype()));
    return false;
  }
  if (got.dims() != want.dims()) {
    why = "shape " + kiln::dims_to_string(got.dims()) + " != expected " +
          kiln::dims_to_string(want.dims());
    return false;
  }
  bool is_float = kiln::dtype_is_float(want.dtype());
  int64_t bad = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    bool ok;
    if (is_float) {
      double a = got.get_f64(i), b = want.get_f64(i);
      if (std::isnan(a) || std::isnan(b)) ok = std::isnan(a) && std::isnan(b);
      else if (std::isinf(a) || std::isinf(b)) ok = a == b;
      else ok = std::fabs(a - b) <= 1e-7 + 1e-3 * std::fabs(b);
      if (!ok && bad++ == 0) why = kiln::cat("element ", i, ": got ", a, ", expected ", b);
    } else if (want.dtype() == DataType::kUInt64) {
      ok = got.data<uint64_t>()[i] == want.data<uint64_t>()[i];
      if (!ok && bad++ == 0) why = kiln::cat("element ", i, " differs");
    } else {
      int64_t a = got.get_i64(i), b = want.get_i64(i);
      ok = a == b;
      if (!ok && bad++ == 0) why = kiln::cat("element ", i, ": got ", a, ", expected ", b);
    }
  }
  if (bad) why += kiln::cat(" (", bad, " of ", want.numel(), " elements differ)");
  return bad == 0;
}

Result run_one(const Options& o, const std::string& name) {
  Result r;
  r.name = name;
  std::string dir = o.data_dir + "/" + name;
  try {
    kiln::onnx::ModelProto m = kiln::onnx::read_model(dir + "/model.onnx");
    kiln::onnx::ImportResult ir = kiln::onnx::import_model(m);
    if (!ir.problems.empty()) {
      // A test that needs a deliberately unsupported feature (training, randomness, strings,
      // sequences) is skipped, whatever else it also lacks.
      const kiln::onnx::ImportProblem* first = &ir.problems[0];
      for (auto& p : ir.problems)
        if (p.skipped) { first = &p; break; }
      r.outcome = first->skipped ? Outcome::kSkipped : Outcome::kFailed;
      r.detail = (first->skipped ? "skipped: " : "import: ") + first->op_type + ": " + first->reason;
      return r;
    }
    std::set<std::string> inits;
    for (auto& t : m.graph->initializer) inits.insert(t->name);
    std::vector<std::string> in_names, out_names;
    std::vector<kiln::DataType> in_types, out_types;
    for (auto& v : m.graph->input)
      if (!inits.count(v.name)) {
        in_names.push_back(v.name);
        in_types.push_back(v.type.elem_type);
      }
    for (auto& v : m.graph->output) {
      out_names.push_back(v.name);
      out_types.push_back(v.type.elem_type);
    }

    std::vector<std::string> sets;
    for (auto& d : list_dirs(dir))
      if (d.rfind("test_data_set_", 0) == 0) sets.push_back(d);
    if (sets.empty()) throw kiln::Error(kiln::StatusCode::kInvalidModel, "no test data sets");

    for (const auto& set : sets) {
      std::map<std::string, kiln::Tensor> inputs;
      kiln::BuildOptions bo;
      bo.device = o.device;
      for (size_t i = 0; i < in_names.size(); ++i) {
        std::string f = dir + "/" + set + "/input_" + std::to_string(i) + ".pb";
        if (!kiln::file_exists(f)) continue;  // an optional input the test leaves out
        kiln::onnx::TensorProto tp = kiln::onnx::read_tensor(f);
        if (!tp.value.defined())
          throw kiln::Error(kiln::StatusCode::kUnsupported, "input of unsupported type");
        inputs[in_names[i]] = as_declared(tp.value, in_types[i]);
        bo.input_shapes[in_names[i]] = tp.value.dims();
      }
      kiln::Builder b(bo);
      std::shared_ptr<kiln::Plan> plan;
      kiln::Status s = b.build_from_onnx(dir + "/model.onnx", plan);
      if (!s) throw kiln::Error(s.code(), "build: " + s.message());
      // Round-trip through the plan format, as users do.
      std::shared_ptr<kiln::Plan> loaded;
      s = kiln::Plan::deserialize(plan->serialize(), loaded);
      if (!s) throw kiln::Error(s.code(), "plan round trip: " + s.message());
      for (const kiln::PlanStep& st : loaded->steps())
        if (st.on_host && r.host.find(st.op) == std::string::npos)
          r.host += (r.host.empty() ? "" : ",") + st.op;
      std::shared_ptr<kiln::Engine> engine;
      s = kiln::Engine::create(loaded, engine);
      if (!s) throw kiln::Error(s.code(), "engine: " + s.message());
      std::unique_ptr<kiln::ExecutionContext> ctx;
      s = engine->create_context(ctx);
      if (!s) throw kiln::Error(s.code(), "context: " + s.message());
      std::map<std::string, kiln::Tensor> outputs;
      s = ctx->run(inputs, outputs);
      if (!s) throw kiln::Error(s.code(), "run: " + s.message());
      for (size_t i = 0; i < out_names.size(); ++i) {
        std::string f = dir + "/" + set + "/output_" + std::to_string(i) + ".pb";
        if (!kiln::file_exists(f)) continue;
        kiln::onnx::TensorProto tp = kiln::onnx::read_tensor(f);
        auto it = outputs.find(out_names[i]);
        if (it == outputs.end())
          throw kiln::Error(kiln::StatusCode::kInternal, "output '" + out_names[i] + "' missing");
        std::string why;
        if (!close_enough(it->second, as_declared(tp.value, out_types[i]), why)) {
          r.outcome = Outcome::kFailed;
          r.detail = "mismatch: output '" + out_names[i] + "' " + why;
          return r;
        }
      }
    }
    r.outcome = Outcome::kPassed;
  } catch (const kiln::Error& e) {
    r.outcome = Outcome::kFailed;
    r.detail = std::string(kiln::status_code_name(e.code())) + ": " +
               (e.node().empty() ? "" : e.node() + ": ") + e.message();
  } catch (const std::exception& e) {
    r.outcome = Outcome::kFailed;
    r.detail = std::string("exception: ") + e.what();
  }
  return r;
}

// Runs the tests in forked children, o.jobs at a time, each with a time limit.
std::vector<Result> run_all(const Options& o, const std::vector<std::string>& names) {
  struct Child { pid_t pid; int fd; size_t index; std::string buf; std::chrono::steady_clock::time_point start; };
  std::vector<Result> results(names.size());
  std::vector<Child> running;
  size_t next = 0;
  while (next < names.size() || !running.empty()) {
    while (next < names.size() && static_cast<int>(running.size()) < o.jobs) {
      int fds[2];
      if (pipe(fds) != 0) { perror("pipe"); std::exit(2); }
      pid_t pid = fork();
      if (pid == 0) {
        close(fds[0]);
        Result r = run_one(o, names[next]);
        std::string msg = std::to_string(static_cast<int>(r.outcome)) + "\n" + r.host + "\n" + r.detail;
        size_t off = 0;
        while (off < msg.size()) {
          ssize_t w = write(fds[1], msg.data() + off, msg.size() - off);
          if (w <= 0) break;
          off += static_cast<size_t>(w);
        }
        _exit(0);
      }
      close(fds[1]);
      running.push_back({pid, fds[0], next, "", std::chrono::steady_clock::now()});
      ++next;
    }
    std::vector<pollfd> pfds;
    for (auto& c : running) pfds.push_back({c.fd, POLLIN, 0});
    poll(pfds.data(), pfds.size(), 200);
    for (size_t k = 0; k < running.size();) {
      Child& c = running[k];
      bool finished = false;
      if (pfds[k].revents & (POLLIN | POLLHUP)) {
        char tmp[4096];
        ssize_t n = read(c.fd, tmp, sizeof tmp);
        if (n > 0) c.buf.append(tmp, static_cast<size_t>(n));
        else finished = true;
      }
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - c.start).count();
      Result& r = results[c.index];
      r.name = names[c.index];
      if (!finished && secs > o.timeout_s) {
        kill(c.pid, SIGKILL);
        r.outcome = Outcome::kFailed;
        r.detail = kiln::cat("timed out after ", o.timeout_s, " s");
        c.buf.clear();
        finished = true;
      }
      if (!finished) { ++k; continue; }
      int status = 0;
      waitpid(c.pid, &status, 0);
      close(c.fd);
      if (!c.buf.empty()) {
        size_t nl = c.buf.find('\n');
        size_t nl2 = nl == std::string::npos ? nl : c.buf.find('\n', nl + 1);
        r.outcome = static_cast<Outcome>(std::atoi(c.buf.substr(0, nl).c_str()));
        if (nl2 != std::string::npos) {
          r.host = c.buf.substr(nl + 1, nl2 - nl - 1);
          r.detail = c.buf.substr(nl2 + 1);
        }
      } else if (r.detail.empty()) {
        r.outcome = Outcome::kFailed;
        r.detail = WIFSIGNALED(status) ? kiln::cat("crashed with signal ", WTERMSIG(status))
                                       : "child exited without a result";
      }
      pfds.erase(pfds.begin() + static_cast<long>(k));
      running.erase(running.begin() + static_cast<long>(k));
    }
  }
  return results;
}

void usage() {
  std::fprintf(stderr,
               "usage: kiln_conformance [--data DIR] [--filter SUBSTR] [--verbose] [--jobs N]\n"
               "                        [--timeout S] [--device cpu|cuda] [--expected FILE]\n"
               "                        [--write-expected FILE] [--except FILE]\n"
               "                        [--host-allowed FILE]\n");
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) { usage(); std::exit(2); }
      return argv[++i];
    };
    if (a == "--data") o.data_dir = next();
    else if (a == "--filter") o.filter = next();
    else if (a == "--expected") o.expected = next();
    else if (a == "--write-expected") o.write_expected = next();
    else if (a == "--device") o.device = next();
    else if (a == "--except") o.except = next();
    else if (a == "--host-allowed") o.host_allowed = next();
    else if (a == "--jobs") o.jobs = std::max(1, std::atoi(next().c_str()));
    else if (a == "--timeout") o.timeout_s = std::max(1, std::atoi(next().c_str()));
    else if (a == "--verbose" || a == "-v") o.verbose = true;
    else { usage(); return 2; }
  }
  std::vector<std::string> names;
  for (auto& n : list_dirs(o.data_dir))
    if (o.filter.empty() || n.find(o.filter) != std::string::npos) names.push_back(n);
  if (names.empty()) {
    std::printf("conformance: no tests found in %s (install Debian's libonnx-testdata)\n",
                o.data_dir.c_str());
    return o.expected.empty() ? 0 : 1;
  }
  if (o.device == "cuda") {
    // Probe the GPU in a child: the CUDA runtime must not be initialised before the forks.
    int fds[2];
    if (pipe(fds) != 0) { perror("pipe"); return 2; }
    pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      std::string why = kiln::find_backend("cuda") ? "" : kiln::cuda_unavailable_reason();
      ssize_t w = write(fds[1], why.data(), why.size());
      (void)w;
      _exit(0);
    }
    close(fds[1]);
    std::string why;
    char buf[512];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) why.append(buf, static_cast<size_t>(n));
    close(fds[0]);
    waitpid(pid, nullptr, 0);
    if (!why.empty()) {
      std::printf("conformance: skipped on cuda: %s\n", why.c_str());
      return 0;
    }
  }
  // A list file: one test name per line, optionally followed by a reason; '#' comments.
  auto read_list = [](const std::string& path, std::set<std::string>& names) {
    if (path.empty()) return true;
    std::ifstream in(path);
    if (!in) { std::fprintf(stderr, "cannot read %s\n", path.c_str()); return false; }
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      names.insert(line.substr(0, line.find_first_of(" \t")));
    }
    return true;
  };
  std::set<std::string> excepted, host_allowed;
  if (!read_list(o.except, excepted) || !read_list(o.host_allowed, host_allowed)) return 2;
  std::vector<Result> results = run_all(o, names);
  int passed = 0, failed = 0, skipped = 0, host_passes = 0;
  int regressions = 0;
  for (auto& r : results) {
    const char* tag = r.outcome == Outcome::kPassed ? "PASS" : r.outcome == Outcome::kSkipped ? "SKIP" : "FAIL";
    if (r.outcome == Outcome::kPassed) ++passed;
    else if (r.outcome == Outcome::kSkipped) ++skipped;
    else ++failed;
    bool host = r.outcome == Outcome::kPassed && !r.host.empty();
    host_passes += host;
    if (o.verbose)
      std::printf("%s %s%s%s%s\n", tag, r.name.c_str(), host ? "  (host step: " : "",
                  host ? (r.host + ")").c_str() : "", r.detail.empty() ? "" : ("  " + r.detail).c_str());
    if (host && !o.host_allowed.empty() && !host_allowed.count(r.name)) {
      std::printf("REGRESSION %s: passes with a step on the host (%s), which %s does not allow\n",
                  r.name.c_str(), r.host.c_str(), o.host_allowed.c_str());
      ++regressions;
    }
  }
  if (!o.expected.empty()) {
    std::ifstream in(o.expected);
    if (!in) { std::fprintf(stderr, "cannot read %s\n", o.expected.c_str()); return 2; }
    std::map<std::string, const Result*> by_name;
    for (auto& r : results) by_name[r.name] = &r;
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#' || excepted.count(line)) continue;
      auto it = by_name.find(line);
      if (it == by_name.end()) {
        if (o.filter.empty()) { std::printf("REGRESSION %s: test not found\n", line.c_str()); ++regressions; }
        continue;
      }
      if (it->second->outcome != Outcome::kPassed) {
        std::printf("REGRESSION %s: %s\n", line.c_str(), it->second->detail.c_str());
        ++regressions;
      }
    }
  }
  if (!o.write_expected.empty()) {
    std::ofstream out(o.write_expected);
    out << "# ONNX node tests that pass on kiln's CPU backend; CI fails if one stops passing.\n"
        << "# Regenerate with: kiln_conformance --write-expected tests/onnx/expected_passes.txt\n";
    for (auto& r : results)
      if (r.outcome == Outcome::kPassed) out << r.name << "\n";
  }
  if (regressions) std::printf("%d expected pass(es) no longer pass\n", regressions);
  if (o.device == "cpu")
    std::printf("conformance: %d passed, %d failed, %d skipped\n", passed, failed, skipped);
  else
    std::printf("conformance: %d passed (%d with every step on the device, %d with a host step), "
                "%d failed, %d skipped\n",
                passed, passed - host_passes, host_passes, failed, skipped);
  return regressions ? 1 : 0;
}
