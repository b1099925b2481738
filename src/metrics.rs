//! Detection and segmentation metrics (pure `f64`).
//!
//! Conventions: a higher score means "more anomalous", a `true` label means
//! "anomalous". Every function sorts once, so all of them are `O(n log n)`.
//!
//! Inputs that make a metric meaningless (scores and labels of different
//! lengths, NaN scores, an empty class where one is needed) give `None`, an
//! empty curve or NaN, as documented on each function, rather than a panic.

use std::cmp::Ordering;

/// The `p` quantile of sorted, non-empty `values` (nearest rank).
pub fn quantile(values: &[f64], p: f64) -> f64 {
    values[((p * (values.len() - 1) as f64).round() as usize).min(values.len() - 1)]
}

/// Area under the ROC curve.
///
/// Computed with the rank (Mann–Whitney U) formula with average ranks, so tied
/// scores count one half; this equals the trapezoidal area under
/// [`roc_curve`].
///
/// Returns `None` when either class is empty, when `scores` and `labels` have
/// different lengths, or when a score is NaN.
pub fn auroc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    if !valid_inputs(scores, labels) {
        return None;
    }
    let n_pos = labels.iter().filter(|&&l| l).count();
    let n_neg = labels.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let order = sorted_indices(scores, false);
    // Sum of the (1-based, tie-averaged) ranks of the positives.
    let mut rank_sum = 0.0;
    for group in tie_groups(&order, scores) {
        let first_rank = group.start as f64 + 1.0;
        let last_rank = group.end as f64;
        let average_rank = 0.5 * (first_rank + last_rank);
        let positives = order[group].iter().filter(|&&i| labels[i]).count();
        rank_sum += average_rank * positives as f64;
    }
    let (p, n) = (n_pos as f64, n_neg as f64);
    let u = rank_sum - p * (p + 1.0) / 2.0;
    Some(u / (p * n))
}

/// Average precision: the area under the precision–recall curve as the
/// step-wise sum `Σ (Rₖ − Rₖ₋₁) Pₖ` over distinct thresholds (scikit-learn's
/// `average_precision_score`; tied scores form one threshold).
///
/// Returns `None` when there is no positive label, when `scores` and `labels`
/// have different lengths, or when a score is NaN. With no negative label the
/// result is 1.
pub fn auprc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    if !valid_inputs(scores, labels) {
        return None;
    }
    let n_pos = labels.iter().filter(|&&l| l).count();
    if n_pos == 0 {
        return None;
    }
    let order = sorted_indices(scores, true);
    let mut tp = 0usize;
    let mut ap = 0.0;
    for group in tie_groups(&order, scores) {
        let end = group.end;
        let new_tp = order[group].iter().filter(|&&i| labels[i]).count();
        if new_tp == 0 {
            continue;
        }
        tp += new_tp;
        let precision = tp as f64 / end as f64;
        ap += precision * new_tp as f64 / n_pos as f64;
    }
    Some(ap)
}

/// ROC curve as `(false positive rate, true positive rate)` points, one per
/// distinct score used as threshold (prediction = score ≥ threshold), from
/// the highest threshold down; it starts at `(0, 0)` and ends at `(1, 1)`.
///
/// Returns an empty vector when [`auroc`] would return `None`.
pub fn roc_curve(scores: &[f64], labels: &[bool]) -> Vec<(f64, f64)> {
    if !valid_inputs(scores, labels) {
        return Vec::new();
    }
    let n_pos = labels.iter().filter(|&&l| l).count();
    let n_neg = labels.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return Vec::new();
    }
    let order = sorted_indices(scores, true);
    let mut points = Vec::with_capacity(order.len() + 1);
    points.push((0.0, 0.0));
    let (mut tp, mut fp) = (0usize, 0usize);
    for group in tie_groups(&order, scores) {
        for &i in &order[group] {
            if labels[i] {
                tp += 1;
            } else {
                fp += 1;
            }
        }
        points.push((fp as f64 / n_neg as f64, tp as f64 / n_pos as f64));
    }
    points
}

/// Dice coefficient `2 |A ∩ B| / (|A| + |B|)` of two masks; 1 when both are
/// empty. Returns NaN when the masks have different lengths.
pub fn dice(pred: &[bool], truth: &[bool]) -> f64 {
    if pred.len() != truth.len() {
        return f64::NAN;
    }
    let (mut both, mut total) = (0usize, 0usize);
    for (&p, &t) in pred.iter().zip(truth) {
        both += usize::from(p && t);
        total += usize::from(p) + usize::from(t);
    }
    if total == 0 {
        1.0
    } else {
        2.0 * both as f64 / total as f64
    }
}

