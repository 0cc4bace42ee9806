//! Protobuf answers into the verifier's types. Anything that does not convert is a malformed
//! answer, reported as a verification error: a server that sends it is not to be believed.

use blockdb_proto::v1 as pb;
use blockdb_verifier::{
    ConsistencyProof, Hash, Leaf, ProofBundle, Record, SignedCheckpoint, TreeSize,
};

use crate::error::VerifyError;

fn malformed(what: &str, e: impl std::fmt::Display) -> VerifyError {
    VerifyError::Malformed(format!("{what}: {e}"))
}

/// Hashes, each exactly 32 bytes.
pub fn hashes(raw: &[Vec<u8>]) -> Result<Vec<Hash>, VerifyError> {
    raw.iter().map(|h| Hash::from_slice(h).map_err(|e| malformed("hash", e))).collect()
}

/// A signed checkpoint from its note text.
pub fn checkpoint(text: &str) -> Result<SignedCheckpoint, VerifyError> {
    SignedCheckpoint::parse(text.as_bytes()).map_err(|e| malformed("checkpoint", e))
}

/// A consistency proof.
pub fn consistency(p: &pb::ConsistencyProof) -> Result<ConsistencyProof, VerifyError> {
    Ok(ConsistencyProof {
        from_size: TreeSize(p.from_size),
        to_size: TreeSize(p.to_size),
        hashes: hashes(&p.hashes)?,
    })
}

/// A proof bundle.
pub fn bundle(b: &pb::ProofBundle) -> Result<ProofBundle, VerifyError> {
    let record = b.record.as_ref().ok_or_else(|| malformed("bundle", "no record"))?;
    Ok(ProofBundle {
        record: Record {
            key: record.key.clone(),
            version: record.version,
            value: record.value.clone(),
        },
        leaf: Leaf::decode(&b.leaf).map_err(|e| malformed("leaf", e))?,
        inclusion_proof: hashes(&b.inclusion_proof)?,
        checkpoint: checkpoint(&b.checkpoint)?,
        consistency_proof: b.consistency_proof.as_ref().map(consistency).transpose()?,
    })
}
