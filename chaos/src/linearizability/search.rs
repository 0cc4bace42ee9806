//! The Wing–Gong–Lowe search over one key's operations; the [parent module](super) explains
//! the algorithm, its cache and its cost.
//!
//! The list of calls and returns is an array of entries linked by index (entry 0 is the head),
//! so that lifting an operation out and putting it back are O(1) and allocate nothing. The
//! search keeps three things in step: the stack of linearized operations (with the state before
//! each), the bitset of linearized operations, and the list without their entries.

use std::collections::HashSet;
use std::time::Instant;

use super::{Checked, Exhausted, Explanation, ModelOperation, OpSummary, Operation, Verdict};
use crate::model::Model;

/// How often (in steps) the search looks at the clock.
const CLOCK_EVERY_STEPS: u64 = 1024;

/// "No entry": the end of the list, or a call without a return.
const NIL: usize = usize::MAX;

/// One call or return in the linked list; entry 0 is the head.
#[derive(Clone, Copy, Debug)]
struct Entry {
    op: usize,
    is_call: bool,
    /// For a call: its return entry, or [`NIL`] for an open operation.
    matching: usize,
    prev: usize,
    next: usize,
}

/// The calls and returns in real-time order, as a list that entries can be unlinked from and
/// put back into in O(1) (Knuth's dancing links).
#[derive(Debug)]
struct EntryList {
    entries: Vec<Entry>,
}

impl EntryList {
    fn new<I, O>(ops: &[Operation<I, O>]) -> EntryList {
        let mut points = Vec::with_capacity(2 * ops.len());
        for (i, op) in ops.iter().enumerate() {
            points.push((op.invoke_index, false, i));
            if let Some(c) = op.complete_index {
                points.push((c.max(op.invoke_index), true, i));
            }
        }
        // At equal positions calls sort first, so such operations count as concurrent.
        points.sort_unstable();
        let head = Entry { op: NIL, is_call: false, matching: NIL, prev: NIL, next: NIL };
        let mut entries = vec![head];
        let mut call_of = vec![NIL; ops.len()];
        for (k, &(_, is_return, op)) in points.iter().enumerate() {
            let index = k + 1;
            let next = if index == points.len() { NIL } else { index + 1 };
            entries.push(Entry { op, is_call: !is_return, matching: NIL, prev: index - 1, next });
            if is_return {
                entries[call_of[op]].matching = index;
            } else {
                call_of[op] = index;
            }
        }
        entries[0].next = if points.is_empty() { NIL } else { 1 };
        EntryList { entries }
    }

    fn first(&self) -> usize {
        self.entries[0].next
    }

    fn unlink(&mut self, e: usize) {
        let Entry { prev, next, .. } = self.entries[e];
        self.entries[prev].next = next;
        if next != NIL {
            self.entries[next].prev = prev;
        }
    }

    fn relink(&mut self, e: usize) {
        let Entry { prev, next, .. } = self.entries[e];
        self.entries[prev].next = e;
        if next != NIL {
            self.entries[next].prev = e;
        }
    }

    /// Removes a call entry and its return entry.
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        let matching = self.entries[call].matching;
        if matching != NIL {
            self.unlink(matching);
        }
    }

    /// Undoes the last [`EntryList::lift`], which must have been of `call`.
    fn unlift(&mut self, call: usize) {
        let matching = self.entries[call].matching;
        if matching != NIL {
            self.relink(matching);
        }
        self.relink(call);
    }
}

/// A set of operations, one bit each.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Bitset(Box<[u64]>);

impl Bitset {
    fn new(bits: usize) -> Bitset {
        Bitset(vec![0; bits.div_ceil(64)].into_boxed_slice())
    }

    fn set(&mut self, bit: usize) {
        self.0[bit / 64] |= 1 << (bit % 64);
    }

    fn clear(&mut self, bit: usize) {
        self.0[bit / 64] &= !(1 << (bit % 64));
    }
}

/// The deepest point the search reached, kept for the explanation.
struct Deepest<S> {
    /// The linearized operations with the state after each.
    linearized: Vec<(usize, S)>,
    blocked: usize,
}

