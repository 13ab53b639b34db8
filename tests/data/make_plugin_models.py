#!/usr/bin/python3
"""Writes tiny models whose nodes are kiln's example plugins (examples/plugins, ONNX domain
kiln.examples), with inputs and the outputs a NumPy reference computes, for
tests/unit/plugin_test.cc and the CLI tests.

  plugin_detect.onnx   head [batch, 3*(5+4), 8, 8] -> Mul(1.5) -> YoloDecode (raw head, 3 anchors,
                       stride 8) -> BatchedNMS (per class, iou 0.5, score 0.3, 20 detections).
                       Outputs boxes, scores, num_detections, det_boxes, det_scores, det_classes.
                       plugin_detect_input.npy is a batch of 2; plugin_detect_<output>.npy.
  plugin_rows.onnx     rows [batch, 40, 5+3] (cx, cy, w, h, obj and class logits) -> YoloDecode
                       (sigmoid=1) -> BatchedNMS (class agnostic, iou 0.4, score 0.2, 30 detections: fewer are found).
                       plugin_rows_input.npy, plugin_rows_<output>.npy.

The NMS reference follows torchvision.ops.batched_nms (torchvision is not installed here): per
image, candidates (box, class) with score > threshold, by score descending (equal scores: by
box*C + class ascending), a candidate suppressed by a kept one of its class (of any class when
class agnostic) with IoU > threshold, areas (x2-x1)*(y2-y1) unclamped, intersection clamped.
Thresholds are the float32 values the ONNX attributes hold. Everything in float64.

    /usr/bin/python3 tests/data/make_plugin_models.py
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
DOMAIN = "kiln.examples"
rng = np.random.default_rng(15)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def decode_head(x, anchors, stride):
    n, ch, h, w = x.shape
    a = len(anchors) // 2
    c = ch // a - 5
    t = sigmoid(x.astype(np.float64)).reshape(n, a, 5 + c, h, w)
    gy, gx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    aw = np.array(anchors[0::2], dtype=np.float64).reshape(1, a, 1, 1)
    ah = np.array(anchors[1::2], dtype=np.float64).reshape(1, a, 1, 1)
    cx = (2 * t[:, :, 0] - 0.5 + gx) * stride
    cy = (2 * t[:, :, 1] - 0.5 + gy) * stride
    bw = (2 * t[:, :, 2]) ** 2 * aw
    bh = (2 * t[:, :, 3]) ** 2 * ah
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1)  # [n, a, h, w, 4]
    scores = np.moveaxis(t[:, :, 5:] * t[:, :, 4:5], 2, -1)                   # [n, a, h, w, c]
    return (boxes.reshape(n, a * h * w, 4).astype(np.float32),
            scores.reshape(n, a * h * w, c).astype(np.float32))


def decode_rows(x):
    x = x.astype(np.float64)
    cx, cy, w, h = x[..., 0], x[..., 1], x[..., 2], x[..., 3]
    obj = sigmoid(x[..., 4:5])
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
    return boxes.astype(np.float32), (sigmoid(x[..., 5:]) * obj).astype(np.float32)


def iou(a, b):
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def nms(boxes, scores, iou_t, score_t, max_det, agnostic):
    iou_t = float(np.float32(iou_t))
    score_t = float(np.float32(score_t))
    n, b, c = scores.shape
    num = np.zeros([n], np.int32)
    ob = np.zeros([n, max_det, 4], np.float32)
    osc = np.zeros([n, max_det], np.float32)
    ocl = np.full([n, max_det], -1, np.int32)
    for i in range(n):
        flat = scores[i].reshape(-1).astype(np.float64)
        cand = np.nonzero(flat > score_t)[0]
        order = cand[np.lexsort((cand, -flat[cand]))]
        kept = []
        for k in order:
            if len(kept) == max_det:
                break
            if any((agnostic or q % c == k % c) and iou(boxes[i, q // c], boxes[i, k // c]) > iou_t
                   for q in kept):
                continue
            j = len(kept)
            ob[i, j] = boxes[i, k // c]
            osc[i, j] = scores[i].reshape(-1)[k]
            ocl[i, j] = k % c
            kept.append(k)
        num[i] = len(kept)
    return num, ob, osc, ocl


def nms_node(boxes, scores, prefix, **attrs):
    outs = ["num_detections", "det_boxes", "det_scores", "det_classes"]
    return helper.make_node("BatchedNMS", [boxes, scores], outs, name=prefix + "nms",
                            domain=DOMAIN, **attrs), outs


def save(name, graph, feeds, results):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid(DOMAIN, 1)])
    model.ir_version = 8
    onnx.save(model, os.path.join(HERE, name + ".onnx"))
    np.save(os.path.join(HERE, name + "_input.npy"), feeds)
    for k, v in results.items():
        np.save(os.path.join(HERE, f"{name}_{k}.npy"), v)


def detect():
    anchors, stride, a, c, h, w = [10.0, 13.0, 16.0, 30.0, 33.0, 23.0], 8.0, 3, 4, 8, 8
    iou_t, score_t, max_det = 0.5, 0.3, 20
    x = (rng.standard_normal([2, a * (5 + c), h, w]) * 1.5).astype(np.float32)
    scale = helper.make_tensor("scale", TensorProto.FLOAT, [], [1.5])
    nodes = [
        helper.make_node("Mul", ["head", "scale"], ["scaled"], name="scale"),
        helper.make_node("YoloDecode", ["scaled"], ["boxes", "scores"], name="decode",
                         domain=DOMAIN, anchors=anchors, stride=stride),
    ]
    nms_n, outs = nms_node("boxes", "scores", "", iou_threshold=iou_t, score_threshold=score_t,
                         max_detections=max_det)
    nodes.append(nms_n)
    nb = a * h * w
    graph = helper.make_graph(
        nodes, "plugin_detect",
        [helper.make_tensor_value_info("head", TensorProto.FLOAT, ["batch", a * (5 + c), h, w])],
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["batch", nb, 4]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", nb, c]),
         helper.make_tensor_value_info(outs[0], TensorProto.INT32, ["batch"]),
         helper.make_tensor_value_info(outs[1], TensorProto.FLOAT, ["batch", max_det, 4]),
         helper.make_tensor_value_info(outs[2], TensorProto.FLOAT, ["batch", max_det]),
         helper.make_tensor_value_info(outs[3], TensorProto.INT32, ["batch", max_det])],
        initializer=[scale])
    boxes, scores = decode_head((x.astype(np.float64) * 1.5).astype(np.float32), anchors, stride)
    num, ob, osc, ocl = nms(boxes, scores, iou_t, score_t, max_det, False)
    print("plugin_detect: detections per image", num)
    save("plugin_detect", graph, x, dict(boxes=boxes, scores=scores, num_detections=num,
                                         det_boxes=ob, det_scores=osc, det_classes=ocl))


def rows():
    n, b, c = 2, 40, 3
    iou_t, score_t, max_det = 0.4, 0.2, 30
    centers = rng.uniform(0, 64, [n, b, 2])
    sizes = rng.uniform(4, 24, [n, b, 2])
    logits = rng.standard_normal([n, b, 1 + c]) * 2
    x = np.concatenate([centers, sizes, logits], -1).astype(np.float32)
    nodes = [helper.make_node("YoloDecode", ["rows"], ["boxes", "scores"], name="decode",
                              domain=DOMAIN, sigmoid=1)]
    nms_n, outs = nms_node("boxes", "scores", "", iou_threshold=iou_t, score_threshold=score_t,
                         max_detections=max_det, class_agnostic=1)
    nodes.append(nms_n)
    graph = helper.make_graph(
        nodes, "plugin_rows",
        [helper.make_tensor_value_info("rows", TensorProto.FLOAT, ["batch", b, 5 + c])],
        [helper.make_tensor_value_info(o, t, None) for o, t in zip(
            outs, [TensorProto.INT32, TensorProto.FLOAT, TensorProto.FLOAT, TensorProto.INT32])])
    boxes, scores = decode_rows(x)
    num, ob, osc, ocl = nms(boxes, scores, iou_t, score_t, max_det, True)
    print("plugin_rows: detections per image", num)
    save("plugin_rows", graph, x, dict(num_detections=num, det_boxes=ob, det_scores=osc,
                                       det_classes=ocl))


if __name__ == "__main__":
    detect()
    rows()
