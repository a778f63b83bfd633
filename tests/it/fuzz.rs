//! Seeded mutation fuzzing (stable Rust, no cargo-fuzz) of what file bytes reach: the MCAP bag
//! reader (whole files), the CDR decoder (message payloads), the image decoders (raw
//! encodings, depth images and jpeg/png), rosbag2's `metadata.yaml` parser, the sqlite3 storage reader
//! (whole `.db3` files, their BLOBs decoded as messages) and the bounded zstd payload
//! decompression (`MESSAGE` compression: a bomb must stop at the cap).
//!
//! - In CI (`cargo test --test it fuzz::`): a few thousand mutations per target from fixed
//!   seeds; every input must be handled without a panic (each call runs under
//!   `catch_unwind`), and properties hold (damaged ranges inside the file, CDR re-encodes to
//!   what it decoded, decoded images have the size their header says).
//! - Long runs: `scripts/fuzz.sh MINUTES` runs [`long`] (ignored here) for that many minutes
//!   per target and prints iterations, panics and peak RSS per target. A panicking input is
//!   written to `target/fuzz-crashes/` for a regression case.
//!
//! Mutations: bit flips, random / boundary bytes, boundary 32- and 64-bit little-endian
//! integers, truncation, deletion, insertion, duplication, splicing with another seed, and
//! for MCAP files edits aimed at record headers (opcode, length) and the first bytes of record
//! bodies (chunk sizes, CRC, compression, string lengths).

use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use imd::geometry::Rng;
use imd::io::bag::{from_cdr, to_cdr, BagPayload, BagReader, Limits};
use imd::io::image::{decode_compressed, decode_depth, DecodedImage, Encoding, RawImage};
use imd::io::msgs::diagnostic_msgs::DiagnosticArray;
use imd::io::msgs::nav_msgs::Odometry;
use imd::io::msgs::sensor_msgs::{CameraInfo, CompressedImage, Image, PointCloud2};
use imd::io::msgs::tf2_msgs::TFMessage;

use crate::io::damage::walk;
use crate::io::rosbag2::rosbag2_fixtures;
use crate::util::{fixture, root};
use imd::io::bag::compression::decompress_message;
use imd::io::bag::metadata::BagMetadata;
use imd::io::bag::SqliteReader;

const INTERESTING_U64: [u64; 18] = [
    0,
    1,
    7,
    8,
    9,
    0x7f,
    0xff,
    0x100,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 32,
    1 << 40,
    1 << 62,
    u64::MAX - 8,
    u64::MAX,
];

/// Mutates byte strings from a seeded generator.
pub struct Mutator {
    rng: Rng,
}

