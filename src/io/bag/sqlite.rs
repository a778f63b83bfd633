//! rosbag2's sqlite3 storage (`.db3`, Foxy through Kilted): topics and decoded camera messages,
//! streamed row by row.
//!
//! Every schema version has `topics(id, name, type, serialization_format, ...)` and
//! `messages(id, topic_id, timestamp, data)`; later versions add columns (`offered_qos_profiles`
//! from Foxy's schema 2, `type_description_hash` from Iron's schema 4) and tables (`schema`,
//! `metadata`, `message_definitions`), none of which playback needs, so only the common columns
//! are read. Rows come in `timestamp, id` order through rosbag2's `timestamp_idx` when the file
//! has it, else in insertion (`id`) order, which is arrival order; SQLite never sorts the bag.
//!
//! The query runs on its own thread with its own read-only connection and hands rows over a
//! small bounded channel: at most a few messages are held at once, however large the bag.
//!
//! Damage: SQLite reports a damaged page as an error on the row that needs it; reading stops
//! there, everything returned before is kept, and the rest is reported as a [`DataLoss`] naming
//! the file (SQLite cannot resume past a damaged b-tree page). A file cut short mid-write, which
//! SQLite refuses whole, is read from a patched copy of its pages before the cut
//! ([`super::sqlite_salvage`]) in `id` (record) order: every row whose pages lie before the cut
//! is played, and the cut is reported.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use super::compression::{decompress_message, TempFile, ZSTD_MAGIC};
use super::message::{BagMessage, Kind, TopicInfo};
use super::report::{DataLoss, ReadReport};
use super::sqlite_salvage::{find_cut, salvage_copy, Cut};
use super::BagError;

/// The first 16 bytes of every SQLite 3 database.
pub const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Rows queued between the query thread and the reader.
const QUEUE: usize = 16;

/// An open rosbag2 `.db3` file.
#[derive(Debug)]
pub struct SqliteReader {
    path: PathBuf,
    /// The file SQLite reads: `path`, or the salvage copy of a file cut short.
    db: PathBuf,
    /// The salvage copy (kept alive while a query thread reads it) and where `path` was cut.
    salvage: Option<(Arc<TempFile>, Cut)>,
    /// topic id → topic name.
    ids: BTreeMap<i64, String>,
    topics: Vec<TopicInfo>,
    /// Messages per topic id (`None` when counting failed: a damaged file).
    counts: Option<HashMap<i64, u64>>,
    /// Why counting failed.
    count_problem: String,
    /// `ORDER BY` clause.
    order: &'static str,
    /// The timestamp index the order uses.
    index: Option<String>,
    /// `schema.schema_version` (rosbag2 3 = Humble, 4 = Iron+), when the file records it.
    schema_version: Option<i64>,
    /// First and last message timestamp.
    time_range: Option<(u64, u64)>,
}

/// Open read-only and `immutable`: SQLite then takes no locks and never creates, reads or
/// writes a `-shm` / `-wal` / `-journal` file next to the user's `.db3` (a WAL-mode bag on
/// read-only media opens too; a stray `-wal` is not read, as docs/ros.md says).
fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(
        file_uri(path),
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
}

/// `file:` URI of `path` with `immutable=1` (RFC 3986 percent-encoding of every byte that is
/// not unreserved or `/`).
fn file_uri(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            uri.push(b as char);
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    uri
}

