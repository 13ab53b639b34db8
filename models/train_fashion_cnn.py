#!/usr/bin/python3
"""Train kiln's demo model: a small residual CNN on Fashion-MNIST, exported to ONNX.

Run with Debian's interpreter (python3-torch, python3-onnx, python3-numpy):

    /usr/bin/python3 models/train_fashion_cnn.py

Outputs (in --out-dir, default: this script's directory):
    fashion_cnn.onnx               the model, opset 13, input "image" [batch,1,28,28]
                                   float32 in [0,1] (pixel/255), output "logits" [batch,10]
    fashion_cnn.reference.json     PyTorch's accuracy on the 10,000 test images
    fashion_cnn.sample_input.npy   first 8 test images, float32 [8,1,28,28]
    fashion_cnn.sample_logits.npy  PyTorch float32 logits for them, [8,10]

Input normalisation (subtract mean, divide by std) is the first op of the model,
so a consumer feeds raw pixel/255 values.
"""

import argparse
import gzip
import hashlib
import json
import os
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

OPSET = 13
# Fashion-MNIST training-set statistics of pixel/255 (fixed constants, baked into the graph).
MEAN = 0.2860
STD = 0.3530

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


# --------------------------------------------------------------------------- data

def read_idx(path):
    """Parse a (gzip-compressed) IDX file into a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file")
    dtype_code, ndim = data[2], data[3]
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4",
              0x0D: ">f4", 0x0E: ">f8"}
    if dtype_code not in dtypes:
        raise ValueError(f"{path}: unknown IDX dtype 0x{dtype_code:02x}")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    dtype = np.dtype(dtypes[dtype_code])
    count = int(np.prod(dims))
    if len(data) - offset != count * dtype.itemsize:
        raise ValueError(f"{path}: size mismatch (header says {dims})")
    return np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(dims)


def load_split(data_dir, split):
    images = read_idx(os.path.join(data_dir, f"{split}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, f"{split}-labels-idx1-ubyte.gz"))
    assert images.shape[0] == labels.shape[0] and images.shape[1:] == (28, 28)
    # float32 in [0,1], NCHW; exactly what kiln's demo computes as pixel/255.
    x = (images.astype(np.float32) / np.float32(255.0)).reshape(-1, 1, 28, 28)
    y = labels.astype(np.int64)
    return x, y


# --------------------------------------------------------------------------- model

class ResidualBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                nn.BatchNorm2d(cout))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class FashionCNN(nn.Module):
    """28x28 -> stem conv(1->16) -> maxpool 14x14 -> block(16) -> block(32, s2) 7x7
    -> block(64, s2) 4x4 -> global avg pool -> flatten -> linear(64->10)."""

    def __init__(self, width=16):
        super().__init__()
        w = width
        self.register_buffer("mean", torch.tensor([[[[MEAN]]]], dtype=torch.float32))
        self.register_buffer("std", torch.tensor([[[[STD]]]], dtype=torch.float32))
        self.stem = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1, bias=False),
            nn.BatchNorm2d(w),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2))
        self.block1 = ResidualBlock(w, w, 1)
        self.block2 = ResidualBlock(w, 2 * w, 2)
        self.block3 = ResidualBlock(2 * w, 4 * w, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * w, 10)

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = self.stem(x)
        x = self.block1(x)
        x = self.block2(x)
        x = self.block3(x)
        x = self.pool(x)
        x = torch.flatten(x, 1)
        return self.fc(x)


# --------------------------------------------------------------------------- helpers

def augment(xb, rng):
    """Random horizontal flips and shifts of up to 2 pixels (zero fill), per image."""
    n = xb.shape[0]
    flip = torch.from_numpy(rng.rand(n) < 0.5)
    xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
    padded = F.pad(xb, (2, 2, 2, 2))
    dy, dx = rng.randint(0, 5, n), rng.randint(0, 5, n)
    return torch.stack([padded[i, :, dy[i]:dy[i] + 28, dx[i]:dx[i] + 28] for i in range(n)])


def save_npy_v1(path, arr):
    with open(path, "wb") as f:
        np.lib.format.write_array(f, np.ascontiguousarray(arr), version=(1, 0),
                                  allow_pickle=False)


@torch.no_grad()
def predict_logits(model, x, batch=1000):
    model.eval()
    outs = []
    for i in range(0, len(x), batch):
        outs.append(model(torch.from_numpy(x[i:i + batch])).float().numpy())
    return np.concatenate(outs, axis=0)


def op_histogram(onnx_model):
    counts = {}
    for node in onnx_model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items()))


# --------------------------------------------------------------------------- main

def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist",
                    help="directory with {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz")
    ap.add_argument("--out-dir", default=here, help="output directory (default: %(default)s)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-train", type=int, default=0,
                    help="use only the first N training images (smoke tests; 0 = all)")
    ap.add_argument("--name", default="fashion_cnn",
                    help="output files' base name (default: %(default)s)")
    ap.add_argument("--width", type=int, default=16,
                    help="channels of the first stage (doubled per stage; default: %(default)s)")
    ap.add_argument("--augment", action="store_true",
                    help="random horizontal flips and shifts of up to 2 pixels while training")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    rng = np.random.RandomState(args.seed)

    t0 = time.time()
    x_train, y_train = load_split(args.data_dir, "train")
    x_test, y_test = load_split(args.data_dir, "t10k")
    if args.max_train > 0:
        x_train, y_train = x_train[:args.max_train], y_train[:args.max_train]
    print(f"data: train {x_train.shape} test {x_test.shape} from {args.data_dir}", flush=True)

    model = FashionCNN(args.width)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params} parameters; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads", flush=True)

    steps_per_epoch = (len(x_train) + args.batch_size - 1) // args.batch_size
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=steps_per_epoch)

    xt = torch.from_numpy(x_train)
    yt = torch.from_numpy(y_train)
    for epoch in range(1, args.epochs + 1):
        model.train()
        perm = torch.from_numpy(rng.permutation(len(x_train)))
        loss_sum, correct, seen = 0.0, 0, 0
        for step in range(steps_per_epoch):
            idx = perm[step * args.batch_size:(step + 1) * args.batch_size]
            xb, yb = xt[idx], yt[idx]
            if args.augment:
                xb = augment(xb, rng)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == yb).sum().item()
            seen += len(idx)
            if (step + 1) % 100 == 0:
                print(f"  epoch {epoch} step {step + 1}/{steps_per_epoch} "
                      f"loss {loss_sum / seen:.4f} acc {correct / seen:.4f} "
                      f"[{time.time() - t0:.0f}s]", flush=True)
        print(f"epoch {epoch}/{args.epochs}: loss {loss_sum / seen:.4f} "
              f"train acc {correct / seen:.4f} elapsed {time.time() - t0:.1f}s", flush=True)

    # ---- evaluate in eval mode, float32
    model.eval()
    logits = predict_logits(model, x_test)
    preds = logits.argmax(axis=1).astype(np.int64)
    n_correct = int((preds == y_test).sum())
    acc = n_correct / len(y_test)
    print(f"test accuracy (PyTorch, eval, float32): {acc:.4f} ({n_correct}/{len(y_test)})",
          flush=True)

    os.makedirs(args.out_dir, exist_ok=True)
    onnx_path = os.path.join(args.out_dir, f"{args.name}.onnx")

    # ---- export. TrainingMode.PRESERVE with the model in eval mode gives an
    # inference graph (BatchNormalization with running stats) but skips the
    # eval-mode peephole pass that would fold BatchNorm into the preceding Conv;
    # we keep BatchNormalization nodes on purpose so the graph exercises kiln's importer.
    dummy = torch.from_numpy(x_test[:2].copy())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*constant folding be turned off.*")
        torch.onnx.export(
            model, dummy, onnx_path,
            export_params=True,
            opset_version=OPSET,
            do_constant_folding=True,
            training=torch.onnx.TrainingMode.PRESERVE,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    assert not model.training

    import onnx
    m = onnx.load(onnx_path)
    onnx.checker.check_model(m)
    ops = op_histogram(m)
    opset = [(o.domain or "ai.onnx", o.version) for o in m.opset_import]
    print(f"onnx: {onnx_path} ({os.path.getsize(onnx_path)} bytes), opset {opset}", flush=True)
    print("onnx ops: " + ", ".join(f"{k} x{v}" for k, v in ops.items()), flush=True)
    required = ["Conv", "BatchNormalization", "Relu", "Add", "MaxPool",
                "GlobalAveragePool", "Flatten", "Gemm", "Sub", "Div"]
    missing = [op for op in required if op not in ops]
    if missing:
        sys.exit(f"error: exported graph lacks ops {missing}")

    # ---- reference outputs
    with open(onnx_path, "rb") as f:
        onnx_sha = hashlib.sha256(f.read()).hexdigest()
    ref = {
        "pytorch_accuracy": acc,
        "pytorch_correct": n_correct,
        "num_images": int(len(y_test)),
        "torch_version": torch.__version__,
        "onnx_version": onnx.__version__,
        "opset": OPSET,
        "predictions_sha256": hashlib.sha256(
            np.ascontiguousarray(preds, dtype="<i8").tobytes()).hexdigest(),
        "predictions_sha256_note": "sha256 of the argmax predictions for t10k in file "
                                   "order, as little-endian int64 bytes",
        "input_name": "image",
        "input_preprocessing": "pixel/255 as float32, NCHW [batch,1,28,28]; "
                               "the model normalises internally",
        "normalization": {"mean": MEAN, "std": STD},
        "output_name": "logits",
        "classes": CLASSES,
        "onnx_sha256": onnx_sha,
        "epochs": args.epochs,
        "width": args.width,
        "augment": bool(args.augment),
        "seed": args.seed,
        "onnx_ops": ops,
    }
    with open(os.path.join(args.out_dir, f"{args.name}.reference.json"), "w") as f:
        json.dump(ref, f, indent=2)
        f.write("\n")

    sample_x = np.ascontiguousarray(x_test[:8], dtype=np.float32)
    sample_logits = predict_logits(model, sample_x).astype(np.float32)
    save_npy_v1(os.path.join(args.out_dir, f"{args.name}.sample_input.npy"), sample_x)
    save_npy_v1(os.path.join(args.out_dir, f"{args.name}.sample_logits.npy"), sample_logits)
    print(f"sample: labels {y_test[:8].tolist()} preds {sample_logits.argmax(1).tolist()}")
    print(f"done in {time.time() - t0:.1f}s; outputs in {args.out_dir}", flush=True)


if __name__ == "__main__":
    main()