impl Mutator {
    pub fn new(seed: u64) -> Self {
        Mutator {
            rng: Rng::new(seed),
        }
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            self.rng.below(n)
        }
    }

    fn byte(&mut self) -> u8 {
        self.rng.next_u64() as u8
    }

    fn interesting(&mut self, len: usize, pos: usize) -> u64 {
        let rel = [
            len as u64,
            (len - pos.min(len)) as u64,
            (len - pos.min(len)) as u64 + 1,
            (len - pos.min(len)).saturating_sub(9) as u64,
        ];
        let k = self.below(INTERESTING_U64.len() + rel.len());
        INTERESTING_U64
            .get(k)
            .copied()
            .unwrap_or_else(|| rel[k - INTERESTING_U64.len()])
    }

    fn put_le(b: &mut [u8], pos: usize, v: u64, n: usize) {
        for (i, byte) in v.to_le_bytes().iter().take(n).enumerate() {
            if let Some(x) = b.get_mut(pos + i) {
                *x = *byte;
            }
        }
    }

    /// 1–4 mutations of `seed`; `marks` are record offsets worth aiming at (may be empty);
    /// `other` is spliced from.
    pub fn mutate(&mut self, seed: &[u8], marks: &[usize], other: &[u8]) -> Vec<u8> {
        let mut b = seed.to_vec();
        let n = 1 + self.below(4);
        for _ in 0..n {
            let len = b.len();
            let pos = self.below(len.max(1));
            match self.below(13) {
                0 if len > 0 => b[pos] ^= 1 << self.below(8),
                1 if len > 0 => b[pos] = self.byte(),
                2 if len > 0 => b[pos] = [0, 1, 0x7f, 0x80, 0xff][self.below(5)],
                3 => {
                    let v = self.interesting(len, pos);
                    Self::put_le(&mut b, pos, v, 4);
                }
                4 => {
                    let v = self.interesting(len, pos);
                    Self::put_le(&mut b, pos, v, 8);
                }
                5 => b.truncate(pos),
                6 => {
                    let end = (pos + 1 + self.below(64)).min(len);
                    b.drain(pos..end);
                }
                7 => {
                    let k = 1 + self.below(64);
                    let ins: Vec<u8> = (0..k).map(|_| self.byte()).collect();
                    b.splice(pos..pos, ins);
                }
                8 if len > 0 => {
                    let end = (pos + 1 + self.below(256)).min(len);
                    let dup = b[pos..end].to_vec();
                    let at = self.below(len);
                    b.splice(at..at, dup);
                }
                9 if !other.is_empty() => {
                    let from = self.below(other.len());
                    let end = (from + 1 + self.below(512)).min(other.len());
                    let piece = other[from..end].to_vec();
                    let to = (pos + piece.len()).min(len);
                    b.splice(pos..to, piece);
                }
                // Record headers: the length field, or the opcode.
                10 | 11 if !marks.is_empty() => {
                    let at = marks[self.below(marks.len())];
                    if self.below(4) == 0 {
                        let op = self.below(17) as u64;
                        Self::put_le(&mut b, at, op, 1);
                    } else {
                        let v = if self.below(2) == 0 {
                            self.interesting(len, at)
                        } else {
                            let old = b
                                .get(at + 1..at + 9)
                                .map(|x| u64::from_le_bytes(x.try_into().unwrap_or([0; 8])))
                                .unwrap_or(0);
                            old.wrapping_add(self.below(33) as u64).wrapping_sub(16)
                        };
                        Self::put_le(&mut b, at + 1, v, 8);
                    }
                }
                // The first bytes of a record body (chunk sizes, CRC, string lengths).
                12 if !marks.is_empty() => {
                    let at = marks[self.below(marks.len())] + 9 + self.below(48);
                    let v = self.interesting(len, at);
                    let w = [1, 2, 4, 8][self.below(4)];
                    Self::put_le(&mut b, at, v, w);
                }
                _ => {
                    if len > 0 {
                        b[pos] = self.byte();
                    }
                }
            }
        }
        b
    }
}

/// Result of one fuzz campaign.
#[derive(Debug, Default, Clone)]
pub struct Campaign {
    pub target: &'static str,
    pub iterations: u64,
    pub panics: u64,
    /// Inputs the target accepted (opened / decoded) at least in part.
    pub accepted: u64,
    pub elapsed: Duration,
    /// Resident memory when the campaign started, MiB (the test binary with libtorch).
    pub start_rss_mib: f64,
    /// Peak RSS (VmHWM) during the campaign, MiB (reset at its start where Linux allows).
    pub peak_rss_mib: f64,
}

fn vm_hwm_mib() -> f64 {
    status_mib("VmHWM:")
}

fn status_mib(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}

/// Reset the peak RSS counter (Linux `clear_refs` 5); harmless where unsupported.
fn reset_hwm() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn save_crash(target: &str, seed: u64, iter: u64, input: &[u8]) {
    let dir = root().join("target/fuzz-crashes");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{target}-{seed}-{iter}.bin"));
    let _ = std::fs::write(&path, input);
    eprintln!(
        "fuzz {target}: panic on seed {seed} iteration {iter}: {}",
        path.display()
    );
}