impl SqliteReader {
    /// Open `path` and read its topics and message counts. A file that is not SQLite, or a
    /// database without rosbag2's `topics` and `messages` tables, is refused naming what is
    /// missing.
    pub fn open(path: &Path) -> Result<Self, BagError> {
        let err = |reason: String| BagError::File {
            path: path.display().to_string(),
            reason,
        };
        let mut magic = [0u8; 16];
        crate::io::paths::open_regular(path, "an SQLite .db3 storage file")
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.reason))
            .and_then(|(mut f, _)| f.read_exact(&mut magic))
            .map_err(|e| err(format!("cannot read an SQLite header: {e}")))?;
        if &magic != SQLITE_MAGIC {
            return Err(err("not an SQLite 3 database (no SQLite header)".into()));
        }
        // SQLite refuses a file shorter than its header says (SQLITE_CORRUPT, or NOTADB) on the
        // first query; only then, and only when the header shows the cut, is a copy salvaged.
        let probe = open_read_only(path).and_then(|c| {
            c.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
        });
        let refused = match &probe {
            Err(e) => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
            ),
            Ok(_) => false,
        };
        let cut = if refused {
            find_cut(path).ok().flatten()
        } else {
            None
        };
        let Some(cut) = cut else {
            return Self::read(path, path, None);
        };
        let refusal = probe.err().map(|e| e.to_string()).unwrap_or_default();
        let copy = salvage_copy(path, &cut).map_err(|e| {
            err(format!(
                "SQLite: {refusal}; the file is cut short at byte {}, and copying its pages                  before the cut for salvage failed: {e}",
                cut.file_len
            ))
        })?;
        let db = copy.path().to_path_buf();
        log::warn!(
            "{}: cut short at byte {} of {}; reading the {} whole page(s) before the cut",
            path.display(),
            cut.file_len,
            cut.declared_len
                .map_or("an unknown size".to_string(), |d| d.to_string()),
            cut.kept_pages
        );
        Self::read(path, &db, Some((Arc::new(copy), cut))).map_err(|e| match e {
            BagError::File { path, reason } => BagError::File {
                path,
                reason: format!(
                    "SQLite: {refusal}; the file is cut short at byte {} and its pages before                      the cut do not hold a readable bag, so it is lost whole: {reason}",
                    cut.file_len
                ),
            },
            other => other,
        })
    }

    /// Read the tables of `db` (`path` or its salvage copy); errors name `path`.
    fn read(
        path: &Path,
        db: &Path,
        salvage: Option<(Arc<TempFile>, Cut)>,
    ) -> Result<Self, BagError> {
        let err = |reason: String| BagError::File {
            path: path.display().to_string(),
            reason,
        };
        let conn = open_read_only(db).map_err(|e| err(format!("SQLite: {e}")))?;
        let tables = check_tables(&conn).map_err(err)?;
        let schema_version = if tables.iter().any(|t| t == "schema") {
            conn.query_row("SELECT schema_version FROM schema", [], |r| r.get(0))
                .ok()
        } else {
            None
        };
        let topic_rows = topic_rows(&conn).map_err(err)?;
        let (counts, count_problem) = match count_messages(&conn) {
            Ok(c) => (Some(c), String::new()),
            Err(e) => {
                log::warn!("{}: counting messages failed: {e}", path.display());
                (None, e.to_string())
            }
        };
        let index: Option<String> = conn
            .query_row(
                "SELECT l.name FROM pragma_index_list('messages') AS l, \
                 pragma_index_info(l.name) AS i WHERE i.seqno = 0 AND i.name = 'timestamp'",
                [],
                |r| r.get::<_, String>(0),
            )
            .ok();
        let has_index = match (&index, &salvage) {
            (Some(index), None) => index_is_whole(&conn, path, index, counts.as_ref()),
            (index, _) => index.is_some(),
        };
        let time_range = conn
            .query_row(
                "SELECT MIN(timestamp), MAX(timestamp) FROM messages",
                [],
                |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?)),
            )
            .ok()
            .and_then(|(a, b)| Some((a?.max(0) as u64, b?.max(0) as u64)));
        let (topics, ids) = topics_by_name(topic_rows, counts.as_ref());
        // A salvaged file is read in `id` order: the table's own b-tree, which stops at the cut;
        // the index's pages interleave with it and would end the walk at its first lost page.
        let order = if has_index && salvage.is_none() {
            "timestamp, id"
        } else {
            "id"
        };
        Ok(SqliteReader {
            path: path.to_path_buf(),
            db: db.to_path_buf(),
            salvage,
            ids,
            topics,
            counts,
            count_problem,
            order,
            index: if order.starts_with("timestamp") {
                index
            } else {
                None
            },
            schema_version,
            time_range,
        })
    }

    /// Topics, sorted by name.
    pub fn topics(&self) -> &[TopicInfo] {
        &self.topics
    }

    /// rosbag2's `schema_version` of the file (3: Humble, 4: Iron and later), when recorded.
    pub fn schema_version(&self) -> Option<i64> {
        self.schema_version
    }

    /// First and last message timestamp (ns), when the file has messages and SQLite reads them.
    pub fn time_range(&self) -> Option<(u64, u64)> {
        self.time_range
    }

    /// Where the file was cut short, when it was (its messages are then salvaged).
    pub fn cut(&self) -> Option<Cut> {
        self.salvage.as_ref().map(|(_, c)| *c)
    }

    /// What is wrong with a file that still reads: where it was cut short, when it was.
    pub fn damage(&self) -> Option<String> {
        self.cut().map(|c| {
            format!(
                "cut short at byte {} (its header declares {}): salvaged per page, the messages \
                 before the cut are read, the rest of the file is lost",
                c.file_len,
                c.declared_len
                    .map_or("no valid size".to_string(), |d| format!("{d} bytes"))
            )
        })
    }

    /// Why the messages could not be counted (a damaged file), empty when they were.
    pub fn count_problem(&self) -> &str {
        &self.count_problem
    }

    /// Messages of `topics` (those of them this file has) in time order, decoded; payloads are
    /// first zstd-decompressed (bounded by `unpack`'s cap) when the bag is `MESSAGE`-compressed.
    pub fn messages(&self, topics: &[&str], unpack: Option<u64>) -> SqliteMessages {
        let mut selected: HashMap<i64, (Arc<str>, Option<Kind>)> = HashMap::new();
        for (id, name) in &self.ids {
            if topics.contains(&name.as_str()) {
                let kind = self
                    .topics
                    .iter()
                    .find(|t| &t.name == name)
                    .and_then(|t| Kind::of(&t.message_type));
                selected.insert(*id, (Arc::from(name.as_str()), kind));
            }
        }
        let expected = self.counts.as_ref().map(|c| {
            selected
                .keys()
                .map(|id| c.get(id).copied().unwrap_or(0))
                .sum()
        });
        // The largest payload any selected type may have (its declared size is checked before
        // SQLite loads a row's BLOB, so a row that claims 999 MB costs nothing); a compressed
        // payload may be a little larger than its content.
        let cap = selected
            .values()
            .map(|(_, k)| k.map_or(Kind::max_other_payload(), Kind::max_payload))
            .max()
            .unwrap_or(0);
        let cap = cap.saturating_add(cap / 64).saturating_add(1 << 10);
        let (tx, rx) = sync_channel(QUEUE);
        let ids: Vec<i64> = selected.keys().copied().collect();
        let db = self.db.clone();
        let query = Query {
            ids: ids.clone(),
            order: self.order,
            cap,
            index: self.index.clone(),
            by_row: self.salvage.is_none(),
        };
        let any = !ids.is_empty();
        // The thread holds the salvage copy so that it outlives the reader if need be.
        let copy = self.salvage.as_ref().map(|(c, _)| Arc::clone(c));
        if any {
            // A failed spawn arrives as a closed channel and is reported like a read error.
            let _ = std::thread::Builder::new()
                .name("imd-sqlite".into())
                .spawn(move || {
                    let _copy = copy;
                    query_rows(&db, query, tx)
                });
        }
        SqliteMessages {
            path: self.path.display().to_string(),
            cut: self.cut(),
            selected,
            rows: any.then_some(rx),
            unpack,
            expected,
            read: 0,
            lost: 0,
            report: ReadReport {
                indexed: true,
                ..Default::default()
            },
            done: false,
        }
    }
}

