// Builds a model with an installed kiln on the CPU and runs it: the README's C++ example, as a
// user's project compiles it.
#include <cstdio>

#include "kiln/kiln.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer MODEL.onnx\n");
    return 2;
  }
  kiln::BuildOptions o;
  o.device = "cpu";
  o.input_shapes["image"] = {2, 1, 28, 28};
  std::shared_ptr<kiln::Plan> plan;
  kiln::Status s = kiln::Builder(o).build_from_onnx(argv[1], plan);
  std::shared_ptr<kiln::Engine> engine;
  if (s) s = kiln::Engine::create(plan, engine);
  std::unique_ptr<kiln::ExecutionContext> ctx;
  if (s) s = engine->create_context(ctx);
  std::map<std::string, kiln::Tensor> out;
  kiln::Tensor x(kiln::DataType::kFloat, {2, 1, 28, 28});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = static_cast<float>(i % 29) / 29.0f;
  if (s) s = ctx->run({{"image", x}}, out);
  if (!s) {
    std::fprintf(stderr, "consumer: %s\n", s.to_string().c_str());
    return 1;
  }
  const kiln::Tensor& y = out.at("logits");
  std::printf("consumer: kiln %s ran %zu steps; logits [%lld,%lld], first %.4f\n",
              kiln::version().c_str(), plan->num_steps(), (long long)y.dim(0), (long long)y.dim(1),
              y.data<float>()[0]);
  return 0;
}