/// Run `target` on mutations of `seeds` until `iterations` or `budget` runs out.
fn campaign(
    name: &'static str,
    seeds: &[(Vec<u8>, Vec<usize>)],
    seed: u64,
    iterations: u64,
    budget: Duration,
    target: &dyn Fn(&[u8]) -> bool,
) -> Campaign {
    reset_hwm();
    let start = Instant::now();
    let mut m = Mutator::new(seed);
    let mut c = Campaign {
        target: name,
        start_rss_mib: status_mib("VmRSS:"),
        ..Default::default()
    };
    while c.iterations < iterations && start.elapsed() < budget {
        let i = m.below(seeds.len());
        let j = m.below(seeds.len());
        let (base, marks) = &seeds[i];
        let input = m.mutate(base, marks, &seeds[j].0);
        match catch_unwind(AssertUnwindSafe(|| target(&input))) {
            Ok(accepted) => c.accepted += accepted as u64,
            Err(_) => {
                c.panics += 1;
                save_crash(name, seed, c.iterations, &input);
            }
        }
        c.iterations += 1;
    }
    c.elapsed = start.elapsed();
    c.peak_rss_mib = vm_hwm_mib();
    c
}

// ---- targets ----

/// Open a bag from bytes and read every readable topic, decoding the images.
pub fn bag_target(bytes: &[u8]) -> bool {
    let len = bytes.len() as u64;
    let Ok(r) = BagReader::from_bytes("fuzz.mcap", bytes.to_vec(), Limits::default()) else {
        return false;
    };
    let topics: Vec<String> = r
        .topics()
        .iter()
        .filter(|t| {
            t.message_encoding == "cdr"
                && matches!(
                    t.message_type.as_str(),
                    "sensor_msgs/msg/Image"
                        | "sensor_msgs/msg/CompressedImage"
                        | "sensor_msgs/msg/CameraInfo"
                )
        })
        .map(|t| t.name.clone())
        .collect();
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    let Ok(mut it) = r.messages(&refs) else {
        return true;
    };
    // Every message is at least 22 bytes in the file: the count is bounded by its length.
    let mut n = 0u64;
    for m in it.by_ref() {
        n += 1;
        assert!(n <= len / 22 + 1, "more messages than the file can hold");
        if let Ok(m) = m {
            match &m.payload {
                BagPayload::Image(i) => {
                    let _ = RawImage::from(i).decode();
                }
                BagPayload::CompressedImage(c) => {
                    let _ = decode_compressed(&c.format, &c.data);
                }
                BagPayload::CameraInfo(_) | BagPayload::Tf(_) => {}
            }
        }
    }
    for loss in &it.report().losses {
        assert!(
            loss.start <= loss.end && loss.end <= len,
            "{loss:?} in {len} bytes"
        );
    }
    true
}

/// Decode as every message type; what decodes must re-encode to a payload that decodes to
/// the same message.
pub fn cdr_target(bytes: &[u8]) -> bool {
    fn check<M: imd::io::bag::CdrMessage + std::fmt::Debug>(bytes: &[u8]) -> bool {
        let Ok(m) = from_cdr::<M>(bytes) else {
            return false;
        };
        let again = to_cdr(&m).expect("a decoded message re-encodes");
        let m2: M = from_cdr(&again).expect("a re-encoded message decodes");
        assert_eq!(to_cdr(&m2).unwrap(), again, "{m:?}");
        true
    }
    let mut any = check::<Image>(bytes);
    any |= check::<CompressedImage>(bytes);
    any |= check::<CameraInfo>(bytes);
    any |= check::<PointCloud2>(bytes);
    any |= check::<Odometry>(bytes);
    any |= check::<DiagnosticArray>(bytes);
    any |= check::<TFMessage>(bytes);
    any
}

/// Names that are not encodings we accept (near misses and garbage), mutated in next to
/// [`Encoding::NAMES`].
const NOT_ENCODINGS: [&str; 5] = ["32FC1", "", "rgb16", "nonsense", "bayer_rggb16"];

