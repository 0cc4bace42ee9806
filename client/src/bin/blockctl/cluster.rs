//! `blockctl cluster status|add|remove`: the cluster's members as the nodes report them, and
//! membership changes. Nothing here is verified (no signature covers a node's report of its own
//! role or lag) and no pinned keys are needed; see `blockdb_client::cluster`.
//!
//! The human form of the status is two tables — members, then one row per shard per member —
//! so that a replica that lags or diverged (another tree size or root than its shard's leader)
//! stands out in its column; `--json` prints the same fields as the REST API's `/v1/cluster`.

use std::time::Duration;

use blockdb_client::{ClusterAdmin, ClusterStatus, NodeStatus, ShardMembership, ShardStatus};
use blockdb_verifier::ShardId;
use serde_json::{Value, json};

use crate::{Cli, ClusterCmd, Failure};

/// Hex digits of a root shown in the table: enough to tell two roots apart at a glance.
const ROOT_PREFIX_HEX: usize = 12;

pub async fn run(cli: &Cli, command: &ClusterCmd) -> Result<(), Failure> {
    let admin = ClusterAdmin::new(&cli.endpoint, Duration::from_millis(cli.timeout_ms))?;
    match command {
        ClusterCmd::Status => {
            let status = admin.cluster_status().await?;
            if cli.json {
                println!("{}", status_json(&status));
            } else {
                print!("{}", status_table(&status));
            }
        }
        ClusterCmd::Add { id, peer_addr, wait_ms } => {
            let admin = admin.with_membership_timeout(Duration::from_millis(*wait_ms));
            let shards = admin.add_member(*id, peer_addr).await?;
            print_membership(cli, *id, "added", &shards);
            if !cli.json {
                eprintln!(
                    "node {id} signs the checkpoints it serves with its own key: run `blockctl \
                     trust init` to pin it before reading through it"
                );
            }
        }
        ClusterCmd::Remove { id, wait_ms } => {
            let admin = admin.with_membership_timeout(Duration::from_millis(*wait_ms));
            let shards = admin.remove_member(*id).await?;
            print_membership(cli, *id, "removed", &shards);
        }
    }
    Ok(())
}

fn print_membership(cli: &Cli, id: u64, change: &str, shards: &[ShardMembership]) {
    if cli.json {
        let shards: Vec<Value> = shards
            .iter()
            .map(|m| json!({"shard": m.shard.0, "voters": m.voters, "learners": m.learners}))
            .collect();
        println!("{}", json!({"node_id": id, "change": change, "shards": shards}));
        return;
    }
    println!("node {id} {change}; membership now:");
    for m in shards {
        let learners = if m.learners.is_empty() {
            String::new()
        } else {
            format!("; learners {}", ids(&m.learners))
        };
        println!("  shard {}: voters {}{learners}", m.shard.0, ids(&m.voters));
    }
}

fn ids(ids: &[u64]) -> String {
    ids.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
}

fn or_dash(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn text_or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

/// The status as two aligned tables and a line per corrupted replica.
pub fn status_table(s: &ClusterStatus) -> String {
    let mut out = format!(
        "cluster {}: {} node(s), {} shard(s); answered by node {}\n\n",
        s.cluster_id,
        s.nodes.len(),
        s.shards,
        s.answered_by
    );
    let mut nodes = vec![row(&["NODE", "API", "PEER", "STATUS"])];
    for n in &s.nodes {
        nodes.push(vec![
            n.node_id.to_string(),
            text_or_dash(&n.api_addr).to_owned(),
            text_or_dash(&n.peer_addr).to_owned(),
            n.error.as_ref().map_or_else(|| "reachable".into(), |e| format!("UNREACHABLE: {e}")),
        ]);
    }
    out.push_str(&table(&nodes));
    out.push('\n');
    let mut shards = vec![row(&[
        "SHARD",
        "NODE",
        "ROLE",
        "TERM",
        "LEADER",
        "COMMITTED",
        "APPLIED",
        "TREE SIZE",
        "ROOT",
        "LAG",
    ])];
    let mut notes = String::new();
    for shard in (0..s.shards).map(ShardId) {
        for n in &s.nodes {
            let Some(st) = n.shard(shard) else { continue };
            shards.push(shard_row(s, n, st));
            if let Some(c) = &st.corruption {
                notes.push_str(&format!("node {} shard {}: CORRUPTION: {c}\n", n.node_id, shard.0));
            }
        }
    }
    out.push_str(&table(&shards));
    out.push_str(&notes);
    out
}

fn shard_row(s: &ClusterStatus, n: &NodeStatus, st: &ShardStatus) -> Vec<String> {
    let root = st.root.to_hex();
    vec![
        st.shard.0.to_string(),
        n.node_id.to_string(),
        st.role.to_string(),
        st.term.to_string(),
        or_dash(st.leader),
        or_dash(st.committed_index),
        or_dash(st.applied_index),
        st.tree_size.0.to_string(),
        root[..ROOT_PREFIX_HEX.min(root.len())].to_owned(),
        or_dash(s.lag(st.shard, n.node_id).map(|l| l.lag)),
    ]
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

/// Rows as columns padded to their widest cell, two spaces apart; the last column unpadded.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The status in the REST API's `/v1/cluster` form: roots in hex, `error` and `corruption`
/// only when set, `verifier_key` empty for a member that did not answer.
pub fn status_json(s: &ClusterStatus) -> Value {
    let nodes: Vec<Value> = s
        .nodes
        .iter()
        .map(|n| {
            let mut v = json!({
                "node_id": n.node_id,
                "peer_addr": n.peer_addr,
                "api_addr": n.api_addr,
                "verifier_key": n.verifier_key.as_ref().map(ToString::to_string).unwrap_or_default(),
                "shards": n.shards.iter().map(shard_json).collect::<Vec<_>>(),
            });
            if let Some(e) = &n.error {
                v["error"] = e.as_str().into();
            }
            v
        })
        .collect();
    json!({
        "cluster_id": s.cluster_id,
        "shards": s.shards,
        "answered_by": s.answered_by,
        "nodes": nodes,
    })
}

fn shard_json(st: &ShardStatus) -> Value {
    let replication: Vec<Value> = st
        .replication
        .iter()
        .map(|r| json!({"node_id": r.node_id, "matched_index": r.matched_index, "lag": r.lag}))
        .collect();
    let mut v = json!({
        "shard": st.shard.0,
        "role": st.role.as_str(),
        "term": st.term,
        "leader": st.leader,
        "last_log_index": st.last_raft_index,
        "committed_index": st.committed_index,
        "applied_index": st.applied_index,
        "tree_size": st.tree_size.0,
        "root": st.root.to_hex(),
        "snapshot_index": st.snapshot_index,
        "purged_index": st.purged_index,
        "voters": st.voters,
        "learners": st.learners,
        "replication": replication,
        "millis_since_leader": st.millis_since_leader,
    });
    if let Some(c) = &st.corruption {
        v["corruption"] = c.as_str().into();
    }
    v
}
