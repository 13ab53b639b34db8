#!/usr/bin/env python3
"""Issue 13's GPU measurements (INT8), in one run on one GPU (shared/PERFORMANCE.md):

  1. ResNet-50 at batch 128: an FP16 plan and an INT8 plan (--fp16 --int8: int8 where a device
     tactic exists, float16 elsewhere) built side by side; calibration on 512 images (16 batches of
     32) timed as the INT8 build's wall time, then a rebuild with the calibration cache, which must
     not calibrate; both plans timed by `kiln bench` (GPU compute median, the same loop); each
     plan's top-1 agreement with PyTorch FP32 (TF32 off) on the same 128 inputs, and how many of
     its steps ran on the host.
  2. The Fashion-MNIST residual model (models/fashion_resnet.onnx) in INT8 on the GPU: the demo's
     INT8 and FP32 accuracy lines, to set beside the CPU's (ctest demo_fashion_mnist_int8).
  3. BERT-base (bench/peers.py's, sequence 128, batch 128): FP16 against INT8 (+FP16), calibrated
     on 4 batches of 32 random token ids; GPU compute and the outputs' error against PyTorch FP32.

Weights are torchvision's own initialisation (random, He-scaled), the images random normal: the
agreement figures say how far INT8 moves this network's decisions, not its ImageNet accuracy.

Usage: python3 bench/int8_bench.py --kiln build/tools/kiln/kiln [--work DIR] [--json FILE]
       [--parts 1,2] [--demo build/tools/demo/kiln_fashion_demo --data DIR]
"""
import argparse
import json
import os
import re
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tuning_bench as tb  # noqa: E402  (the same export, run and bench helpers)