/// Image decoders: the seed is an Image or CompressedImage CDR payload; the mutated bytes are
/// decoded as CDR when they still are, else the mutation is applied to the image's fields.
pub fn image_target(bytes: &[u8]) -> bool {
    // Bytes 0..8 steer field mutations, the rest is the payload.
    let (ctl, payload) = bytes.split_at(bytes.len().min(8));
    let mut rng = Rng::new(
        ctl.iter()
            .fold(0u64, |a, &b| a.wrapping_mul(31).wrapping_add(b as u64)),
    );
    if let Ok(mut img) = from_cdr::<Image>(payload) {
        match rng.below(5) {
            0 => img.width = INTERESTING_U64[rng.below(13)] as u32,
            1 => img.height = INTERESTING_U64[rng.below(13)] as u32,
            2 => img.step = INTERESTING_U64[rng.below(13)] as u32,
            3 => {
                let names = Encoding::NAMES.len() + NOT_ENCODINGS.len();
                let k = rng.below(names);
                img.encoding = Encoding::NAMES
                    .get(k)
                    .copied()
                    .unwrap_or_else(|| NOT_ENCODINGS[k - Encoding::NAMES.len()])
                    .to_string()
            }
            _ => img.is_bigendian = rng.below(3) as u8,
        }
        // The same message as a depth image (16UC1 / mono16 / 32FC1): whole or refused.
        let depth = decode_depth(&img).ok();
        if let Some(d) = &depth {
            assert_eq!((d.width(), d.height()), (img.width, img.height));
            let v = d.view();
            let _ = v.metres_at(v.width() - 1, v.height() - 1);
        }
        if let Ok(d) = RawImage::from(&img).decode() {
            let (w, h) = match &d {
                DecodedImage::Rgb8(i) => i.dimensions(),
                DecodedImage::Mono8(i) => i.dimensions(),
                DecodedImage::Mono16(i) => i.dimensions(),
            };
            assert_eq!((w, h), (img.width, img.height));
            return true;
        }
        return depth.is_some();
    }
    if let Ok(c) = from_cdr::<CompressedImage>(payload) {
        let format = [
            "jpeg",
            "png",
            "rgb8; jpeg compressed bgr8",
            "tiff",
            "",
            "16UC1; compressedDepth",
        ][rng.below(6)];
        return decode_compressed(format, &c.data).is_ok();
    }
    // Not CDR any more: the raw bytes as jpeg/png data.
    decode_compressed(["jpeg", "png"][rng.below(2)], payload).is_ok()
}

// ---- seeds ----

/// Seed inputs, each with the offsets its mutations aim at.
type Seeds = Vec<(Vec<u8>, Vec<usize>)>;
/// Parse `metadata.yaml` text; what parses must write back to text that parses again.
pub fn metadata_target(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    match BagMetadata::parse("fuzz/metadata.yaml", &text) {
        Ok(m) => {
            let again = m.to_yaml().expect("parsed metadata serializes");
            BagMetadata::parse("again", &again).expect("written metadata parses");
            true
        }
        Err(e) => {
            assert!(e.path == "fuzz/metadata.yaml" && !e.reason.is_empty());
            false
        }
    }
}

/// Largest payload the zstd target lets a frame decompress to.
const ZSTD_FUZZ_CAP: u64 = 1 << 20;

/// Decompress a `MESSAGE`-mode payload under a 1 MiB cap, then decode it as every camera type.
pub fn zstd_target(bytes: &[u8]) -> bool {
    match decompress_message(bytes, ZSTD_FUZZ_CAP) {
        Ok(d) => {
            assert!(d.len() as u64 <= ZSTD_FUZZ_CAP);
            let _ = from_cdr::<Image>(&d);
            let _ = from_cdr::<CompressedImage>(&d);
            let _ = from_cdr::<CameraInfo>(&d);
            true
        }
        Err(_) => false,
    }
}

/// Write the bytes as a `.db3`, open it as a rosbag2 sqlite3 bag and read every topic
/// (payloads that are zstd frames decompressed under the reader's cap).
pub fn sqlite_target(bytes: &[u8]) -> bool {
    thread_local! {
        static DIR: tempfile::TempDir = tempfile::tempdir().expect("temp dir");
    }
    let path = DIR.with(|d| d.path().join("fuzz.db3"));
    std::fs::write(&path, bytes).expect("writing the fuzz input");
    let Ok(r) = SqliteReader::open(&path) else {
        return false;
    };
    let topics: Vec<String> = r.topics().iter().map(|t| t.name.clone()).collect();
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    let mut m = r.messages(&refs, Some(Limits::default().max_record));
    for item in m.by_ref() {
        if let Err(e) = item {
            assert!(e.is_message_error(), "{e}");
        }
    }
    let _ = m.report().describe();
    true
}

