//! The edit journal: the forecast store's write-ahead log. An edit is acknowledged once its
//! record is in this file and synced; DuckDB gets it afterwards, in batches, on the
//! store's applier thread ([`super::store`]). DuckDB spends about 2 ms on each statement
//! and syncs its own log at every commit, so an edit written there on the request's path
//! took 7-15 ms; a record here is one `write` and one `fdatasync`.
//!
//! One JSON record per line: the history entries of one write (a PUT, a batch or a
//! revert), which say everything the tables need (an entry's new quantity, note, version,
//! user and time are the cell's edit). A record whose entries DuckDB already holds (its
//! first number is at most the history's last) is not applied again, so a crash between
//! DuckDB's commit and the journal's clearing loses nothing and doubles nothing. A last
//! line that does not parse was cut short by a crash before its sync returned (never
//! acknowledged): it is dropped.

use std::{
    fs::{File, OpenOptions},
    io::{BufRead, BufReader, Write},
    path::Path,
};

use serde::{Deserialize, Serialize};
use snowcast::error::{Error, Result};

/// One history entry, as the history table holds it: dates, quantities and times as text
/// (ISO dates, exact decimals, RFC 3339), as they are bound into its statements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: i64,
    pub tenant: String,
    pub sku: String,
    pub date: String,
    /// `PUT` or `DELETE` ([`snowcast::domain::forecast::Op`]).
    pub op: String,
    pub old: Option<String>,
    pub new: Option<String>,
    pub note: Option<String>,
    pub version: i64,
    pub user: String,
    pub at: String,
}

/// The entries of one write, applied to DuckDB all together or not at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub entries: Vec<Entry>,
}

impl Record {
    /// The first history number of the record (records are numbered in journal order).
    pub fn first_seq(&self) -> i64 {
        self.entries.first().map_or(0, |entry| entry.seq)
    }

    /// The last history number of the record.
    pub fn last_seq(&self) -> i64 {
        self.entries.last().map_or(0, |entry| entry.seq)
    }
}

/// The journal file, open for appending.
pub struct Journal {
    file: File,
    /// Bytes of whole records in the file.
    len: u64,
    /// A failed append could not be cut back off the file: later records would follow a
    /// damaged line, so no more are written.
    damaged: bool,
}

impl Journal {
    /// Opens (creating) the journal at `path`; returns it with the records it holds. A torn
    /// last line is cut off, so the next record starts on a line of its own.
    pub fn open(path: &Path) -> Result<(Journal, Vec<Record>)> {
        let io = |e| Error::io(format!("opening the edit journal {}", path.display()), e);
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        let mut records = Vec::new();
        let mut len = 0u64;
        let mut reader = BufReader::new(&file);
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = reader.read_until(b'\n', &mut line).map_err(io)?;
            if read == 0 || line.last() != Some(&b'\n') {
                break;
            }
            match serde_json::from_slice::<Record>(&line) {
                Ok(record) => records.push(record),
                Err(_) => break,
            }
            len += read as u64;
        }
        drop(reader);
        if file.metadata().map_err(io)?.len() != len {
            tracing::warn!(
                journal = %path.display(),
                "the edit journal ends in a torn record (a crash before it was synced); it is dropped"
            );
            file.set_len(len).map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        let journal = Journal {
            file,
            len,
            damaged: false,
        };
        Ok((journal, records))
    }

    /// Appends `record` and syncs it: once this returns, the record survives a crash.
    pub fn append(&mut self, record: &Record) -> Result<()> {
        if self.damaged {
            return Err(Error::Warehouse {
                context: "writing the edit journal".into(),
                message: "an earlier write failed half-way; restart the stack".into(),
            });
        }
        let mut line = serde_json::to_vec(record)?;
        line.push(b'\n');
        let written = self
            .file
            .write_all(&line)
            .and_then(|()| self.file.sync_data());
        if let Err(error) = written {
            // Cut a partial line off, or refuse further records.
            self.damaged = self
                .file
                .set_len(self.len)
                .and_then(|()| self.file.sync_data())
                .is_err();
            return Err(Error::io("writing the edit journal", error));
        }
        self.len += line.len() as u64;
        Ok(())
    }

    /// Bytes of records in the journal.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Empties the journal (every record in it is in DuckDB).
    pub fn clear(&mut self) -> Result<()> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| Error::io("clearing the edit journal", e))?;
        self.len = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: i64) -> Record {
        Record {
            entries: vec![Entry {
                seq,
                tenant: "acme".into(),
                sku: "a/b \"c\"\n".into(),
                date: "2026-12-07".into(),
                op: "PUT".into(),
                old: None,
                new: Some("1.5".into()),
                note: Some("it's ✓".into()),
                version: 1,
                user: "ann".into(),
                at: "2026-12-07T10:00:00.123456+00:00".into(),
            }],
        }
    }

    #[test]
    fn records_come_back_after_a_reopen_and_a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edits.journal");
        let (mut journal, read) = Journal::open(&path).unwrap();
        assert!(read.is_empty());
        journal.append(&record(1)).unwrap();
        journal.append(&record(2)).unwrap();
        drop(journal);
        // A crash in the middle of the third record's write.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"entries":[{"seq":3,"ten"#).unwrap();
        drop(file);
        let (mut journal, read) = Journal::open(&path).unwrap();
        assert_eq!(read, [record(1), record(2)]);
        journal.append(&record(3)).unwrap();
        drop(journal);
        let (mut journal, read) = Journal::open(&path).unwrap();
        assert_eq!(read, [record(1), record(2), record(3)]);
        journal.clear().unwrap();
        assert_eq!(journal.len(), 0);
        drop(journal);
        assert!(Journal::open(&path).unwrap().1.is_empty());
    }
}
