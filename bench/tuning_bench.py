#!/usr/bin/env python3
"""Issue 12's GPU measurements (tuned plans), in one run on one GPU (shared/PERFORMANCE.md):

  1. ResNet-50 FP16 built from cold with a new timing cache (all tuning included), then again
     with the warm cache: build seconds, candidates timed, and whether the plan bytes are equal;
     loading that plan and its first run must log no tuning (KILN_LOG_LEVEL=verbose, grepped).
  2. One plan with an optimization profile of batch 1..128 tuned at 32: batches 1, 7, 32 and 128
     run and are checked against PyTorch FP32 (TF32 off); at batch 32 its GPU compute time is
     compared with a plan fixed at batch 32.
  3. Multi-context throughput: a batch-1 plan under `kiln bench --contexts 8` against
     `--contexts 1` (the same enqueue-and-wait loop).
  4. Batch-1 latency: ResNet-50 and MobileNetV2 FP16, kiln's GPU compute median against PyTorch
     eager FP16 and, with --compile, torch.compile mode reduce-overhead (CUDA graphs), timed the
     same way (CUDA events around back-to-back calls).

Weights are random (He-initialised where the model's own init would make FP16 outputs vanish),
ONNX exported with a dynamic batch dimension.

Usage: python3 bench/tuning_bench.py --kiln build/tools/kiln/kiln [--work DIR] [--compile]
       [--json FILE] [--parts 1,2,3,4]
"""
import argparse
import filecmp
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402  (the one timer and error measure of the peer benchmarks)

rel_err = peers.rel_err


def make(name):
    import torchvision

    if name == "resnet50":
        return torchvision.models.resnet50(weights=None)
    m = torchvision.models.mobilenet_v2(weights=None)
    for mod in m.modules():
        if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
    return m


def export(model, path, dev):
    if os.path.exists(path):
        return
    x = torch.randn(2, 3, 224, 224, device=dev)
    torch.onnx.export(model, (x,), path, input_names=["input"], output_names=["output"],
                      opset_version=17, dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                      dynamo=False)


def run(cmd, log, env=None):
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    dt = time.time() - t0
    log.write("$ " + " ".join(cmd) + f"\n(rc {p.returncode}, {dt:.2f} s)\n" + p.stdout + p.stderr + "\n")
    log.flush()
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed (rc {p.returncode}): {(p.stderr or p.stdout)[-600:]}")
    return p.stdout + p.stderr, dt


def time_torch(fn, iters=50, repeats=10):
    return peers.time_torch(fn, iters, repeats)[0]


