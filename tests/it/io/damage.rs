//! Damaged bags: `tests/fixtures/bags/chunks.mcap` (`scripts/fixtures/make_damage_fixtures.py`: one
//! camera, 20 frames, 40 messages in 5 zstd chunks of 8) and `unindexed.mcap`, edited here at
//! known bytes. Each case asserts what is read, what is reported lost, and where.

use std::path::Path;
use std::process::Command;

use imd::io::bag::{BagError, BagMessage, BagPayload, BagReader, Limits, ReadReport};

use crate::util::fixture;

pub const TOPICS: [&str; 2] = ["/cam0/camera_info", "/cam0/image_raw"];

/// Top-level records of an intact file: (offset, opcode, body length).
pub fn walk(b: &[u8]) -> Vec<(usize, u8, usize)> {
    let mut out = Vec::new();
    let mut pos = 8;
    while pos + 9 <= b.len() {
        let op = b[pos];
        let len = u64::from_le_bytes(b[pos + 1..pos + 9].try_into().unwrap()) as usize;
        out.push((pos, op, len));
        pos += 9 + len;
        if op == 0x02 {
            break;
        }
    }
    out
}

/// Offsets and total sizes (header included) of the chunk records.
pub fn chunks(b: &[u8]) -> Vec<(usize, usize)> {
    walk(b)
        .into_iter()
        .filter(|r| r.1 == 0x06)
        .map(|r| (r.0, 9 + r.2))
        .collect()
}

pub fn chunks_bag() -> Vec<u8> {
    std::fs::read(fixture("bags/chunks.mcap")).unwrap()
}

/// Read every message of `topics`; panics on a non-message error.
pub fn read_all(r: &BagReader, topics: &[&str]) -> (Vec<BagMessage>, Vec<BagError>, ReadReport) {
    let mut it = r.messages(topics).unwrap();
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for m in it.by_ref() {
        match m {
            Ok(m) => ok.push(m),
            Err(e @ BagError::Message { .. }) => bad.push(e),
            Err(e) => panic!("fatal: {e}"),
        }
    }
    (ok, bad, it.report().clone())
}

/// Recompute the footer's summary CRC after an edit of the summary (an edit a writer could have
/// made, not damage).
fn reseal_summary(b: &mut [u8]) {
    let footer = b.len() - 37;
    let start = u64::from_le_bytes(b[footer + 9..footer + 17].try_into().unwrap()) as usize;
    let crc = crc32fast::hash(&b[start..footer + 25]);
    b[footer + 25..footer + 29].copy_from_slice(&crc.to_le_bytes());
}

fn open(bytes: Vec<u8>) -> BagReader {
    BagReader::from_bytes("damaged.mcap", bytes, Limits::default()).unwrap()
}

/// Frame numbers (0..20) of the images read.
fn frames(ms: &[BagMessage]) -> Vec<i64> {
    ms.iter()
        .filter_map(|m| match &m.payload {
            BagPayload::Image(i) => {
                Some((i.header.stamp.as_nanos() - 1_700_000_000_000_000_000) / 100_000_000)
            }
            _ => None,
        })
        .collect()
}

#[test]
fn the_intact_chunked_bag_reads_whole() {
    let b = chunks_bag();
    assert_eq!(
        chunks(&b),
        vec![
            (73, 1607),
            (1838, 1175),
            (3171, 1188),
            (4517, 1175),
            (5850, 1175)
        ]
    );
    let r = open(b);
    assert!(r.is_indexed());
    let (ok, bad, report) = read_all(&r, &TOPICS);
    assert_eq!((ok.len(), bad.len()), (40, 0));
    assert_eq!(frames(&ok), (0..20).collect::<Vec<_>>());
    assert_eq!(report.chunks_read, 5);
    assert!(!report.lost_data(), "{report:?}");
}

#[test]
fn a_corrupt_chunk_is_skipped_and_the_later_chunks_are_read() {
    let mut b = chunks_bag();
    // Chunk 2 of 5 (bytes 1838..3013): one byte of its zstd data flipped.
    b[1838 + 9 + 200] ^= 0x5a;
    let r = open(b);
    let (ok, bad, report) = read_all(&r, &TOPICS);
    assert_eq!((ok.len(), bad.len()), (32, 0));
    let mut want: Vec<i64> = (0..4).collect();
    want.extend(8..20);
    assert_eq!(frames(&ok), want);
    assert_eq!((report.chunks_read, report.chunks_lost), (4, 1));
    assert_eq!(report.messages_lost, 8);
    assert_eq!(report.losses.len(), 1);
    let loss = &report.losses[0];
    assert_eq!(
        (loss.start, loss.end, loss.chunk, loss.messages),
        (1838, 3013, true, Some(8))
    );
    assert!(
        loss.reason.contains("zstd") || loss.reason.contains("CRC"),
        "{}",
        loss.reason
    );
    assert_eq!(ok.len() as u64 + report.messages_lost, 40);
}

