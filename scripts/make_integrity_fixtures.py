#!/usr/bin/env python3
"""Write the tracker-integrity sequences: a closed textured room rendered from known poses, one
camera per bag, each sequence built to provoke a confident wrong pose.

The room is the replay fixture's (scripts/make_replay_fixtures.py: back wall, floor, left and
right walls) closed by a front wall and a ceiling, so the camera can turn to a view that
overlaps nothing it saw before. Textures are scikit-image's photos; the walls a test looks at
most carry the photos the demo model never saw in training (coffee, rocket, the motorcycle
pair). Rendering, camera model (pinhole, f = 250 at 320x240) and message layout are the replay
fixture's; images are JPEG CompressedImage + CameraInfo at 10 Hz on /cam0/*.

Sequences (tests/fixtures/integrity/<name>.mcap + <name>.json, the same ground-truth schema as
tests/fixtures/replay/sequence.json plus a per-frame "degraded" tag):

  jump       slow pan over the back wall; jumps to the front wall (no overlap with anything
             seen), pans there; jumps back near a stored place; jumps to the left wall (new
             again); jumps back to the back wall once more.
  fast_turn  an in-place turn that accelerates from 2 to 40 degrees per frame, so consecutive
             frames run out of overlap (horizontal field of view 65 degrees).
  roll       a hand-held roll from 0 to 90 degrees in 4.5 degree steps, with small position and
             yaw/pitch jitter.
  exposure   a slow pan with black, over-exposed, uniform grey and motion-blurred frames in it
             (tagged "black", "overexposed", "uniform", "blur").
  repeated   a sideways walk along a wall tiled with one small texture (repeated pattern).
  static     a camera that does not move, 15 frames, fresh sensor noise on each.

And one sequence that is NOT an integrity test: calibration (the covariance calibration's data,
tests/it/pipeline/integrity.rs `integrity_calibration_demo_model`): the same room re-textured
with training photos only (brick, astronaut, gravel, grass, page, camera, coins), 40 frames of slow pans,
tilts and rolls with small translations, the near-rotational motion the covariance must be
honest on, so the calibration never sees the evaluation sequences.

Run: .venv/bin/python scripts/make_integrity_fixtures.py [--out DIR]
"""

import argparse
import json
import math
import os
import sys

import cv2
import numpy as np
from mcap.writer import CompressionType
from skimage import data as skdata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_replay_fixtures as room  # noqa: E402  (renderer, camera and message layout)
from make_bag_fixtures import BagWriter  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "integrity")
W, H = room.W, room.H
T0 = room.T0
PERIOD = room.PERIOD
NAME = "cam0"

# The replay room closed by a front wall (z = -3, seen when turning around) and a ceiling.
PLANES = room.PLANES + [
    {"name": "front", "origin": [5.0, -4.0, -3.0], "u": [-1.0, 0.0, 0.0], "v": [0.0, 1.0, 0.0],
     "size": [10.0, 5.5]},
    {"name": "ceiling", "origin": [-5.0, -4.0, 7.0], "u": [1.0, 0.0, 0.0], "v": [0.0, 0.0, -1.0],
     "size": [10.0, 10.0]},
]


def textures():
    tex = room.textures()
    tex["front"] = np.ascontiguousarray(skdata.stereo_motorcycle()[1][:, ::-1])
    tex["ceiling"] = np.ascontiguousarray(skdata.rocket()[::-1])
    return tex


def repeated_textures():
    """The back wall tiled 12 x 6 with one 64 x 64 crop of coffee (a repeated pattern)."""
    tex = textures()
    tile = cv2.resize(skdata.coffee()[100:228, 200:328], (64, 64), interpolation=cv2.INTER_AREA)
    tex["back"] = np.tile(tile, (6, 12, 1))
    return tex


def calibration_textures():
    """Every wall re-textured with training photos (never the held-out ones)."""
    import skimage
    import skimage.io

    def photo(name):
        img = skimage.io.imread(os.path.join(os.path.dirname(skimage.__file__), "data", name))
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        return np.ascontiguousarray(img[..., :3].astype(np.uint8))

    return {"back": np.concatenate([photo("brick.png"), photo("astronaut.png")], axis=1),
            "floor": photo("gravel.png"), "left": photo("grass.png"), "right": photo("page.png"),
            "front": photo("camera.png"), "ceiling": photo("coins.png")}


def seq_calibration(k):
    """40 frames: pan right, tilt, roll back and forth, small translations."""
    c = [-1.0 + 0.015 * k, -0.4 + 0.005 * math.sin(k / 3), 1.0 + 0.01 * k]
    yaw = 6.0 * math.sin(k / 6)
    pitch = 6.0 + 4.0 * math.sin(k / 9)
    roll = 12.0 * math.sin(k / 7)
    return room.pose(c, yaw, pitch, roll)


def jitter(k, amp, seed):
    return amp * math.sin(0.9 * k + seed) + 0.5 * amp * math.sin(2.3 * k + 2 * seed)


