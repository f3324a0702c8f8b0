//! The set of completed windows of a stream: merged where they overlap or touch, with
//! the holes between them. What it does not do: read or write the record (`_elt_windows`).

use super::{Bound, Window, bound};

/// Completed windows, merged where they overlap or touch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowSet {
    /// Disjoint, sorted, never touching.
    ranges: Vec<(Bound, Bound, Window)>,
}

impl WindowSet {
    /// The set of `windows` (in any order).
    pub fn new<'a>(windows: impl IntoIterator<Item = &'a Window>) -> Self {
        let mut all: Vec<_> = windows
            .into_iter()
            .map(|w| (bound(&w.from), bound(&w.to), w.clone()))
            .filter(|(lo, hi, _)| lo < hi)
            .collect();
        all.sort();
        let mut ranges: Vec<(Bound, Bound, Window)> = Vec::new();
        for (lo, hi, w) in all {
            match ranges.last_mut() {
                Some(last) if lo <= last.1 => {
                    if hi > last.1 {
                        last.1 = hi;
                        last.2.to = w.to;
                    }
                }
                _ => ranges.push((lo, hi, w)),
            }
        }
        Self { ranges }
    }

    /// The merged ranges, in order.
    pub fn ranges(&self) -> impl Iterator<Item = &Window> {
        self.ranges.iter().map(|(_, _, w)| w)
    }

    /// Whether every value of `window` lies in the set.
    pub fn covers(&self, window: &Window) -> bool {
        let (lo, hi) = (bound(&window.from), bound(&window.to));
        self.ranges.iter().any(|(a, b, _)| *a <= lo && hi <= *b)
    }

    /// The parts of `[from, to)` the set does not cover, in order; without a range, the
    /// gaps between the set's first and last values.
    pub fn holes(&self, range: Option<&Window>) -> Vec<Window> {
        let Some(range) = range.cloned().or_else(|| self.span()) else {
            return Vec::new();
        };
        let (lo, hi) = (bound(&range.from), bound(&range.to));
        let mut holes = Vec::new();
        let mut at = (lo, range.from.clone());
        for (a, b, w) in &self.ranges {
            if *b <= at.0 {
                continue;
            }
            if *a >= hi {
                break;
            }
            if *a > at.0 {
                holes.push(Window {
                    from: at.1.clone(),
                    to: w.from.clone(),
                });
            }
            at = (b.clone(), w.to.clone());
        }
        if at.0 < hi {
            holes.push(Window {
                from: at.1,
                to: range.to,
            });
        }
        holes
    }

    /// From the set's first value to its last.
    fn span(&self) -> Option<Window> {
        Some(Window {
            from: self.ranges.first()?.2.from.clone(),
            to: self.ranges.last()?.2.to.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{from_cut_points, from_lease_name, lease_name};
    use super::*;

    fn w(from: &str, to: &str) -> Window {
        Window::new(from, to)
    }

    #[test]
    fn sets_merge_touching_windows_and_report_holes() {
        let set = WindowSet::new(&[w("5", "9"), w("1", "3"), w("3", "4"), w("8", "12")]);
        let ranges: Vec<_> = set.ranges().cloned().collect();
        assert_eq!(ranges, [w("1", "4"), w("5", "12")]);
        assert!(set.covers(&w("6", "12")) && !set.covers(&w("3", "6")));
        assert!(w("1", "5").overlaps(&w("4", "9")) && !w("1", "4").overlaps(&w("4", "9")));
        assert!(w("9", "10") < w("10", "11"));
        // Integers compare as numbers, not as text ("12" < "5").
        assert_eq!(set.holes(None), [w("4", "5")]);
        assert_eq!(
            set.holes(Some(&w("0", "20"))),
            [w("0", "1"), w("4", "5"), w("12", "20")]
        );
        assert!(WindowSet::default().holes(None).is_empty());
        let leased = lease_name("orders", &w("1", "9"));
        assert_eq!(from_lease_name("orders", &leased), Some(w("1", "9")));
        assert_eq!(from_lease_name("orders", "orders"), None);
        assert_eq!(from_lease_name("order", &leased), None);
        let cuts = from_cut_points(
            "0",
            "100",
            &["0".into(), "40".into(), "40".into(), "100".into()],
        );
        assert_eq!(cuts, [w("0", "40"), w("40", "100")]);
    }
}
