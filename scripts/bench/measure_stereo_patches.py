#!/usr/bin/env python3
"""How precisely the 9×9 ZNCC patches re-find a right pixel, against exact depth.

    .venv/bin/python scripts/bench/measure_stereo_patches.py BAG [--frames 6] [--samples 300]
        [--depth-bag BAG2] [--depth TOPIC]

BAG is a rectified stereo bag with an exact registered depth image: the metric replay bag of
scripts/fixtures/make_metric_bag.py (`target/test-fixtures/metric/metric.mcap` once the tests
ran, f = 250 px, B = 0.12 m, depth on /cam0/depth_m/image_raw). For random left pixels on
smooth surfaces (the 2×2 depth neighbours within 2 % of each other) with texture (patch grey
std ≥ 3), the exact disparity is f·B/z; the search scores 9×9 bilinear patches every 0.25 px
within ±1.5 px of it (ZNCC, as `geometry/stereo_guided.rs` with `stereo.refine_radius_px` 1.5),
keeps peaks inside the window with ZNCC ≥ 0.8 and refines them by a parabola, like imd. Prints
the found-minus-exact disparity: count, mean, median, σ, RMS, 90th and 99th percentile of |e|.
This is the σ_right that `stereo.right_pixel_sigma_px` stands for (docs/geometry.md). The same
by slant: the exact disparity's change from one row to the next (a floor seen at a grazing
angle changes fastest), where the 9×9 patch's rows see different disparities.

--sheared: the same pixels also with the right patch sheared by the surface's slant, as imd
does (`stereo.slant_radius_px`): by the exact slant, and by a plane through 8 neighbours within
3–15 px whose disparities carry 0.4 px of noise (a matcher's, before refinement).

The odometry loop keeps its depth in a second bag (scripts/fixtures/make_odom_fixtures.py):
    ... target/test-fixtures/odom/stereo.mcap --depth-bag target/test-fixtures/odom/rgbd.mcap \
        --depth /cam0/depth/image_raw
"""

import argparse
import io

import numpy as np
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from PIL import Image

STEP_PX, RADIUS_PX, PATCH_RADIUS, MIN_ZNCC, MIN_STD = 0.25, 1.5, 4, 0.8, 3.0


def read_frames(paths, topics):
    """stamp -> topic -> image (grey float for compressed, metres for depth), over `paths`."""
    frames = {}
    for path in paths:
        read_into(frames, path, topics)
    return [f for _, f in sorted(frames.items()) if len(f) == len(topics)]