fn query_strings(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    rows.collect()
}

/// The table names, after checking that `topics` and `messages` exist with rosbag2's columns;
/// the error is the reason.
fn check_tables(conn: &Connection) -> Result<Vec<String>, String> {
    let tables: Vec<String> = query_strings(
        conn,
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
    )
    .map_err(|e| format!("SQLite cannot read the schema: {e}"))?;
    for (table, columns) in [
        (
            "topics",
            &["id", "name", "type", "serialization_format"][..],
        ),
        ("messages", &["id", "topic_id", "timestamp", "data"][..]),
    ] {
        if !tables.iter().any(|t| t == table) {
            return Err(format!(
                "an SQLite database but not a rosbag2 bag: no `{table}` table (it has {})",
                if tables.is_empty() {
                    "no tables".to_string()
                } else {
                    tables.join(", ")
                }
            ));
        }
        let have = query_strings(
            conn,
            &format!("SELECT name FROM pragma_table_info('{table}')"),
        )
        .map_err(|e| format!("SQLite: {e}"))?;
        for c in columns {
            if !have.iter().any(|h| h == c) {
                return Err(format!(
                    "not a rosbag2 bag: table `{table}` has no `{c}` column (it has {})",
                    have.join(", ")
                ));
            }
        }
    }
    Ok(tables)
}

