//! Reading a log directory in bounded memory: files line by line through a fixed buffer,
//! over-long lines skipped, and caps on files and distinct sources.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::parse::parse_line;

const MAX_FILES: usize = 1000;
const MAX_LINE: usize = 16 * 1024;
const MAX_SOURCES: usize = 10_000;
const TOP_SOURCES: usize = 10;

#[derive(Default)]
pub struct Report {
    pub files_read: u64,
    pub files_skipped: u64,
    pub lines_read: u64,
    pub lines_counted: u64,
    pub lines_older: u64,
    pub lines_unparseable: u64,
    by_level: BTreeMap<String, u64>,
    by_day: BTreeMap<String, u64>,
    by_source: HashMap<String, u64>,
}

pub fn scan_dir(dir: &str, now: OffsetDateTime, days: u32) -> Result<Report, String> {
    let cutoff = now - Duration::days(days as i64);
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {dir}: {e} (is [plugins.logs] dirs configured?)"))?;
    let mut files: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    files.sort();
    let mut report = Report::default();
    for (i, path) in files.into_iter().enumerate() {
        let Ok(meta) = std::fs::metadata(&path) else {
            report.files_skipped += 1;
            continue;
        };
        if !meta.is_file() || i >= MAX_FILES {
            report.files_skipped += 1;
            continue;
        }
        // A file not written since the cutoff holds no line we would count.
        let modified = meta.modified().ok().map(OffsetDateTime::from);
        if modified.is_some_and(|m| m < cutoff) {
            report.files_skipped += 1;
            continue;
        }
        match File::open(&path) {
            Ok(file) => {
                report.files_read += 1;
                report.scan(BufReader::with_capacity(64 * 1024, file), cutoff);
            }
            Err(_) => report.files_skipped += 1,
        }
    }
    Ok(report)
}

impl Report {
    fn scan(&mut self, mut reader: impl BufRead, cutoff: OffsetDateTime) {
        let mut buf = Vec::with_capacity(1024);
        loop {
            buf.clear();
            let read = match reader
                .by_ref()
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut buf)
            {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if read > MAX_LINE && !buf.ends_with(b"\n") {
                // Too long to be a log line: count it and skip to the next newline.
                self.lines_read += 1;
                self.lines_unparseable += 1;
                if reader.skip_until(b'\n').is_err() {
                    return;
                }
                continue;
            }
            let text = String::from_utf8_lossy(&buf);
            if text.trim().is_empty() {
                continue;
            }
            self.lines_read += 1;
            match parse_line(&text) {
                None => self.lines_unparseable += 1,
                Some(line) if line.ts < cutoff => self.lines_older += 1,
                Some(line) => {
                    self.lines_counted += 1;
                    *self.by_level.entry(line.level).or_default() += 1;
                    let day = line.ts.to_offset(time::UtcOffset::UTC).date().to_string();
                    *self.by_day.entry(day).or_default() += 1;
                    let source = line.source.unwrap_or_else(|| "-".into());
                    if self.by_source.len() < MAX_SOURCES || self.by_source.contains_key(&source) {
                        *self.by_source.entry(source).or_default() += 1;
                    } else {
                        *self.by_source.entry("(other)".into()).or_default() += 1;
                    }
                }
            }
        }
    }

    pub fn to_json(&self, now: OffsetDateTime, days: u32) -> Value {
        let mut sources: Vec<(&String, &u64)> = self.by_source.iter().collect();
        sources.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let top: Vec<Value> = sources
            .into_iter()
            .take(TOP_SOURCES)
            .map(|(source, lines)| json!({"source": source, "lines": lines}))
            .collect();
        json!({
            "generated_at": now.format(&Rfc3339).unwrap_or_default(),
            "days": days,
            "files_read": self.files_read,
            "files_skipped": self.files_skipped,
            "lines_read": self.lines_read,
            "lines_counted": self.lines_counted,
            "lines_older": self.lines_older,
            "lines_unparseable": self.lines_unparseable,
            "by_level": self.by_level,
            "by_day": self.by_day,
            "top_sources": top,
        })
    }
}