fn metadata_seeds() -> Vec<(Vec<u8>, Vec<usize>)> {
    let dir = rosbag2_fixtures();
    let mut seeds: Vec<(Vec<u8>, Vec<usize>)> =
        ["mcap_split", "sqlite_split", "file_zstd", "message_zstd"]
            .iter()
            .map(|b| {
                (
                    std::fs::read(dir.join(b).join("metadata.yaml")).unwrap(),
                    Vec::new(),
                )
            })
            .collect();
    // Issue 25: nesting around the limit (flow brackets, block dashes, indentation), so that
    // mutations land on both sides of it; each must parse or fail fast with an error.
    let head = "rosbag2_bagfile_information:\n  version: 5\n  storage_identifier: mcap\n";
    for depth in [60usize, 70, 2000] {
        let flow = format!(
            "{head}  relative_file_paths: {}{}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let n = flow.len();
        seeds.push((flow.into_bytes(), vec![n / 2, n - 3]));
        let dashes = format!("{head}  relative_file_paths:\n  {}x\n", "- ".repeat(depth));
        seeds.push((dashes.into_bytes(), Vec::new()));
        let indent: String = (0..depth.min(200))
            .map(|i| format!("{}a{i}:\n", " ".repeat(i + 2)))
            .collect();
        seeds.push((
            format!("{head}  custom_data:\n{indent}").into_bytes(),
            Vec::new(),
        ));
    }
    seeds
}

fn zstd_seeds() -> Vec<(Vec<u8>, Vec<usize>)> {
    let mut out: Vec<(Vec<u8>, Vec<usize>)> = payload_seeds(false)
        .into_iter()
        .map(|(cdr, _)| (zstd::encode_all(&cdr[..], 3).unwrap(), Vec::new()))
        .collect();
    // A bomb: 64 MiB of zeros in a few KiB, with and without a declared size.
    out.push((
        zstd::encode_all(std::io::repeat(0).take(64 << 20), 19).unwrap(),
        Vec::new(),
    ));
    out.push((
        zstd::bulk::compress(&vec![0u8; 8 << 20], 19).unwrap(),
        Vec::new(),
    ));
    out
}

fn sqlite_seeds() -> Vec<(Vec<u8>, Vec<usize>)> {
    let dir = rosbag2_fixtures();
    // The cut copy reaches the salvage of a file cut short (copy, patched header, id order).
    [
        "tiny_humble.db3",
        "tiny_humble_cut.db3",
        "damaged/not_a_bag.db3",
    ]
    .iter()
    .map(|f| {
        let b = std::fs::read(dir.join(f)).unwrap();
        // Page starts (4 KiB pages): b-tree page headers are worth aiming at.
        let marks = (0..b.len()).step_by(4096).collect();
        (b, marks)
    })
    .collect()
}

/// A fuzz target: true when the input was accepted (in part).
type Target = dyn Fn(&[u8]) -> bool;

fn bag_seeds() -> Vec<(Vec<u8>, Vec<usize>)> {
    [
        "bags/chunks.mcap",
        "bags/unindexed.mcap",
        "bags/cameras.mcap",
    ]
    .iter()
    .map(|f| {
        let b = std::fs::read(fixture(f)).unwrap();
        let marks = walk(&b).iter().map(|r| r.0).collect();
        (b, marks)
    })
    .collect()
}

/// CDR payloads of every message in the fixture bags, re-encoded (ctl prefix for the image
/// target: 8 bytes of the seed's index).
fn payload_seeds(with_ctl: bool) -> Vec<(Vec<u8>, Vec<usize>)> {
    let mut out = Vec::new();
    for f in ["bags/cameras.mcap", "bags/chunks.mcap"] {
        let r = BagReader::open(&fixture(f)).unwrap();
        let topics: Vec<String> = r.topics().iter().map(|t| t.name.clone()).collect();
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        for m in r.messages(&refs).unwrap().flatten() {
            let cdr = match &m.payload {
                BagPayload::Image(x) => to_cdr(x),
                BagPayload::CompressedImage(x) => to_cdr(x),
                BagPayload::CameraInfo(x) => to_cdr(x),
                BagPayload::Tf(x) => to_cdr(x),
            }
            .unwrap();
            if with_ctl && matches!(m.payload, BagPayload::CameraInfo(_)) {
                continue;
            }
            let mut b = Vec::new();
            if with_ctl {
                b.extend_from_slice(&(out.len() as u64).to_le_bytes());
            }
            b.extend_from_slice(&cdr);
            out.push((b, Vec::new()));
        }
    }
    if !with_ctl {
        for cdr in [
            to_cdr(&PointCloud2::default()),
            to_cdr(&Odometry::default()),
            to_cdr(&DiagnosticArray::default()),
            to_cdr(&TFMessage::default()),
        ] {
            out.push((cdr.unwrap(), Vec::new()));
        }
    }
    out
}

fn report(c: &Campaign) {
    eprintln!(
        "fuzz {:<6} {:>8} iterations in {:>7.1} s ({:>7.0}/s): {} panics, {} accepted, RSS {:.0} \
         MiB at start, peak {:.0} MiB",
        c.target,
        c.iterations,
        c.elapsed.as_secs_f64(),
        c.iterations as f64 / c.elapsed.as_secs_f64().max(1e-9),
        c.panics,
        c.accepted,
        c.start_rss_mib,
        c.peak_rss_mib
    );
}

// ---- CI: a few thousand seeded mutations per target ----

const CI_BUDGET: Duration = Duration::from_secs(8);

#[test]
fn fuzz_bag_reader_seeded() {
    let c = campaign("bag", &bag_seeds(), 11, 6000, CI_BUDGET, &bag_target);
    report(&c);
    assert_eq!(c.panics, 0, "{c:?}");
    assert!(c.iterations >= 500, "{c:?}");
    assert!(
        c.accepted > c.iterations / 4,
        "most mutants still open: {c:?}"
    );
}

#[test]
fn fuzz_cdr_decoder_seeded() {
    let c = campaign(
        "cdr",
        &payload_seeds(false),
        12,
        40_000,
        CI_BUDGET,
        &cdr_target,
    );
    report(&c);
    assert_eq!(c.panics, 0, "{c:?}");
    assert!(c.iterations >= 1000, "{c:?}");
    assert!(c.accepted > 0, "{c:?}");
}

#[test]
fn fuzz_image_decoders_seeded() {
    let c = campaign(
        "image",
        &payload_seeds(true),
        13,
        20_000,
        CI_BUDGET,
        &image_target,
    );
    report(&c);
    assert_eq!(c.panics, 0, "{c:?}");
    assert!(c.iterations >= 500, "{c:?}");
    assert!(c.accepted > 0, "{c:?}");
}

/// The new storage-layer targets get a shorter CI budget: they add to every CI run.
const CI_BUDGET_STORAGE: Duration = Duration::from_secs(4);

#[test]
fn fuzz_metadata_yaml_seeded() {
    let c = campaign(
        "meta",
        &metadata_seeds(),
        14,
        20_000,
        CI_BUDGET_STORAGE,
        &metadata_target,
    );
    report(&c);
    assert_eq!(c.panics, 0, "{c:?}");
    assert!(c.iterations >= 500, "{c:?}");
    assert!(c.accepted > 0, "{c:?}");
}

#[test]
fn fuzz_zstd_payloads_seeded() {
    let c = campaign(
        "zstd",
        &zstd_seeds(),
        15,
        20_000,
        CI_BUDGET_STORAGE,
        &zstd_target,
    );
    report(&c);
    assert_eq!(c.panics, 0, "{c:?}");
    assert!(c.iterations >= 200, "{c:?}");
    assert!(c.accepted > 0, "{c:?}");
}

#[test]
fn fuzz_sqlite_storage_seeded() {
    let c = campaign(
        "sqlite",
        &sqlite_seeds(),
        16,
        5_000,
        CI_BUDGET_STORAGE,
        &sqlite_target,
    );
    report(&c);
    assert_eq!(c.panics, 0, "{c:?}");
    assert!(c.iterations >= 100, "{c:?}");
    assert!(c.accepted > 0, "{c:?}");
}

/// Long run: `IMD_FUZZ_SECONDS` per target (default 60), seed `IMD_FUZZ_SEED` (default: the
/// clock). Run by `scripts/fuzz.sh`.
#[test]
#[ignore = "long fuzz run; scripts/fuzz.sh MINUTES"]
fn long() {
    let secs: u64 = std::env::var("IMD_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let seed: u64 = std::env::var("IMD_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(1)
        });
    eprintln!("fuzz: seed {seed}, {secs} s per target");
    let budget = Duration::from_secs(secs);
    let only = std::env::var("IMD_FUZZ_TARGETS").unwrap_or_default();
    let targets: Vec<(&'static str, Seeds, &Target)> = [
        ("bag", bag_seeds(), &bag_target as &Target),
        ("cdr", payload_seeds(false), &cdr_target),
        ("image", payload_seeds(true), &image_target),
        ("meta", metadata_seeds(), &metadata_target),
        ("zstd", zstd_seeds(), &zstd_target),
        ("sqlite", sqlite_seeds(), &sqlite_target),
    ]
    .into_iter()
    .filter(|(name, _, _)| only.is_empty() || only.split(',').any(|o| o == *name))
    .collect();
    let mut panics = 0;
    for (name, seeds, target) in &targets {
        let c = campaign(name, seeds, seed, u64::MAX, budget, *target);
        report(&c);
        println!(
            "FUZZ target={} iterations={} panics={} accepted={} seconds={:.1} start_rss_mib={:.0} \
             peak_rss_mib={:.0}",
            c.target,
            c.iterations,
            c.panics,
            c.accepted,
            c.elapsed.as_secs_f64(),
            c.start_rss_mib,
            c.peak_rss_mib
        );
        panics += c.panics;
    }
    assert_eq!(panics, 0, "panicking inputs are in target/fuzz-crashes/");
}

