// The demo: build a plan from the shipped Fashion-MNIST model, save and reload it, and classify
// the 10,000 test images with one execution context per hardware thread, printing accuracy,
// images/s, and PyTorch's accuracy on the same images (models/fashion_cnn.reference.json).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/hash.h"
#include "kiln/kiln.h"

namespace {

[[noreturn]] void die(const std::string& m) {
  std::fprintf(stderr, "demo: error: %s\n", m.c_str());
  std::exit(1);
}

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) die("cannot read '" + path + "' (run scripts/demo.sh, which unpacks the data set)");
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

// IDX files (the MNIST format): magic 0x00000803 for images, 0x00000801 for labels.
void load_idx(const std::string& dir, std::vector<float>& images, std::vector<uint8_t>& labels,
              int64_t& n, int64_t& h, int64_t& w, const std::string& split = "t10k") {
  auto img = read_all(dir + "/" + split + "-images-idx3-ubyte");
  auto lab = read_all(dir + "/" + split + "-labels-idx1-ubyte");
  if (img.size() < 16 || be32(img.data()) != 0x803) die("bad image file in " + dir);
  if (lab.size() < 8 || be32(lab.data()) != 0x801) die("bad label file in " + dir);
  n = be32(img.data() + 4);
  h = be32(img.data() + 8);
  w = be32(img.data() + 12);
  if (static_cast<int64_t>(img.size()) != 16 + n * h * w || be32(lab.data() + 4) != n ||
      static_cast<int64_t>(lab.size()) != 8 + n)
    die("image and label files do not match");
  images.resize(n * h * w);
  for (int64_t i = 0; i < n * h * w; ++i) images[i] = img[16 + i] / 255.0f;
  labels.assign(lab.begin() + 8, lab.end());
}

std::string json_value(const std::string& json, const std::string& key) {
  auto k = json.find("\"" + key + "\"");
  if (k == std::string::npos) return "";
  auto c = json.find(':', k);
  auto e = json.find_first_of(",}", c);
  std::string v = json.substr(c + 1, e - c - 1);
  v.erase(0, v.find_first_not_of(" \t\n\""));
  v.erase(v.find_last_not_of(" \t\n\"") + 1);
  return v;
}

// INT8 calibration on the first `count` training images, in batches of 50 (TensorRT's practice:
// a few hundred representative inputs, never the test set).
class TrainImages : public kiln::Calibrator {
 public:
  TrainImages(std::vector<float> images, int64_t count, int64_t h, int64_t w)
      : images_(std::move(images)), count_(count), h_(h), w_(w) {}
  bool next_batch(std::map<std::string, kiln::Tensor>& batch) override {
    if (next_ >= count_) return false;
    const int64_t n = std::min<int64_t>(kBatch, count_ - next_);
    kiln::Tensor t(kiln::DataType::kFloat, {n, 1, h_, w_});
    std::memcpy(t.data<float>(), images_.data() + next_ * h_ * w_, n * h_ * w_ * sizeof(float));
    batch.clear();
    batch["image"] = std::move(t);
    next_ += n;
    return true;
  }
  int64_t batch_count() const override { return (count_ + kBatch - 1) / kBatch; }