#[test]
fn a_chunk_whose_length_field_lies_is_skipped_in_indexed_and_in_scanned_reads() {
    let mut b = chunks_bag();
    // Chunk 3's record length (bytes 3172..3180) claims 2^40 bytes.
    b[3172..3180].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let (ok, _, report) = read_all(&open(b.clone()), &TOPICS);
    assert_eq!(ok.len(), 32);
    assert_eq!(frames(&ok)[4..8], [4, 5, 6, 7]);
    assert_eq!(report.losses.len(), 1);
    let loss = &report.losses[0];
    assert_eq!((loss.start, loss.end, loss.messages), (3171, 4359, Some(8)));
    assert!(
        loss.reason.contains("claims 1099511627776 bytes"),
        "{}",
        loss.reason
    );

    // Without the closing magic the file is scanned: the scan resyncs after the bad header at
    // the next plausible record (chunk 3's first message index, at 4359) and goes on.
    let len = b.len();
    b[len - 8] = 0;
    let r = open(b);
    assert!(!r.is_indexed());
    assert!(
        r.summary_problem().contains("magic"),
        "{}",
        r.summary_problem()
    );
    let (ok, _, report) = read_all(&r, &TOPICS);
    assert_eq!(ok.len(), 32, "{report:?}");
    assert_eq!(report.losses.len(), 1, "{report:?}");
    let loss = &report.losses[0];
    assert_eq!((loss.start, loss.end), (3171, 4359));
}

#[test]
fn a_damaged_footer_or_summary_falls_back_to_a_scan_that_recovers_every_message() {
    let intact = chunks_bag();
    let len = intact.len();
    // Footer: summary_start pointing past the end.
    let mut b = intact.clone();
    b[len - 37 + 9..len - 37 + 17].copy_from_slice(&u64::MAX.to_le_bytes());
    // Summary: the first chunk index record's length field garbled.
    let mut s = intact.clone();
    let ci = walk(&intact).iter().find(|r| r.1 == 0x08).unwrap().0;
    s[ci + 1] = 0xff;
    // Summary: a chunk index's start time changed, every record still well formed: only the
    // footer's summary CRC shows it.
    let mut c = intact.clone();
    c[ci + 9] ^= 0x01;
    // Closing magic gone.
    let mut m = intact.clone();
    m.truncate(len - 4);
    for (what, bytes) in [("footer", b), ("summary", s), ("crc", c), ("magic", m)] {
        let r = open(bytes);
        assert!(!r.is_indexed(), "{what}");
        assert!(!r.summary_problem().is_empty(), "{what}");
        if what == "crc" {
            assert!(
                r.summary_problem().contains("summary CRC"),
                "{}",
                r.summary_problem()
            );
        }
        let counts: Vec<u64> = r.topics().iter().map(|t| t.message_count).collect();
        assert_eq!(counts, [20, 20], "{what}");
        let (ok, bad, report) = read_all(&r, &TOPICS);
        assert_eq!((ok.len(), bad.len()), (40, 0), "{what}");
        assert_eq!(frames(&ok), (0..20).collect::<Vec<_>>(), "{what}");
        assert!(!report.lost_data(), "{what}: {report:?}");
        assert_eq!(report.chunks_read, 5, "{what}");
    }
}