/// Best Dice over all thresholds of `scores`, with prediction = score ≥
/// threshold; returns `(dice, threshold)`.
///
/// Every distinct score is tried as threshold in one sweep after a single sort
/// (`O(n log n)`). On ties of the Dice value the highest threshold wins. NaN
/// scores are never predicted positive (they still count in the truth).
/// When no label is positive the best prediction is the empty one:
/// `(1.0, +∞)`. Returns `(NaN, NaN)` when the lengths differ.
pub fn best_dice(scores: &[f64], labels: &[bool]) -> (f64, f64) {
    if scores.len() != labels.len() {
        return (f64::NAN, f64::NAN);
    }
    let n_pos = labels.iter().filter(|&&l| l).count();
    if n_pos == 0 {
        return (1.0, f64::INFINITY);
    }
    let order: Vec<usize> = sorted_indices(scores, true)
        .into_iter()
        .filter(|&i| !scores[i].is_nan())
        .collect();
    // The empty prediction scores 0 since there are positives.
    let (mut best, mut best_threshold) = (0.0, f64::INFINITY);
    let mut tp = 0usize;
    for group in tie_groups(&order, scores) {
        let predicted = group.end;
        let threshold = scores[order[group.start]];
        tp += order[group].iter().filter(|&&i| labels[i]).count();
        let d = 2.0 * tp as f64 / (predicted + n_pos) as f64;
        if d > best {
            best = d;
            best_threshold = threshold;
        }
    }
    (best, best_threshold)
}

/// Same lengths and no NaN score.
fn valid_inputs(scores: &[f64], labels: &[bool]) -> bool {
    scores.len() == labels.len() && !scores.iter().any(|s| s.is_nan())
}

/// Indices of `scores` sorted by score (descending or ascending). NaN scores
/// sort last in either direction.
fn sorted_indices(scores: &[f64], descending: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_unstable_by(|&a, &b| {
        let (x, y) = (scores[a], scores[b]);
        match (x.is_nan(), y.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) if descending => y.total_cmp(&x),
            (false, false) => x.total_cmp(&y),
        }
    });
    order
}

