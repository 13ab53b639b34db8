#!/usr/bin/env python3
"""kiln against its peers on one GPU, in one run, on the same inputs (shared/PERFORMANCE.md).

For each model: build it from torchvision (or a BERT-base of the Hugging Face layout) with random
weights, export it to ONNX, and time
  - PyTorch eager FP32 (PyTorch's defaults) and FP16 channels-last with cudnn.benchmark on,
  - torch.compile (max-autotune for batch > 1, reduce-overhead for batch 1) with --compile: it
    takes minutes per model, so quick runs leave it out and the table says so,
  - kiln FP32 and FP16 plans (`kiln build`, then `kiln bench --json`: GPU compute time of
    back-to-back enqueues, the data already on the device, as the PyTorch loops are timed),
and check kiln's outputs on the same input against PyTorch FP32 (TF32 off): relative error of the
output norm, FP32 <= 1e-3 and FP16 <= 2e-2. Prints a table of throughputs and ratios.

Usage: python3 bench/peers.py --kiln build/tools/kiln/kiln [--models resnet50,...] [--compile]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

MODELS = {
    # name: (batch, input kind)
    "resnet50": (128, "image"),
    "resnet50_b1": (1, "image"),
    "mobilenet_v2": (128, "image"),
    "googlenet": (128, "image"),
    "bert_base": (32, "tokens"),
}
SEQ = 128


def make_bert():
    """BERT-base (12 layers, hidden 768, 12 heads, FFN 3072, GELU) in the Hugging Face layout;
    transformers' own BertModel when it is installed."""
    try:
        from transformers import BertConfig, BertModel

        cfg = BertConfig()
        cfg.attn_implementation = "eager"
        m = BertModel(cfg, add_pooling_layer=False)

        class Wrap(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, ids):
                return self.m(input_ids=ids).last_hidden_state

        return Wrap(m), "transformers.BertModel"
    except Exception:
        pass
    nn = torch.nn

    class Layer(nn.Module):
        def __init__(self, d=768, h=12, f=3072):
            super().__init__()
            self.h, self.dh = h, d // h
            self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
            self.o = nn.Linear(d, d)
            self.ln1 = nn.LayerNorm(d, eps=1e-12)
            self.f1, self.f2 = nn.Linear(d, f), nn.Linear(f, d)
            self.ln2 = nn.LayerNorm(d, eps=1e-12)

        def forward(self, x):
            b, s, d = x.shape
            split = lambda t: t.view(b, s, self.h, self.dh).transpose(1, 2)
            q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
            a = torch.softmax(q @ k.transpose(-1, -2) / (self.dh ** 0.5), dim=-1) @ v
            x = self.ln1(x + self.o(a.transpose(1, 2).reshape(b, s, d)))
            return self.ln2(x + self.f2(torch.nn.functional.gelu(self.f1(x))))

    class Bert(nn.Module):
        def __init__(self):
            super().__init__()
            self.word = nn.Embedding(30522, 768)
            self.pos = nn.Embedding(512, 768)
            self.typ = nn.Embedding(2, 768)
            self.ln = nn.LayerNorm(768, eps=1e-12)
            self.layers = nn.ModuleList([Layer() for _ in range(12)])

        def forward(self, ids):
            s = ids.shape[1]
            pos = torch.arange(s, device=ids.device).unsqueeze(0)
            x = self.ln(self.word(ids) + self.pos(pos) + self.typ(torch.zeros_like(ids)))
            for l in self.layers:
                x = l(x)
            return x

    return Bert(), "BERT-base (own module, Hugging Face layout; transformers not installed)"