def read_into(frames, path, topics):
    with open(path, "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        for _, channel, _, m in reader.iter_decoded_messages(topics=list(topics)):
            stamp = m.header.stamp.sec * 10**9 + m.header.stamp.nanosec
            if channel.topic.endswith("compressed"):
                img = np.asarray(Image.open(io.BytesIO(bytes(m.data))).convert("L"), float)
            elif m.encoding == "32FC1":
                img = np.frombuffer(bytes(m.data), "<f4").reshape(m.height, m.width).astype(float)
            else:
                img = np.frombuffer(bytes(m.data), "<u2").reshape(m.height, m.width) / 1000.0
                img[img == 0] = np.nan
            frames.setdefault(stamp, {})[channel.topic] = img


def bilinear(img, x, y):
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    ax, ay = x - x0, y - y0
    return (img[y0, x0] * (1 - ax) * (1 - ay) + img[y0, x0 + 1] * ax * (1 - ay)
            + img[y0 + 1, x0] * (1 - ax) * ay + img[y0 + 1, x0 + 1] * ax * ay)


def patch(img, cx, cy, gx=0.0, gy=0.0):
    """The patch around (cx, cy); with a disparity gradient (gx, gy) px per px, the right
    image's patch of a slanted surface: the sample for offset (dx, dy) sits at that offset's
    own disparity."""
    r = range(-PATCH_RADIUS, PATCH_RADIUS + 1)
    return np.array([bilinear(img, cx + dx - gx * dx - gy * dy, cy + dy) for dy in r for dx in r])


def zncc(a, b):
    a, b = a - a.mean(), b - b.mean()
    d = np.sqrt((a * a).sum() * (b * b).sum())
    return (a * b).sum() / d if d > 0 else -1.0


def found_disparity_error(lp, right, u, v, d, gradient):
    """Found minus exact disparity `d` with the right patch sheared by `gradient`, or None."""
    offsets = np.arange(-RADIUS_PX, RADIUS_PX + 1e-9, STEP_PX)
    scores = np.array([zncc(lp, patch(right, u - d + o, v, *gradient)) for o in offsets])
    k = int(np.argmax(scores))
    if k in (0, len(offsets) - 1) or scores[k] < MIN_ZNCC:
        return None
    curvature = scores[k - 1] - 2 * scores[k] + scores[k + 1]
    shift = 0.5 * (scores[k - 1] - scores[k + 1]) / curvature if curvature < 0 else 0.0
    # The right pixel moved by +o is a disparity smaller by o.
    return -(offsets[k] + STEP_PX * shift)


def neighbours_plane(disparity, u, v, rng, noise_px=0.4):
    """Disparity gradient of a least-squares plane through 8 neighbours 3-15 px from (u, v)
    whose disparities carry `noise_px` of noise, or None."""
    pts = []
    for _ in range(60):
        a, r = rng.uniform(0, 2 * np.pi), rng.uniform(3, 15)
        x, y = u + r * np.cos(a), v + r * np.sin(a)
        dv = disparity(x, y)
        if dv is not None and np.isfinite(dv):
            pts.append((x - u, y - v, dv + rng.normal(0, noise_px)))
        if len(pts) == 8:
            break
    if len(pts) < 5:
        return None
    p = np.array(pts)
    fit = np.linalg.lstsq(np.c_[p[:, 0], p[:, 1], np.ones(len(p))], p[:, 2], rcond=None)[0]
    return fit[0], fit[1]


def disparity_error(left, right, depth, u, v, f, baseline, rng, sheared=False):
    """(found minus exact disparity for square patches [, sheared by the exact slant, sheared
    by the neighbours' plane], exact disparity change per row) at (u, v), or None where imd
    would not decide (with --sheared: where any of them would not)."""
    z = bilinear(depth, u, v)
    near = depth[int(v):int(v) + 2, int(u):int(u) + 2]
    if not np.isfinite(z) or not np.all(np.isfinite(near)) or np.ptp(near) > 0.02 * z:
        return None
    h, w = depth.shape

    def disparity(x, y):
        inside = 0 <= x < w - 1 and 0 <= y < h - 1
        return f * baseline / bilinear(depth, x, y) if inside else None

    d = f * baseline / z
    lp = patch(left, u, v)
    if lp.std() < MIN_STD:
        return None
    gx = 0.5 * (disparity(u + 1, v) - disparity(u - 1, v))
    gy = 0.5 * (disparity(u, v + 1) - disparity(u, v - 1))
    gradients = [(0.0, 0.0)]
    if sheared:
        plane = neighbours_plane(disparity, u, v, rng)
        if plane is None or not (np.isfinite(gx) and np.isfinite(gy)):
            return None
        gradients += [(gx, gy), plane]
    errors = [found_disparity_error(lp, right, u, v, d, g) for g in gradients]
    if any(e is None for e in errors):
        return None
    return errors, abs(gy)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bag")
    ap.add_argument("--left", default="/cam0/image_raw/compressed")
    ap.add_argument("--right", default="/cam0/right/image_raw/compressed")
    ap.add_argument("--depth", default="/cam0/depth_m/image_raw")
    ap.add_argument("--depth-bag", help="the bag holding --depth, when not BAG")
    ap.add_argument("--focal", type=float, default=250.0)
    ap.add_argument("--baseline", type=float, default=0.12)
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--samples", type=int, default=300, help="pixels tried per frame")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sheared", action="store_true",
                    help="also shear the right patch by the exact slant and by a neighbours' plane")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    errors, slants = [], []
    bags = [args.bag] + ([args.depth_bag] if args.depth_bag else [])
    frames = read_frames(bags, (args.left, args.right, args.depth))
    # Spread over the sequence (a loop's frames differ more than its first few).
    step = max(1, len(frames) // max(1, args.frames))
    for frame in frames[::step][:args.frames]:
        left, right, depth = frame[args.left], frame[args.right], frame[args.depth]
        h, w = left.shape
        for _ in range(args.samples):
            # Away from the borders: the patch and the whole search window stay inside.
            u, v = rng.uniform(20, w - 40), rng.uniform(10, h - 10)
            e = disparity_error(left, right, depth, u, v, args.focal, args.baseline, rng,
                                args.sheared)
            if e is not None:
                errors.append(e[0])
                slants.append(e[1])
    if not errors:
        raise SystemExit(f"{args.bag}: no pixel decided (topics {args.left}, {args.right}, "
                         f"{args.depth}?)")
    g = np.array(slants)
    names = ["square patches", "sheared by the exact slant", "sheared by a neighbours' plane"]
    for name, e in zip(names, np.array(errors).T):
        report(f"{args.bag}, {name}", e, g)


def report(title, e, g):
    a = np.abs(e)
    print(f"{title}: {e.size} pixels; disparity error mean {e.mean():+.3f} px, median "
          f"{np.median(e):+.3f}, sigma {e.std():.3f}, rms {np.sqrt((e * e).mean()):.3f}, "
          f"|e| p90 {np.percentile(a, 90):.3f}, p99 {np.percentile(a, 99):.3f}")
    for lo, hi in ((0.0, 0.02), (0.02, 0.05), (0.05, 0.1), (0.1, np.inf)):
        sel = (g >= lo) & (g < hi)
        if sel.sum() >= 5:
            print(f"  disparity change {lo:.2f}-{hi:.2f} px/row: {sel.sum()} pixels, mean "
                  f"{e[sel].mean():+.3f}, sigma {e[sel].std():.3f}, p99 "
                  f"{np.percentile(a[sel], 99):.3f}")


if __name__ == "__main__":
    main()