/// Ranges of positions in `order` holding equal scores (`-0.0 == 0.0`).
fn tie_groups<'a>(
    order: &'a [usize],
    scores: &'a [f64],
) -> impl Iterator<Item = std::ops::Range<usize>> + 'a {
    let mut start = 0;
    std::iter::from_fn(move || {
        let first = *order.get(start)?;
        let value = scores[first];
        let len = order[start..]
            .iter()
            .take_while(|&&i| scores[i] == value)
            .count();
        let group = start..start + len;
        start += len;
        Some(group)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// Small fixed linear congruential generator (Numerical Recipes constants).
    struct Lcg(u64);

    impl Lcg {
        fn next_u32(&mut self) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) as u32
        }
        fn below(&mut self, n: u32) -> u32 {
            self.next_u32() % n
        }
    }

    #[test]
    fn textbook_example() {
        let scores = [0.1, 0.4, 0.35, 0.8];
        let labels = [false, false, true, true];
        assert!(close(auroc(&scores, &labels).unwrap(), 0.75));
        assert!(close(
            auprc(&scores, &labels).unwrap(),
            0.833_333_333_333_333_4
        ));
        assert_eq!(
            roc_curve(&scores, &labels),
            vec![(0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (1.0, 1.0)]
        );
    }

    #[test]
    fn ties_count_one_half() {
        // Values checked with scikit-learn 1.9 (roc_auc_score,
        // average_precision_score, roc_curve with drop_intermediate=False).
        let scores = [0.5, 0.5, 0.5, 0.2, 0.9, 0.2, 0.7];
        let labels = [true, false, false, true, true, false, false];
        assert!(close(auroc(&scores, &labels).unwrap(), 13.0 / 24.0));
        assert!(close(
            auprc(&scores, &labels).unwrap(),
            0.609_523_809_523_809_6
        ));
        let roc = roc_curve(&scores, &labels);
        let expected = [
            (0.0, 0.0),
            (0.0, 1.0 / 3.0),
            (0.25, 1.0 / 3.0),
            (0.75, 2.0 / 3.0),
        ];
        for (got, want) in roc.iter().zip(expected) {
            assert!(
                close(got.0, want.0) && close(got.1, want.1),
                "{got:?} {want:?}"
            );
        }
        assert_eq!(roc.len(), 5);
        assert_eq!(roc.last(), Some(&(1.0, 1.0)));
        // All scores equal: chance level.
        assert!(close(
            auroc(&[1.0; 4], &[true, false, true, false]).unwrap(),
            0.5
        ));
        assert!(close(
            auprc(&[1.0; 4], &[true, false, true, false]).unwrap(),
            0.5
        ));
        assert_eq!(
            roc_curve(&[1.0; 4], &[true, false, true, false]),
            vec![(0.0, 0.0), (1.0, 1.0)]
        );
        // -0.0 and 0.0 tie.
        assert!(close(auroc(&[0.0, -0.0], &[true, false]).unwrap(), 0.5));
    }

    #[test]
    fn degenerate_inputs() {
        assert_eq!(auroc(&[0.1, 0.2], &[true, true]), None);
        assert_eq!(auroc(&[0.1, 0.2], &[false, false]), None);
        assert_eq!(auroc(&[], &[]), None);
        assert_eq!(auroc(&[0.1, 0.2], &[true]), None);
        assert_eq!(auroc(&[0.1, f64::NAN], &[true, false]), None);
        assert_eq!(auprc(&[0.1, 0.2], &[false, false]), None);
        assert_eq!(auprc(&[0.1, 0.2], &[true, true]), Some(1.0));
        assert_eq!(auprc(&[f64::NAN, 0.2], &[true, true]), None);
        assert!(roc_curve(&[0.1, 0.2], &[true, true]).is_empty());
        assert_eq!(
            auroc(&[f64::NEG_INFINITY, f64::INFINITY], &[false, true]),
            Some(1.0)
        );
        assert!(dice(&[true], &[true, false]).is_nan());
        let (d, t) = best_dice(&[1.0], &[]);
        assert!(d.is_nan() && t.is_nan());
    }

    #[test]
    fn perfect_and_inverted_rankings() {
        let scores = [0.9, 0.8, 0.3, 0.2];
        assert_eq!(auroc(&scores, &[true, true, false, false]), Some(1.0));
        assert_eq!(auroc(&scores, &[false, false, true, true]), Some(0.0));
        assert_eq!(auprc(&scores, &[true, true, false, false]), Some(1.0));
    }

    #[test]
    fn auroc_equals_trapezoidal_area_under_the_curve() {
        let mut rng = Lcg(7);
        for _ in 0..50 {
            let n = 1 + rng.below(60) as usize;
            let scores: Vec<f64> = (0..n).map(|_| f64::from(rng.below(12))).collect();
            let labels: Vec<bool> = (0..n).map(|_| rng.below(3) == 0).collect();
            let roc = roc_curve(&scores, &labels);
            match auroc(&scores, &labels) {
                None => assert!(roc.is_empty()),
                Some(a) => {
                    let area: f64 = roc
                        .windows(2)
                        .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
                        .sum();
                    assert!(close(a, area), "{a} vs {area}");
                    assert_eq!(roc.first(), Some(&(0.0, 0.0)));
                    assert_eq!(roc.last(), Some(&(1.0, 1.0)));
                }
            }
        }
    }

    #[test]
    fn dice_on_hand_made_masks() {
        let a = [true, true, false, false, true];
        let b = [true, false, false, true, true];
        assert!(close(dice(&a, &b), 2.0 * 2.0 / 6.0));
        assert_eq!(dice(&a, &a), 1.0);
        assert_eq!(dice(&[false; 3], &[false; 3]), 1.0);
        assert_eq!(dice(&[], &[]), 1.0);
        assert_eq!(dice(&[true, false], &[false, true]), 0.0);
        assert_eq!(dice(&[false, false], &[false, true]), 0.0);
    }

    fn brute_force_best_dice(scores: &[f64], labels: &[bool]) -> (f64, f64) {
        let mut thresholds: Vec<f64> = scores.to_vec();
        thresholds.sort_by(|a, b| b.total_cmp(a));
        thresholds.dedup();
        let mut best = (dice(&vec![false; labels.len()], labels), f64::INFINITY);
        for t in thresholds {
            let pred: Vec<bool> = scores.iter().map(|&s| s >= t).collect();
            let d = dice(&pred, labels);
            if d > best.0 {
                best = (d, t);
            }
        }
        best
    }

    #[test]
    fn best_dice_matches_brute_force() {
        let mut rng = Lcg(12_345);
        for case in 0..300 {
            let n = rng.below(40) as usize;
            // Few distinct values so that ties are common.
            let levels = 1 + rng.below(10);
            let scores: Vec<f64> = (0..n)
                .map(|_| f64::from(rng.below(levels)) / 4.0 - 0.5)
                .collect();
            let labels: Vec<bool> = (0..n).map(|_| rng.below(4) == 0).collect();
            let fast = best_dice(&scores, &labels);
            let slow = brute_force_best_dice(&scores, &labels);
            assert!(close(fast.0, slow.0), "case {case}: {fast:?} vs {slow:?}");
            assert_eq!(fast.1, slow.1, "case {case}: {fast:?} vs {slow:?}");
            let pred: Vec<bool> = scores.iter().map(|&s| s >= fast.1).collect();
            assert!(close(dice(&pred, &labels), fast.0), "case {case}");
        }
    }

    #[test]
    fn best_dice_known_case_and_nan_scores() {
        let scores = [0.9, 0.8, 0.7, 0.1];
        let labels = [true, false, true, false];
        // t = 0.9: 2/3; t = 0.8: 2/4; t = 0.7: 4/5; t = 0.1: 4/6.
        let (d, t) = best_dice(&scores, &labels);
        assert!(close(d, 0.8));
        assert_eq!(t, 0.7);
        let (d, t) = best_dice(&[f64::NAN, 0.5], &[true, true]);
        assert!(close(d, 2.0 / 3.0));
        assert_eq!(t, 0.5);
        assert_eq!(
            best_dice(&[0.3, 0.2], &[false, false]),
            (1.0, f64::INFINITY)
        );
    }
}
