"""A straightforward Python pipeline for recorded video, the peer `scripts/bench batch`
measures `vigil batch` against: OpenCV decodes, ONNX Runtime runs the same vehicle
detector Vigil runs (NanoDet, COCO, the file setup converted), roboflow `trackers`'
ByteTrack follows the boxes, a supervision LineZone counts vehicles crossing the camera's
stop line, and rapidocr reads the text on each crosser's crop. Nothing is written: no
evidence, no database. It is what one would build in an afternoon from the usual
libraries, not a tuned rival; its figures are wall time and what it found.

    batch_peer.py --detector nanodet_coco_416.onnx --camera junction.toml --threads 2 VIDEO...
"""

import argparse
import json
import sys
import time
import tomllib

import cv2
import numpy as np
import onnxruntime as ort
import supervision as sv
from rapidocr_onnxruntime import RapidOCR
from trackers import ByteTrackTracker

# COCO class indices of the vehicles Vigil tickets: car, motorcycle, bus, truck.
VEHICLES = np.array([2, 3, 5, 7])
MEAN = np.array([103.53, 116.28, 123.675], dtype=np.float32)
STD = np.array([57.375, 57.12, 58.395], dtype=np.float32)
STRIDES = (8, 16, 32)
# Vigil's camera configs give geometry on the analysed frame, 640 pixels wide.
CONFIG_WIDTH = 640.0


def centres(size):
    """Each anchor's cell centre and stride, level by level, row by row."""
    rows = []
    for s in STRIDES:
        n = -(-size // s)
        ys, xs = np.mgrid[0:n, 0:n]
        rows.append(np.stack([(xs.ravel() + 0.5) * s, (ys.ravel() + 0.5) * s, np.full(n * n, s)], 1))
    return np.concatenate(rows).astype(np.float32)


class Detector:
    def __init__(self, path, threads, confidence=0.25, iou=0.5):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.size = self.session.get_inputs()[0].shape[-1]
        self.anchors = centres(self.size)
        self.confidence, self.iou = confidence, iou

    def __call__(self, frame):
        h, w = frame.shape[:2]
        scale = min(self.size / w, self.size / h)
        nw, nh = round(w * scale), round(h * scale)
        canvas = np.full((self.size, self.size, 3), 114, np.uint8)
        px, py = (self.size - nw) // 2, (self.size - nh) // 2
        canvas[py : py + nh, px : px + nw] = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR)
        blob = ((canvas.astype(np.float32) - MEAN) / STD).transpose(2, 0, 1)[None]
        out = self.session.run(None, {self.input: blob})[0][0]
        scores = out[:, VEHICLES]
        best = scores.max(1)
        keep = best >= self.confidence
        if not keep.any():
            return sv.Detections.empty()
        out, best, kind = out[keep], best[keep], VEHICLES[scores[keep].argmax(1)]
        a = self.anchors[keep]
        logits = out[:, 80:].reshape(len(out), 4, -1)
        e = np.exp(logits - logits.max(2, keepdims=True))
        dist = (e * np.arange(logits.shape[2])).sum(2) / e.sum(2) * a[:, 2:3]
        boxes = np.stack([a[:, 0] - dist[:, 0], a[:, 1] - dist[:, 1], a[:, 0] + dist[:, 2], a[:, 1] + dist[:, 3]], 1)
        boxes = (boxes - [px, py, px, py]) / scale
        detections = sv.Detections(xyxy=boxes.astype(np.float32), confidence=best, class_id=kind)
        return detections.with_nms(threshold=self.iou, class_agnostic=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--detector", required=True)
    p.add_argument("--camera", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("videos", nargs="+")
    args = p.parse_args()
    camera = tomllib.load(open(args.camera, "rb"))
    fps_wanted = float(camera.get("analysis_fps", 5))
    line = camera["red_light"]["stop_line"]
    detector = Detector(args.detector, args.threads)
    ocr = RapidOCR(intra_op_num_threads=args.threads, inter_op_num_threads=1)
    started = time.monotonic()
    totals = {"videos": 0, "frames_decoded": 0, "frames_analysed": 0, "crossings": 0, "plates_read": 0, "texts": []}
    for video in args.videos:
        cap = cv2.VideoCapture(video)
        if not cap.isOpened():
            print(f"batch_peer: cannot open {video}", file=sys.stderr)
            return 1
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        width = cap.get(cv2.CAP_PROP_FRAME_WIDTH) or CONFIG_WIDTH
        k = width / CONFIG_WIDTH
        zone = sv.LineZone(start=sv.Point(line[0][0] * k, line[0][1] * k), end=sv.Point(line[1][0] * k, line[1][1] * k))
        tracker = ByteTrackTracker(frame_rate=fps_wanted, track_activation_threshold=0.25, high_conf_det_threshold=0.5)
        step, index, next_at = 1.0 / fps_wanted, 0, 0.0
        while True:
            # Thinned before conversion: grab() decodes, retrieve() converts to BGR.
            if not cap.grab():
                break
            t = index / fps
            index += 1
            if t + 1e-6 < next_at:
                continue
            next_at += step
            ok, frame = cap.retrieve()
            if not ok:
                break
            totals["frames_analysed"] += 1
            tracked = tracker.update(detector(frame))
            tracked = tracked[tracked.tracker_id >= 0] if tracked.tracker_id is not None else tracked
            crossed_in, crossed_out = zone.trigger(tracked)
            for i in np.flatnonzero(crossed_in | crossed_out):
                x1, y1, x2, y2 = tracked.xyxy[i].astype(int)
                crop = frame[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)]
                totals["crossings"] += 1
                if crop.size:
                    found, _ = ocr(crop)
                    if found:
                        totals["plates_read"] += 1
                        totals["texts"].append(" ".join(text for _, text, _ in found))
        totals["frames_decoded"] += index
        totals["videos"] += 1
        cap.release()
    totals["seconds"] = round(time.monotonic() - started, 3)
    print(json.dumps(totals))
    return 0


if __name__ == "__main__":
    sys.exit(main())
