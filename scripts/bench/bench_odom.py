#!/usr/bin/env python3
"""Odometry benchmark: imd's chained metric trajectory vs OpenCV SIFT + PnP, against ground truth.

Inputs: a sequence of scripts/fixtures/make_odom_fixtures.py (rgbd.mcap or stereo.mcap + odom.json)
and the output bag of `imd replay` on it. Both trajectories are base_link poses in `odom` (base_link
at the first frame), compared with the ground truth's, on the same frames:

  imd       `/imd_matcher/odom` (nav_msgs/Odometry, frame odom, child base_link), or with
            --chain-keyframe-relative the keyframe-relative `/imd_matcher/odometry` chained here:
            odom <- keyframe <- current in the optical frame, then through the mount
            (base_link -> optical from the ground truth's TF), T_base = M T_opt0_opt M^-1.
            A frame whose pose is not metric (monocular fallback: position variance >= 1e5) or
            missing (lost) holds the last pose; such frames are counted.
  baseline  what a user would write without imd: OpenCV SIFT (cv2.SIFT_create, 2000 features)
            on every frame, matched to the keyframe (brute-force L2, Lowe ratio 0.8), keyframe
            points lifted with the depth image (RGB-D: nearest pixel, 0 / edges rejected) or
            triangulated from the keyframe's own left/right SIFT matches (stereo: rectified rows
            within 1 px, disparity >= 1 px, z = f B / d), cv2.solvePnPRansac (2 px, 0.9999,
            1000 iterations, EPnP) + cv2.solvePnPRefineLM on the inliers, chained frame to
            keyframe exactly like imd with the SAME keyframes imd chose (read from the
            `header.frame_id` of imd's `/imd_matcher/odometry`, `cam0/keyframe/<sec>.<nsec>`).
            A failed PnP (< 12 inliers) holds the last pose.

Metrics per trajectory: ATE (position RMSE and max, no alignment: both start at the ground
truth's origin, as a robot's odom does), end-point error (the sequence ends where it started)
as % of the path length, RPE over 1 m of path (translation error of the relative motion as % of
the segment, mean / RMSE / max; rotation deg/m), rotation error at the end. Timing: imd's median
frame latency from the replay log (--imd-log), the baseline's median time per frame here.

Writes JSON (--json) and prints a table. Run through scripts/bench/bench_odom.sh.
"""

import argparse
import json
import math
import os
import re
import sys
import time

import cv2
import numpy as np
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from imd_scripts import se3, write_json  # noqa: E402

ODOMETRY = "/imd_matcher/odometry"
ODOM = "/imd_matcher/odom"
UNKNOWN_VAR = 1e5  # position variance at or above this: not metric (monocular or lost)
KEYFRAME_RE = re.compile(r"^(?P<cam>.+)/keyframe/(?P<sec>\d+)\.(?P<nsec>\d{9})$")


# ---------------------------------------------------------------------------------------------
# Poses


def quat_matrix(x, y, z, w):
    n = math.sqrt(x * x + y * y + z * z + w * w)
    x, y, z, w = x / n, y / n, z / n, w / n
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def pose_msg_matrix(p):
    q = p.orientation
    return se3(quat_matrix(q.x, q.y, q.z, q.w), [p.position.x, p.position.y, p.position.z])


def rot_deg(r):
    return math.degrees(math.acos(max(-1.0, min(1.0, (np.trace(r) - 1) / 2))))


def ns(stamp):
    return int(stamp.sec) * 10**9 + int(stamp.nanosec)


def json_ns(stamp):
    return int(stamp["sec"]) * 10**9 + int(stamp["nanosec"])


# ---------------------------------------------------------------------------------------------
# Ground truth and bags


class GroundTruth:
    def __init__(self, path):
        with open(path) as f:
            gt = json.load(f)
        self.raw = gt
        self.stamps = [json_ns(b["stamp"]) for b in gt["base_link"]]
        self.base = [np.array(b["matrix"]).reshape(4, 4) for b in gt["base_link"]]
        self.index = {s: i for i, s in enumerate(self.stamps)}
        self.mount = np.array(gt["mount"]["base_link_to_optical"]["matrix"]).reshape(4, 4)
        i = gt["intrinsics"]
        self.k = np.array([[i["fx"], 0, i["cx"]], [0, i["fy"], i["cy"]], [0, 0, 1.0]])
        self.baseline = gt["baseline_m"]
        self.topics = gt["topics"]
        self.path = np.concatenate([[0.0], np.cumsum([
            np.linalg.norm(b[:3, 3] - a[:3, 3]) for a, b in zip(self.base, self.base[1:])])])


