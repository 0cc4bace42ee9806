//! The bank checker: transfers between accounts keep the total, so every snapshot read of all
//! the accounts must hold exactly the configured accounts, none negative, summing to the total.
//! A read that breaks it saw a state no serial order of transfers produces (a read skew, a lost
//! or doubled transfer, or a torn snapshot).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::EXAMPLES_MAX;

/// The bank: its accounts, and the total that every transfer keeps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankConfig {
    /// The accounts (a duplicate counts once).
    pub accounts: Vec<String>,
    /// The sum of all balances, at all times.
    pub total: i64,
}

/// An ok read transaction of every account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankRead {
    /// The client process that ran it.
    pub process: u64,
    /// When it was invoked, in milliseconds on the history's clock.
    pub invoke_ms: u64,
    /// When it completed.
    pub complete_ms: u64,
    /// Each account's balance, as read.
    pub balances: BTreeMap<String, i64>,
}

/// What is wrong with one read (or the final state).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "kebab-case")]
pub enum BankProblem {
    /// A configured account is not in the read.
    MissingAccount {
        /// The account.
        account: String,
    },
    /// The read holds an account that is not configured.
    UnknownAccount {
        /// The account.
        account: String,
    },
    /// A balance below zero.
    Negative {
        /// The account.
        account: String,
        /// Its balance.
        balance: i64,
    },
    /// The balances do not sum to the total.
    WrongTotal {
        /// Their sum; `None` when it does not fit in an `i64`.
        got: Option<i64>,
        /// The configured total.
        expected: i64,
    },
}

impl BankProblem {
    /// The problem's name, as serialized: `missing-account`, `wrong-total`, ….
    pub fn name(&self) -> &'static str {
        match self {
            BankProblem::MissingAccount { .. } => "missing-account",
            BankProblem::UnknownAccount { .. } => "unknown-account",
            BankProblem::Negative { .. } => "negative",
            BankProblem::WrongTotal { .. } => "wrong-total",
        }
    }
}

/// A read with something wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadRead {
    /// Its index in the reads checked.
    pub index: usize,
    /// Its process.
    pub process: u64,
    /// When it was invoked.
    pub invoke_ms: u64,
    /// When it completed.
    pub complete_ms: u64,
    /// What is wrong with it: at most [`EXAMPLES_MAX`] problems.
    pub problems: Vec<BankProblem>,
}

/// The verdict on a bank history.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankReport {
    /// True when every read, and the final state if given, is right.
    pub valid: bool,
    /// Reads checked.
    pub reads: usize,
    /// Reads with at least one problem.
    pub bad_reads: usize,
    /// How many reads have each problem (by [`BankProblem::name`]), each read counted once per
    /// kind; the final state is not counted here.
    pub counts: BTreeMap<String, usize>,
    /// The first [`EXAMPLES_MAX`] bad reads.
    pub examples: Vec<BadRead>,
    /// Whether a final state was given and checked.
    pub final_checked: bool,
    /// What is wrong with the final state (at most [`EXAMPLES_MAX`] problems).
    pub final_problems: Vec<BankProblem>,
}

impl BankReport {
    /// One line: the verdict, the counts, and the final state's problems.
    pub fn summary(&self) -> String {
        let verdict = if self.valid { "valid" } else { "INVALID" };
        let counts: Vec<String> = self.counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let reads = if counts.is_empty() {
            format!("{} reads, all right", self.reads)
        } else {
            format!("{} of {} reads bad ({})", self.bad_reads, self.reads, counts.join(", "))
        };
        let final_state = match (self.final_checked, self.final_problems.is_empty()) {
            (false, _) => "final state not checked".to_owned(),
            (true, true) => "final state right".to_owned(),
            (true, false) => {
                let names: Vec<&str> = self.final_problems.iter().map(BankProblem::name).collect();
                format!("final state bad ({})", names.join(", "))
            }
        };
        format!("{verdict}: {reads}; {final_state}")
    }
}

