//! The checker against a naive reference: for thousands of small random histories of both
//! models, the Wing–Gong–Lowe search (entry list, cache) and a plain recursion over every legal
//! order, written straight from the definition, must give the same verdict.
//!
//! The histories come from simulated clients on a true register (linearizable by construction,
//! each operation taking effect at its completion), and then half of them get one result
//! changed, which usually makes them not linearizable. Seeds are fixed; a failure prints its
//! seed and history. `BLOCKDB_CHAOS_SEED=<n>` runs other seeds.

use blockdb_chaos::linearizability::{Budget, Operation, Status, check_operations};
use blockdb_chaos::model::register::{Register, RegisterInput, RegisterOutput, RegisterState};
use blockdb_chaos::model::versioned::{
    KeyVersion, VersionedInput, VersionedOutput, VersionedRegister, VersionedState,
};
use blockdb_chaos::model::{Model, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CASES: u64 = 3000;
const PROCESSES: u64 = 3;
const OPS_MAX: usize = 8;

/// True if some order of `ops` respects real time and the model, with every definite operation
/// in it and any subset of the open ones: the definition, by brute force.
fn naive<M: Model>(model: &M, ops: &[Operation<M::Input, M::Output>]) -> bool {
    fn go<M: Model>(
        model: &M,
        ops: &[Operation<M::Input, M::Output>],
        placed: &mut Vec<bool>,
        state: &M::State,
    ) -> bool {
        let pending = |placed: &[bool], i: usize| !placed[i] && ops[i].complete_index.is_some();
        if !(0..ops.len()).any(|i| pending(placed, i)) {
            return true;
        }
        for i in 0..ops.len() {
            // `i` can come next unless a definite operation still pending returned before it
            // was invoked.
            let blocked = (0..ops.len()).any(|j| {
                pending(placed, j) && ops[j].complete_index.is_some_and(|c| c < ops[i].invoke_index)
            });
            if placed[i] || blocked {
                continue;
            }
            if let Some(next) = model.step(state, &ops[i].input, &ops[i].output) {
                placed[i] = true;
                if go(model, ops, placed, &next) {
                    return true;
                }
                placed[i] = false;
            }
        }
        false
    }
    go(model, ops, &mut vec![false; ops.len()], &model.init())
}

/// A simulated client run: processes invoke and complete in a random interleaving; an
/// operation takes effect on the true state at its completion, and `info` ones take effect or
/// not at random. Returns the operations with their true results.
fn simulate<M: Model>(
    rng: &mut StdRng,
    model: &M,
    mut input: impl FnMut(&mut StdRng) -> M::Input,
    // The result the true state gives.
    mut output: impl FnMut(&mut StdRng, &M::State, &M::Input) -> M::Output,
    unknown: impl Fn() -> M::Output,
) -> Vec<Operation<M::Input, M::Output>> {
    let n = rng.random_range(1..=OPS_MAX);
    let mut state = model.init();
    let mut ops: Vec<Operation<M::Input, M::Output>> = Vec::new();
    let mut open: Vec<Option<usize>> = vec![None; PROCESSES as usize];
    let mut next_process: Vec<u64> = (0..PROCESSES).collect();
    let mut time = 0;
    while ops.len() < n || open.iter().any(Option::is_some) {
        let slot = rng.random_range(0..PROCESSES as usize);
        time += 1;
        match open[slot] {
            None if ops.len() < n => {
                let input = input(rng);
                // A placeholder result until it completes.
                let output = output(rng, &state, &input);
                ops.push(Operation {
                    process: next_process[slot],
                    input,
                    output,
                    invoke_index: time,
                    complete_index: None,
                });
                open[slot] = Some(ops.len() - 1);
            }
            None => {}
            Some(i) => {
                open[slot] = None;
                let info = rng.random_bool(0.15);
                if info {
                    // Retired: the slot gets a new process id, as in Jepsen.
                    next_process[slot] += PROCESSES;
                }
                let out = output(rng, &state, &ops[i].input);
                let applied = !info || rng.random_bool(0.5);
                if applied && let Some(next) = model.step(&state, &ops[i].input, &out) {
                    state = next;
                }
                if info {
                    ops[i].output = unknown();
                } else {
                    ops[i].output = out;
                    ops[i].complete_index = Some(time);
                }
            }
        }
    }
    ops
}

fn small_value(rng: &mut StdRng) -> Option<Value> {
    let n = rng.random_range(0..4);
    (n > 0).then(|| Value::from_json(&serde_json::json!(n)))
}

fn register_history(rng: &mut StdRng) -> Vec<Operation<RegisterInput, RegisterOutput>> {
    let input = |rng: &mut StdRng| match rng.random_range(0..3) {
        0 => RegisterInput::Read,
        1 => RegisterInput::Write(small_value(rng)),
        _ => RegisterInput::Cas { from: small_value(rng), to: small_value(rng) },
    };
    let output = |_: &mut StdRng, state: &RegisterState, input: &RegisterInput| match input {
        RegisterInput::Read => RegisterOutput::Read(state.0.clone()),
        RegisterInput::Write(_) => RegisterOutput::Ok,
        RegisterInput::Cas { from, .. } if *from == state.0 => RegisterOutput::Ok,
        RegisterInput::Cas { .. } => RegisterOutput::Fail,
    };
    let mut ops = simulate(rng, &Register, input, output, || RegisterOutput::Unknown);
    if rng.random_bool(0.5) {
        let i = rng.random_range(0..ops.len());
        ops[i].output = match rng.random_range(0..3) {
            0 => RegisterOutput::Read(small_value(rng)),
            1 => RegisterOutput::Ok,
            _ => RegisterOutput::Fail,
        };
        if let (RegisterInput::Read, RegisterOutput::Ok | RegisterOutput::Fail) =
            (&ops[i].input, &ops[i].output)
        {
            ops[i].output = RegisterOutput::Read(small_value(rng));
        }
        if let (RegisterInput::Write(_) | RegisterInput::Cas { .. }, RegisterOutput::Read(_)) =
            (&ops[i].input, &ops[i].output)
        {
            ops[i].output = RegisterOutput::Fail;
        }
    }
    ops
}

fn versioned_history(rng: &mut StdRng) -> Vec<Operation<VersionedInput, VersionedOutput>> {
    let input = |rng: &mut StdRng| {
        if rng.random_bool(0.4) {
            VersionedInput::Read
        } else {
            let value = Value::from_json(&serde_json::json!(rng.random_range(0..3)));
            let expected_version = rng.random_bool(0.5).then(|| rng.random_range(0..3));
            VersionedInput::Append { value, expected_version }
        }
    };
    let output = |rng: &mut StdRng, state: &VersionedState, input: &VersionedInput| match input {
        VersionedInput::Read => VersionedOutput::Read(state.0.clone()),
        VersionedInput::Append { expected_version: Some(e), .. } if *e != state.version() => {
            let current_version = rng.random_bool(0.5).then(|| state.version());
            VersionedOutput::VersionMismatch { current_version }
        }
        VersionedInput::Append { .. } => VersionedOutput::Appended { version: state.version() + 1 },
    };
    let mut ops = simulate(rng, &VersionedRegister, input, output, || VersionedOutput::Unknown);
    if rng.random_bool(0.5) {
        let i = rng.random_range(0..ops.len());
        ops[i].output = match (&ops[i].input, rng.random_range(0..3)) {
            (VersionedInput::Read, 0) => VersionedOutput::Read(None),
            (VersionedInput::Read, _) => VersionedOutput::Read(Some(KeyVersion {
                version: rng.random_range(1..4),
                value: Value::from_json(&serde_json::json!(rng.random_range(0..3))),
            })),
            (VersionedInput::Append { .. }, 0) => {
                VersionedOutput::VersionMismatch { current_version: None }
            }
            (VersionedInput::Append { .. }, _) => {
                VersionedOutput::Appended { version: rng.random_range(1..4) }
            }
        };
    }
    ops
}

fn base_seed() -> u64 {
    std::env::var("BLOCKDB_CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed)
}

/// Runs [`CASES`] histories of a model and returns how many were linearizable.
fn cross_check<M: Model>(
    model: &M,
    generate: impl Fn(&mut StdRng) -> Vec<Operation<M::Input, M::Output>>,
) -> u64
where
    M::Input: std::fmt::Debug,
    M::Output: std::fmt::Debug,
{
    let mut linearizable = 0;
    for case in 0..CASES {
        let seed = base_seed().wrapping_add(case);
        let ops = generate(&mut StdRng::seed_from_u64(seed));
        let want = naive(model, &ops);
        let got = check_operations(model, &ops, &Budget::default()).verdict.status();
        let want_status = if want { Status::Linearizable } else { Status::NotLinearizable };
        assert_eq!(
            got, want_status,
            "seed {seed}: the reference says {want_status}, ops:\n{ops:#?}"
        );
        linearizable += u64::from(want);
    }
    linearizable
}

#[test]
fn the_register_checker_agrees_with_the_reference() {
    let linearizable = cross_check(&Register, register_history);
    println!("register: {linearizable} of {CASES} linearizable");
    // Both verdicts must be well represented, or the comparison proves little.
    assert!((CASES / 4..CASES * 9 / 10).contains(&linearizable), "{linearizable}");
}

#[test]
fn the_versioned_checker_agrees_with_the_reference() {
    let linearizable = cross_check(&VersionedRegister, versioned_history);
    println!("blockdb-register: {linearizable} of {CASES} linearizable");
    assert!((CASES / 4..CASES * 9 / 10).contains(&linearizable), "{linearizable}");
}

#[test]
fn unchanged_simulated_histories_are_linearizable() {
    // Without the changed result, the simulation is a true register: a known answer.
    for case in 0..500 {
        let seed = base_seed().wrapping_add(case);
        let mut rng = StdRng::seed_from_u64(seed);
        let ops = simulate(
            &mut rng,
            &Register,
            |rng| RegisterInput::Cas { from: small_value(rng), to: small_value(rng) },
            |_, state, input| match input {
                RegisterInput::Cas { from, .. } if *from == state.0 => RegisterOutput::Ok,
                _ => RegisterOutput::Fail,
            },
            || RegisterOutput::Unknown,
        );
        let got = check_operations(&Register, &ops, &Budget::default()).verdict.status();
        assert_eq!(got, Status::Linearizable, "seed {seed}: {ops:#?}");
    }
}
