//! Every encoding against hand-computed pixels (padded rows, both byte orders), and every
//! malformed input against its documented error.

use super::*;

fn raw<'a>(w: u32, h: u32, enc: &'a str, step: u32, data: &'a [u8]) -> RawImage<'a> {
    RawImage {
        width: w,
        height: h,
        encoding: enc,
        is_bigendian: false,
        step,
        data,
    }
}

fn rgb(img: DecodedImage) -> RgbImage {
    match img {
        DecodedImage::Rgb8(i) => i,
        other => panic!("expected Rgb8, got {other:?}"),
    }
}

fn px(img: &RgbImage, x: u32, y: u32) -> [u8; 3] {
    img.get_pixel(x, y).0
}

#[test]
fn rgb8_bgr8_and_8uc3_with_padded_rows() {
    // 2×2, step 8 = 6 pixel bytes + 2 padding bytes (99) per row.
    let data = [1, 2, 3, 4, 5, 6, 99, 99, 7, 8, 9, 10, 11, 12, 99, 99];
    let i = rgb(raw(2, 2, "rgb8", 8, &data).decode().unwrap());
    assert_eq!(i.as_raw(), &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    let i = rgb(raw(2, 2, "bgr8", 8, &data).decode().unwrap());
    assert_eq!(px(&i, 0, 0), [3, 2, 1]);
    assert_eq!(px(&i, 1, 1), [12, 11, 10]);
    let i = rgb(raw(2, 2, "8UC3", 8, &data).decode().unwrap());
    assert_eq!(px(&i, 1, 0), [6, 5, 4]);
}

#[test]
fn rgba8_and_bgra8_drop_alpha() {
    // 2×1, step 10 = 8 + 2 padding.
    let data = [1, 2, 3, 200, 4, 5, 6, 201, 99, 99];
    let i = rgb(raw(2, 1, "rgba8", 10, &data).decode().unwrap());
    assert_eq!(i.as_raw(), &[1, 2, 3, 4, 5, 6]);
    let i = rgb(raw(2, 1, "bgra8", 10, &data).decode().unwrap());
    assert_eq!(i.as_raw(), &[3, 2, 1, 6, 5, 4]);
}

#[test]
fn mono8_and_8uc1_with_padding() {
    let data = [10, 20, 30, 0, 40, 50, 60, 0];
    for enc in ["mono8", "8UC1"] {
        match raw(3, 2, enc, 4, &data).decode().unwrap() {
            DecodedImage::Mono8(i) => assert_eq!(i.as_raw(), &[10, 20, 30, 40, 50, 60]),
            other => panic!("{enc}: {other:?}"),
        }
    }
}

#[test]
fn mono16_and_16uc1_both_byte_orders_with_padding() {
    // 2×2, step 6 = 4 pixel bytes + 2 padding. Bytes 0x01 0x02 are 0x0201 = 513 little-endian
    // and 0x0102 = 258 big-endian.
    let data = [
        0x01, 0x02, 0xFF, 0x00, 0xEE, 0xEE, 0x00, 0x10, 0x12, 0x34, 0xEE, 0xEE,
    ];
    for enc in ["mono16", "16UC1"] {
        let le = raw(2, 2, enc, 6, &data);
        match le.decode().unwrap() {
            DecodedImage::Mono16(i) => assert_eq!(i.as_raw(), &[0x0201, 0x00FF, 0x1000, 0x3412]),
            other => panic!("{enc}: {other:?}"),
        }
        let be = RawImage {
            is_bigendian: true,
            ..le
        };
        match be.decode().unwrap() {
            DecodedImage::Mono16(i) => assert_eq!(i.as_raw(), &[0x0102, 0xFF00, 0x0010, 0x1234]),
            other => panic!("{enc}: {other:?}"),
        }
    }
}

/// Hand-computed with the BT.601 limited-range formula of `yuv.rs` (values rounded):
/// - Y 16, U V 128 → black; Y 235 → white.
/// - Y 81, U 90, V 240 (BT.601 red): R = 1.164383·65 + 1.596027·112 = 254.44 → 254,
///   G = 75.68 + 0.391762·38 − 0.812968·112 = −0.48 → 0, B = 75.68 − 2.017232·38 = −0.97 → 0.
/// - Y 145 with the same U V: R = 328.96 → 255, G = 74.04 → 74, B = 73.55 → 74.
const YUV_EXPECTED: [[u8; 3]; 4] = [[0, 0, 0], [255, 255, 255], [254, 0, 0], [255, 74, 74]];

#[test]
fn yuv422_uyvy_with_padding() {
    // 4×1: pairs (U Y0 V Y1) = (128 16 128 235), (90 81 240 145); step 10 = 8 + 2 padding.
    let data = [128, 16, 128, 235, 90, 81, 240, 145, 7, 7];
    for enc in ["yuv422", "uyvy"] {
        let i = rgb(raw(4, 1, enc, 10, &data).decode().unwrap());
        for (x, want) in YUV_EXPECTED.iter().enumerate() {
            assert_eq!(&px(&i, x as u32, 0), want, "{enc} pixel {x}");
        }
    }
}

#[test]
fn yuv422_yuy2_with_padding() {
    // Same pixels as the UYVY test, byte order Y0 U Y1 V; two rows to exercise the step.
    let row = [16, 128, 235, 128, 81, 90, 145, 240, 7, 7];
    let data = [row, row].concat();
    for enc in ["yuv422_yuy2", "yuyv"] {
        let i = rgb(raw(4, 2, enc, 10, &data).decode().unwrap());
        for y in 0..2 {
            for (x, want) in YUV_EXPECTED.iter().enumerate() {
                assert_eq!(&px(&i, x as u32, y), want, "{enc} pixel {x},{y}");
            }
        }
    }
}

/// RGGB mosaic used by the hand-computed Bayer test (sites: R G R G / G B G B / R G R G).
const MOSAIC: [[u8; 4]; 3] = [[12, 200, 34, 90], [77, 5, 141, 60], [250, 33, 8, 120]];

#[test]
fn bayer_rggb8_hand_computed_interior_and_borders() {
    // Padded rows: step 6 = 4 + 2.
    let data: Vec<u8> = MOSAIC
        .iter()
        .flat_map(|r| [&r[..], &[0, 0]].concat())
        .collect();
    let i = rgb(raw(4, 3, "bayer_rggb8", 6, &data).decode().unwrap());
    // (0,0) red site, corner: mirrored neighbours are (1,0)=200 and (0,1)=77 twice each:
    // G = (77+77+200+200)/4 = 138.5 → 139; diagonals all mirror to (1,1)=5 → B = 5.
    assert_eq!(px(&i, 0, 0), [12, 139, 5]);
    // (1,0) green in a red row: R = (12+34)/2 = 23, B = (up mirrors to 5 + 5)/2 = 5.
    assert_eq!(px(&i, 1, 0), [23, 200, 5]);
    // (1,1) blue site, interior: G = (200+33+77+141)/4 = 112.75 → 113,
    // R = (12+34+250+8)/4 = 76.
    assert_eq!(px(&i, 1, 1), [76, 113, 5]);
    // (0,1) green in a blue row, left border: B = (5+5)/2 = 5 (x −1 mirrors to 1),
    // R = (12+250)/2 = 131.
    assert_eq!(px(&i, 0, 1), [131, 77, 5]);
    // (3,1) blue site, right border: G = (90+120+141+141)/4 = 123,
    // R = (34+34+8+8)/4 = 21.
    assert_eq!(px(&i, 3, 1), [21, 123, 60]);
    // (3,2) green in a red row, bottom-right corner: R = (8+8)/2 = 8, B = (60+60)/2 = 60.
    assert_eq!(px(&i, 3, 2), [8, 120, 60]);
}

/// Straightforward per-pixel demosaic with explicit mirroring, to check all four patterns
/// and every pixel of an odd-sized image against the optimized path.
fn naive_demosaic(m: &[Vec<u8>], red: (usize, usize)) -> Vec<[u8; 3]> {
    let (h, w) = (m.len() as i64, m[0].len() as i64);
    let mirror = |i: i64, n: i64| {
        if i < 0 {
            -i
        } else if i >= n {
            2 * n - 2 - i
        } else {
            i
        }
    };
    let at = |x: i64, y: i64| m[mirror(y, h) as usize][mirror(x, w) as usize] as u32;
    let mean = |v: &[u32]| ((v.iter().sum::<u32>() + v.len() as u32 / 2) / v.len() as u32) as u8;
    let mut out = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let (px, py) = ((x & 1) as usize, (y & 1) as usize);
            let c = at(x, y) as u8;
            let cross = mean(&[at(x, y - 1), at(x, y + 1), at(x - 1, y), at(x + 1, y)]);
            let diag = mean(&[
                at(x - 1, y - 1),
                at(x + 1, y - 1),
                at(x - 1, y + 1),
                at(x + 1, y + 1),
            ]);
            let horiz = mean(&[at(x - 1, y), at(x + 1, y)]);
            let vert = mean(&[at(x, y - 1), at(x, y + 1)]);
            out.push(if (px, py) == red {
                [c, cross, diag]
            } else if (px, py) == (red.0 ^ 1, red.1 ^ 1) {
                [diag, cross, c]
            } else if py == red.1 {
                [horiz, c, vert]
            } else {
                [vert, c, horiz]
            });
        }
    }
    out
}