#[test]
fn a_recording_cut_off_mid_chunk_yields_every_complete_message_before_the_cut() {
    let mut b = chunks_bag();
    // Cut 500 bytes into chunk 4 (4517..5692), as a crashed `ros2 bag record` leaves it.
    b.truncate(4517 + 500);
    let r = open(b);
    assert!(!r.is_indexed());
    let (ok, bad, report) = read_all(&r, &TOPICS);
    assert_eq!((ok.len(), bad.len()), (24, 0));
    assert_eq!(frames(&ok), (0..12).collect::<Vec<_>>());
    assert_eq!(report.chunks_read, 3);
    assert_eq!(report.losses.len(), 1);
    let loss = &report.losses[0];
    assert_eq!((loss.start, loss.end, loss.messages), (4517, 5017, None));
    assert!(loss.reason.contains("cut short"), "{}", loss.reason);
    // Every cut point gives the messages of the chunks complete before it, never a panic.
    let full = chunks_bag();
    let ends: Vec<usize> = chunks(&full).iter().map(|c| c.0 + c.1).collect();
    for cut in (8..full.len()).step_by(97) {
        let r = BagReader::from_bytes("cut.mcap", full[..cut].to_vec(), Limits::default());
        let Ok(r) = r else { continue };
        let Ok(it) = r.messages(&TOPICS) else {
            continue;
        };
        let n = it.filter(|m| m.is_ok()).count();
        let complete = ends.iter().filter(|&&e| e <= cut).count();
        assert_eq!(n, 8 * complete, "cut at {cut}");
    }
}

/// `unindexed.mcap`: record offsets 560 (image #0), 20606 (info #0), 21002 (image #1),
/// 40293 (info #1); a lying length on image #1.
pub fn lying_unindexed() -> Vec<u8> {
    let mut b = std::fs::read(fixture("bags/unindexed.mcap")).unwrap();
    assert_eq!(b[21002], 0x05);
    b[21003..21011].copy_from_slice(&0x0000_0010_0000_0000u64.to_le_bytes());
    b
}

#[test]
fn a_lying_record_length_in_an_unchunked_bag_loses_that_record_only() {
    let r = open(lying_unindexed());
    assert_eq!(r.open_losses().len(), 1);
    let (ok, bad, report) = read_all(&r, &TOPICS);
    assert_eq!((ok.len(), bad.len()), (3, 0), "{report:?}");
    let topics: Vec<(&str, u64)> = ok.iter().map(|m| (&*m.topic, m.index)).collect();
    assert_eq!(
        topics,
        [
            ("/cam0/image_raw", 0),
            ("/cam0/camera_info", 0),
            ("/cam0/camera_info", 1)
        ]
    );
    assert_eq!(report.losses.len(), 1);
    let loss = &report.losses[0];
    assert_eq!(
        (loss.start, loss.end, loss.chunk, loss.messages),
        (21002, 40293, false, None)
    );
    assert!(
        loss.reason.contains("claims 68719476736 bytes"),
        "{}",
        loss.reason
    );
    assert_eq!(report.ranges_unknown_count, 1);

    // An opcode byte destroyed: the record is skipped up to the next one.
    let mut b = std::fs::read(fixture("bags/unindexed.mcap")).unwrap();
    b[20606] = 0x00;
    let (ok, _, report) = read_all(&open(b), &TOPICS);
    assert_eq!(ok.len(), 3);
    assert_eq!(
        (report.losses[0].start, report.losses[0].end),
        (20606, 21002)
    );
    // A record larger than the limits is refused without reading it.
    let small = Limits {
        max_record: 4096,
        max_chunk_uncompressed: 4096,
    };
    let r = BagReader::from_bytes(
        "x.mcap",
        std::fs::read(fixture("bags/unindexed.mcap")).unwrap(),
        small,
    )
    .unwrap();
    let (ok, _, report) = read_all(&r, &TOPICS);
    assert_eq!(ok.len(), 2, "only the camera_infos fit in 4 KiB");
    assert!(
        report.losses[0].reason.contains("limit of 4096"),
        "{report:?}"
    );
}

/// Peak resident memory (VmHWM, KiB) of a child test process that reads `bag` whole.
fn child_peak_kib(bag: &Path) -> u64 {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "io::damage::rss_probe",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("IMD_RSS_PROBE_BAG", bag)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find_map(|l| l.strip_prefix("VmHWM_KIB="))
        .unwrap_or_else(|| panic!("no VmHWM in {text}"))
        .trim()
        .parse()
        .unwrap()
}

/// Helper run by [`a_lying_length_bag_is_read_in_bounded_memory`] in a child process.
#[test]
#[ignore = "run by a_lying_length_bag_is_read_in_bounded_memory in a child process"]
fn rss_probe() {
    let Some(bag) = std::env::var_os("IMD_RSS_PROBE_BAG") else {
        return;
    };
    let r = BagReader::open(Path::new(&bag)).unwrap();
    let topics: Vec<String> = r.topics().iter().map(|t| t.name.clone()).collect();
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    let n = r.messages(&refs).unwrap().count();
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim();
    println!("messages={n}");
    println!("VmHWM_KIB={hwm}");
}

