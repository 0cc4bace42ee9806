//! Newtypes for the integers that must not mix (see the glossary in DESIGN.md).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Position of a leaf in its shard's Merkle log, counted from 0.
///
/// Not a Raft index: Raft counts membership and blank entries too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LogIndex(pub u64);

/// Number of leaves in a Merkle log. Leaves `[0, size)` are in the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TreeSize(pub u64);

/// A shard of the keyspace; each shard is one Raft group and one Merkle log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ShardId(pub u32);

impl ShardId {
    /// The shard that holds `key` in a cluster of `shards` shards. Servers and clients must agree
    /// on this, so it is defined once, here. `None` for 0 shards (no cluster has none).
    ///
    /// The keyspace is hash-partitioned by XXH3-64 of the key, modulo the shard count, with one
    /// exception: a well-formed transaction decision key ([`crate::txn::decision_key`]) whose
    /// embedded coordinator shard is below `shards` is held by that shard, because a decision
    /// record must live in its coordinator's log. A decision key naming a shard the cluster does
    /// not have, and every other key (reserved or not), is routed by the hash.
    pub fn for_key(key: &[u8], shards: u32) -> Option<ShardId> {
        if let Some((coordinator, _)) = crate::txn::parse_decision_key(key)
            && coordinator.0 < shards
        {
            return Some(coordinator);
        }
        let shards = u64::from(shards);
        (shards > 0).then(|| ShardId((xxhash_rust::xxh3::xxh3_64(key) % shards) as u32))
    }
}

/// Identifier of a transaction: 16 bytes, all zero for a write outside any transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TxnId(pub [u8; 16]);

impl TxnId {
    /// The id of "no transaction": a single write.
    pub const NONE: TxnId = TxnId([0; 16]);

    /// True for [`TxnId::NONE`].
    pub fn is_none(&self) -> bool {
        *self == Self::NONE
    }

    /// Lowercase hex, 32 digits (as [`Display`](fmt::Display) writes it).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 32 hex digits, either case; `None` for anything else (other lengths, signs,
    /// whitespace, non-hex characters).
    pub fn from_hex(s: &str) -> Option<TxnId> {
        let mut out = [0u8; 16];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(TxnId(out))
    }
}

impl fmt::Display for LogIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for TreeSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A transaction id serializes as its 32 lowercase hex digits.
impl Serialize for TxnId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

/// A transaction id deserializes from 32 hex digits, either case.
impl<'de> Deserialize<'de> for TxnId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<TxnId, D::Error> {
        let text = String::deserialize(d)?;
        TxnId::from_hex(&text).ok_or_else(|| {
            // The input is outside data of any length: say what is wrong without echoing it.
            let got = text.chars().count();
            let what = if got == 32 {
                "a non-hex character".to_owned()
            } else {
                format!("{got} characters")
            };
            serde::de::Error::custom(format!("a transaction id is 32 hex digits; got {what}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{ShardId, TxnId};
    use crate::txn::{DECISION_KEY_PREFIX, decision_key};

    #[test]
    fn keys_partition_by_xxh3() {
        // The function is XXH3-64 modulo the count, and every shard gets keys.
        assert_eq!(ShardId::for_key(b"alice", 1), Some(ShardId(0)));
        assert_eq!(ShardId::for_key(b"alice", 0), None);
        let alice = xxhash_rust::xxh3::xxh3_64(b"alice") % 4;
        assert_eq!(ShardId::for_key(b"alice", 4), Some(ShardId(alice as u32)));
        let spread: std::collections::BTreeSet<_> =
            (0..64u32).filter_map(|i| ShardId::for_key(&i.to_be_bytes(), 4)).collect();
        assert_eq!(spread.len(), 4);
    }

    #[test]
    fn decision_keys_route_to_their_coordinator() {
        let txn = TxnId([0xab; 16]);
        // Phase 1: every coordinator the cluster has holds its own decision keys, whatever the
        // hash of the key would say.
        for shards in [1u32, 2, 5, 8, 64] {
            for coordinator in 0..shards {
                let key = decision_key(ShardId(coordinator), txn);
                assert_eq!(ShardId::for_key(&key, shards), Some(ShardId(coordinator)));
            }
        }
        // The exception is visible: at least one decision key goes elsewhere than its hash.
        let moved = (0..8u32).any(|c| {
            let key = decision_key(ShardId(c), txn);
            (xxhash_rust::xxh3::xxh3_64(&key) % 8) as u32 != c
        });
        assert!(moved, "the test must cover a key whose hash routes elsewhere");

        // Phase 2: a coordinator the cluster does not have, a truncated or extended decision key,
        // and other reserved keys all keep the hash routing.
        let hashed = |key: &[u8], shards: u32| {
            Some(ShardId((xxhash_rust::xxh3::xxh3_64(key) % u64::from(shards)) as u32))
        };
        let beyond = decision_key(ShardId(7), txn);
        assert_eq!(ShardId::for_key(&beyond, 4), hashed(&beyond, 4));
        let mut long = decision_key(ShardId(1), txn);
        long.push(0);
        assert_eq!(ShardId::for_key(&long, 4), hashed(&long, 4));
        let short = &long[..long.len() - 2];
        assert_eq!(ShardId::for_key(short, 4), hashed(short, 4));
        assert_eq!(ShardId::for_key(DECISION_KEY_PREFIX, 4), hashed(DECISION_KEY_PREFIX, 4));
        assert_eq!(ShardId::for_key(&beyond, 0), None);
    }

    #[test]
    fn txn_id_hex_round_trip() {
        let txn = TxnId([0x0f, 0xa0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 0xff]);
        assert_eq!(txn.to_hex(), "0fa00102030405060708090a0b0c0dff");
        assert_eq!(txn.to_string(), txn.to_hex());
        assert_eq!(TxnId::from_hex(&txn.to_hex()), Some(txn));
        assert_eq!(TxnId::from_hex("0FA00102030405060708090A0B0C0DFF"), Some(txn));
        for bad in ["", "0fa0", "0fa00102030405060708090a0b0c0dff00", "zz".repeat(16).as_str()] {
            assert_eq!(TxnId::from_hex(bad), None, "{bad:?}");
        }
        assert_eq!(TxnId::from_hex(" fa00102030405060708090a0b0c0dff"), None);
    }

    #[test]
    fn txn_id_serde_is_hex() {
        let txn = TxnId([0xc3; 16]);
        let json = serde_json::to_string(&txn).expect("serializes");
        assert_eq!(json, format!("\"{}\"", "c3".repeat(16)));
        assert_eq!(serde_json::from_str::<TxnId>(&json).expect("parses"), txn);
        assert_eq!(
            serde_json::from_str::<TxnId>(&format!("\"{}\"", "C3".repeat(16))).expect("parses"),
            txn
        );
        for bad in ["\"c3\"", "\"zz\"", "3", "null"] {
            assert!(serde_json::from_str::<TxnId>(bad).is_err(), "{bad}");
        }
    }
}