#[test]
fn bayer_all_patterns_match_the_naive_demosaic() {
    let (w, h) = (7usize, 5usize);
    // Deterministic pseudo-random mosaic (LCG), padded rows (step = w + 3).
    let mut s = 12345u32;
    let mosaic: Vec<Vec<u8>> = (0..h)
        .map(|_| {
            (0..w)
                .map(|_| {
                    s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (s >> 16) as u8
                })
                .collect()
        })
        .collect();
    let step = w + 3;
    let data: Vec<u8> = mosaic
        .iter()
        .flat_map(|r| [&r[..], &[9, 9, 9]].concat())
        .collect();
    for (enc, red) in [
        ("bayer_rggb8", (0, 0)),
        ("bayer_bggr8", (1, 1)),
        ("bayer_gbrg8", (0, 1)),
        ("bayer_grbg8", (1, 0)),
    ] {
        let i = rgb(raw(w as u32, h as u32, enc, step as u32, &data)
            .decode()
            .unwrap());
        let want = naive_demosaic(&mosaic, red);
        for (k, p) in i.pixels().enumerate() {
            assert_eq!(p.0, want[k], "{enc} pixel ({}, {})", k % w, k / w);
        }
    }
    // The smallest mosaic, 2×2 RGGB (R 10, G 20 / G 30, B 40), every neighbour mirrored:
    // red and blue come from their single sites, green sites keep their own value and the
    // red/blue sites get the mean of both greens, (20+20+30+30)/4 = 25.
    let i = rgb(raw(2, 2, "bayer_rggb8", 2, &[10, 20, 30, 40])
        .decode()
        .unwrap());
    assert_eq!(
        i.as_raw(),
        &[10, 25, 40, 10, 20, 40, 10, 30, 40, 10, 25, 40]
    );
}

