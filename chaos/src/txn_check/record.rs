//! The recorded history of a list-append workload: one [`TxnRecord`] per transaction, and the
//! [`FinalState`] read at the end. All of it serializes, so a history can be saved as JSON lines:
//!
//! ```text
//! {"process":0,"invoke_ms":10,"complete_ms":14,"outcome":"ok","ops":[
//!     {"f":"append","key":"x","element":1,"version":1},
//!     {"f":"read","key":"y","version":0,"element":null}]}
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How a transaction ended, as the client saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TxnOutcome {
    /// Committed; its reads' results and its appends' versions are known.
    Ok,
    /// Certainly did not take effect.
    Fail,
    /// Unknown: it may or may not have taken effect.
    Info,
}

/// One step of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "lowercase")]
pub enum MicroOp {
    /// Append `element` to `key`, creating its next version.
    Append {
        /// The key.
        key: String,
        /// The element; unique per key across the whole history (the workload's convention).
        element: u64,
        /// The version the server reported for it, in an ok txn; `None` otherwise (or when
        /// the server did not say).
        version: Option<u64>,
    },
    /// Read `key`'s latest version.
    Read {
        /// The key.
        key: String,
        /// In an ok txn: the version observed, 0 when the key had none. `None` when unknown
        /// (a failed or info txn; the checker ignores those reads).
        version: Option<u64>,
        /// In an ok txn: the element of that version; `None` for version 0.
        element: Option<u64>,
    },
}

/// One transaction of the history. Its index in the history is its name in reports (`T7`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnRecord {
    /// The client process that ran it.
    pub process: u64,
    /// When it was invoked, in milliseconds on the history's clock.
    pub invoke_ms: u64,
    /// When it completed; `None` if it never did, which makes it [`TxnOutcome::Info`] whatever
    /// `outcome` says. A time before `invoke_ms` is read as `invoke_ms`.
    pub complete_ms: Option<u64>,
    /// How it ended.
    pub outcome: TxnOutcome,
    /// Its steps, in order.
    pub ops: Vec<MicroOp>,
}

impl TxnRecord {
    /// The outcome the checker uses: [`TxnOutcome::Info`] for a txn that never completed.
    pub fn effective_outcome(&self) -> TxnOutcome {
        match self.complete_ms {
            Some(_) => self.outcome,
            None => TxnOutcome::Info,
        }
    }
}

/// Every key's whole version history, read at the end of the run: index i holds the element of
/// version i + 1. A key that is absent has no versions, so the final state must hold every key
/// the history appended to.
pub type FinalState = BTreeMap<String, Vec<u64>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_through_json_in_the_documented_shape() {
        let record = TxnRecord {
            process: 0,
            invoke_ms: 10,
            complete_ms: Some(14),
            outcome: TxnOutcome::Ok,
            ops: vec![
                MicroOp::Append { key: "x".into(), element: 1, version: Some(1) },
                MicroOp::Read { key: "y".into(), version: Some(0), element: None },
            ],
        };
        let text = serde_json::to_string(&record).unwrap();
        assert_eq!(
            text,
            r#"{"process":0,"invoke_ms":10,"complete_ms":14,"outcome":"ok","ops":[{"f":"append","key":"x","element":1,"version":1},{"f":"read","key":"y","version":0,"element":null}]}"#
        );
        assert_eq!(serde_json::from_str::<TxnRecord>(&text).unwrap(), record);
    }

    #[test]
    fn a_txn_that_never_completed_is_info() {
        let record = TxnRecord {
            process: 0,
            invoke_ms: 10,
            complete_ms: None,
            outcome: TxnOutcome::Ok,
            ops: vec![],
        };
        assert_eq!(record.effective_outcome(), TxnOutcome::Info);
        let done = TxnRecord { complete_ms: Some(11), ..record };
        assert_eq!(done.effective_outcome(), TxnOutcome::Ok);
    }
}