def make_model(name):
    import torchvision

    if name.startswith("resnet50"):
        return torchvision.models.resnet50(weights=None), "torchvision resnet50"
    if name == "mobilenet_v2":
        m = torchvision.models.mobilenet_v2(weights=None)
        # Its own init (classifier std 0.01) gives outputs near 1e-9, below float16's range:
        # He init keeps them near 1, so the FP16 check means something.
        for mod in m.modules():
            if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
                torch.nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
        return m, "torchvision mobilenet_v2 (He-initialised)"
    if name == "googlenet":
        m = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True)
        # torchvision's GoogLeNet init (truncated normal, std 0.01) shrinks the activations to
        # nothing over 22 layers, which would make the output check meaningless: use He init.
        for mod in m.modules():
            if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
                torch.nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
        return m, "torchvision googlenet (He-initialised)"
    if name == "bert_base":
        return make_bert()
    raise SystemExit(f"unknown model {name}")


def time_torch(fn, iters, repeats):
    """Median per-iteration milliseconds over `repeats` CUDA-event-timed loops of `iters`."""
    times = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(iters):
            fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b) / iters)
    return statistics.median(times), (min(times), max(times))


def run(cmd, log):
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    log.write("$ " + " ".join(cmd) + "\n" + p.stdout + p.stderr + "\n")
    log.flush()
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed (rc {p.returncode}): {(p.stderr or p.stdout)[-800:]}")
    return p.stdout, time.time() - t0