#[test]
fn a_lying_length_bag_is_read_in_bounded_memory() {
    if !Path::new("/proc/self/status").exists() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let intact = fixture("bags/unindexed.mcap");
    let lying = dir.path().join("lying.mcap");
    std::fs::write(&lying, lying_unindexed()).unwrap();
    // The lying length made the mcap crate's reader allocate its claim (64 GiB); ours reads
    // no more than the largest message (19 KB) plus fixed buffers.
    let base = child_peak_kib(&intact);
    let peak = child_peak_kib(&lying);
    eprintln!("peak RSS: intact {base} KiB, lying length {peak} KiB");
    assert!(
        peak < base + 8 * 1024,
        "intact {base} KiB, lying {peak} KiB"
    );
}

#[test]
fn the_complete_part_of_a_cut_off_chunk_is_recovered() {
    // cameras.mcap's first chunk (bytes 73..233815, several zstd blocks) cut 150 000 bytes
    // in: the messages in its complete blocks are recovered, in file order.
    let full = std::fs::read(fixture("bags/cameras.mcap")).unwrap();
    assert_eq!(chunks(&full)[0], (73, 233742));
    let cut = 73 + 9 + 150_000;
    let r = open(full[..cut].to_vec());
    let topics: Vec<String> = r.topics().iter().map(|t| t.name.clone()).collect();
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    let (ok, bad, report) = read_all(&r, &refs);
    assert_eq!((ok.len(), bad.len()), (6, 0), "{report:?}");
    assert_eq!(report.losses.len(), 1);
    let loss = &report.losses[0];
    assert_eq!((loss.start, loss.end, loss.chunk), (73, cut as u64, true));
    assert!(
        loss.reason.contains("6 message(s) recovered"),
        "{}",
        loss.reason
    );
    // What was recovered is what the intact file holds at those positions.
    let intact = BagReader::open(&fixture("bags/cameras.mcap")).unwrap();
    let (all, _, _) = read_all(&intact, &refs);
    for m in &ok {
        assert!(all
            .iter()
            .any(|a| a.topic == m.topic && a.payload == m.payload));
    }
}

#[test]
fn chunks_whose_index_times_all_overlap_still_merge_in_log_time_order() {
    // Every chunk index entry claims the whole time range: all five chunks are merged.
    let mut b = chunks_bag();
    for (at, op, _) in walk(&chunks_bag()) {
        if op == 0x08 {
            b[at + 9..at + 17].copy_from_slice(&0u64.to_le_bytes());
            b[at + 17..at + 25].copy_from_slice(&u64::MAX.to_le_bytes());
        }
    }
    reseal_summary(&mut b);
    let r = open(b);
    assert!(r.is_indexed());
    let (ok, _, report) = read_all(&r, &TOPICS);
    assert_eq!(ok.len(), 40);
    assert!(ok.windows(2).all(|w| w[0].log_time_ns <= w[1].log_time_ns));
    assert_eq!(frames(&ok), (0..20).collect::<Vec<_>>());
    assert_eq!(report.chunks_read, 5);
}

#[test]
fn truncated_jpegs_are_flagged_and_lying_png_headers_refused() {
    use imd::io::image::{decode_compressed, jpeg_looks_truncated};
    let r = BagReader::open(&fixture("bags/cameras.mcap")).unwrap();
    let jpeg = r
        .messages(&["/cam1/image_raw/compressed"])
        .unwrap()
        .find_map(|m| match m.unwrap().payload {
            BagPayload::CompressedImage(c) if c.data.starts_with(&[0xFF, 0xD8]) => Some(c.data),
            _ => None,
        })
        .unwrap();
    assert!(!jpeg_looks_truncated(&jpeg));
    let cut = &jpeg[..jpeg.len() / 2];
    assert!(jpeg_looks_truncated(cut));
    // Decoding the cut stream never panics (it errors or fills; the warning says which).
    let _ = decode_compressed("jpeg", cut);
    // A PNG whose header claims 100 000 × 100 000 pixels is refused before any allocation.
    let mut png = Vec::new();
    image::GrayImage::new(4, 4)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32fast::hash(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    let e = decode_compressed("png", &png).unwrap_err().to_string();
    assert!(e.contains("limit"), "{e}");
}