def read_messages(path, topics):
    out = []
    with open(path, "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        for _, channel, message, decoded in reader.iter_decoded_messages(
                topics=topics, log_time_order=True):
            out.append((channel.topic, message.log_time, decoded))
    return out


def keyframe_stamp(frame_id):
    m = KEYFRAME_RE.match(frame_id)
    if not m:
        raise ValueError(f"not a keyframe frame name: {frame_id!r}")
    return int(m["sec"]) * 10**9 + int(m["nsec"])


def read_imd(path, gt, chain):
    """imd's trajectory (stamp -> base_link in odom), its keyframe per frame, and counts."""
    msgs = read_messages(path, [ODOMETRY, ODOM])
    keyframe_of, relative = {}, {}
    odom = {}
    for topic, _, m in msgs:
        s = ns(m.header.stamp)
        if topic == ODOMETRY:
            keyframe_of[s] = keyframe_stamp(m.header.frame_id)
            cov = m.pose.covariance
            metric = cov[0] + cov[7] + cov[14] < UNKNOWN_VAR
            relative[s] = (pose_msg_matrix(m.pose.pose), metric)
        else:
            assert m.header.frame_id == "odom" and m.child_frame_id == "base_link", (
                m.header.frame_id, m.child_frame_id)
            odom[s] = pose_msg_matrix(m.pose.pose)
    counts = {"odometry_messages": len(relative), "odom_messages": len(odom)}
    rel_metric = {s: r for s, (r, metric) in relative.items() if metric and keyframe_of[s] != s}
    if chain:
        traj, held = chain_relative(gt, keyframe_of, relative)
        counts["held_frames"] = held
    else:
        if not odom:
            sys.exit(f"{path}: no {ODOM} messages (use --chain-keyframe-relative before the "
                     "odom chain lands)")
        traj, last, held = {}, np.eye(4), 0
        for s in gt.stamps:
            if s in odom:
                last = odom[s]
            else:
                held += 1
            traj[s] = last
        counts["held_frames"] = held
    return traj, keyframe_of, counts, rel_metric


def chain_relative(gt, keyframe_of, relative):
    """Chain keyframe-relative optical poses into base_link poses in odom."""
    m, m_inv = gt.mount, np.linalg.inv(gt.mount)
    opt = {}  # stamp -> optical pose in the first optical frame
    last, held, traj = np.eye(4), 0, {}
    for s in gt.stamps:
        if s in relative:
            t_kf_cur, metric = relative[s]
            kf = keyframe_of[s]
            if kf == s:  # its own keyframe: the first frame, or a restart after being lost
                pose = last
                held += s != gt.stamps[0]
            elif metric and kf in opt:
                pose = opt[kf] @ t_kf_cur
            else:
                pose, held = last, held + 1
        else:
            pose, held = last, held + 1
        opt[s] = pose
        last = pose
        traj[s] = m @ pose @ m_inv
    return traj, held


