//! Packing: contiguous parts (sections, or blocks when sections must be
//! cut) into a given number of days, so that the longest day is as short
//! as possible. Exact, not greedy: a binary search finds the smallest cap
//! on a day's length, then a dynamic program picks, among the packings
//! under that cap, the one that cuts where it should and is most even.
//! It knows only weights; what the parts are is the caller's business.

use std::ops::Range;

/// The dynamic program's table grows with days times parts; past this
/// many cells (a few megabytes) packing falls back to greedy filling,
/// which keeps the optimal longest day but not the finer preferences.
const MAX_TABLE_CELLS: usize = 250_000;

/// Splits parts weighing `weights` into exactly `days` contiguous,
/// non-empty runs, returned in order.
///
/// Lexicographically best: first the lightest heaviest day; then the
/// least total `cut_cost` of the parts that open a day (a block in the
/// middle of a section costs more than a section's first); then the most
/// even days (least sum of squares). `days` is clamped to
/// `1..=weights.len()`.
pub(crate) fn pack(weights: &[usize], days: usize, cut_cost: &[u64]) -> Vec<Range<usize>> {
    let parts = weights.len();
    if parts == 0 {
        return Vec::new();
    }
    let days = days.clamp(1, parts);
    let prefix: Vec<u64> = std::iter::once(0)
        .chain(weights.iter().scan(0u64, |sum, &weight| {
            *sum += weight as u64;
            Some(*sum)
        }))
        .collect();
    let cap = smallest_cap(weights, days);
    if (days + 1) * (parts + 1) > MAX_TABLE_CELLS {
        return fill_greedily(weights, days, cap);
    }
    let weight = |from: usize, to: usize| prefix[to] - prefix[from];

    // best[d][i]: the cost of packing the first `i` parts into `d` days,
    // with `from[d][i]` the start of the last of those days.
    let mut best = vec![vec![None::<(u64, u64)>; parts + 1]; days + 1];
    let mut from = vec![vec![0usize; parts + 1]; days + 1];
    best[0][0] = Some((0, 0));
    for day in 1..=days {
        // Every later day needs at least one part of its own.
        for end in day..=parts - (days - day) {
            let mut start = end;
            while start > day - 1 {
                start -= 1;
                let load = weight(start, end);
                if load > cap {
                    break;
                }
                let Some((cuts, squares)) = best[day - 1][start] else {
                    continue;
                };
                let cut = match start {
                    0 => 0,
                    _ => cut_cost.get(start).copied().unwrap_or(0),
                };
                let cost = (cuts + cut, squares + load * load);
                if best[day][end].is_none_or(|current| cost < current) {
                    best[day][end] = Some(cost);
                    from[day][end] = start;
                }
            }
        }
    }

    let mut runs = Vec::with_capacity(days);
    let mut end = parts;
    for day in (1..=days).rev() {
        let start = from[day][end];
        runs.push(start..end);
        end = start;
    }
    runs.reverse();
    runs
}

/// Packs under `cap` without a table: each day takes as many parts as fit,
/// leaving at least one part for every later day. Greedy filling needs
/// the fewest days, so the last day fits under `cap` too.
fn fill_greedily(weights: &[usize], days: usize, cap: u64) -> Vec<Range<usize>> {
    let mut runs = Vec::with_capacity(days);
    let mut start = 0;
    for day in 1..=days {
        let last_end = weights.len() - (days - day);
        let mut end = start + 1;
        let mut load = weights[start] as u64;
        while end < last_end && load + weights[end] as u64 <= cap {
            load += weights[end] as u64;
            end += 1;
        }
        if day == days {
            end = weights.len();
        }
        runs.push(start..end);
        start = end;
    }
    runs
}

