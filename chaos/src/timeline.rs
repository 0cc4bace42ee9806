//! The nemesis timeline of a run: every fault, from when it began to when it was healed, on the
//! same clock as the history's `time_ns`. A run writes it as `nemesis.jsonl`, one fault per line:
//!
//! ```text
//! {"start_ns":5000000000,"end_ns":15000000000,"kind":"partition","what":"isolate node 3"}
//! {"start_ns":20000000000,"end_ns":null,"kind":"kill","what":"kill node 1 (leader of shard 0)"}
//! ```
//!
//! `end_ns` is `null` for a fault still in place when the run ended (the run heals everything
//! before its final reads, and says so with a last fault's end).

use std::io::{self, BufRead, Write};

use serde::{Deserialize, Serialize};

/// One fault and how long it lasted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// When it began, in nanoseconds since the run began.
    pub start_ns: u64,
    /// When it was healed, if it was.
    pub end_ns: Option<u64>,
    /// Its kind: `partition`, `kill`, `pause`, `delay`, `stall`, `clock`, ...
    pub kind: String,
    /// What exactly, for people.
    pub what: String,
}

/// Every fault of a run, in the order they began.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    /// The faults.
    pub faults: Vec<Fault>,
}

impl Timeline {
    /// Records the start of a fault; returns its index for [`Timeline::end`].
    pub fn begin(&mut self, at_ns: u64, kind: &str, what: impl Into<String>) -> usize {
        self.faults.push(Fault {
            start_ns: at_ns,
            end_ns: None,
            kind: kind.into(),
            what: what.into(),
        });
        self.faults.len() - 1
    }

    /// Records that fault `i` was healed.
    pub fn end(&mut self, i: usize, at_ns: u64) {
        if let Some(f) = self.faults.get_mut(i)
            && f.end_ns.is_none()
        {
            f.end_ns = Some(at_ns);
        }
    }

    /// Ends every fault still open.
    pub fn end_all(&mut self, at_ns: u64) {
        for f in &mut self.faults {
            f.end_ns.get_or_insert(at_ns);
        }
    }

    /// Writes the timeline as JSON lines.
    ///
    /// # Errors
    /// I/O errors.
    pub fn write_jsonl(&self, mut w: impl Write) -> io::Result<()> {
        for f in &self.faults {
            serde_json::to_writer(&mut w, f)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Reads a timeline written by [`Timeline::write_jsonl`].
    ///
    /// # Errors
    /// I/O errors, and a line that is not a fault (with its 1-based number).
    pub fn read_jsonl(r: impl BufRead) -> io::Result<Timeline> {
        let mut faults = Vec::new();
        for (i, line) in r.lines().enumerate() {
            let line = line?;
            let f: Fault = serde_json::from_str(&line).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidData, format!("line {}: {e}", i + 1))
            })?;
            faults.push(f);
        }
        Ok(Timeline { faults })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeline_round_trips_and_bad_lines_are_refused() {
        let mut t = Timeline::default();
        let a = t.begin(5, "partition", "isolate node 3");
        t.begin(7, "kill", "kill node 1");
        t.end(a, 9);
        t.end_all(11);
        assert_eq!(t.faults[0].end_ns, Some(9));
        assert_eq!(t.faults[1].end_ns, Some(11));
        let mut out = Vec::new();
        t.write_jsonl(&mut out).unwrap();
        assert_eq!(Timeline::read_jsonl(out.as_slice()).unwrap(), t);
        let err = Timeline::read_jsonl(&b"{\"start_ns\":1}\n"[..]).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }
}