def read_inputs(path, gt, stereo):
    """Per stamp: left grey image, and the depth image (m) or the right grey image."""
    t = gt.topics
    topics = [t["image"], t["right_image"] if stereo else t["depth"]]
    frames = {}
    for topic, _, m in read_messages(path, topics):
        s = ns(m.header.stamp)
        d = frames.setdefault(s, {})
        if topic in (t["image"], t.get("right_image")):
            img = cv2.imdecode(np.frombuffer(bytes(m.data), np.uint8), cv2.IMREAD_GRAYSCALE)
            d["right" if topic == t.get("right_image") else "left"] = img
        else:
            assert m.encoding == "16UC1" and not m.is_bigendian
            arr = np.frombuffer(bytes(m.data), "<u2").reshape(m.height, m.step // 2)[:, :m.width]
            d["depth"] = arr.astype(np.float64) / 1000.0
    return frames


# ---------------------------------------------------------------------------------------------
# Baseline: SIFT + PnP frame to keyframe


class Baseline:
    def __init__(self, gt, stereo, features=2000, ratio=0.8):
        self.gt, self.stereo, self.ratio = gt, stereo, ratio
        self.sift = cv2.SIFT_create(nfeatures=features)
        self.bf = cv2.BFMatcher(cv2.NORM_L2)
        self.k = gt.k

    def features(self, img):
        kps, desc = self.sift.detectAndCompute(img, None)
        return np.array([k.pt for k in kps], np.float64).reshape(-1, 2), desc

    def ratio_matches(self, d1, d2):
        if d1 is None or d2 is None or len(d1) < 2 or len(d2) < 2:
            return []
        out = []
        for pair in self.bf.knnMatch(d1, d2, k=2):
            if len(pair) == 2 and pair[0].distance < self.ratio * pair[1].distance:
                out.append((pair[0].queryIdx, pair[0].trainIdx))
        return out

    def keyframe(self, frame):
        """Keyframe: SIFT and a 3-D point (optical frame, m) per usable keypoint."""
        pts, desc = self.features(frame["left"])
        k = self.k
        xyz = np.full((len(pts), 3), np.nan)
        if self.stereo:
            rpts, rdesc = self.features(frame["right"])
            for i, j in self.ratio_matches(desc, rdesc):
                (ul, vl), (ur, vr) = pts[i], rpts[j]
                d = ul - ur
                if abs(vl - vr) <= 1.0 and d >= 1.0:
                    z = k[0, 0] * self.gt.baseline / d
                    xyz[i] = [(ul - k[0, 2]) / k[0, 0] * z, (vl - k[1, 2]) / k[1, 1] * z, z]
        else:
            depth = frame["depth"]
            h, w = depth.shape
            for i, (u, v) in enumerate(pts):
                c, r = int(round(u)), int(round(v))
                if not (1 <= c < w - 1 and 1 <= r < h - 1):
                    continue
                z = depth[r, c]
                win = depth[r - 1:r + 2, c - 1:c + 2]
                if z <= 0.1 or z > 10.0 or np.any(win <= 0) or np.max(np.abs(win - z)) > 0.05 * z:
                    continue
                xyz[i] = [(u - k[0, 2]) / k[0, 0] * z, (v - k[1, 2]) / k[1, 1] * z, z]
        return {"desc": desc, "xyz": xyz}

    def relative(self, kf, frame):
        """Current optical frame's pose in the keyframe's (4x4), or None."""
        pts, desc = self.features(frame["left"])
        obj, img = [], []
        for i, j in self.ratio_matches(kf["desc"], desc):
            if np.all(np.isfinite(kf["xyz"][i])):
                obj.append(kf["xyz"][i])
                img.append(pts[j])
        if len(obj) < 12:
            return None, len(obj), 0
        obj, img = np.array(obj), np.array(img)
        ok, rvec, tvec, inl = cv2.solvePnPRansac(
            obj, img, self.k, None, iterationsCount=1000, reprojectionError=2.0,
            confidence=0.9999, flags=cv2.SOLVEPNP_EPNP)
        if not ok or inl is None or len(inl) < 12:
            return None, len(obj), 0 if inl is None else len(inl)
        inl = inl.reshape(-1)
        rvec, tvec = cv2.solvePnPRefineLM(obj[inl], img[inl], self.k, None, rvec, tvec)
        t_cur_kf = se3(cv2.Rodrigues(rvec)[0], tvec)
        return np.linalg.inv(t_cur_kf), len(obj), len(inl)


def run_baseline(gt, frames, keyframe_of, stereo):
    base = Baseline(gt, stereo)
    m, m_inv = gt.mount, np.linalg.inv(gt.mount)
    opt, kfs, traj, rels = {}, {}, {}, {}
    last, held, times, inliers = np.eye(4), 0, [], []
    current_kf = gt.stamps[0]
    for s in gt.stamps:
        start = time.perf_counter()
        current_kf = keyframe_of.get(s, current_kf)
        if current_kf == s or current_kf not in opt:
            pose = last
        else:
            if current_kf not in kfs:
                kfs[current_kf] = base.keyframe(frames[current_kf])
            rel, _, n_inl = base.relative(kfs[current_kf], frames[s])
            inliers.append(n_inl)
            if rel is None:
                pose, held = last, held + 1
            else:
                pose = opt[current_kf] @ rel
                rels[s] = rel
        opt[s] = last = pose
        traj[s] = m @ pose @ m_inv
        times.append(time.perf_counter() - start)
    return traj, rels, {"held_frames": held, "keyframes": len(kfs),
                  "median_frame_ms": 1e3 * float(np.median(times)),
                  "median_pnp_inliers": float(np.median(inliers)) if inliers else 0.0}


# ---------------------------------------------------------------------------------------------
# Metrics


def metrics(gt, traj, segment_m=1.0):
    est = [traj[s] for s in gt.stamps]
    err = np.array([np.linalg.norm(e[:3, 3] - g[:3, 3]) for e, g in zip(est, gt.base)])
    length = float(gt.path[-1])
    end = float(err[-1])
    end_rot = rot_deg(gt.base[-1][:3, :3].T @ est[-1][:3, :3])
    rpe_t, rpe_r = [], []
    j = 0
    for i in range(len(est)):
        while j < len(est) and gt.path[j] - gt.path[i] < segment_m:
            j += 1
        if j >= len(est):
            break
        d = gt.path[j] - gt.path[i]
        g = np.linalg.inv(gt.base[i]) @ gt.base[j]
        e = np.linalg.inv(est[i]) @ est[j]
        delta = np.linalg.inv(g) @ e
        rpe_t.append(np.linalg.norm(delta[:3, 3]) / d)
        rpe_r.append(rot_deg(delta[:3, :3]) / d)
    rpe_t, rpe_r = np.array(rpe_t), np.array(rpe_r)
    return {
        "frames": len(est),
        "path_length_m": length,
        "ate_rmse_m": float(np.sqrt(np.mean(err ** 2))),
        "ate_max_m": float(err.max()),
        "end_error_m": end,
        "end_drift_pct": 100.0 * end / length,
        "end_rotation_deg": end_rot,
        "rpe_segment_m": segment_m,
        "rpe_segments": int(len(rpe_t)),
        "rpe_mean_pct": float(100 * rpe_t.mean()),
        "rpe_rmse_pct": float(100 * np.sqrt(np.mean(rpe_t ** 2))),
        "rpe_max_pct": float(100 * rpe_t.max()),
        "rpe_rot_mean_deg_per_m": float(rpe_r.mean()),
    }


def relative_errors(gt, keyframe_of, rels, min_m=0.1):
    """Keyframe-relative metric poses (optical frame) against the ground truth: translation error
    and scale error (| |t| - |t_gt| |) as % of the distance from the keyframe, over frames at
    least `min_m` from their keyframe; also the error at each keyframe segment's last frame."""
    m, m_inv = gt.mount, np.linalg.inv(gt.mount)
    rows, segment_end = [], {}
    for s, rel in rels.items():
        kf = keyframe_of[s]
        g = m_inv @ np.linalg.inv(gt.base[gt.index[kf]]) @ gt.base[gt.index[s]] @ m
        d = float(np.linalg.norm(g[:3, 3]))
        e = float(np.linalg.norm(rel[:3, 3] - g[:3, 3]))
        scale = abs(float(np.linalg.norm(rel[:3, 3])) - d)
        segment_end[kf] = (s, d, e) if s > segment_end.get(kf, (0,))[0] else segment_end[kf]
        if d >= min_m:
            rows.append((100 * e / d, 100 * scale / d, e))
    if not rows:
        return {"frames": 0}
    pct, scale_pct, err = (np.array(c) for c in zip(*rows))
    ends = [100 * e / d for _, d, e in segment_end.values() if d >= min_m]
    return {
        "frames": len(rows), "min_distance_m": min_m,
        "t_error_median_pct": float(np.median(pct)), "t_error_p90_pct": float(
            np.percentile(pct, 90)), "t_error_max_pct": float(pct.max()),
        "scale_error_median_pct": float(np.median(scale_pct)),
        "scale_error_max_pct": float(scale_pct.max()),
        "t_error_median_mm": float(1e3 * np.median(err)), "t_error_max_mm": float(1e3 * err.max()),
        "segment_end_median_pct": float(np.median(ends)) if ends else None,
        "segment_end_max_pct": float(max(ends)) if ends else None,
    }


def imd_latency_ms(log_path):
    if not log_path:
        return None
    with open(log_path) as f:
        m = re.search(r"latency median ([0-9.]+) ms", f.read())
    return float(m.group(1)) if m else None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--gt", required=True,
                   help="odom.json of scripts/fixtures/make_odom_fixtures.py")
    p.add_argument("--bag", required=True, help="the input bag (rgbd.mcap or stereo.mcap)")
    p.add_argument("--imd", required=True, help="imd replay's output .mcap")
    p.add_argument("--stereo", action="store_true", help="stereo sequence (else RGB-D)")
    p.add_argument("--chain-keyframe-relative", action="store_true",
                   help=f"chain {ODOMETRY} here instead of reading {ODOM}")
    p.add_argument("--imd-log", help="imd replay's log (for its median frame latency)")
    p.add_argument("--name", default=None)
    p.add_argument("--json", help="write the results here")
    p.add_argument("--segment-m", type=float, default=1.0)
    args = p.parse_args()

    gt = GroundTruth(args.gt)
    imd_traj, keyframe_of, imd_counts, imd_rels = read_imd(args.imd, gt, args.chain_keyframe_relative)
    frames = read_inputs(args.bag, gt, args.stereo)
    missing = [s for s in gt.stamps if s not in frames]
    assert not missing, f"{len(missing)} ground-truth frames not in {args.bag}"
    base_traj, base_rels, base_counts = run_baseline(gt, frames, keyframe_of, args.stereo)
    keyframes = sorted(set(keyframe_of.values()))
    res = {
        "sequence": args.name or ("stereo" if args.stereo else "rgbd"),
        "imd_source": ODOMETRY + " chained here" if args.chain_keyframe_relative else ODOM,
        "keyframes": len(keyframes),
        "keyframe_indices": [gt.index.get(s) for s in keyframes],
        "imd": dict(metrics(gt, imd_traj, args.segment_m), **imd_counts,
                    median_frame_ms=imd_latency_ms(args.imd_log)),
        "baseline": dict(metrics(gt, base_traj, args.segment_m), **base_counts),
    }
    res["imd"]["keyframe_relative"] = relative_errors(gt, keyframe_of, imd_rels)
    res["baseline"]["keyframe_relative"] = relative_errors(gt, keyframe_of, base_rels)
    res["ratio_imd_over_baseline"] = {
        k: (res["imd"][k] / res["baseline"][k] if res["baseline"][k] else None)
        for k in ("ate_rmse_m", "end_drift_pct", "rpe_mean_pct", "rpe_max_pct")}
    print_table([res])
    if args.json:
        write_json(args.json, res)


