// Robustness check: mutates the bytes of the ONNX node-test models (seeded, reproducible) and
// pushes every mutant through reader, importer, builder and runtime with the test's inputs, each in
// a forked child. Any outcome but success or a kiln::Error (a crash, an abort, a hang) is a
// failure. Prints the failing cases; the last line is "model fuzz: N passed, F failed".
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/file.h"
#include "kiln/kiln.h"
#include "onnx/model.h"

namespace {

std::vector<std::string> list_dirs(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') out.push_back(e->d_name);
    closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Runs one mutant; returns normally on success or a clear kiln error. An internal error (a
// failed invariant check) on user input is a kiln bug too: exit code 3.
void check_not_internal(const kiln::Status& s) {
  if (s.code() == kiln::StatusCode::kInternal) {
    std::printf("internal error: %s\n", s.message().c_str());
    std::fflush(stdout);
    _exit(3);
  }
}

void run_case(const std::string& dir, const std::string& bytes) {
  std::map<std::string, kiln::Tensor> inputs;
  kiln::BuildOptions bo;
  bo.device = "cpu";
  std::shared_ptr<kiln::Plan> plan;
  kiln::Status s = kiln::Builder(bo).build_from_onnx_bytes(bytes, plan);
  check_not_internal(s);
  if (!s) return;
  for (size_t i = 0; i < plan->inputs().size(); ++i) {
    std::string f = dir + "/test_data_set_0/input_" + std::to_string(i) + ".pb";
    if (!kiln::file_exists(f)) continue;
    try {
      kiln::onnx::TensorProto tp = kiln::onnx::read_tensor(f);
      if (tp.value.defined()) inputs[plan->inputs()[i].name] = tp.value;
    } catch (const kiln::Error&) {
    }
  }
  std::shared_ptr<kiln::Engine> e;
  if (!kiln::Engine::create(plan, e)) return;
  std::unique_ptr<kiln::ExecutionContext> ctx;
  if (!e->create_context(ctx)) return;
  std::map<std::string, kiln::Tensor> outs;
  check_not_internal(ctx->run(inputs, outs));
}

}  // namespace

int main(int argc, char** argv) {
  std::string data = "/usr/share/libonnx-testdata/data/node";
  int per_model = 4;
  unsigned seed = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--data") data = argv[i + 1];
    else if (a == "--per-model") per_model = std::atoi(argv[i + 1]);
    else if (a == "--seed") seed = static_cast<unsigned>(std::atoi(argv[i + 1]));
  }
  std::vector<std::string> tests = list_dirs(data);
  if (tests.empty()) {
    std::printf("model fuzz: no test data in %s\n", data.c_str());
    return 0;
  }
  std::mt19937 rng(seed);
  int passed = 0, failed = 0;
  for (const auto& t : tests) {
    std::string dir = data + "/" + t;
    std::string orig;
    try {
      orig = kiln::read_file(dir + "/model.onnx");
    } catch (const kiln::Error&) {
      continue;
    }
    for (int k = 0; k < per_model; ++k) {
      std::string m = orig;
      int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips && !m.empty(); ++f) {
        size_t pos = rng() % m.size();
        switch (rng() % 3) {
          case 0: m[pos] = static_cast<char>(rng()); break;          // random byte
          case 1: m[pos] = static_cast<char>(m[pos] ^ (1 << (rng() % 8))); break;  // bit flip
          default: m[pos] = static_cast<char>(m[pos] + 1); break;     // small change (lengths, ints)
        }
      }
      pid_t pid = fork();
      if (pid == 0) {
        alarm(20);
        run_case(dir, m);
        _exit(0);
      }
      int status = 0;
      waitpid(pid, &status, 0);
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        ++passed;
      } else {
        ++failed;
        std::string path = "/tmp/kiln_fuzz_" + t + "_" + std::to_string(k) + ".onnx";
        kiln::write_file(path, m);
        std::printf("FAIL %s mutant %d: %s (saved %s)\n", t.c_str(), k,
                    WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "exit code",
                    path.c_str());
      }
    }
  }
  std::printf("model fuzz: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
