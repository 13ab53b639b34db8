// Robustness check: mutates the ONNX node-test models (seeded, reproducible) and pushes every
// mutant through reader, importer, builder and runtime with the test's inputs, each in a forked
// child. Any outcome but success or a kiln::Error (a crash, an abort, a hang, an internal error)
// is a failure.
//
// Mutations are structure-aware: the model is parsed as a protobuf message tree (any
// length-delimited field that parses cleanly as a message is treated as one), a few leaves are
// changed (integers nudged, zeroed, negated or made huge; floats made NaN/inf/0; names and op types
// swapped for others of the same model; bytes flipped) or fields deleted or repeated, and the tree
// is encoded again with correct lengths. Such mutants stay parseable, so most of them get past the
// reader and many reach the runtime, where blind byte flips mostly die in the reader. The run
// fails when fewer than --min-runtime (default 1/3) of the mutants reach ExecutionContext::run,
// and when there is no test data at all.
// Prints the failing cases; the last line is
//   "model fuzz: N mutants, R reached the runtime (P%), F failed".
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
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

// ---- a protobuf wire-format tree ------------------------------------------------------------

struct Field {
  uint32_t num = 0;
  int type = 0;          // 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32
  uint64_t v = 0;        // varint / fixed value
  std::string bytes;     // length-delimited payload (when not a message)
  bool is_message = false;
  std::vector<Field> sub;
};

bool read_varint(const std::string& b, size_t& i, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (i >= b.size()) return false;
    uint8_t c = static_cast<uint8_t>(b[i++]);
    v |= uint64_t(c & 0x7f) << shift;
    if (!(c & 0x80)) return true;
  }
  return false;
}

bool parse_message(const std::string& b, std::vector<Field>& out, int depth) {
  if (depth > 32) return false;
  size_t i = 0;
  while (i < b.size()) {
    uint64_t key;
    if (!read_varint(b, i, key)) return false;
    Field f;
    f.num = static_cast<uint32_t>(key >> 3);
    f.type = static_cast<int>(key & 7);
    if (f.num == 0) return false;
    if (f.type == 0) {
      if (!read_varint(b, i, f.v)) return false;
    } else if (f.type == 1 || f.type == 5) {
      size_t n = f.type == 1 ? 8 : 4;
      if (i + n > b.size()) return false;
      for (size_t k = 0; k < n; ++k) f.v |= uint64_t(static_cast<uint8_t>(b[i + k])) << (8 * k);
      i += n;
    } else if (f.type == 2) {
      uint64_t n;
      if (!read_varint(b, i, n) || n > b.size() - i) return false;
      f.bytes = b.substr(i, n);
      i += n;
      if (!f.bytes.empty() && parse_message(f.bytes, f.sub, depth + 1)) {
        f.is_message = true;
        f.bytes.clear();
      } else {
        f.sub.clear();
      }
    } else {
      return false;
    }
    out.push_back(std::move(f));
  }
  return true;
}

