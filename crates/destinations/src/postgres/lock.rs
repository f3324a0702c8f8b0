//! Per-stream leases with fencing tokens, so workers can load different streams of one
//! connection at once and a stopped worker can never overwrite the one that replaced it.
//!
//! `_elt_locks` holds one row per connection and stream: the holder, its token and when
//! its lease expires. Taking a stream inserts the row or takes over an expired one, raising
//! the token. A background task renews the lease every third of `lease_secs` on its own
//! connection. Every commit first locks the row (`FOR UPDATE`) and checks the token in the
//! same transaction as the data: a worker whose lease expired and was taken over (paused
//! with SIGSTOP, cut off) finds a higher token, rolls back and fails with `Locked`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use elt_core::{ConfiguredStream, Error, Result, RunInfo, RunStatus};
use elt_postgres::Target;
use sqlx::postgres::PgConnection;

/// A held stream lease.
pub struct StreamLock {
    connection: String,
    stream: String,
    token: i64,
    lease: Duration,
    table: String,
    lost: Arc<AtomicBool>,
    heartbeat: tokio::task::JoinHandle<()>,
}

/// Who holds a lease: the process and host, for error messages.
fn holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown host".into());
    format!("PID {} on {}", std::process::id(), host.trim())
}

impl StreamLock {
    /// Takes the lease of `stream` (of its window, for a backfill window:
    /// [`ConfiguredStream::lease_name`]), or fails with `Locked` naming the holder. Marks
    /// the stream's `running` rows of earlier runs that hold no live lease `abandoned`:
    /// no live worker runs them (windows of one stream run at once under leases of their
    /// own; a run younger than one lease may not have taken its lease yet).
    pub async fn acquire(
        conn: &mut PgConnection,
        target: &Target,
        dataset: &str,
        run: &RunInfo,
        configured: &ConfiguredStream,
        lease: Duration,
    ) -> Result<Self> {
        let leased = configured.lease_name();
        let stream = leased.as_str();
        let table = format!("{dataset}._elt_locks");
        let lease_ms = lease.as_millis() as i64;
        let sql = format!(
            "INSERT INTO {table} AS l (connection, stream, token, run_id, holder, acquired_at, expires_at)
             VALUES ($1, $2, 1, $3, $4, clock_timestamp(),
                     clock_timestamp() + $5 * interval '1 millisecond')
             ON CONFLICT (connection, stream) DO UPDATE SET token = l.token + 1,
                 run_id = EXCLUDED.run_id, holder = EXCLUDED.holder,
                 acquired_at = EXCLUDED.acquired_at, expires_at = EXCLUDED.expires_at
             WHERE l.expires_at < clock_timestamp()
             RETURNING token"
        );
        let token: Option<i64> = sqlx::query_scalar(&sql)
            .bind(run.connection.clone())
            .bind(stream.to_owned())
            .bind(run.run_id.clone())
            .bind(holder())
            .bind(lease_ms)
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| target.error("taking the stream's lock", e))?;
        let Some(token) = token else {
            let sql = format!(
                "SELECT holder, run_id,
                        extract(epoch FROM expires_at - clock_timestamp())::float8
                 FROM {table} WHERE connection = $1 AND stream = $2"
            );
            let (holder, run_id, secs): (String, String, f64) = sqlx::query_as(&sql)
                .bind(run.connection.clone())
                .bind(stream.to_owned())
                .fetch_one(&mut *conn)
                .await
                .map_err(|e| target.error("reading the stream's lock", e))?;
            return Err(Error::locked(format!(
                "stream {stream} is being loaded by another worker ({holder}, run {run_id}); \
                 its lease runs {secs:.0}s more (renewed while it works); pass --wait-for-lock SECS to \
                 wait for it"
            )));
        };
        let taken = Self::conflicts(conn, target, &table, run, configured).await;
        if let Err(e) | Ok(Some(e)) = taken {
            let sql = format!(
                "UPDATE {table} SET expires_at = clock_timestamp() - interval '1 second'
                 WHERE connection = $1 AND stream = $2 AND token = $3"
            );
            // Failing to let go only keeps the lease until it expires.
            let _ = sqlx::query(&sql)
                .bind(run.connection.clone())
                .bind(stream.to_owned())
                .bind(token)
                .execute(&mut *conn)
                .await;
            return Err(e);
        }
        let sql = format!(
            "UPDATE {dataset}._elt_runs SET status = $1, ended_at = now(),
                 error = 'the worker stopped before the run ended (killed, paused or cut off); \
                 what it committed stays'
             WHERE connection = $2 AND stream = $3 AND status = $4 AND run_id <> $5
               AND started_at < clock_timestamp() - $6 * interval '1 millisecond'
               AND run_id NOT IN (SELECT run_id FROM {table}
                                  WHERE connection = $2 AND expires_at > clock_timestamp())"
        );
        sqlx::query(&sql)
            .bind(RunStatus::Abandoned.as_str())
            .bind(run.connection.clone())
            .bind(configured.name().to_owned())
            .bind(RunStatus::Running.as_str())
            .bind(run.run_id.clone())
            .bind(lease_ms)
            .execute(&mut *conn)
            .await
            .map_err(|e| target.error("closing the runs of stopped workers", e))?;
        let lost = Arc::new(AtomicBool::new(false));
        let heartbeat = tokio::spawn(renew(
            target.connect().await?,
            format!(
                "UPDATE {table} SET expires_at = clock_timestamp() + {lease_ms} * interval '1 millisecond'
                 WHERE connection = $1 AND stream = $2 AND token = $3"
            ),
            (run.connection.clone(), stream.to_owned(), token),
            lease / 3,
            lost.clone(),
        ));
        Ok(Self {
            connection: run.connection.clone(),
            stream: stream.to_owned(),
            token,
            lease,
            table,
            lost,
            heartbeat,
        })
    }

    /// After taking a lease: a live lease of the same stream that this one must not run
    /// beside, as a `Locked` error. A window conflicts with the whole stream's lease and
    /// with windows it overlaps; the whole stream with every window. Both of two workers
    /// that take conflicting leases at once see the other, so at most one goes on.
    async fn conflicts(
        conn: &mut PgConnection,
        target: &Target,
        table: &str,
        run: &RunInfo,
        configured: &ConfiguredStream,
    ) -> Result<Option<Error>> {
        let sql = format!(
            "SELECT stream, holder, run_id FROM {table}
             WHERE connection = $1 AND run_id <> $2 AND expires_at > clock_timestamp()
               AND (stream = $3 OR starts_with(stream, $3 || ' ['))"
        );
        let live: Vec<(String, String, String)> = sqlx::query_as(&sql)
            .bind(run.connection.clone())
            .bind(run.run_id.clone())
            .bind(configured.name().to_owned())
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| target.error("reading the stream's other leases", e))?;
        let mine = configured.window();
        let conflict = live.into_iter().find(|(leased, _, _)| {
            match (
                &mine,
                elt_core::windows::from_lease_name(configured.name(), leased),
            ) {
                (Some(mine), Some(theirs)) => mine.overlaps(&theirs),
                (None, None) => false, // the same lease: the insert above decided
                _ => true,
            }
        });
        Ok(conflict.map(|(leased, holder, run_id)| {
            Error::locked(format!(
                "{} cannot load while {leased} is being loaded by another worker ({holder},                  run {run_id}): a backfill window and a sync of its stream, or two windows                  that overlap, would replace each other's rows; pass --wait-for-lock SECS to                  wait for it",
                configured.lease_name()
            ))
        }))
    }

    /// Inside the commit's transaction: locks the lease row, checks that this worker still
    /// holds it, and extends it. Fails with `Locked` when another worker took the stream.
    pub async fn fence(&self, conn: &mut PgConnection, target: &Target) -> Result<()> {
        let sql = format!(
            "SELECT token, holder FROM {} WHERE connection = $1 AND stream = $2 FOR UPDATE",
            self.table
        );
        let current: Option<(i64, String)> = sqlx::query_as(&sql)
            .bind(self.connection.clone())
            .bind(self.stream.clone())
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| target.error("checking the stream's lock", e))?;
        match current {
            Some((token, _)) if token == self.token => {}
            other => {
                self.lost.store(true, Ordering::Relaxed);
                let by = other.map_or_else(
                    || "its lock was removed".to_owned(),
                    |(_, h)| format!("another worker ({h}) took it over"),
                );
                return Err(Error::locked(format!(
                    "lost the lock of stream {}: {by} after this worker's lease of {}s ran out \
                     (it was paused or cut off); nothing after its last commit was committed",
                    self.stream,
                    self.lease.as_secs()
                )));
            }
        }
        let sql = format!(
            "UPDATE {} SET expires_at = clock_timestamp() + $3 * interval '1 millisecond'
             WHERE connection = $1 AND stream = $2",
            self.table
        );
        sqlx::query(&sql)
            .bind(self.connection.clone())
            .bind(self.stream.clone())
            .bind(self.lease.as_millis() as i64)
            .execute(&mut *conn)
            .await
            .map_err(|e| target.error("extending the stream's lock", e))?;
        Ok(())
    }

    /// Whether the heartbeat found the lease taken over (checked before work, cheaply).
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// Stops renewing and lets the lease go (when this worker still holds it).
    pub async fn release(self, conn: &mut PgConnection) {
        self.heartbeat.abort();
        let sql = format!(
            "UPDATE {} SET expires_at = clock_timestamp() - interval '1 second'
             WHERE connection = $1 AND stream = $2 AND token = $3",
            self.table
        );
        let released = sqlx::query(&sql)
            .bind(self.connection.clone())
            .bind(self.stream.clone())
            .bind(self.token)
            .execute(&mut *conn)
            .await;
        if let Err(e) = released {
            tracing::warn!(stream = %self.stream, error = %e, "could not release the stream's lock; it expires by itself");
        }
    }
}

/// Renews the lease every `every` until it finds it taken over (then sets `lost`) or the
/// connection fails (then the lease runs out by itself and the commit's fence decides).
async fn renew(
    mut conn: PgConnection,
    sql: String,
    (connection, stream, token): (String, String, i64),
    every: Duration,
    lost: Arc<AtomicBool>,
) {
    loop {
        tokio::time::sleep(every).await;
        match sqlx::query(&sql)
            .bind(&connection)
            .bind(&stream)
            .bind(token)
            .execute(&mut conn)
            .await
        {
            Ok(done) if done.rows_affected() == 0 => {
                lost.store(true, Ordering::Relaxed);
                return;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(%stream, error = %e, "cannot renew the stream's lock");
                return;
            }
        }
    }
}
