//! `sensor_msgs/Image` → decoded image for a 640×480 frame, every encoding (target < 1 ms).
//!
//! Run: `cargo bench --bench image_convert`. Rows are tight (`step = width × bytes per
//! pixel`) except `rgb8_padded`, which has 64 bytes of padding per row. Rows named
//! `… → rgb8` also expand grey to the 3-channel image the model takes.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use imd::io::image::{Encoding, RawImage};

const W: u32 = 640;
const H: u32 = 480;

/// Deterministic pseudo-random bytes (xorshift), so no encoding gets a trivially easy input.
fn bytes(n: usize) -> Vec<u8> {
    let mut s = 0x9E37_79B9u32;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 24) as u8
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_640x480");
    group.throughput(Throughput::Elements((W * H) as u64));
    let cases: &[(&str, &str, u32)] = &[
        ("rgb8", "rgb8", 0),
        ("rgb8_padded", "rgb8", 64),
        ("bgr8", "bgr8", 0),
        ("rgba8", "rgba8", 0),
        ("bgra8", "bgra8", 0),
        ("mono8", "mono8", 0),
        ("8UC1", "8UC1", 0),
        ("8UC3", "8UC3", 0),
        ("mono16", "mono16", 0),
        ("16UC1", "16UC1", 0),
        ("yuv422", "yuv422", 0),
        ("yuv422_yuy2", "yuv422_yuy2", 0),
        ("bayer_rggb8", "bayer_rggb8", 0),
        ("bayer_bggr8", "bayer_bggr8", 0),
        ("bayer_gbrg8", "bayer_gbrg8", 0),
        ("bayer_grbg8", "bayer_grbg8", 0),
    ];
    for &(name, enc, pad) in cases {
        let bpp = Encoding::parse(enc)
            .expect("known encoding")
            .bytes_per_pixel() as u32;
        let step = W * bpp + pad;
        let data = bytes((step * H) as usize);
        let raw = RawImage {
            width: W,
            height: H,
            encoding: enc,
            is_bigendian: false,
            step,
            data: &data,
        };
        group.bench_function(name, |b| b.iter(|| raw.decode().expect("valid frame")));
        if matches!(enc, "mono8" | "mono16") {
            group.bench_function(format!("{name} → rgb8"), |b| {
                b.iter(|| raw.decode().expect("valid frame").into_rgb8())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