void put_varint(std::string& o, uint64_t v) {
  while (v >= 0x80) {
    o += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  o += static_cast<char>(v);
}

std::string encode(const std::vector<Field>& fields) {
  std::string o;
  for (const Field& f : fields) {
    put_varint(o, (uint64_t(f.num) << 3) | uint64_t(f.type));
    if (f.type == 0) {
      put_varint(o, f.v);
    } else if (f.type == 1 || f.type == 5) {
      for (int k = 0; k < (f.type == 1 ? 8 : 4); ++k) o += static_cast<char>(f.v >> (8 * k));
    } else {
      std::string payload = f.is_message ? encode(f.sub) : f.bytes;
      put_varint(o, payload.size());
      o += payload;
    }
  }
  return o;
}

// Every leaf, every message's field list, and every short printable string (names, op types).
struct Index {
  std::vector<Field*> leaves;
  std::vector<std::vector<Field>*> lists;
  std::vector<std::string> names;
};
void index_tree(std::vector<Field>& fields, Index& ix) {
  ix.lists.push_back(&fields);
  for (Field& f : fields) {
    if (f.is_message) {
      index_tree(f.sub, ix);
      continue;
    }
    ix.leaves.push_back(&f);
    if (f.type == 2 && !f.bytes.empty() && f.bytes.size() < 64 &&
        std::all_of(f.bytes.begin(), f.bytes.end(), [](char c) { return c >= 32 && c < 127; }))
      ix.names.push_back(f.bytes);
  }
}

template <class T>
uint64_t bits_of(T x) {
  uint64_t b = 0;
  std::memcpy(&b, &x, sizeof x);
  return b;
}

void mutate_leaf(Field& f, Index& ix, std::mt19937& rng) {
  if (f.type == 0) {
    const uint64_t choices[] = {f.v + 1, f.v - 1, 0, 1, f.v * 2, rng() % 8, uint64_t(1) << 40,
                                ~uint64_t(0), static_cast<uint64_t>(-static_cast<int64_t>(f.v))};
    f.v = choices[rng() % (sizeof choices / sizeof choices[0])];
  } else if (f.type == 5) {
    float x;
    uint32_t w = static_cast<uint32_t>(f.v);
    std::memcpy(&x, &w, 4);
    const float choices[] = {0.f, -1.f, 1e30f, NAN, INFINITY, x * 2, -x, x + 1};
    f.v = bits_of(choices[rng() % 8]) & 0xffffffffu;
  } else if (f.type == 1) {
    double x;
    std::memcpy(&x, &f.v, 8);
    const double choices[] = {0., -1., 1e300, NAN, x * 2, -x, x + 1};
    f.v = bits_of(choices[rng() % 7]);
  } else if (!ix.names.empty() && rng() % 2 == 0) {
    f.bytes = ix.names[rng() % ix.names.size()];   // another name or op type of this model
  } else if (!f.bytes.empty()) {
    switch (rng() % 3) {
      case 0: f.bytes[rng() % f.bytes.size()] ^= static_cast<char>(1 << (rng() % 8)); break;
      case 1: f.bytes.resize(rng() % f.bytes.size()); break;
      default: f.bytes += f.bytes.substr(0, 1 + rng() % f.bytes.size()); break;
    }
  }
}

// 1 to 3 structure-aware mutations of a model; "" when the model does not parse.
std::string mutate(const std::string& model, std::mt19937& rng) {
  std::vector<Field> root;
  if (!parse_message(model, root, 0)) return "";
  Index ix;
  index_tree(root, ix);
  if (ix.leaves.empty()) return "";
  int n = 1 + static_cast<int>(rng() % 3);
  for (int k = 0; k < n; ++k) {
    unsigned what = rng() % 10;
    if (what < 8) {
      mutate_leaf(*ix.leaves[rng() % ix.leaves.size()], ix, rng);
    } else {
      // Delete or repeat a field; the index's pointers into that list are stale after this.
      std::vector<Field>& list = *ix.lists[rng() % ix.lists.size()];
      if (list.empty()) continue;
      size_t at = rng() % list.size();
      if (what == 8) list.erase(list.begin() + static_cast<long>(at));
      else list.push_back(list[at]);
      return encode(root);
    }
  }
  return encode(root);
}

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

// Runs one mutant. Exit codes of the child: 0 stopped with a clear error before the runtime,
// kReachedRuntime ran ExecutionContext::run (successfully or with a clear error), 3 an internal
// error (a failed invariant check on user input is a kiln bug too); a signal is a crash.
constexpr int kReachedRuntime = 4;
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
  std::fflush(stdout);
  _exit(kReachedRuntime);
}

}  // namespace

int main(int argc, char** argv) {
  std::string data;
  int per_model = 4;
  unsigned seed = 1;
  double min_runtime = 1.0 / 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--data") data = argv[i + 1];
    else if (a == "--per-model") per_model = std::atoi(argv[i + 1]);
    else if (a == "--seed") seed = static_cast<unsigned>(std::atoi(argv[i + 1]));
    else if (a == "--min-runtime") min_runtime = std::atof(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: kiln_model_fuzz --data DIR [--per-model N] [--seed S] "
                           "[--min-runtime FRACTION]\n");
      return 2;
    }
  }
  std::vector<std::string> tests = data.empty() ? std::vector<std::string>() : list_dirs(data);
  if (tests.empty()) {
    std::printf("model fuzz: FAILED: no test models in '%s' (install Debian's libonnx-testdata; "
                "pass --data DIR)\n", data.c_str());
    return 1;
  }
  std::mt19937 rng(seed);
  int mutants = 0, reached = 0, failed = 0;
  for (const auto& t : tests) {
    std::string dir = data + "/" + t;
    std::string orig;
    try {
      orig = kiln::read_file(dir + "/model.onnx");
    } catch (const kiln::Error&) {
      continue;
    }
    for (int k = 0; k < per_model; ++k) {
      std::string m = mutate(orig, rng);
      if (m.empty()) continue;
      ++mutants;
      pid_t pid = fork();
      if (pid == 0) {
        alarm(20);
        run_case(dir, m);
        _exit(0);
      }
      int status = 0;
      waitpid(pid, &status, 0);
      int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      if (code == 0 || code == kReachedRuntime) {
        reached += code == kReachedRuntime;
      } else {
        ++failed;
        std::string path = "/tmp/kiln_fuzz_" + t + "_" + std::to_string(k) + ".onnx";
        kiln::write_file(path, m);
        std::printf("FAIL %s mutant %d: %s (saved %s)\n", t.c_str(), k,
                    WIFSIGNALED(status) ? strsignal(WTERMSIG(status))
                                        : code == 3 ? "internal error" : "exit code",
                    path.c_str());
      }
    }
  }
  double frac = mutants ? static_cast<double>(reached) / mutants : 0;
  std::printf("model fuzz: %d mutants, %d reached the runtime (%.0f%%), %d failed\n", mutants,
              reached, 100 * frac, failed);
  if (mutants == 0 || frac < min_runtime) {
    std::printf("model fuzz: FAILED: fewer than %.0f%% of the mutants reached the runtime\n",
                100 * min_runtime);
    return 1;
  }
  return failed ? 1 : 0;
}
