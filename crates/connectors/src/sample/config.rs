//! Configuration of the `sample` source.

use elt_core::{ConnectorConfig, Error, Result};
use schemars::JsonSchema;
use serde::Deserialize;

/// The largest base row count of a stream (keeps generated timestamps inside one
/// generation's 30-day window).
pub const MAX_ROWS: u64 = 100_000_000;

/// The largest generation (each one moves timestamps 30 days on; with MAX_ROWS this keeps
/// every generation inside its own window).
pub const MAX_GENERATION: u32 = 100;

/// A deterministic e-commerce data set (customers, products, orders) generated in process.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SampleConfig {
    /// Seed of the generator: the same seed, counts and generation give the same rows.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Customers at generation 0.
    #[serde(default = "default_customers")]
    pub customers: u64,
    /// Products at generation 0.
    #[serde(default = "default_products")]
    pub products: u64,
    /// Orders at generation 0.
    #[serde(default = "default_orders")]
    pub orders: u64,
    /// Data-set generation. Each generation after 0 updates about 1% of the existing rows
    /// (new `updated_at`, changed values) and adds 1% new rows, to demonstrate incremental
    /// merges: sync, raise this by one, sync again.
    #[serde(default)]
    pub generation: u32,
    /// Rows per batch; a checkpoint follows every batch.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
}

fn default_seed() -> u64 {
    42
}
fn default_customers() -> u64 {
    1_000
}
fn default_products() -> u64 {
    200
}
fn default_orders() -> u64 {
    10_000
}
fn default_batch_rows() -> usize {
    50_000
}

impl ConnectorConfig for SampleConfig {
    fn validate(&self) -> Result<()> {
        for (key, rows) in [
            ("customers", self.customers),
            ("products", self.products),
            ("orders", self.orders),
        ] {
            if rows > MAX_ROWS {
                return Err(Error::config(format!(
                    "`{key}` is {rows}; at most {MAX_ROWS} rows are supported"
                )));
            }
        }
        if self.generation > MAX_GENERATION {
            return Err(Error::config(format!(
                "`generation` is {}; at most {MAX_GENERATION} is supported",
                self.generation
            )));
        }
        if self.batch_rows == 0 || self.batch_rows > 1_000_000 {
            return Err(Error::config(format!(
                "`batch_rows` is {}; expected 1 to 1000000",
                self.batch_rows
            )));
        }
        Ok(())
    }
}