def seq_jump(k):
    """24 frames: back wall (0-7), front wall (8-11), back again (12-15), left wall (16-18),
    back wall (19-23)."""
    if k < 8:
        return room.pose([-1.5 + 0.05 * k, -0.3, 0.5], -8.0 + 1.5 * k, 8.0, 0.0)
    if k < 12:
        j = k - 8
        return room.pose([-1.0 + 0.05 * j, -0.3, 1.0], 180.0 + 1.5 * j, 6.0, 0.0)
    if k < 16:
        j = k - 12
        return room.pose([-1.4 + 0.05 * j, -0.3, 0.6], -5.0 + 1.2 * j, 8.0, 0.0)
    if k < 19:
        j = k - 16
        return room.pose([0.5, -0.3, 2.0], -90.0 + 1.5 * j, 5.0, 0.0)
    j = k - 19
    return room.pose([-1.2 + 0.05 * j, -0.3, 0.7], -2.0 + 1.0 * j, 8.0, 0.0)


def seq_fast_turn(k):
    """18 frames: yaw increments 2, 4, ..., 40 degrees per frame (cumulative), in place."""
    yaw = sum(min(2.0 * (i + 1), 40.0) for i in range(k))
    return room.pose([0.0, -0.3, 1.5], -20.0 + yaw, 6.0, 0.0)


def seq_roll(k):
    """21 frames: roll 0 -> 90 degrees, hand-held jitter."""
    c = [-0.5 + 0.01 * jitter(k, 1.0, 1), -0.3 + 0.01 * jitter(k, 1.0, 2), 0.8 + 0.02 * k]
    return room.pose(c, 2.0 + jitter(k, 1.0, 3), 8.0 + jitter(k, 0.8, 4), 4.5 * k)


def seq_slow_pan(k):
    return room.pose([-1.8 + 0.06 * k, -0.3, 0.5 + 0.02 * k], -10.0 + 1.2 * k, 8.0, 0.0)


def seq_repeated(k):
    """20 frames: sideways walk facing the tiled back wall."""
    return room.pose([-2.0 + 0.12 * k, -0.5, 2.0], 0.0, 4.0, 0.0)


def seq_static(k):
    return room.pose([-0.8, -0.3, 0.8], 3.0, 7.0, 0.0)


EXPOSURE_DAMAGE = {5: "black", 6: "black", 9: "overexposed", 12: "uniform", 15: "blur",
                   16: "blur"}


def degrade(rgb, kind, rng):
    if kind == "black":
        return np.zeros_like(rgb)
    if kind == "overexposed":
        return np.clip(rgb.astype(np.float32) * 4.0 + 60, 0, 255).astype(np.uint8)
    if kind == "uniform":
        return np.full_like(rgb, 128)
    if kind == "blur":  # horizontal motion blur over 15 px
        kernel = np.zeros((15, 15), np.float32)
        kernel[7, :] = 1.0 / 15
        return cv2.filter2D(rgb, -1, kernel, borderType=cv2.BORDER_REPLICATE)
    if kind == "noise":
        noisy = rgb.astype(np.float32) + rng.normal(0, 2.0, rgb.shape)
        return np.clip(np.round(noisy), 0, 255).astype(np.uint8)
    return rgb


SEQUENCES = {
    # name: (frames, pose(k), textures, damage(k) -> tag or None)
    "jump": (24, seq_jump, textures, lambda k: None),
    "fast_turn": (18, seq_fast_turn, textures, lambda k: None),
    "roll": (21, seq_roll, textures, lambda k: None),
    "exposure": (20, seq_slow_pan, textures, EXPOSURE_DAMAGE.get),
    "repeated": (20, seq_repeated, repeated_textures, lambda k: None),
    "static": (15, seq_static, textures, lambda k: "noise"),
    "calibration": (40, seq_calibration, calibration_textures, lambda k: None),
}


def write(name, out_dir):
    n, pose_of, tex_of, damage_of = SEQUENCES[name]
    tex = tex_of()
    saved = room.PLANES
    room.PLANES = PLANES  # the renderer iterates the module's plane list
    try:
        cam_rays = room.rays(room.CAMERAS[NAME])
        rng = np.random.default_rng(7)
        bag = BagWriter(os.path.join(out_dir, f"{name}.mcap"), compression=CompressionType.ZSTD,
                        chunk_size=512 * 1024)
        frames = []
        for k in range(n):
            t = T0 + k * PERIOD
            r_cw, t_cw = pose_of(k)
            tag = damage_of(k)
            rgb = degrade(room.render(cam_rays, r_cw, t_cw, tex), tag, rng)
            bag.write(f"/{NAME}/camera_info", "sensor_msgs/msg/CameraInfo", t,
                      room.camera_info_msg(t, NAME))
            bag.write(f"/{NAME}/image_raw/compressed", "sensor_msgs/msg/CompressedImage", t,
                      room.compressed_msg(t, NAME, "jpeg", rgb))
            frames.append({"camera": NAME, "index": k, "stamp": room.stamp(t),
                           "r_cw": [float(x) for x in r_cw.reshape(-1)],
                           "t_cw": [float(x) for x in t_cw],
                           "degraded": tag if tag != "noise" else None})
        bag.close()
    finally:
        room.PLANES = saved
    gt = {"generator": "scripts/make_integrity_fixtures.py", "sequence": name,
          "cameras": [room.camera_gt(NAME)], "planes": PLANES, "frames": frames}
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump(gt, f, indent=1)
        f.write("\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=OUT)
    parser.add_argument("sequences", nargs="*", default=list(SEQUENCES))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name in args.sequences:
        write(name, args.out)
        size = os.path.getsize(os.path.join(args.out, f"{name}.mcap"))
        print(f"{name}.mcap: {SEQUENCES[name][0]} frames, {size} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
