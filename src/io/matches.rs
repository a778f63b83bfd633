//! Match files: CSV with header `x0,y0,x1,y1[,confidence]`, pixel coordinates.

use std::fmt::Write as _;
use std::path::Path;

use crate::geometry::{PixelMatch, PixelPoint};

/// Errors reading match files.
#[derive(Debug, thiserror::Error)]
pub enum MatchFileError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {reason}")]
    Parse {
        path: String,
        line: usize,
        reason: String,
    },
}

/// Read a match CSV. Columns are found by header name, so their order is free; `confidence`
/// is optional (1.0 when absent). Every value must be a finite number.
pub fn read_matches_csv(path: &Path) -> Result<Vec<PixelMatch>, MatchFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| MatchFileError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_matches_csv(&text, &path.display().to_string())
}

/// Parse match CSV text; `origin` names the source in errors.
pub fn parse_matches_csv(text: &str, origin: &str) -> Result<Vec<PixelMatch>, MatchFileError> {
    let err = |line: usize, reason: String| MatchFileError::Parse {
        path: origin.to_string(),
        line,
        reason,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or_else(|| {
        err(
            1,
            "empty file; expected header `x0,y0,x1,y1[,confidence]`".into(),
        )
    })?;
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let col = |name: &str| names.iter().position(|n| *n == name);
    let required = ["x0", "y0", "x1", "y1"];
    let mut idx = [0usize; 4];
    for (k, name) in required.iter().enumerate() {
        idx[k] = col(name).ok_or_else(|| {
            err(
                1,
                format!(
                    "header `{header}` lacks column `{name}`; expected `x0,y0,x1,y1[,confidence]`"
                ),
            )
        })?;
    }
    let conf = col("confidence");
    let mut out = Vec::new();
    for (i, line) in lines {
        let lineno = i + 1;
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != names.len() {
            return Err(err(
                lineno,
                format!(
                    "{} fields, expected {} as in the header",
                    fields.len(),
                    names.len()
                ),
            ));
        }
        let num = |k: usize, name: &str| -> Result<f64, MatchFileError> {
            let v: f64 = fields[k]
                .parse()
                .map_err(|_| err(lineno, format!("{name} = `{}` is not a number", fields[k])))?;
            if !v.is_finite() {
                return Err(err(lineno, format!("{name} = {v} is not finite")));
            }
            Ok(v)
        };
        let p0 = PixelPoint::new(num(idx[0], "x0")?, num(idx[1], "y0")?);
        let p1 = PixelPoint::new(num(idx[2], "x1")?, num(idx[3], "y1")?);
        let confidence = match conf {
            Some(k) => num(k, "confidence")? as f32,
            None => 1.0,
        };
        out.push(PixelMatch { p0, p1, confidence });
    }
    Ok(out)
}

/// Format matches as CSV with header `x0,y0,x1,y1,confidence`.
pub fn format_matches_csv(matches: &[PixelMatch]) -> String {
    let mut s = String::with_capacity(32 + matches.len() * 48);
    s.push_str("x0,y0,x1,y1,confidence\n");
    for m in matches {
        // Writing to a String cannot fail.
        let _ = writeln!(
            s,
            "{:.3},{:.3},{:.3},{:.3},{:.5}",
            m.p0.x, m.p0.y, m.p1.x, m.p1.y, m.confidence
        );
    }
    s
}

/// Write matches as CSV.
pub fn write_matches_csv(path: &Path, matches: &[PixelMatch]) -> Result<(), MatchFileError> {
    std::fs::write(path, format_matches_csv(matches)).map_err(|source| MatchFileError::Io {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_accepts_any_column_order() {
        let m = vec![PixelMatch {
            p0: PixelPoint::new(1.5, 2.0),
            p1: PixelPoint::new(3.25, 4.0),
            confidence: 0.5,
        }];
        let text = format_matches_csv(&m);
        assert_eq!(parse_matches_csv(&text, "t").unwrap(), m);
        let swapped = "y1,x1,y0,x0\n4,3.25,2,1.5\n";
        let got = parse_matches_csv(swapped, "t").unwrap();
        assert_eq!(got[0].p1, PixelPoint::new(3.25, 4.0));
        assert_eq!(got[0].confidence, 1.0);
    }

    #[test]
    fn names_line_and_column_of_bad_input() {
        let e = parse_matches_csv("x0,y0,x1\n1,2,3\n", "m.csv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("m.csv:1") && e.contains("`y1`"), "{e}");
        let e = parse_matches_csv("x0,y0,x1,y1\n1,2,3,4\n1,NaN,3,4\n", "m.csv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("m.csv:3") && e.contains("y0"), "{e}");
        let e = parse_matches_csv("x0,y0,x1,y1\n1,2,3\n", "m.csv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("m.csv:2") && e.contains("3 fields"), "{e}");
        let e = parse_matches_csv("x0,y0,x1,y1\n1,abc,3,4\n", "m.csv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`abc`"), "{e}");
        assert!(parse_matches_csv("", "m.csv").is_err());
    }
}