/// `topics` rows: id, name, type, serialization format.
type TopicRow = (i64, String, String, String);

fn topic_rows(conn: &Connection) -> Result<Vec<TopicRow>, String> {
    let mut stmt = conn
        .prepare("SELECT id, name, type, serialization_format FROM topics ORDER BY id")
        .map_err(|e| format!("SQLite: {e}"))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .map_err(|e| format!("SQLite reading topics: {e}"))?;
    rows.map(|row| row.map_err(|e| format!("SQLite reading topics: {e}")))
        .collect()
}

/// Whether the timestamp index `index` reaches every row. Walks the index alone (no row is
/// loaded): a damaged `timestamp_idx` would end the ordered read at its first bad page although
/// the table reads whole; rows then come in `id` (arrival) order.
fn index_is_whole(
    conn: &Connection,
    path: &Path,
    index: &str,
    counts: Option<&HashMap<i64, u64>>,
) -> bool {
    let probe = conn.query_row(
        &format!(
            "SELECT COUNT(*) FROM messages INDEXED BY \"{}\" WHERE timestamp >= \
             -9223372036854775808",
            index.replace('"', "\"\"")
        ),
        [],
        |r| r.get::<_, i64>(0),
    );
    let whole = match (&probe, counts) {
        (Ok(n), Some(c)) => *n as u64 == c.values().sum::<u64>(),
        (Ok(_), None) => true,
        (Err(_), _) => false,
    };
    if !whole {
        log::warn!(
            "{}: the timestamp index is damaged ({}); reading in id order",
            path.display(),
            probe
                .as_ref()
                .err()
                .map_or("it disagrees with the table".to_string(), |e| e.to_string())
        );
    }
    whole
}

/// Topics by name (rows of one name merged, their counts added), and topic id → name.
fn topics_by_name(
    rows: Vec<TopicRow>,
    counts: Option<&HashMap<i64, u64>>,
) -> (Vec<TopicInfo>, BTreeMap<i64, String>) {
    let mut by_name: BTreeMap<String, TopicInfo> = BTreeMap::new();
    let mut ids = BTreeMap::new();
    for (id, name, ty, fmt) in rows {
        let n = counts.and_then(|c| c.get(&id)).copied().unwrap_or(0);
        by_name
            .entry(name.clone())
            .and_modify(|t| t.message_count += n)
            .or_insert_with(|| TopicInfo {
                name: name.clone(),
                message_type: ty,
                message_encoding: fmt,
                message_count: n,
            });
        ids.insert(id, name);
    }
    (by_name.into_values().collect(), ids)
}