def rel_err(got, ref):
    got = got.astype(np.float64).ravel()
    ref = ref.astype(np.float64).ravel()
    return float(np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--work", default="peers_work")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (minutes)")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--json")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    log = open(os.path.join(args.work, "peers.log"), "w")
    dev = torch.device("cuda")
    gpu = torch.cuda.get_device_name()
    print(f"peers: {gpu}, torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}")
    rows = []
    for name in args.models.split(","):
        batch, kind = MODELS[name]
        torch.manual_seed(0)
        model, desc = make_model(name)
        model = model.eval().to(dev)
        if kind == "image":
            x = torch.randn(batch, 3, 224, 224, device=dev)
        else:
            x = torch.randint(0, 30522, (batch, SEQ), device=dev)
        row = {"model": name, "batch": batch, "source": desc}
        onnx_path = os.path.join(args.work, f"{name}.onnx")
        in_npy = os.path.join(args.work, f"{name}_input.npy")
        np.save(in_npy, x.cpu().numpy())
        with torch.no_grad():
            # Reference: FP32 with TF32 off.
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
            ref = model(x).float().cpu().numpy()
            # A degenerate reference (all equal, e.g. vanished activations) cannot check kiln.
            row["ref_spread"] = float(np.std(ref) / (np.abs(ref).mean() + 1e-30))
            if not np.isfinite(ref).all() or np.std(ref) < 1e-6:
                print(f"peers: WARNING: {name}'s reference output is degenerate", file=sys.stderr)
            if not os.path.exists(onnx_path):
                torch.onnx.export(model, (x,), onnx_path, input_names=["input"],
                                  output_names=["output"], opset_version=17, dynamo=False)
            torch.backends.cudnn.benchmark = True
            # FP32 strictly (TF32 off), the same math as a kiln FP32 plan...
            for _ in range(3):
                model(x)
            ms, spread = time_torch(lambda: model(x), args.iters, args.repeats)
            row["eager_fp32"] = batch * 1000 / ms
            # ...and with PyTorch's defaults (TF32 for convolutions), against kiln --tf32.
            torch.backends.cudnn.allow_tf32 = True
            for _ in range(3):
                model(x)
            ms, spread = time_torch(lambda: model(x), args.iters, args.repeats)
            row["eager_tf32"] = batch * 1000 / ms
            mh = model.half()
            xh = x.half() if kind == "image" else x
            if kind == "image":
                mh = mh.to(memory_format=torch.channels_last)
                xh = xh.contiguous(memory_format=torch.channels_last)
            for _ in range(3):
                mh(xh)
            ms, spread = time_torch(lambda: mh(xh), args.iters, args.repeats)
            row["eager_fp16"] = batch * 1000 / ms
            if args.compile:
                mode = "reduce-overhead" if batch == 1 else "max-autotune"
                t0 = time.time()
                cm = torch.compile(mh, mode=mode)
                for _ in range(3):
                    cm(xh)
                torch.cuda.synchronize()
                row["compile_s"] = time.time() - t0
                ms, spread = time_torch(lambda: cm(xh), args.iters, args.repeats)
                row["compile_fp16"] = batch * 1000 / ms
                row["compile_mode"] = mode
            del mh
            model.float()
        torch.cuda.empty_cache()
        for prec in ("fp32", "tf32", "fp16"):
            plan = os.path.join(args.work, f"{name}_{prec}.plan")
            flags = {"fp32": [], "tf32": ["--tf32"], "fp16": ["--fp16"]}[prec]
            try:
                _, build_s = run([args.kiln, "build", onnx_path, "-o", plan, "--device", "cuda",
                                  "--quiet"] + flags, log)
                outdir = os.path.join(args.work, f"{name}_{prec}_out")
                os.makedirs(outdir, exist_ok=True)
                run([args.kiln, "run", plan, "--input", f"input={in_npy}", "--output-dir", outdir], log)
                got = np.load(os.path.join(outdir, "output.npy"))
                jf = os.path.join(args.work, f"{name}_{prec}.json")
                run([args.kiln, "bench", plan, "--iterations", str(args.iters * 5), "--json", jf], log)
                with open(jf) as f:
                    j = json.load(f)
                row[f"kiln_{prec}"] = j["compute_throughput_samples_per_s"]
                row[f"kiln_{prec}_latency_ms"] = j["latency_ms"]["median"]
                row[f"kiln_{prec}_err"] = rel_err(got, ref)
                row[f"kiln_{prec}_build_s"] = build_s
            except Exception as e:  # report and go on with the other models
                row[f"kiln_{prec}_error"] = str(e)[-400:]
                print(f"peers: {name} {prec}: {e}", file=sys.stderr)
        rows.append(row)
        print(json.dumps(row), flush=True)

    def f(v):
        return "-" if v is None else f"{v:,.0f}"

    def r(a, b):
        return "-" if a is None or b is None else f"{a / b:.2f}"

    print(f"\nGPU: {gpu}; throughput in samples/s (median of {args.repeats} timed loops of "
          f"{args.iters}); torch.compile {'included' if args.compile else 'SKIPPED (quick run)'}")
    print("FP32 = TF32 off on both sides; TF32 = PyTorch's default (TF32 convolutions) against kiln --tf32; "
          "err = |kiln - PyTorch FP32| / |PyTorch FP32|")
    print("| model | batch | eager FP32 | kiln FP32 | ratio | err | eager TF32 | kiln TF32 | ratio |"
          " eager FP16 CL | kiln FP16 | ratio | err |"
          + (" compile FP16 | kiln/compile |" if args.compile else ""))
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|---|" if args.compile else ""))
    for w in rows:
        g = w.get
        e32 = g("kiln_fp32_err")
        e16 = g("kiln_fp16_err")
        line = (f"| {w['model']} | {w['batch']} | {f(g('eager_fp32'))} | {f(g('kiln_fp32'))} | "
                f"{r(g('kiln_fp32'), g('eager_fp32'))} | {'-' if e32 is None else f'{e32:.1e}'} | "
                f"{f(g('eager_tf32'))} | {f(g('kiln_tf32'))} | {r(g('kiln_tf32'), g('eager_tf32'))} | "
                f"{f(g('eager_fp16'))} | {f(g('kiln_fp16'))} | {r(g('kiln_fp16'), g('eager_fp16'))} | "
                f"{'-' if e16 is None else f'{e16:.1e}'} |")
        if args.compile:
            line += f" {f(g('compile_fp16'))} | {r(g('kiln_fp16'), g('compile_fp16'))} |"
        print(line)
        for prec in ("fp32", "tf32", "fp16"):
            if g(f"kiln_{prec}_error"):
                print(f"  {w['model']} kiln {prec} failed: {g(f'kiln_{prec}_error')}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"gpu": gpu, "torch": torch.__version__, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