#[test]
fn from_ros_image_message() {
    let msg = crate::io::msgs::sensor_msgs::Image {
        height: 1,
        width: 1,
        encoding: "mono16".into(),
        is_bigendian: 1,
        step: 2,
        data: vec![0x12, 0x34],
        ..Default::default()
    };
    match RawImage::from(&msg).decode().unwrap() {
        DecodedImage::Mono16(i) => assert_eq!(i.as_raw(), &[0x1234]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_inputs_return_the_documented_errors() {
    let d = [0u8; 64];
    // Zero size, reported before anything else.
    let e = raw(0, 2, "rgb8", 6, &d).decode().unwrap_err();
    assert!(
        matches!(
            e,
            ImageError::ZeroSize {
                width: 0,
                height: 2
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("expected both > 0"), "{e}");
    let e = raw(2, 0, "nonsense", 6, &d).decode().unwrap_err();
    assert!(
        matches!(
            e,
            ImageError::ZeroSize {
                width: 2,
                height: 0
            }
        ),
        "{e:?}"
    );

    // Unknown encoding (names are case-sensitive, as in ROS).
    for enc in ["rgb16", "RGB8", ""] {
        let e = raw(2, 2, enc, 6, &d).decode().unwrap_err();
        assert!(
            matches!(&e, ImageError::UnknownEncoding { encoding } if encoding == enc),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("encoding = `{enc}`")) && msg.contains("bayer_grbg8"),
            "{msg}"
        );
    }

    // Odd width for YUV 4:2:2.
    for enc in ["yuv422", "yuv422_yuy2"] {
        let e = raw(3, 2, enc, 6, &d).decode().unwrap_err();
        assert!(matches!(e, ImageError::OddWidth { width: 3, .. }), "{e:?}");
        assert!(e.to_string().contains("expected an even width"), "{e}");
    }

    // Bayer smaller than 2×2.
    let e = raw(1, 4, "bayer_rggb8", 1, &d).decode().unwrap_err();
    assert!(
        matches!(e, ImageError::TooSmall { min_width: 2, .. }),
        "{e:?}"
    );

    // step < width × bytes per pixel.
    let e = raw(2, 2, "rgb8", 5, &d).decode().unwrap_err();
    assert!(
        matches!(
            e,
            ImageError::StepTooSmall {
                step: 5,
                bytes_per_pixel: 3,
                min_step: 6,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("expected step ≥ 6"), "{e}");
    let e = raw(4, 1, "yuv422", 7, &d).decode().unwrap_err();
    assert!(
        matches!(e, ImageError::StepTooSmall { min_step: 8, .. }),
        "{e:?}"
    );
    let e = raw(3, 1, "mono16", 5, &d).decode().unwrap_err();
    assert!(
        matches!(e, ImageError::StepTooSmall { min_step: 6, .. }),
        "{e:?}"
    );

    // data shorter than step × height (the last row's padding is required too).
    let e = raw(2, 2, "rgb8", 8, &d[..15]).decode().unwrap_err();
    assert!(
        matches!(
            e,
            ImageError::DataTooShort {
                len: 15,
                expected: 16,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("step × height = 8 × 2 = 16"), "{e}");
    // Sizes whose product overflows 32 bits are compared in 64 bits.
    let e = raw(4096, 4096, "rgb8", u32::MAX, &d).decode().unwrap_err();
    assert!(matches!(e, ImageError::DataTooShort { .. }), "{e:?}");
    // More pixels than the limit: refused before anything else is looked at.
    let e = raw(u32::MAX / 3, u32::MAX, "rgb8", u32::MAX, &d)
        .decode()
        .unwrap_err();
    assert!(matches!(e, ImageError::TooManyPixels { .. }), "{e:?}");
    assert!(e.to_string().contains("IMD_MAX_IMAGE_PIXELS"), "{e}");
}

#[test]
fn compressed_jpeg_and_png_with_ros_format_strings() {
    let mut rgb = RgbImage::new(16, 8);
    for (x, y, p) in rgb.enumerate_pixels_mut() {
        *p = image::Rgb([(x * 16) as u8, (y * 32) as u8, 100]);
    }
    let mut png = Vec::new();
    rgb.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    for format in [
        "png",
        "rgb8; png compressed rgb8",
        "",
        "bgr8; png compressed bgr8",
    ] {
        match decode_compressed(format, &png).unwrap() {
            DecodedImage::Rgb8(i) => assert_eq!(i, rgb, "{format}"),
            other => panic!("{format}: {other:?}"),
        }
    }
    let grey = GrayImage::from_pixel(16, 16, image::Luma([90]));
    let mut jpg = Vec::new();
    grey.write_to(
        &mut std::io::Cursor::new(&mut jpg),
        image::ImageFormat::Jpeg,
    )
    .unwrap();
    for format in [
        "jpeg",
        "mono8; jpeg compressed ",
        "rgb8; jpeg compressed bgr8",
    ] {
        match decode_compressed(format, &jpg).unwrap() {
            // Flat 8×8 blocks survive JPEG exactly (only the DC coefficient is non-zero).
            DecodedImage::Mono8(i) => assert!(i.pixels().all(|p| p.0[0] == 90), "{format}"),
            other => panic!("{format}: {other:?}"),
        }
    }
}

#[test]
fn compressed_errors_name_format_and_reason() {
    let e = decode_compressed("jpeg", &[]).unwrap_err().to_string();
    assert!(
        e.contains("format = `jpeg`") && e.contains("data is empty"),
        "{e}"
    );
    let e = decode_compressed("16UC1; compressedDepth png", &[0x89, b'P', b'N', b'G'])
        .unwrap_err()
        .to_string();
    assert!(e.contains("compressedDepth"), "{e}");
    let e = decode_compressed("bgr8; tiff compressed bgr8", &[1, 2, 3, 4])
        .unwrap_err()
        .to_string();
    assert!(e.contains("`tiff` is not supported"), "{e}");
    let e = decode_compressed("", &[1, 2, 3, 4])
        .unwrap_err()
        .to_string();
    assert!(e.contains("neither the JPEG"), "{e}");
    // A truncated JPEG: signature present, decoder fails.
    let e = decode_compressed("jpeg", &[0xFF, 0xD8, 0xFF, 0xE0, 0, 16]).unwrap_err();
    assert!(matches!(e, ImageError::Compressed { .. }), "{e:?}");
    assert!(e.to_string().contains("Jpeg decoding failed"), "{e}");
}
