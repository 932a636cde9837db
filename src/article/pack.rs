//! Packing: contiguous parts into a given number of days. Exact, not
//! greedy: a binary search finds the smallest cap on a day's length that
//! leaves every day at least the minimum; a dynamic program picks, under a
//! cap the caller chooses, the days that open at the cheapest places and
//! are most even. It knows only weights and costs; what the parts are is
//! the caller's business.

use std::ops::Range;

/// The dynamic program's table grows with days times parts; past this
/// many cells (a few megabytes) packing falls back to greedy filling,
/// which keeps the optimal longest day but not the finer preferences.
const MAX_TABLE_CELLS: usize = 250_000;
/// A day as long as the average costs nothing; one that is off by the
/// whole average costs this much.
const UNEVEN_COST: u128 = 100;

/// Splits parts weighing `weights` into exactly `days` contiguous,
/// non-empty runs of `min..=cap` each, returned in order; `None` when no
/// such packing exists.
///
/// The least costly packing wins: `open_cost` of every part that opens a
/// day (a heading costs less than a paragraph) plus how far each day is
/// from the average. `days` is clamped to `1..=weights.len()`.
pub(crate) fn pack(
    weights: &[usize],
    days: usize,
    open_cost: &[u64],
    min: usize,
    cap: u64,
) -> Option<Vec<Range<usize>>> {
    let parts = weights.len();
    if parts == 0 {
        return Some(Vec::new());
    }
    let days = days.clamp(1, parts);
    if (days + 1) * (parts + 1) > MAX_TABLE_CELLS {
        let greedy_cap = smallest_cap(weights, days);
        return (greedy_cap <= cap).then(|| fill_greedily(weights, days, greedy_cap));
    }
    Loads::new(weights).cheapest(days, min as u64, cap, open_cost)
}

/// The shortest possible longest day when parts weighing `weights` are
/// packed into `days` days of at least `min` each; `None` when they cannot
/// be. Past the table's size, by greedy filling (no minimum).
pub(crate) fn shortest_longest(weights: &[usize], days: usize, min: usize) -> Option<u64> {
    if weights.len() < days {
        return None;
    }
    let days = days.max(1);
    if (days + 1) * (weights.len() + 1) > MAX_TABLE_CELLS {
        return Some(smallest_cap(weights, days));
    }
    Loads::new(weights).smallest_cap(days, min as u64)
}

/// Prefix sums of the weights.
struct Loads(Vec<u64>);

impl Loads {
    fn new(weights: &[usize]) -> Loads {
        Loads(
            std::iter::once(0)
                .chain(weights.iter().scan(0u64, |sum, &weight| {
                    *sum += weight as u64;
                    Some(*sum)
                }))
                .collect(),
        )
    }

    fn parts(&self) -> usize {
        self.0.len() - 1
    }

    fn load(&self, from: usize, to: usize) -> u64 {
        self.0[to] - self.0[from]
    }

    /// Whether `days` days of loads in `min..=cap` can hold every part.
    fn fits(&self, days: usize, min: u64, cap: u64) -> bool {
        let parts = self.parts();
        let mut reachable = vec![false; parts + 1];
        reachable[0] = true;
        for _ in 0..days {
            let mut next = vec![false; parts + 1];
            for start in (0..parts).filter(|&start| reachable[start]) {
                for (end, slot) in next.iter_mut().enumerate().skip(start + 1) {
                    let load = self.load(start, end);
                    if load > cap {
                        break;
                    }
                    *slot |= load >= min;
                }
            }
            reachable = next;
        }
        reachable[parts]
    }

    /// The least cap on a day's load that allows `days` days of at least
    /// `min`, if any does.
    fn smallest_cap(&self, days: usize, min: u64) -> Option<u64> {
        let total = self.load(0, self.parts());
        if !self.fits(days, min, total) {
            return None;
        }
        let (mut low, mut high) = (0, total);
        while low < high {
            let middle = low + (high - low) / 2;
            if self.fits(days, min, middle) {
                high = middle;
            } else {
                low = middle + 1;
            }
        }
        Some(low)
    }

    /// The cheapest packing into `days` days of loads in `min..=cap`, if any.
    fn cheapest(
        &self,
        days: usize,
        min: u64,
        cap: u64,
        open_cost: &[u64],
    ) -> Option<Vec<Range<usize>>> {
        let parts = self.parts();
        let average = (u128::from(self.load(0, parts)) / days as u128).max(1);
        let uneven = |load: u64| {
            let off = u128::from(load).abs_diff(average);
            UNEVEN_COST * off * off / (average * average)
        };
        // best[d][i]: the least cost of packing the first `i` parts into
        // `d` days, with `from[d][i]` the start of the last of those days.
        let mut best = vec![vec![None::<u128>; parts + 1]; days + 1];
        let mut from = vec![vec![0usize; parts + 1]; days + 1];
        best[0][0] = Some(0);
        for day in 1..=days {
            for end in day..=parts - (days - day) {
                for start in (day - 1..end).rev() {
                    let load = self.load(start, end);
                    if load > cap {
                        break;
                    }
                    let Some(before) = best[day - 1][start].filter(|_| load >= min) else {
                        continue;
                    };
                    let open = match start {
                        0 => 0,
                        _ => open_cost.get(start).copied().unwrap_or(0),
                    };
                    let cost = before + u128::from(open) + uneven(load);
                    if best[day][end].is_none_or(|current| cost < current) {
                        best[day][end] = Some(cost);
                        from[day][end] = start;
                    }
                }
            }
        }
        best[days][parts]?;
        let mut runs = Vec::with_capacity(days);
        let mut end = parts;
        for day in (1..=days).rev() {
            let start = from[day][end];
            runs.push(start..end);
            end = start;
        }
        runs.reverse();
        Some(runs)
    }
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

/// The least cap on a day's weight that allows `days` days, by greedy
/// filling (no minimum): a cap works when greedy filling needs no more
/// than `days` days, since any day can be split further while there are
/// parts to spare.
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