def bench_json(kiln, plan, work, tag, log, extra=()):
    jf = os.path.join(work, f"{tag}.json")
    run([kiln, "bench", plan, "--iterations", "200", "--json", jf] + list(extra), log)
    with open(jf) as f:
        return json.load(f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--work", default="tuning_work")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--parts", default="1,2,3,4")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    os.makedirs(args.work, exist_ok=True)
    log = open(os.path.join(args.work, "tuning_bench.log"), "w")
    dev = torch.device("cuda")
    gpu = torch.cuda.get_device_name()
    print(f"tuning bench: {gpu}, torch {torch.__version__}", flush=True)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    res = {"gpu": gpu}
    k = args.kiln
    w = args.work
    torch.manual_seed(0)
    r50 = make("resnet50").eval().to(dev)
    r50_onnx = os.path.join(w, "resnet50_dyn.onnx")
    export(r50, r50_onnx, dev)

    def ref_of(model, n, seed):
        g = torch.Generator(device="cpu").manual_seed(seed)
        x = torch.randn(n, 3, 224, 224, generator=g)
        with torch.no_grad():
            y = model(x.to(dev)).float().cpu().numpy()
        path = os.path.join(w, f"x{n}_{seed}.npy")
        np.save(path, x.numpy())
        return path, y

    def kiln_out(plan, xpath, tag):
        od = os.path.join(w, f"out_{tag}")
        os.makedirs(od, exist_ok=True)
        out, _ = run([k, "run", plan, "--input", f"input={xpath}", "--output-dir", od], log,
                     env=dict(os.environ, KILN_LOG_LEVEL="verbose"))
        return np.load(os.path.join(od, "output.npy")), out

    # What timing at run time would log (the kernels also say when a shape is not the tuned one,
    # "untimed": that is planning, not timing).
    tuning_words = re.compile(r"autotuner|candidates timed|cudnnFind", re.I)

    if "1" in parts:
        cache = os.path.join(w, "r50.timing")
        if os.path.exists(cache):
            os.remove(cache)
        cold_plan, warm_plan = os.path.join(w, "r50_cold.plan"), os.path.join(w, "r50_warm.plan")
        for n in (128, 1):
            flags = ["--fp16", "--shapes", f"input:{n}x3x224x224", "--timing-cache", cache]
            out_c, cold_s = run([k, "build", r50_onnx, "-o", cold_plan] + flags, log)
            out_w, warm_s = run([k, "build", r50_onnx, "-o", warm_plan] + flags, log)
            tuned_c = re.search(r"tuned .*", out_c)
            tuned_w = re.search(r"tuned .*", out_w)
            same = filecmp.cmp(cold_plan, warm_plan, shallow=False)
            xpath, ref = ref_of(r50, n, 3)
            got, run_log = kiln_out(warm_plan, xpath, f"r50_b{n}")
            tuning_lines = [l for l in run_log.splitlines() if tuning_words.search(l)]
            row = {"batch": n, "cold_build_s": round(cold_s, 2), "warm_build_s": round(warm_s, 2),
                   "cold_tuning": tuned_c.group(0) if tuned_c else None,
                   "warm_tuning": tuned_w.group(0) if tuned_w else None,
                   "identical_bytes": same, "err_vs_torch_fp32": rel_err(got, ref),
                   "run_time_tuning_lines": tuning_lines[:5]}
            res[f"build_b{n}"] = row
            print("build:", json.dumps(row), flush=True)
            if n == 1:
                os.replace(warm_plan, os.path.join(w, "r50_b1.plan"))
            else:
                os.replace(warm_plan, os.path.join(w, "r50_b128.plan"))

    if "2" in parts:
        prof = os.path.join(w, "r50_prof.plan")
        fixed = os.path.join(w, "r50_b32.plan")
        run([k, "build", r50_onnx, "-o", prof, "--fp16", "--min-shapes", "input:1x3x224x224",
             "--opt-shapes", "input:32x3x224x224", "--max-shapes", "input:128x3x224x224"], log)
        run([k, "build", r50_onnx, "-o", fixed, "--fp16", "--shapes", "input:32x3x224x224"], log)
        rows = {}
        for n in (1, 7, 32, 128):
            xpath, ref = ref_of(r50, n, 10 + n)
            got, run_log = kiln_out(prof, xpath, f"prof_b{n}")
            rows[n] = {"err_vs_torch_fp32": rel_err(got, ref),
                       "run_time_tuning_lines": [l for l in run_log.splitlines() if tuning_words.search(l)][:3]}
        jp = bench_json(k, prof, w, "prof_b32", log, ["--shapes", "input:32x3x224x224"])
        jf = bench_json(k, fixed, w, "fixed_b32", log)
        res["profile"] = {"runs": rows, "profile_b32_ms": jp["gpu_compute_ms"]["median"],
                          "fixed_b32_ms": jf["gpu_compute_ms"]["median"]}
        res["profile"]["ratio"] = res["profile"]["profile_b32_ms"] / res["profile"]["fixed_b32_ms"]
        print("profile:", json.dumps(res["profile"]), flush=True)

    if "3" in parts:
        b1 = os.path.join(w, "r50_b1.plan")
        if not os.path.exists(b1):
            run([k, "build", r50_onnx, "-o", b1, "--fp16", "--shapes", "input:1x3x224x224"], log)
        one = bench_json(k, b1, w, "ctx1", log, ["--contexts", "1"])
        eight = bench_json(k, b1, w, "ctx8", log, ["--contexts", "8"])
        res["contexts"] = {"one": one["throughput_samples_per_s"],
                           "eight": eight["throughput_samples_per_s"]}
        res["contexts"]["ratio"] = res["contexts"]["eight"] / res["contexts"]["one"]
        print("contexts:", json.dumps(res["contexts"]), flush=True)

    if "4" in parts:
        lat = {}
        for name in ("resnet50", "mobilenet_v2"):
            torch.manual_seed(0)
            model = r50 if name == "resnet50" else make(name).eval().to(dev)
            onnx_path = r50_onnx if name == "resnet50" else os.path.join(w, f"{name}_dyn.onnx")
            export(model, onnx_path, dev)
            plan = os.path.join(w, f"{name}_b1_fp16.plan")
            run([k, "build", onnx_path, "-o", plan, "--fp16", "--shapes", "input:1x3x224x224"], log)
            xpath, ref = ref_of(model, 1, 5)
            got, _ = kiln_out(plan, xpath, f"{name}_b1")
            j = bench_json(k, plan, w, f"{name}_b1", log)
            # Where batch-1 time goes (each step's GPU time), for tuning_commands.log.
            run([k, "bench", plan, "--iterations", "50", "--profile"], log)
            row = {"kiln_ms": j["gpu_compute_ms"]["median"], "kiln_err": rel_err(got, ref)}
            mh = model.half().to(memory_format=torch.channels_last)
            xh = torch.randn(1, 3, 224, 224, device=dev).half().contiguous(memory_format=torch.channels_last)
            with torch.no_grad():
                for _ in range(5):
                    mh(xh)
                row["eager_fp16_ms"] = time_torch(lambda: mh(xh))
                if args.compile:
                    t0 = time.time()
                    cm = torch.compile(mh, mode="reduce-overhead")
                    for _ in range(5):
                        cm(xh)
                    torch.cuda.synchronize()
                    row["compile_s"] = time.time() - t0
                    row["compile_ro_ms"] = time_torch(lambda: cm(xh))
                    row["kiln_over_compile"] = row["kiln_ms"] / row["compile_ro_ms"]
            model.float()
            lat[name] = row
            print(f"latency {name}:", json.dumps(row), flush=True)
        res["latency_b1"] = lat

    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
