//! openraft's own conformance suite for storage implementations, run against our log store and
//! state machine on a real storage engine: initial state, votes, log reads, truncation, purge,
//! membership, apply, and snapshot transfer from one state machine to another.

use std::sync::Arc;

use blockdb_server::ledger::NodeKey;
use blockdb_server::raft::TypeConfig;
use blockdb_server::raft::log_store::LogStore;
use blockdb_server::raft::state_machine::StateMachine;
use blockdb_server::storage::{Engine, Options};
use blockdb_verifier::ShardId;
use openraft::testing::{StoreBuilder, Suite};
use openraft::{AnyError, ErrorSubject, ErrorVerb, StorageError, StorageIOError};

struct Builder;

fn err(e: impl std::error::Error + 'static) -> StorageError<u64> {
    StorageIOError::new(ErrorSubject::Store, ErrorVerb::Write, AnyError::new(&e)).into()
}

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().map_err(err)?;
        let engine = Arc::new(
            Engine::open(dir.path().join("store"), Options::small_for_tests()).map_err(err)?,
        );
        let key = Arc::new(
            NodeKey::load_or_create(&dir.path().join("node.key"), "suite", || [7; 32])
                .map_err(err)?,
        );
        let log = LogStore::new(Arc::clone(&engine), ShardId(0)).map_err(err)?;
        let corruption = Arc::new(std::sync::OnceLock::new());
        let (sm, _views) = StateMachine::open(
            engine,
            "blockdb.local/suite",
            ShardId(0),
            key,
            dir.path().join("snapshots"),
            corruption,
        )
        .map_err(err)?;
        Ok((dir, log, sm))
    }
}

#[test]
fn log_store_and_state_machine_pass_openraft_conformance_suite() {
    Suite::test_all(Builder).expect("openraft storage suite");
}