/// Regression sweep of the lying-length kind that crashed the previous reader: every record
/// header of `chunks.mcap` and `unindexed.mcap` gets every boundary length (and every opcode)
/// in turn. Nothing panics, and a damaged header never costs more than the messages it
/// covers plus what a resync skips: every intact chunk elsewhere is still read.
#[test]
fn every_record_header_with_every_boundary_length() {
    let mut inputs = 0;
    for (f, total) in [("bags/chunks.mcap", 40usize), ("bags/unindexed.mcap", 4)] {
        let base = std::fs::read(fixture(f)).unwrap();
        let len = base.len();
        for (at, opcode, _) in walk(&base) {
            let mut variants: Vec<Vec<u8>> = Vec::new();
            for v in INTERESTING_U64.iter().copied().chain([
                (len - at) as u64,
                (len - at - 9) as u64,
                (len - at - 8) as u64,
            ]) {
                let mut b = base.clone();
                b[at + 1..at + 9].copy_from_slice(&v.to_le_bytes());
                variants.push(b);
            }
            for op in 0..=16u8 {
                let mut b = base.clone();
                b[at] = op;
                variants.push(b);
            }
            for b in variants {
                inputs += 1;
                let read = catch_unwind(AssertUnwindSafe(|| {
                    let r = BagReader::from_bytes("sweep.mcap", b, Limits::default()).ok()?;
                    let topics: Vec<String> = r.topics().iter().map(|t| t.name.clone()).collect();
                    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
                    Some(r.messages(&refs).ok()?.filter(|m| m.is_ok()).count())
                }))
                .unwrap_or_else(|_| panic!("{f}: record at {at} (opcode {opcode:#x}) panicked"));
                if let Some(n) = read {
                    assert!(n <= total, "{f}: {n} messages from a {total}-message bag");
                    // A chunk header edit in chunks.mcap loses at most that chunk.
                    if f == "bags/chunks.mcap" && opcode == 0x06 {
                        assert!(n >= total - 8, "{f}: chunk at {at}: only {n} read");
                    }
                }
            }
        }
    }
    assert!(inputs > 1000, "{inputs}");
}