 private:
  static constexpr int64_t kBatch = 50;
  std::vector<float> images_;
  int64_t count_, h_, w_, next_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::string model = "models/fashion_cnn.onnx", data, reference = "models/fashion_cnn.reference.json";
  std::string plan_path = "fashion_cnn.plan", device;
  int64_t batch = 250;
  bool int8 = false, fp8 = false;
  int64_t calib_images = 500;
  std::string calib_cache, calib_algo = "entropy";
  double max_int8_loss = 0.3;  // points of top-1 INT8 may lose against FP32 (exit 3 beyond)
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { if (i + 1 >= argc) die(a + " needs a value"); return argv[++i]; };
    if (a == "--model") model = next();
    else if (a == "--data") data = next();
    else if (a == "--reference") reference = next();
    else if (a == "--plan") plan_path = next();
    else if (a == "--device") device = next();
    else if (a == "--batch") batch = std::max<int64_t>(1, std::atoll(next().c_str()));
    else if (a == "--threads") threads = std::max(1, std::atoi(next().c_str()));
    else if (a == "--int8") int8 = true;
    else if (a == "--fp8") fp8 = int8 = true;  // the INT8 path, in float8
    else if (a == "--calib-images") calib_images = std::max<int64_t>(1, std::atoll(next().c_str()));
    else if (a == "--calib-cache") calib_cache = next();
    else if (a == "--calib-algo") calib_algo = next();
    else if (a == "--max-int8-loss") max_int8_loss = std::atof(next().c_str());
    else die("unknown option " + a + " (options: --model --data --reference --plan --device --batch --threads --int8 --fp8 --calib-images --calib-cache --calib-algo --max-int8-loss)");
  }
  if (data.empty()) die("--data DIR is required (the unpacked Fashion-MNIST test set)");

  std::vector<float> images;
  std::vector<uint8_t> labels;
  int64_t n, h, w;
  load_idx(data, images, labels, n, h, w);
  std::printf("demo: %lld test images of %lldx%lld from %s\n", (long long)n, (long long)h, (long long)w, data.c_str());

  // Builds a plan with `opts`, saves and reloads it, and classifies every test image with one
  // context per thread.
  struct Result {
    std::vector<int64_t> predictions;
    int64_t correct = 0;
    double secs = 0;
    std::string device;
  };
  auto build_and_classify = [&](kiln::BuildOptions opts, const std::string& path) {
    opts.device = device;
    opts.input_shapes["image"] = {batch, 1, h, w};
    opts.progress = [](const std::string& s) { std::printf("demo: build: %s\n", s.c_str()); };
    auto t0 = std::chrono::steady_clock::now();
    std::shared_ptr<kiln::Plan> built;
    kiln::Status s = kiln::Builder(opts).build_from_onnx(model, built);
    if (!s) die(s.to_string());
    if (!(s = built->save(path))) die(s.to_string());
    std::shared_ptr<kiln::Plan> plan;
    if (!(s = kiln::Plan::load(path, plan))) die(s.to_string());
    double build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("demo: plan %s: %zu steps on %s, built and reloaded in %.2f s\n", path.c_str(),
                plan->num_steps(), plan->device().c_str(), build_s);

    std::shared_ptr<kiln::Engine> engine;
    if (!(s = kiln::Engine::create(plan, engine))) die(s.to_string());
    Result r;
    const int64_t n_batches = (n + batch - 1) / batch;
    r.predictions.assign(n, -1);
    std::atomic<int64_t> next_batch{0};
    std::vector<std::string> errors(threads);
    auto worker = [&](int id) {
      std::unique_ptr<kiln::ExecutionContext> ctx;
      kiln::Status st = engine->create_context(ctx);
      if (!st) { errors[id] = st.to_string(); return; }
      kiln::Tensor in(kiln::DataType::kFloat, {batch, 1, h, w});
      std::map<std::string, kiln::Tensor> outs;
      for (int64_t b; (b = next_batch++) < n_batches;) {
        int64_t first = b * batch, count = std::min(batch, n - first);
        std::memset(in.raw(), 0, in.nbytes());  // the last batch is padded with blank images
        std::memcpy(in.data<float>(), images.data() + first * h * w, count * h * w * sizeof(float));
        st = ctx->run({{"image", in}}, outs);
        if (!st) { errors[id] = st.to_string(); return; }
        const kiln::Tensor& logits = outs.at("logits");
        const int64_t classes = logits.dim(1);
        for (int64_t i = 0; i < count; ++i) {
          const float* row = logits.data<float>() + i * classes;
          r.predictions[first + i] = std::max_element(row, row + classes) - row;
        }
      }
    };
    t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int i = 0; i < threads; ++i) pool.emplace_back(worker, i);
    for (auto& t : pool) t.join();
    r.secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (auto& e : errors)
      if (!e.empty()) die(e);
    for (int64_t i = 0; i < n; ++i) r.correct += r.predictions[i] == labels[i];
    r.device = engine->device();
    return r;
  };

  const Result fp32 = build_and_classify(kiln::BuildOptions{}, plan_path);
  const std::vector<int64_t>& predictions = fp32.predictions;
  const int64_t correct = fp32.correct;
  double acc = static_cast<double>(correct) / static_cast<double>(n);
  std::printf("demo: kiln     accuracy %.4f (%lld/%lld correct), %.0f images/s on %s "
              "(%d contexts, batch %lld)%s\n",
              acc, (long long)correct, (long long)n, n / fp32.secs, fp32.device.c_str(), threads,
              (long long)batch, int8 ? ", FP32" : "");
  const char* low = fp8 ? "FP8" : "INT8";

  if (int8) {
    // Post-training INT8: calibrated on training images, judged on the same test images.
    std::vector<float> train;
    std::vector<uint8_t> train_labels;
    int64_t tn, th, tw;
    load_idx(data, train, train_labels, tn, th, tw, "train");
    if (th != h || tw != w) die("training and test images differ in size");
    kiln::BuildOptions q;
    q.int8 = !fp8;
    q.fp8 = fp8;
    q.calibrator = std::make_shared<TrainImages>(std::move(train), std::min(calib_images, tn), h, w);
    q.calib_cache = calib_cache;
    q.calib_algo = calib_algo;
    const std::string q_path = plan_path.size() > 5 && plan_path.substr(plan_path.size() - 5) == ".plan"
                                   ? plan_path.substr(0, plan_path.size() - 5) + (fp8 ? ".fp8.plan" : ".int8.plan")
                                   : plan_path + (fp8 ? ".fp8" : ".int8");
    const Result i8 = build_and_classify(q, q_path);
    const double acc8 = static_cast<double>(i8.correct) / static_cast<double>(n);
    int64_t agree = 0;
    for (int64_t i = 0; i < n; ++i) agree += i8.predictions[i] == fp32.predictions[i];
    std::printf("demo: FP32 accuracy %.4f (%lld/%lld correct)\n", acc, (long long)correct,
                (long long)n);
    std::printf("demo: %s accuracy %.4f (%lld/%lld correct), %.0f images/s on %s; calibrated on "
                "%lld training images (%s)\n",
                low, acc8, (long long)i8.correct, (long long)n, n / i8.secs, i8.device.c_str(),
                (long long)std::min(calib_images, tn),
                fp8 && calib_algo == "entropy" ? "minmax" : calib_algo.c_str());
    std::printf("demo: %s against FP32: %+.2f points of top-1, the same class for %.2f%% of "
                "the images\n",
                low, 100.0 * (acc8 - acc), 100.0 * agree / n);
    if (100.0 * (acc - acc8) > max_int8_loss) {
      std::printf("demo: ACCURACY CHECK FAILED: %s loses more than %.2f points of top-1\n", low,
                  max_int8_loss);
      return 3;
    }
    std::printf("demo: %s loses at most %.2f points of top-1 against FP32\n", low, max_int8_loss);
  }

  std::ifstream rf(reference);
  if (!rf) {
    std::printf("demo: no PyTorch reference at %s\n", reference.c_str());
    return 0;
  }
  std::stringstream ss;
  ss << rf.rdbuf();
  std::string ref_correct = json_value(ss.str(), "pytorch_correct");
  std::string ref_acc = json_value(ss.str(), "pytorch_accuracy");
  if (ref_correct.empty()) die("reference file has no pytorch_correct");
  long long pc = std::atoll(ref_correct.c_str());
  std::printf("demo: PyTorch  accuracy %.4f (%lld/%lld correct)\n", std::atof(ref_acc.c_str()), pc,
              (long long)n);
  if (pc != correct) {
    std::printf("demo: MISMATCH: kiln and PyTorch differ by %lld images\n", correct - pc);
    return 1;
  }
  std::printf("demo: kiln's accuracy equals PyTorch's\n");
  // The same count could hide swapped mistakes: compare every prediction through the digest the
  // training script stored (sha256 of the int64 little-endian argmax of each image, file order).
  std::string ref_sha = json_value(ss.str(), "predictions_sha256");
  if (ref_sha.empty()) die("reference file has no predictions_sha256");
  std::vector<uint8_t> le(predictions.size() * 8);
  for (size_t i = 0; i < predictions.size(); ++i)
    for (int b = 0; b < 8; ++b)
      le[i * 8 + b] = static_cast<uint8_t>(static_cast<uint64_t>(predictions[i]) >> (8 * b));
  std::string sha = kiln::sha256_hex(le.data(), le.size());
  if (sha != ref_sha) {
    std::printf("demo: MISMATCH: the predictions' sha256 is %s, PyTorch's %s: some images are "
                "classified differently\n", sha.c_str(), ref_sha.c_str());
    return 1;
  }
  std::printf("demo: kiln's predictions equal PyTorch's, image by image (sha256 %s)\n",
              sha.substr(0, 16).c_str());
  return 0;
}