fn count_messages(conn: &Connection) -> rusqlite::Result<HashMap<i64, u64>> {
    let mut stmt = conn.prepare("SELECT topic_id, COUNT(*) FROM messages GROUP BY topic_id")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
    let mut out = HashMap::new();
    for row in rows {
        let (id, n) = row?;
        out.insert(id, n.max(0) as u64);
    }
    Ok(out)
}

/// One row handed from the query thread.
enum Row {
    Message {
        topic_id: i64,
        timestamp: i64,
        data: Result<Vec<u8>, String>,
    },
    /// One row that SQLite cannot read (a damaged page); the others go on.
    Lost(String),
    /// SQLite stopped with this error.
    Failed(String),
}

/// How the query thread reads: which rows, in which order, and whether to salvage row by row.
struct Query {
    /// Selected topic ids.
    ids: Vec<i64>,
    /// `ORDER BY` clause.
    order: &'static str,
    /// Largest BLOB loaded.
    cap: u64,
    /// The timestamp index, when the order uses it.
    index: Option<String>,
    /// After a damaged page, read the remaining rows one by one by id (not for a file cut
    /// short, whose loss is the pages past the cut).
    by_row: bool,
}

/// `topic_id, timestamp, data (when its declared size is within the cap), length(data)`.
fn columns(cap: u64) -> String {
    format!("topic_id, timestamp, CASE WHEN length(data) <= {cap} THEN data END, length(data)")
}

/// A row's message, from the columns of [`columns`] starting at column `base`.
fn row_message(row: &rusqlite::Row<'_>, cap: u64, base: usize) -> rusqlite::Result<Row> {
    let topic_id = row.get::<_, i64>(base)?;
    let timestamp = row.get::<_, i64>(base + 1)?;
    let declared = row.get::<_, i64>(base + 3);
    let data = match row.get_ref(base + 2) {
        Ok(ValueRef::Blob(b)) => Ok(b.to_vec()),
        Ok(ValueRef::Null) if declared.as_ref().is_ok_and(|&n| n as u64 > cap) => Err(format!(
            "the row declares {} bytes, more than the {cap} the largest message of its type may \
             have; not read ({})",
            declared.unwrap_or(0),
            super::message::RAISE_LIMITS
        )),
        Ok(other) => Err(format!(
            "the data column holds {:?}, not a BLOB",
            other.data_type()
        )),
        Err(e) => Err(e.to_string()),
    };
    Ok(Row::Message {
        topic_id,
        timestamp,
        data,
    })
}

/// The query thread: stream the selected rows into `tx` until done, an error, or the reader
/// hangs up. When SQLite stops on a damaged page and `q.by_row`, every row id is listed (from
/// the index alone when the order uses it, so no table page is read) and the rows not yet sent
/// are read one by one: a damaged page then costs its own rows only.
fn query_rows(path: &Path, q: Query, tx: SyncSender<Row>) {
    let fail = |tx: &SyncSender<Row>, e: String| {
        let _ = tx.send(Row::Failed(e));
    };
    let conn = match open_read_only(path) {
        Ok(c) => c,
        Err(e) => return fail(&tx, e.to_string()),
    };
    // The ids are integers from the file's topics table, formatted here: nothing is spliced in
    // from text.
    let list: Vec<String> = q.ids.iter().map(i64::to_string).collect();
    let sql = format!(
        "SELECT id, {} FROM messages WHERE topic_id IN ({}) ORDER BY {}",
        columns(q.cap),
        list.join(","),
        q.order
    );
    let mut sent = std::collections::HashSet::new();
    let failure = match stream_rows(&conn, &sql, q.cap, &tx, &mut sent) {
        Ok(true) => return,
        Ok(false) => return, // The reader is gone.
        Err(e) => e,
    };
    if !q.by_row {
        return fail(&tx, failure);
    }
    let id_sql = match &q.index {
        Some(ix) if q.order.starts_with("timestamp") => format!(
            "SELECT id FROM messages INDEXED BY \"{}\" ORDER BY timestamp, id",
            ix.replace('"', "\"\"")
        ),
        _ => "SELECT id FROM messages ORDER BY id".to_string(),
    };
    let (all, listing_failed) = list_ids(&conn, &id_sql);
    if all.is_empty() {
        return fail(&tx, failure);
    }
    log::warn!(
        "{}: SQLite stopped ({failure}); reading the remaining rows one by one",
        path.display()
    );
    let by_id = format!("SELECT {} FROM messages WHERE id = ?1", columns(q.cap));
    let mut stmt = match conn.prepare(&by_id) {
        Ok(s) => s,
        Err(e) => return fail(&tx, e.to_string()),
    };
    for id in all.into_iter().filter(|id| !sent.contains(id)) {
        let row = match stmt.query_row([id], |r| row_message(r, q.cap, 0)) {
            Ok(m @ Row::Message { topic_id, .. }) if q.ids.contains(&topic_id) => m,
            Ok(_) => continue,
            Err(e) => Row::Lost(format!(
                "row id {id} is unreadable ({e}); the rows around it were read by id"
            )),
        };
        if tx.send(row).is_err() {
            return;
        }
    }
    if let Some(e) = listing_failed {
        fail(
            &tx,
            format!("{failure}; listing the rows by id then stopped too ({e})"),
        );
    }
}

