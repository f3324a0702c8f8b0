//! Which rows exist at a generation, when each was last changed, and in what order they
//! are read: the state machine behind the `sample` source's incremental reads.
//!
//! Row `id` (from 1) of a stream with `base` rows exists from generation 0 when
//! `id <= base`; every later generation adds `ceil(base / 100)` ids. Each generation `k`
//! also updates about 1% of the older rows (chosen by hash). A row's *version* is the last
//! generation that created or updated it, and its `updated_at` is
//! `T0 + version * 30 days + (id / 2) * 10 ms`: pairs of rows share a timestamp, and
//! `(updated_at, id)` order equals `(version, id)` order. Reading in that order is the
//! keyset order every incremental read needs.

/// 2024-01-01T00:00:00Z in microseconds.
pub const T0_US: i64 = 1_704_067_200_000_000;
/// How far each generation moves timestamps on.
pub const GENERATION_US: i64 = 30 * 86_400 * 1_000_000;
/// Timestamp step per pair of ids.
pub const STEP_US: i64 = 10_000;

/// SplitMix64: a tiny, fast, well-mixed hash and generator.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The rows of one stream at one generation.
#[derive(Debug, Clone, Copy)]
pub struct Keyset {
    seed: u64,
    base: u64,
    generation: u32,
}

impl Keyset {
    /// The keyset of a stream (`salt` tells the streams apart) with `base` rows.
    pub fn new(seed: u64, salt: u64, base: u64, generation: u32) -> Self {
        Self {
            seed: mix(seed ^ mix(salt)),
            base,
            generation,
        }
    }

    fn new_per_generation(&self) -> u64 {
        self.base.div_ceil(100)
    }

    /// Ids that exist at generation `g`.
    pub fn total_at(&self, g: u32) -> u64 {
        self.base + u64::from(g) * self.new_per_generation()
    }

    fn born(&self, id: u64) -> u32 {
        if id <= self.base {
            0
        } else {
            // Ids past the base arrive `new_per_generation` at a time.
            u32::try_from(1 + (id - self.base - 1) / self.new_per_generation()).unwrap_or(u32::MAX)
        }
    }

    fn updated_in(&self, g: u32, id: u64) -> bool {
        mix(self.seed ^ mix(id ^ (u64::from(g) << 40))).is_multiple_of(100)
    }

    /// The last generation that created or updated `id`.
    pub fn version(&self, id: u64) -> u32 {
        let born = self.born(id);
        (born + 1..=self.generation)
            .rev()
            .find(|&g| self.updated_in(g, id))
            .unwrap_or(born)
    }

    /// The `updated_at` of `id` at `version`, microseconds since the epoch.
    pub fn updated_at(id: u64, version: u32) -> i64 {
        T0_US + i64::from(version) * GENERATION_US + (id / 2) as i64 * STEP_US
    }

    /// A seed for the values of `id` at `version`: the same inputs give the same row.
    pub fn row_seed(&self, id: u64, version: u32) -> u64 {
        mix(self.seed ^ mix(id) ^ (u64::from(version) << 48))
    }

    /// Every row after `after` (an `(updated_at, id)` keyset position), in keyset order,
    /// as `(id, version)`.
    pub fn rows_after(&self, after: Option<(i64, u64)>) -> impl Iterator<Item = (u64, u32)> + '_ {
        let (first_version, first_id) = match after {
            None => (0, 1),
            Some((at, id)) => {
                let version = ((at - T0_US).max(0) / GENERATION_US).min(i64::from(u32::MAX)) as u32;
                (version, id)
            }
        };
        (first_version..=self.generation).flat_map(move |v| {
            let start = if v == first_version {
                first_id.max(1)
            } else {
                1
            };
            (start..=self.total_at(v))
                .filter(move |&id| self.version(id) == v)
                .filter(move |&id| after.is_none_or(|pos| (Self::updated_at(id, v), id) > pos))
                .map(move |id| (id, v))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_one_percent_changes_per_generation() {
        let g0 = Keyset::new(42, 1, 100_000, 0);
        let g1 = Keyset::new(42, 1, 100_000, 1);
        assert_eq!(g1.total_at(1), 101_000);
        let updated = (1..=100_000).filter(|&id| g1.version(id) == 1).count();
        assert!((800..1200).contains(&updated), "{updated} rows updated");
        assert_eq!(g0.rows_after(None).count(), 100_000);
        assert_eq!(g1.rows_after(None).count(), 101_000);
    }

    #[test]
    fn keyset_order_is_sorted_and_resumes_exactly() {
        let keys = Keyset::new(7, 3, 2_000, 3);
        let all: Vec<_> = keys
            .rows_after(None)
            .map(|(id, v)| (Keyset::updated_at(id, v), id))
            .collect();
        assert!(all.windows(2).all(|w| w[0] < w[1]), "not in keyset order");
        assert_eq!(all.len() as u64, keys.total_at(3));
        for cut in [0, 1, 999, 1_000, all.len() - 1] {
            let resumed: Vec<_> = keys
                .rows_after(Some(all[cut]))
                .map(|(id, v)| (Keyset::updated_at(id, v), id))
                .collect();
            assert_eq!(resumed, all[cut + 1..], "resume after row {cut}");
        }
    }

    #[test]
    fn windows_never_overlap_at_the_limits() {
        let last = super::super::config::MAX_ROWS * 2;
        assert!(Keyset::updated_at(last, 0) < Keyset::updated_at(1, 1));
    }
}