/// The least cap on a day's weight that allows `days` days: a cap works
/// when greedy filling needs no more than `days` days, since any day can be
/// split further while there are parts to spare.
fn smallest_cap(weights: &[usize], days: usize) -> u64 {
    let days_needed = |cap: u64| {
        let mut count = 1;
        let mut load = 0;
        for &weight in weights {
            let weight = weight as u64;
            if load + weight > cap {
                count += 1;
                load = 0;
            }
            load += weight;
        }
        count
    };
    let mut low = weights.iter().copied().max().unwrap_or(0) as u64;
    let mut high: u64 = weights.iter().map(|&weight| weight as u64).sum();
    while low < high {
        let middle = low + (high - low) / 2;
        if days_needed(middle) <= days {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    low
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn longest(weights: &[usize], runs: &[Range<usize>]) -> usize {
        runs.iter()
            .map(|run| weights[run.clone()].iter().sum())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn balances_the_longest_day() {
        let weights = [100, 100, 100, 100, 300];
        let runs = pack(&weights, 3, &[0; 5]);
        assert_eq!(runs, [0..2, 2..4, 4..5]);
    }

    #[test]
    fn prefers_even_days_when_the_maximum_ties() {
        let weights = [10, 10, 10, 10, 50];
        assert_eq!(pack(&weights, 2, &[0; 5]), [0..4, 4..5]);
        let weights = [30, 10, 10, 30];
        assert_eq!(pack(&weights, 2, &[0; 4]), [0..2, 2..4]);
    }

    #[test]
    fn avoids_cutting_inside_sections_when_it_costs_nothing() {
        // A cap of 30 allows cutting before part 2 or part 3.
        let weights = [10; 5];
        let avoid = [0, 0, 1, 0, 0];
        assert_eq!(pack(&weights, 2, &avoid), [0..3, 3..5]);
        let avoid = [0, 0, 0, 1, 0];
        assert_eq!(pack(&weights, 2, &avoid), [0..2, 2..5]);
    }

    #[test]
    fn one_day_per_part_and_one_day_for_all() {
        assert_eq!(pack(&[1, 2, 3], 3, &[0; 3]), [0..1, 1..2, 2..3]);
        assert_eq!(pack(&[1, 2, 3], 1, &[0; 3]), vec![0..3]);
        assert_eq!(pack(&[1, 2, 3], 9, &[0; 3]), [0..1, 1..2, 2..3]);
        assert!(pack(&[], 2, &[]).is_empty());
    }

    #[test]
    fn large_inputs_are_packed_without_a_table() {
        let weights: Vec<usize> = (0..20_000).map(|index| 1 + index % 7).collect();
        let runs = pack(&weights, 5_000, &vec![0; weights.len()]);
        assert_eq!(runs.len(), 5_000);
        assert_eq!(runs.last().map(|run| run.end), Some(weights.len()));
        // Within one part of the average day (80,000 / 5,000 = 16).
        assert!(longest(&weights, &runs) < 16 + 7);
    }

    /// The longest day over every way to cut, by brute force.
    fn brute_force(weights: &[usize], days: usize) -> usize {
        let parts = weights.len();
        let mut best = usize::MAX;
        for mask in 0u32..(1 << (parts - 1)) {
            if mask.count_ones() as usize != days - 1 {
                continue;
            }
            let (mut load, mut worst) = (0, 0);
            for (index, &weight) in weights.iter().enumerate() {
                load += weight;
                if index + 1 == parts || mask & (1 << index) != 0 {
                    worst = worst.max(load);
                    load = 0;
                }
            }
            best = best.min(worst);
        }
        best
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn the_longest_day_is_optimal(
            weights in prop::collection::vec(1usize..200, 1..10),
            days in 1usize..10,
        ) {
            let days = days.min(weights.len());
            let runs = pack(&weights, days, &vec![0; weights.len()]);
            prop_assert_eq!(runs.len(), days);
            prop_assert_eq!(runs.first().map(|run| run.start), Some(0));
            prop_assert_eq!(runs.last().map(|run| run.end), Some(weights.len()));
            for pair in runs.windows(2) {
                prop_assert_eq!(pair[0].end, pair[1].start);
            }
            prop_assert!(runs.iter().all(|run| !run.is_empty()));
            prop_assert_eq!(longest(&weights, &runs), brute_force(&weights, days));
            let greedy = fill_greedily(&weights, days, smallest_cap(&weights, days));
            prop_assert_eq!(greedy.len(), days);
            prop_assert!(greedy.iter().all(|run| !run.is_empty()));
            prop_assert_eq!(greedy.last().map(|run| run.end), Some(weights.len()));
            prop_assert_eq!(longest(&weights, &greedy), brute_force(&weights, days));
        }
    }
}