/// Send the rows of `sql` (`id` then [`columns`]); `Ok(true)` at the end, `Ok(false)` when the
/// reader hung up, `Err` when SQLite stopped.
fn stream_rows(
    conn: &Connection,
    sql: &str,
    cap: u64,
    tx: &SyncSender<Row>,
    sent: &mut std::collections::HashSet<i64>,
) -> Result<bool, String> {
    let mut stmt = conn.prepare(sql).map_err(|e| e.to_string())?;
    let mut rows = stmt.query([]).map_err(|e| e.to_string())?;
    loop {
        let row = match rows.next() {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(true),
            Err(e) => return Err(e.to_string()),
        };
        let id = row.get::<_, i64>(0).map_err(|e| e.to_string())?;
        let message = row_message(row, cap, 1).map_err(|e| e.to_string())?;
        sent.insert(id);
        if tx.send(message).is_err() {
            return Ok(false);
        }
    }
}

/// The ids `sql` lists, as far as SQLite gets, and the error that stopped it (if one did).
fn list_ids(conn: &Connection, sql: &str) -> (Vec<i64>, Option<String>) {
    let mut out = Vec::new();
    let mut stmt = match conn.prepare(sql) {
        Ok(s) => s,
        Err(e) => return (out, Some(e.to_string())),
    };
    let mut rows = match stmt.query([]) {
        Ok(r) => r,
        Err(e) => return (out, Some(e.to_string())),
    };
    loop {
        match rows.next() {
            Ok(Some(r)) => match r.get::<_, i64>(0) {
                Ok(id) => out.push(id),
                Err(e) => return (out, Some(e.to_string())),
            },
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e.to_string())),
        }
    }
}

/// Iterator over the decoded messages of one `.db3` file; see [`SqliteReader::messages`].
/// [`BagMessage::index`] counts the file's selected messages; [`super::Bag`] renumbers them
/// per topic across files.
pub struct SqliteMessages {
    path: String,
    /// Where the file was cut short, when it was.
    cut: Option<Cut>,
    selected: HashMap<i64, (Arc<str>, Option<Kind>)>,
    rows: Option<Receiver<Row>>,
    unpack: Option<u64>,
    /// Selected messages the file holds, when it could count them.
    expected: Option<u64>,
    read: u64,
    /// Rows lost one by one (read around by id).
    lost: u64,
    report: ReadReport,
    done: bool,
}

impl std::fmt::Debug for SqliteMessages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteMessages")
            .field("path", &self.path)
            .field("read", &self.read)
            .finish_non_exhaustive()
    }
}