/// Checks every read, and the final balances if given, against `config`; see the
/// [module docs](super). Never panics, whatever the reads hold.
pub fn check_bank(
    config: &BankConfig,
    reads: &[BankRead],
    final_balances: Option<&BTreeMap<String, i64>>,
) -> BankReport {
    let accounts: BTreeSet<&str> = config.accounts.iter().map(String::as_str).collect();
    let mut report = BankReport { reads: reads.len(), ..BankReport::default() };
    for (index, read) in reads.iter().enumerate() {
        let mut problems = problems(&accounts, config.total, &read.balances);
        if problems.is_empty() {
            continue;
        }
        report.bad_reads += 1;
        let names: BTreeSet<&str> = problems.iter().map(BankProblem::name).collect();
        for name in names {
            *report.counts.entry(name.to_owned()).or_insert(0) += 1;
        }
        if report.examples.len() < EXAMPLES_MAX {
            problems.truncate(EXAMPLES_MAX);
            report.examples.push(BadRead {
                index,
                process: read.process,
                invoke_ms: read.invoke_ms,
                complete_ms: read.complete_ms,
                problems,
            });
        }
    }
    if let Some(balances) = final_balances {
        report.final_checked = true;
        report.final_problems = problems(&accounts, config.total, balances);
        report.final_problems.truncate(EXAMPLES_MAX);
    }
    report.valid = report.bad_reads == 0 && report.final_problems.is_empty();
    report
}

