//! A streaming decoder of PostgreSQL's binary COPY format straight into Arrow builders.
//!
//! Chunks arrive as the server sends them; a row may span chunks. [`CopyDecoder::decode`]
//! turns every complete row in the buffer into builder appends, up to a row limit, and
//! [`CopyDecoder::finish_batch`] hands the rows over as a `RecordBatch`. Only one batch is
//! ever held. [`CopyBatches`] runs a COPY on a connection through a decoder.

use bytes::{Buf, Bytes, BytesMut};
use elt_core::arrow::datatypes::SchemaRef;
use elt_core::arrow::record_batch::RecordBatch;
use elt_core::{Error, Result};
use elt_postgres::Target;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use sqlx::postgres::PgConnection;

use super::types::Kind;
use super::values::Builder;

/// The first bytes of every binary COPY stream.
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// The batches of one running `COPY ... TO STDOUT (FORMAT binary)`, each of up to
/// `batch_rows` rows, as the server sends them.
pub struct CopyBatches<'c> {
    chunks: BoxStream<'c, sqlx::Result<Bytes>>,
    decoder: CopyDecoder,
    batch_rows: usize,
    what: String,
    ended: bool,
}

impl<'c> CopyBatches<'c> {
    /// Starts `sql` on `conn`; `what` names the read in errors.
    pub async fn start(
        conn: &'c mut PgConnection,
        target: &Target,
        what: &str,
        sql: &str,
        decoder: CopyDecoder,
        batch_rows: usize,
    ) -> Result<Self> {
        let chunks = conn
            .copy_out_raw(sql)
            .await
            .map_err(|e| target.error("reading", e).in_stream(what))?;
        Ok(Self {
            chunks,
            decoder,
            batch_rows,
            what: what.to_owned(),
            ended: false,
        })
    }

    /// The next batch and whether it is full (only the last may not be); None at the end.
    /// A COPY that ends before its end marker is an error.
    pub async fn next(&mut self) -> Result<Option<(RecordBatch, bool)>> {
        loop {
            self.decoder.decode(self.batch_rows)?;
            let full = self.decoder.rows() >= self.batch_rows;
            if full || self.ended {
                if let Some(batch) = self.decoder.finish_batch()? {
                    return Ok(Some((batch, full)));
                }
                if !self.decoder.is_finished() {
                    return Err(Error::transient(format!(
                        "the COPY of {} ended early",
                        self.what
                    )));
                }
                return Ok(None);
            }
            match self.chunks.next().await {
                Some(chunk) => {
                    self.decoder.push(&chunk.map_err(|e| {
                        Error::transient(format!("reading {} failed: {e}", self.what))
                    })?)
                }
                None => self.ended = true,
            }
        }
    }
}

/// Decodes binary COPY output into batches of a schema.
pub struct CopyDecoder {
    schema: SchemaRef,
    builders: Vec<Builder>,
    buf: BytesMut,
    header_done: bool,
    finished: bool,
    rows: usize,
}

impl CopyDecoder {
    /// A decoder for columns of `kinds` producing batches of `schema`.
    pub fn new(schema: SchemaRef, kinds: &[Kind]) -> Self {
        Self {
            builders: super::values::builders(&schema, kinds),
            schema,
            buf: BytesMut::new(),
            header_done: false,
            finished: false,
            rows: 0,
        }
    }

    /// Adds bytes as they arrive.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Rows decoded into the current batch.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Whether the end-of-data marker was seen.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Decodes complete rows until the current batch has `max_rows` rows or the buffer has
    /// no complete row left.
    pub fn decode(&mut self, max_rows: usize) -> Result<()> {
        if !self.header_done {
            if self.buf.len() < SIGNATURE.len() + 8 {
                return Ok(());
            }
            if &self.buf[..SIGNATURE.len()] != SIGNATURE {
                return Err(Error::bug(
                    "COPY output does not start with the binary signature",
                ));
            }
            let ext = u32::from_be_bytes(self.buf[15..19].try_into().unwrap_or_default()) as usize;
            if self.buf.len() < 19 + ext {
                return Ok(());
            }
            self.buf.advance(19 + ext);
            self.header_done = true;
        }
        while self.rows < max_rows && !self.finished {
            let Some(len) = self.complete_row_len()? else {
                return Ok(());
            };
            if len == 2 {
                self.finished = true;
                self.buf.advance(2);
                break;
            }
            let row = self.buf.split_to(len);
            let mut at = 2;
            for (index, builder) in self.builders.iter_mut().enumerate() {
                let field_len = i32::from_be_bytes(row[at..at + 4].try_into().unwrap_or_default());
                at += 4;
                if field_len < 0 {
                    builder.append_null();
                    continue;
                }
                let value = &row[at..at + field_len as usize];
                at += field_len as usize;
                builder.append(value).map_err(|why| {
                    Error::data(format!("column {}: {why}", self.schema.field(index).name()))
                })?;
            }
            self.rows += 1;
        }
        Ok(())
    }

    /// The byte length of the next row if it is complete (2 for the end marker).
    fn complete_row_len(&self) -> Result<Option<usize>> {
        let buf = &self.buf[..];
        if buf.len() < 2 {
            return Ok(None);
        }
        let fields = i16::from_be_bytes([buf[0], buf[1]]);
        if fields == -1 {
            return Ok(Some(2));
        }
        if fields as usize != self.builders.len() {
            return Err(Error::bug(format!(
                "COPY row has {fields} fields, expected {}",
                self.builders.len()
            )));
        }
        let mut at = 2;
        for _ in 0..fields {
            let Some(len) = buf.get(at..at + 4) else {
                return Ok(None);
            };
            let len = i32::from_be_bytes(len.try_into().unwrap_or_default());
            at += 4 + len.max(0) as usize;
        }
        Ok((buf.len() >= at).then_some(at))
    }

    /// Hands over the decoded rows as a batch (None when there are none).
    pub fn finish_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.rows == 0 {
            return Ok(None);
        }
        self.rows = 0;
        let columns = self.builders.iter_mut().map(Builder::finish).collect();
        RecordBatch::try_new(self.schema.clone(), columns)
            .map(Some)
            .map_err(|e| Error::bug("decoded columns do not fit the schema").caused_by(e))
    }
}