impl SqliteMessages {
    /// What the read so far lost (complete once the iterator has ended).
    pub fn report(&self) -> &ReadReport {
        &self.report
    }

    fn stop(&mut self, reason: String) {
        self.done = true;
        if let Some(cut) = self.cut {
            return self.lose_after_cut(cut, format!("SQLite stopped ({reason})"));
        }
        self.report.lose(DataLoss {
            file: self.path.clone(),
            start: 0,
            end: 0,
            chunk: false,
            messages: self.expected.map(|n| n.saturating_sub(self.read)),
            reason: format!(
                "SQLite stopped returning rows after {} message(s) of the selected topics: \
                 {reason}",
                self.read
            ),
        });
    }
}

impl SqliteMessages {
    /// Report the end of a salvaged read: what was recovered and that the rest is lost.
    fn lose_after_cut(&mut self, cut: Cut, why: String) {
        self.report.lose(DataLoss {
            file: self.path.clone(),
            start: cut.kept_len(),
            end: cut.declared_len.unwrap_or(cut.file_len).max(cut.file_len),
            chunk: false,
            messages: self.expected.map(|n| n.saturating_sub(self.read)),
            reason: format!(
                "the file is cut short at byte {} (its header declares {}: a recording killed \
                 mid-write?); SQLite salvage works per page: the {} whole {}-byte page(s) \
                 before the cut were read in record order and {} message(s) of the selected \
                 topics recovered, then {why}; the rest of the file after the cut is lost",
                cut.file_len,
                cut.declared_len
                    .map_or("no valid size".to_string(), |d| format!("{d} bytes")),
                cut.kept_pages,
                cut.page_size,
                self.read,
            ),
        });
    }
}

impl Iterator for SqliteMessages {
    type Item = Result<BagMessage, BagError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let Some(rows) = &self.rows else {
                self.done = true;
                break;
            };
            let row = match rows.recv() {
                Ok(r) => r,
                Err(_) => {
                    // The thread ended: either every row was sent, or it could not start.
                    self.done = true;
                    if let Some(cut) = self.cut {
                        // Even a table read to its end lost the pages past the cut.
                        self.lose_after_cut(cut, "the messages table ended".into());
                    } else if self.expected.is_some_and(|n| self.read + self.lost < n) {
                        self.stop("the query ended early".into());
                    }
                    break;
                }
            };
            let (topic_id, timestamp, data) = match row {
                Row::Message {
                    topic_id,
                    timestamp,
                    data,
                } => (topic_id, timestamp, data),
                Row::Failed(reason) => {
                    self.stop(reason);
                    break;
                }
                Row::Lost(reason) => {
                    self.lost += 1;
                    self.report.lose(DataLoss {
                        file: self.path.clone(),
                        start: 0,
                        end: 0,
                        chunk: false,
                        messages: Some(1),
                        reason,
                    });
                    continue;
                }
            };
            let Some((topic, kind)) = self.selected.get(&topic_id) else {
                continue;
            };
            let index = self.read;
            self.read += 1;
            let t = timestamp.max(0) as u64;
            let failed = |reason: String| BagError::Message {
                topic: topic.to_string(),
                index,
                log_time_ns: t,
                reason,
            };
            // A CDR payload starts with its encapsulation header (0x00), never zstd's magic.
            let data = match (data, self.unpack) {
                (Ok(d), Some(max)) if d.starts_with(&ZSTD_MAGIC) => decompress_message(&d, max),
                (d, _) => d,
            };
            let payload = match (data, kind) {
                (Err(e), _) => Err(failed(e)),
                (Ok(_), None) => Err(failed("the topic's type is not readable".into())),
                (Ok(d), Some(k)) => k.decode(&d).map_err(|e| failed(e.to_string())),
            };
            return Some(payload.map(|payload| BagMessage {
                topic: topic.clone(),
                index,
                log_time_ns: t,
                publish_time_ns: t,
                payload,
            }));
        }
        None
    }
}