def top1_agreement(a, b):
    return float(np.mean(np.argmax(a, axis=1) == np.argmax(b, axis=1)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--work", default="int8_work")
    ap.add_argument("--json")
    ap.add_argument("--parts", default="1,2,3")
    ap.add_argument("--demo")
    ap.add_argument("--data")
    ap.add_argument("--calib-batches", type=int, default=16, help="batches of 32 images (16: 512)")
    ap.add_argument("--no-rebuild", action="store_true", help="skip the rebuild with the cache")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    os.makedirs(args.work, exist_ok=True)
    w, k = args.work, args.kiln
    log = open(os.path.join(w, "int8_bench.log"), "w")
    dev = torch.device("cuda")
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    res = {"gpu": torch.cuda.get_device_name()}
    print(f"int8 bench: {res['gpu']}, torch {torch.__version__}", flush=True)

    if "1" in parts:
        torch.manual_seed(0)
        r50 = tb.make("resnet50").eval().to(dev)
        onnx_path = os.path.join(w, "resnet50_dyn.onnx")
        tb.export(r50, onnx_path, dev)
        calib = os.path.join(w, "calib")
        os.makedirs(calib, exist_ok=True)
        g = torch.Generator().manual_seed(1)
        for i in range(args.calib_batches):
            np.save(os.path.join(calib, f"batch{i:02d}.npy"),
                    torch.randn(32, 3, 224, 224, generator=g).numpy())
        x = torch.randn(128, 3, 224, 224, generator=torch.Generator().manual_seed(2))
        xpath = os.path.join(w, "x128.npy")
        np.save(xpath, x.numpy())
        with torch.no_grad():
            ref = r50(x.to(dev)).float().cpu().numpy()
        shapes = ["--shapes", "input:128x3x224x224"]
        fp16_plan, int8_plan = os.path.join(w, "r50_fp16.plan"), os.path.join(w, "r50_int8.plan")
        cache = os.path.join(w, "r50.calib")
        if os.path.exists(cache):
            os.remove(cache)
        tb.run([k, "build", onnx_path, "-o", fp16_plan, "--fp16"] + shapes, log)
        out_cal, calib_s = tb.run([k, "build", onnx_path, "-o", int8_plan, "--fp16", "--int8",
                                   "--calib", calib, "--calib-cache", cache] + shapes, log)
        out_re, rebuild_s = ("", None) if args.no_rebuild else tb.run(
            [k, "build", onnx_path, "-o", int8_plan, "--fp16", "--int8", "--calib-cache", cache] +
            shapes, log)
        # A plan with host steps would spend minutes in host convolutions at batch 128: say so
        # and time nothing.
        info, _ = tb.run([k, "inspect", int8_plan], log)
        host = re.search(r"host steps: .*", info)
        if not host or not host.group(0).startswith("host steps: 0 of"):
            res["resnet50_b128"] = {"error": "the INT8 plan has host steps",
                                    "host_steps": host.group(0) if host else None,
                                    "inspect_tail": info[-3000:]}
            print("resnet50 b128: INT8 plan has host steps:", host.group(0) if host else info[-800:],
                  flush=True)
            parts.discard("1")
        row = {"calibration_images": 32 * args.calib_batches,
               "int8_build_with_calibration_s": round(calib_s, 2),
               "int8_rebuild_with_cache_s": None if rebuild_s is None else round(rebuild_s, 2),
               "calibrated": f"calibration: batch {args.calib_batches}/{args.calib_batches}" in out_cal,
               "rebuild_calibrated": "calibration: batch" in out_re}
        for tag, plan in (("fp16", fp16_plan), ("int8", int8_plan)) if "1" in parts else ():
            j = tb.bench_json(k, plan, w, f"r50_{tag}", log)
            got, _ = kiln_out(k, plan, xpath, w, tag, log)
            bench_out, _ = tb.run([k, "bench", plan, "--iterations", "20"], log)
            host = re.search(r"host steps: .*", bench_out)
            row[tag] = {"gpu_compute_ms": j["gpu_compute_ms"]["median"],
                        "throughput_img_s": 128 / j["gpu_compute_ms"]["median"] * 1e3,
                        "top1_agreement_vs_torch_fp32": top1_agreement(got, ref),
                        "rel_err_vs_torch_fp32": tb.rel_err(got, ref),
                        "host_steps": host.group(0) if host else None}
        if "1" in parts:
            row["int8_over_fp16"] = row["fp16"]["gpu_compute_ms"] / row["int8"]["gpu_compute_ms"]
            # Per-step times of both plans, to set each int8 step beside its float16 twin.
            for tag, plan in (("int8", int8_plan), ("fp16", fp16_plan)):
                prof, _ = tb.run([k, "bench", plan, "--iterations", "20", "--profile"], log)
                with open(os.path.join(w, f"r50_{tag}_profile.txt"), "w") as f:
                    f.write(prof)
            res["resnet50_b128"] = row
            print("resnet50 b128:", json.dumps(row), flush=True)

    if "2" in parts and args.demo and args.data:
        out, _ = tb.run([args.demo, "--model", "models/fashion_resnet.onnx", "--data", args.data,
                         "--reference", "models/fashion_resnet.reference.json",
                         "--plan", os.path.join(w, "fashion_int8.plan"), "--int8"], log)
        res["fashion_int8_gpu"] = [l for l in out.splitlines() if l.startswith("demo:")]
        print("fashion:", json.dumps(res["fashion_int8_gpu"]), flush=True)

    if "3" in parts:
        import peers

        torch.manual_seed(0)
        bert, desc = peers.make_bert()
        bert = bert.eval().to(dev)
        onnx_path = os.path.join(w, "bert.onnx")
        ids = torch.randint(0, 30522, (128, peers.SEQ), generator=torch.Generator().manual_seed(3))
        if not os.path.exists(onnx_path):
            torch.onnx.export(bert, (ids[:2].to(dev),), onnx_path, input_names=["input"],
                              output_names=["output"], opset_version=17,
                              dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                              dynamo=False)
        calib = os.path.join(w, "bert_calib")
        os.makedirs(calib, exist_ok=True)
        g = torch.Generator().manual_seed(4)
        for i in range(4):
            np.save(os.path.join(calib, f"batch{i}.npy"),
                    torch.randint(0, 30522, (32, peers.SEQ), generator=g).numpy())
        xpath = os.path.join(w, "bert_ids.npy")
        np.save(xpath, ids.numpy())
        with torch.no_grad():
            ref = bert(ids.to(dev)).float().cpu().numpy()
        shapes = ["--shapes", f"input:128x{peers.SEQ}"]
        row = {"model": desc}
        for tag, extra in (("fp16", []), ("int8", ["--int8", "--calib", calib])):
            plan = os.path.join(w, f"bert_{tag}.plan")
            _, build_s = tb.run([k, "build", onnx_path, "-o", plan, "--fp16"] + extra + shapes, log)
            j = tb.bench_json(k, plan, w, f"bert_{tag}", log)
            got, _ = kiln_out(k, plan, xpath, w, f"bert_{tag}", log)
            info, _ = tb.run([k, "inspect", plan], log)
            host = re.search(r"host steps: .*", info)
            row[tag] = {"build_s": round(build_s, 2), "gpu_compute_ms": j["gpu_compute_ms"]["median"],
                        "rel_err_vs_torch_fp32": tb.rel_err(got, ref),
                        "int8_steps": len(re.findall(r"int8->", info)),
                        "host_steps": host.group(0) if host else None}
        row["int8_over_fp16"] = row["fp16"]["gpu_compute_ms"] / row["int8"]["gpu_compute_ms"]
        res["bert_b128"] = row
        print("bert b128:", json.dumps(row), flush=True)

    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


def kiln_out(k, plan, xpath, w, tag, log):
    od = os.path.join(w, f"out_{tag}")
    os.makedirs(od, exist_ok=True)
    out, _ = tb.run([k, "run", plan, "--input", f"input={xpath}", "--output-dir", od], log)
    return np.load(os.path.join(od, "output.npy")), out


if __name__ == "__main__":
    main()