/// Everything wrong with `balances`, the wrong total (if any) first.
fn problems(
    accounts: &BTreeSet<&str>,
    total: i64,
    balances: &BTreeMap<String, i64>,
) -> Vec<BankProblem> {
    let mut found = Vec::new();
    let sum: i128 = balances.values().map(|&b| i128::from(b)).sum();
    if sum != i128::from(total) {
        found.push(BankProblem::WrongTotal { got: i64::try_from(sum).ok(), expected: total });
    }
    let missing = (accounts.iter())
        .filter(|a| !balances.contains_key(**a))
        .map(|a| BankProblem::MissingAccount { account: (*a).to_owned() });
    let unknown = (balances.keys())
        .filter(|a| !accounts.contains(a.as_str()))
        .map(|a| BankProblem::UnknownAccount { account: a.clone() });
    let negative = (balances.iter())
        .filter(|&(_, &b)| b < 0)
        .map(|(a, &b)| BankProblem::Negative { account: a.clone(), balance: b });
    found.extend(missing.chain(unknown).chain(negative));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BankConfig {
        BankConfig { accounts: vec!["a".into(), "b".into(), "c".into()], total: 30 }
    }

    fn balances(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
        pairs.iter().map(|&(a, b)| (a.to_owned(), b)).collect()
    }

    fn read(pairs: &[(&str, i64)]) -> BankRead {
        BankRead { process: 1, invoke_ms: 5, complete_ms: 7, balances: balances(pairs) }
    }

    #[test]
    fn reads_that_keep_the_total_are_valid() {
        let reads =
            [read(&[("a", 10), ("b", 10), ("c", 10)]), read(&[("a", 0), ("b", 30), ("c", 0)])];
        let last = balances(&[("a", 5), ("b", 20), ("c", 5)]);
        let report = check_bank(&config(), &reads, Some(&last));
        assert!(report.valid, "{report:#?}");
        assert_eq!(report.reads, 2);
        assert_eq!(report.summary(), "valid: 2 reads, all right; final state right");
        let report = check_bank(&config(), &[], None);
        assert!(report.valid);
        assert_eq!(report.summary(), "valid: 0 reads, all right; final state not checked");
    }

    #[test]
    fn a_wrong_total_is_reported_with_the_sum() {
        let reads =
            [read(&[("a", 10), ("b", 10), ("c", 10)]), read(&[("a", 10), ("b", 10), ("c", 0)])];
        let report = check_bank(&config(), &reads, None);
        assert!(!report.valid);
        assert_eq!(report.bad_reads, 1);
        assert_eq!(report.examples.len(), 1);
        assert_eq!(report.examples[0].index, 1);
        assert_eq!(
            report.examples[0].problems,
            [BankProblem::WrongTotal { got: Some(20), expected: 30 }]
        );
        assert_eq!(
            report.summary(),
            "INVALID: 1 of 2 reads bad (wrong-total 1); final state not checked"
        );
    }

    #[test]
    fn a_negative_balance_is_bad_even_when_the_total_is_right() {
        let report = check_bank(&config(), &[read(&[("a", -5), ("b", 25), ("c", 10)])], None);
        assert!(!report.valid);
        assert_eq!(
            report.examples[0].problems,
            [BankProblem::Negative { account: "a".into(), balance: -5 }]
        );
        assert_eq!(report.counts["negative"], 1);
    }

    #[test]
    fn missing_and_unknown_accounts_are_bad() {
        let report = check_bank(&config(), &[read(&[("a", 10), ("b", 10), ("z", 10)])], None);
        assert_eq!(
            report.examples[0].problems,
            [
                BankProblem::MissingAccount { account: "c".into() },
                BankProblem::UnknownAccount { account: "z".into() }
            ]
        );
        assert_eq!(report.counts.len(), 2, "{:?}", report.counts);
    }

    #[test]
    fn the_final_state_is_checked_like_a_read() {
        let last = balances(&[("a", 10), ("b", 10)]);
        let report =
            check_bank(&config(), &[read(&[("a", 10), ("b", 10), ("c", 10)])], Some(&last));
        assert!(!report.valid);
        assert_eq!(report.bad_reads, 0);
        assert!(report.final_checked);
        assert_eq!(
            report.final_problems,
            [
                BankProblem::WrongTotal { got: Some(20), expected: 30 },
                BankProblem::MissingAccount { account: "c".into() }
            ]
        );
        assert_eq!(
            report.summary(),
            "INVALID: 1 reads, all right; final state bad (wrong-total, missing-account)"
        );
    }

    #[test]
    fn extreme_balances_do_not_overflow() {
        let config = BankConfig { accounts: vec!["a".into(), "b".into()], total: i64::MAX };
        let report = check_bank(&config, &[read(&[("a", i64::MAX), ("b", i64::MAX)])], None);
        let expected = BankProblem::WrongTotal { got: None, expected: i64::MAX };
        assert_eq!(report.examples[0].problems, [expected]);
        let report = check_bank(&config, &[read(&[("a", i64::MAX), ("b", 0)])], None);
        assert!(report.valid, "{report:#?}");
    }

    #[test]
    fn examples_and_problems_are_capped_and_the_report_serializes() {
        let many: Vec<(String, i64)> = (0..50).map(|i| (format!("x{i}"), -1)).collect();
        let many: Vec<(&str, i64)> = many.iter().map(|(a, b)| (a.as_str(), *b)).collect();
        let reads: Vec<BankRead> = (0..30).map(|_| read(&many)).collect();
        let report = check_bank(&config(), &reads, None);
        assert_eq!(report.bad_reads, 30);
        assert_eq!(report.examples.len(), EXAMPLES_MAX);
        assert_eq!(report.examples[0].problems.len(), EXAMPLES_MAX);
        assert!(matches!(
            report.examples[0].problems[0],
            BankProblem::WrongTotal { got: Some(-50), .. }
        ));
        assert_eq!(report.counts["negative"], 30, "counted, though cut from the examples");
        let text = serde_json::to_string(&report).unwrap();
        assert!(text.contains(r#"{"problem":"wrong-total","got":-50,"expected":30}"#), "{text}");
        assert_eq!(serde_json::from_str::<BankReport>(&text).unwrap(), report);
    }
}