def print_table(results):
    print("| sequence | method | frames | keyframes | ATE RMSE (m) | ATE max (m) | end drift "
          "(% of path) | RPE 1 m mean / max (%) | end rotation (°) | held frames | ms/frame |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        for name in ("imd", "baseline"):
            m = r[name]
            ms = m.get("median_frame_ms")
            print(f"| {r['sequence']} | {name} | {m['frames']} | {r['keyframes']} | "
                  f"{m['ate_rmse_m']:.3f} | {m['ate_max_m']:.3f} | {m['end_drift_pct']:.2f} "
                  f"({m['end_error_m']:.3f} m / {m['path_length_m']:.2f} m) | "
                  f"{m['rpe_mean_pct']:.2f} / {m['rpe_max_pct']:.2f} | "
                  f"{m['end_rotation_deg']:.2f} | {m['held_frames']} | "
                  f"{'-' if ms is None else f'{ms:.0f}'} |")
        ratio = r["ratio_imd_over_baseline"]
        print(f"| {r['sequence']} | imd / baseline | | | {ratio['ate_rmse_m']:.2f} | | "
              f"{ratio['end_drift_pct']:.2f} | {ratio['rpe_mean_pct']:.2f} / "
              f"{ratio['rpe_max_pct']:.2f} | | | |")
    print()
    print("| sequence | method | keyframe-relative poses (>= 0.1 m) | translation error median "
          "/ p90 / max (% of distance) | scale error median / max (%) | segment end median / "
          "max (%) | error median / max (mm) |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        for name in ("imd", "baseline"):
            k = r[name]["keyframe_relative"]
            if not k["frames"]:
                continue
            print(f"| {r['sequence']} | {name} | {k['frames']} | {k['t_error_median_pct']:.2f} / "
                  f"{k['t_error_p90_pct']:.2f} / {k['t_error_max_pct']:.2f} | "
                  f"{k['scale_error_median_pct']:.2f} / {k['scale_error_max_pct']:.2f} | "
                  f"{k['segment_end_median_pct']:.2f} / {k['segment_end_max_pct']:.2f} | "
                  f"{k['t_error_median_mm']:.1f} / {k['t_error_max_mm']:.1f} |")


if __name__ == "__main__":
    main()