/// The search of the [parent module](super), over one key's operations.
pub(super) fn search<M: Model>(
    model: &M,
    ops: &[ModelOperation<M>],
    steps_max: u64,
    deadline: Option<Instant>,
) -> Checked {
    let started = Instant::now();
    let done = |verdict, steps| Checked { verdict, steps, elapsed: started.elapsed() };
    let mut list = EntryList::new(ops);
    let mut remaining = ops.iter().filter(|op| op.complete_index.is_some()).count();
    let mut state = model.init();
    let mut linearized = Bitset::new(ops.len());
    let mut cache: HashSet<(Bitset, M::State)> = HashSet::new();
    // The linearized operations: (call entry, state before it).
    let mut stack: Vec<(usize, M::State)> = Vec::new();
    let mut deepest: Option<Deepest<M::State>> = None;
    let mut entry = list.first();
    let mut steps = 0;
    loop {
        if remaining == 0 {
            return done(Verdict::Linearizable, steps);
        }
        if steps >= steps_max {
            return done(Verdict::Unknown(Exhausted::Steps), steps);
        }
        if steps % CLOCK_EVERY_STEPS == 0 && deadline.is_some_and(|d| Instant::now() >= d) {
            return done(Verdict::Unknown(Exhausted::Time), steps);
        }
        steps += 1;
        // Only call entries precede the walk's position, so while a definite operation is
        // pending its return entry lies ahead: the walk meets it before the end of the list.
        let Some(&Entry { op, is_call, next, .. }) = list.entries.get(entry) else {
            unreachable!("the walk ended with {remaining} definite operations pending");
        };
        if is_call {
            if let Some(after) = model.step(&state, &ops[op].input, &ops[op].output) {
                linearized.set(op);
                if cache.insert((linearized.clone(), after.clone())) {
                    stack.push((entry, std::mem::replace(&mut state, after)));
                    list.lift(entry);
                    if ops[op].complete_index.is_some() {
                        remaining -= 1;
                    }
                    entry = list.first();
                    continue;
                }
                linearized.clear(op);
            }
            entry = next;
        } else {
            if deepest.as_ref().is_none_or(|d| stack.len() > d.linearized.len()) {
                deepest = Some(deepest_point(&list, &stack, &state, op));
            }
            let Some((call, before)) = stack.pop() else {
                let explanation = explain(model, ops, deepest);
                return done(Verdict::NotLinearizable(Box::new(explanation)), steps);
            };
            let undone = list.entries[call].op;
            state = before;
            linearized.clear(undone);
            list.unlift(call);
            if ops[undone].complete_index.is_some() {
                remaining += 1;
            }
            entry = list.entries[call].next;
        }
    }
}

fn deepest_point<S: Clone>(
    list: &EntryList,
    stack: &[(usize, S)],
    state: &S,
    blocked: usize,
) -> Deepest<S> {
    // The state after each operation is the one saved before the next, or the current one.
    let afters = stack.iter().skip(1).map(|(_, before)| before).chain([state]);
    let linearized =
        stack.iter().zip(afters).map(|((call, _), after)| (list.entries[*call].op, after.clone()));
    Deepest { linearized: linearized.collect(), blocked }
}

fn explain<M: Model>(
    model: &M,
    ops: &[ModelOperation<M>],
    deepest: Option<Deepest<M::State>>,
) -> Explanation {
    let summary = |i: usize| {
        let op = &ops[i];
        OpSummary {
            process: op.process,
            invoke_line: op.invoke_index + 1,
            complete_line: op.complete_index.map(|c| c + 1),
            operation: format!("{}: {}", op.input, op.output),
        }
    };
    // The search only fails at a return entry, which always records a deepest point first.
    let Some(deepest) = deepest else {
        unreachable!("a failed search has met a return entry");
    };
    let state = deepest.linearized.last().map(|(_, s)| s.to_string());
    Explanation {
        operations: ops.len(),
        linearized: deepest.linearized.iter().map(|(i, s)| (summary(*i), s.to_string())).collect(),
        state: state.unwrap_or_else(|| model.init().to_string()),
        blocked: summary(deepest.blocked),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Value;
    use crate::model::register::{RegisterInput as I, RegisterOutput as O};

    fn op(process: u64, input: I, invoke: usize, complete: Option<usize>) -> Operation<I, O> {
        let output = O::Unknown;
        Operation { process, input, output, invoke_index: invoke, complete_index: complete }
    }

    /// The ops of the list's entries, front to back, calls as `+op` and returns as `-op`.
    fn walk(list: &EntryList) -> Vec<String> {
        let mut out = Vec::new();
        let mut e = list.first();
        while e != NIL {
            let entry = list.entries[e];
            out.push(format!("{}{}", if entry.is_call { "+" } else { "-" }, entry.op));
            e = entry.next;
        }
        out
    }

    #[test]
    fn the_entry_list_is_in_real_time_order_and_puts_back_what_it_lifted() {
        let ops = [
            op(0, I::Read, 0, Some(3)),
            op(1, I::Read, 1, Some(2)),
            op(2, I::Write(Some(Value::from_json(&1.into()))), 4, None),
            op(3, I::Read, 5, Some(6)),
        ];
        let mut list = EntryList::new(&ops);
        let full = walk(&list);
        assert_eq!(full, ["+0", "+1", "-1", "-0", "+2", "+3", "-3"]);
        // Lift in the order the search would (a stack), then undo in reverse.
        let calls: Vec<usize> =
            (1..list.entries.len()).filter(|&e| list.entries[e].is_call).collect();
        let (a, b, c) = (calls[1], calls[2], calls[0]);
        list.lift(a);
        assert_eq!(walk(&list), ["+0", "-0", "+2", "+3", "-3"]);
        list.lift(b);
        assert_eq!(walk(&list), ["+0", "-0", "+3", "-3"]);
        list.lift(c);
        assert_eq!(walk(&list), ["+3", "-3"]);
        list.unlift(c);
        list.unlift(b);
        list.unlift(a);
        assert_eq!(walk(&list), full);
    }
}