    fn packed(weights: &[usize], days: usize, open_cost: &[u64], min: usize) -> Vec<Range<usize>> {
        let cap = shortest_longest(weights, days.min(weights.len()), min).unwrap_or(0);
        pack(weights, days, open_cost, min, cap).expect("a packing")
    }

    #[test]
    fn balances_the_longest_day() {
        let weights = [100, 100, 100, 100, 300];
        assert_eq!(packed(&weights, 3, &[0; 5], 0), [0..2, 2..4, 4..5]);
    }

    #[test]
    fn prefers_even_days() {
        let weights = [30, 10, 10, 30];
        assert_eq!(packed(&weights, 2, &[0; 4], 0), [0..2, 2..4]);
    }

    #[test]
    fn opens_days_at_cheap_places_under_the_cap() {
        let weights = [100, 100, 40, 20, 40, 100, 100];
        let costs_opening_at = |cheap: usize| {
            let mut costs = [1000; 7];
            costs[cheap] = 0;
            costs
        };
        // The best longest day is 260, before part 3 or 4.
        assert_eq!(shortest_longest(&weights, 2, 0), Some(260));
        assert_eq!(
            pack(&weights, 2, &costs_opening_at(3), 0, 260),
            Some(vec![0..3, 3..7])
        );
        assert_eq!(
            pack(&weights, 2, &costs_opening_at(4), 0, 260),
            Some(vec![0..4, 4..7])
        );
        // A cap of 300 lets the day open at a cheap heading before part 2.
        assert_eq!(
            pack(&weights, 2, &costs_opening_at(2), 0, 300),
            Some(vec![0..2, 2..7])
        );
        let under = pack(&weights, 2, &costs_opening_at(2), 0, 299).expect("a packing");
        assert!(matches!(under[0].end, 3 | 4), "{under:?}");
        assert_eq!(pack(&weights, 2, &[0; 7], 0, 259), None);
    }

    #[test]
    fn no_day_under_the_minimum() {
        assert_eq!(packed(&[100, 10, 100], 2, &[0; 3], 40), [0..2, 2..3]);
        assert_eq!(shortest_longest(&[30, 30], 2, 40), None);
    }

    #[test]
    fn one_day_per_part_and_one_day_for_all() {
        assert_eq!(packed(&[1, 2, 3], 3, &[0; 3], 0), [0..1, 1..2, 2..3]);
        assert_eq!(packed(&[1, 2, 3], 1, &[0; 3], 0), vec![0..3]);
        assert_eq!(packed(&[1, 2, 3], 9, &[0; 3], 0), [0..1, 1..2, 2..3]);
        assert_eq!(pack(&[], 2, &[], 0, 0), Some(Vec::new()));
    }

    #[test]
    fn large_inputs_are_packed_without_a_table() {
        let weights: Vec<usize> = (0..20_000).map(|index| 1 + index % 7).collect();
        let runs = packed(&weights, 5_000, &vec![0; weights.len()], 0);
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
        fn the_longest_day_is_optimal_and_under_the_cap(
            weights in prop::collection::vec(1usize..200, 1..10),
            costs in prop::collection::vec(0u64..30, 10),
            days in 1usize..10,
        ) {
            let days = days.min(weights.len());
            let best = brute_force(&weights, days);
            prop_assert_eq!(shortest_longest(&weights, days, 0), Some(best as u64));
            let cap = best as u64 * 3 / 2;
            let runs = pack(&weights, days, &costs, 0, cap).expect("a packing under the cap");
            prop_assert_eq!(runs.len(), days);
            prop_assert_eq!(runs.first().map(|run| run.start), Some(0));
            prop_assert_eq!(runs.last().map(|run| run.end), Some(weights.len()));
            for pair in runs.windows(2) {
                prop_assert_eq!(pair[0].end, pair[1].start);
            }
            prop_assert!(runs.iter().all(|run| !run.is_empty()));
            prop_assert!(longest(&weights, &runs) as u64 <= cap);
            let greedy = fill_greedily(&weights, days, smallest_cap(&weights, days));
            prop_assert_eq!(greedy.len(), days);
            prop_assert!(greedy.iter().all(|run| !run.is_empty()));
            prop_assert_eq!(greedy.last().map(|run| run.end), Some(weights.len()));
            prop_assert_eq!(longest(&weights, &greedy), best);
        }
    }
}
