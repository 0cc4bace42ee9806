//! Multi-shard transactions as the ledger records them: the reserved keys, the decision record a
//! coordinator writes, and the receipt a committed transaction returns to its client.
//!
//! A transaction that writes in several shards commits by two-phase commit. Its outcome, the
//! *decision*, is an ordinary record of the ledger (a leaf of kind `0x01`, unchanged) whose key is
//! the transaction's *decision key* in the coordinator's shard and whose value is a
//! [`DecisionRecord`]: commit or abort, and how many records the transaction wrote in each
//! participant shard. Because it is an ordinary record, it is proven like any other, and a client
//! can check offline that a transaction committed and that it holds every record it wrote:
//!
//! ```text
//!  coordinator shard's log               participant shards' logs
//!  ┌──────────────────────────────┐      ┌────────────────────────────┐
//!  │ key   = decision key(c, T)   │      │ key k1, txn_id = T         │ ◄── write bundle
//!  │ txn_id = T                   │      │ key k2, txn_id = T         │ ◄── write bundle
//!  │ value = DecisionRecord:      │      └────────────────────────────┘
//!  │   commit, [(shard, writes)]  │      (as many per shard as the decision record counts)
//!  └──────────────────────────────┘
//!         ▲ decision bundle
//!  Receipt { txn_id: T, coordinator: c, decision, writes } ──► verify_receipt
//! ```
//!
//! # Reserved keys
//!
//! Keys that begin with [`RESERVED_KEY_PREFIX`] (`0x00` then `blockdb/`) belong to the system;
//! the server refuses them as user keys, so no user record can pass for a system record. A
//! decision key is
//!
//! | offset | size | field         | meaning                                         |
//! |-------:|-----:|---------------|-------------------------------------------------|
//! | 0      | 13   | prefix        | [`DECISION_KEY_PREFIX`], `0x00` `blockdb/txn/`    |
//! | 13     | 4    | `coordinator` | the coordinator's shard, u32 big-endian          |
//! | 17     | 16   | `txn_id`      | the transaction id                               |
//!
//! exactly [`DECISION_KEY_LEN`] bytes. [`ShardId::for_key`] routes a decision key to the shard it
//! names (when the cluster has that shard), so the decision lives in its coordinator's log.
//!
//! # Parts
//!
//! - [`decision`]: the [`DecisionRecord`] value and its canonical binary encoding.
//! - [`receipt`]: the [`Receipt`], its JSON form, and [`verify_receipt`].

pub mod decision;
pub mod receipt;

pub use decision::{DecisionError, DecisionRecord, PARTICIPANTS_MAX, Participant, TxnDecision};
pub use receipt::{
    RECEIPT_FORMAT, RECEIPT_LEN_MAX, RECEIPT_WRITES_MAX, Receipt, ReceiptError, ReceiptPart,
    VerifiedReceipt, VerifiedWrite, verify_receipt,
};

use crate::ids::{ShardId, TxnId};

/// The prefix of every key the system reserves for itself; the server refuses user keys that
/// begin with it.
pub const RESERVED_KEY_PREFIX: &[u8] = b"\x00blockdb/";
/// The prefix of every transaction decision key, inside the reserved space.
pub const DECISION_KEY_PREFIX: &[u8] = b"\x00blockdb/txn/";
/// Length of a decision key: the prefix, a u32 shard and a 16-byte transaction id.
pub const DECISION_KEY_LEN: usize = DECISION_KEY_PREFIX.len() + 4 + 16;

/// The key of transaction `txn`'s decision record, in the log of shard `coordinator`:
/// [`DECISION_KEY_PREFIX`] ‖ `coordinator` (u32 big-endian) ‖ the 16 bytes of `txn`.
pub fn decision_key(coordinator: ShardId, txn: TxnId) -> Vec<u8> {
    let mut key = Vec::with_capacity(DECISION_KEY_LEN);
    key.extend_from_slice(DECISION_KEY_PREFIX);
    key.extend_from_slice(&coordinator.0.to_be_bytes());
    key.extend_from_slice(&txn.0);
    key
}

/// The coordinator shard and transaction of a decision key ([`decision_key`]'s inverse), or
/// `None` when `key` is not exactly a decision key (another prefix, or another length).
pub fn parse_decision_key(key: &[u8]) -> Option<(ShardId, TxnId)> {
    if key.len() != DECISION_KEY_LEN {
        return None;
    }
    let rest = key.strip_prefix(DECISION_KEY_PREFIX)?;
    let (shard, txn) = rest.split_first_chunk::<4>()?;
    let txn: [u8; 16] = txn.try_into().ok()?;
    Some((ShardId(u32::from_be_bytes(*shard)), TxnId(txn)))
}

/// Whether `key` is in the system's reserved space (begins with [`RESERVED_KEY_PREFIX`]).
pub fn is_reserved_key(key: &[u8]) -> bool {
    key.starts_with(RESERVED_KEY_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_key_layout_and_round_trip() {
        let txn = TxnId([0x5a; 16]);
        let key = decision_key(ShardId(0x0102_0304), txn);
        assert_eq!(key.len(), DECISION_KEY_LEN);
        assert_eq!(DECISION_KEY_LEN, 33);
        assert_eq!(&key[..13], b"\x00blockdb/txn/");
        assert_eq!(&key[13..17], &[1, 2, 3, 4]);
        assert_eq!(&key[17..], &[0x5a; 16]);
        assert_eq!(parse_decision_key(&key), Some((ShardId(0x0102_0304), txn)));
        assert!(is_reserved_key(&key));
        assert!(DECISION_KEY_PREFIX.starts_with(RESERVED_KEY_PREFIX));
    }

    #[test]
    fn only_exact_decision_keys_parse() {
        let key = decision_key(ShardId(3), TxnId([1; 16]));
        assert_eq!(parse_decision_key(&key[..key.len() - 1]), None);
        let mut long = key.clone();
        long.push(0);
        assert_eq!(parse_decision_key(&long), None);
        let mut other = key.clone();
        other[9] = b'X'; // "txn/" becomes "Xxn/"
        assert_eq!(parse_decision_key(&other), None);
        assert_eq!(parse_decision_key(b""), None);
        assert_eq!(parse_decision_key(&[0u8; DECISION_KEY_LEN]), None);
    }

    #[test]
    fn reserved_keys() {
        assert!(is_reserved_key(b"\x00blockdb/"));
        assert!(is_reserved_key(b"\x00blockdb/anything"));
        assert!(!is_reserved_key(b"blockdb/txn/x"));
        assert!(!is_reserved_key(b"\x00blockdb"));
        assert!(!is_reserved_key(b"\x00BLOCKDB/"));
        assert!(!is_reserved_key(b""));
    }
}
