//! Where a partition starts and ends: its earliest retained offset (ListOffsets) and the
//! high watermark of a fetch response. Not ListOffsets' `latest`: some brokers (tansu 0.6)
//! answer it with the last batch's base offset + 1, which would cut a read inside a batch,
//! and such a broker then skips the rest of that batch when asked for an offset inside it.

use rskafka::client::partition::{OffsetAt, PartitionClient};

use elt_core::Result;

use crate::classify;

/// The first offset of `partition` still retained, and the offset after its last message
/// now (its high watermark).
pub async fn bounds(partition: &PartitionClient) -> Result<(i64, i64)> {
    let doing = format!(
        "reading the offsets of topic {} partition {}",
        partition.topic(),
        partition.partition()
    );
    let earliest = partition
        .get_offset(OffsetAt::Earliest)
        .await
        .map_err(|e| classify(&doing, e))?;
    let (_, high_watermark) = partition
        .fetch_records(earliest, 1..1024, 0)
        .await
        .map_err(|e| classify(&doing, e))?;
    Ok((earliest, high_watermark))
}
