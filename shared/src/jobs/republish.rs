//! Publishing again the jobs whose first publish may never have reached the broker: a booking
//! accepted while the broker was down, a refund whose outcome never arrived.
//!
//! Three rules keep this from flooding the queues on the night:
//! - one replica at a time: the republisher holds a Postgres advisory lock for the round, so
//!   every replica may run the sweep and only one of them republishes;
//! - a job whose publish is known to have failed ([`not_published`]) goes out at the next
//!   round; one that merely looks stale is not republished while a copy may still be
//!   delivered: a kind whose queue still holds ready messages is skipped (its earlier copies
//!   are waiting their turn, not lost);
//! - each job waits twice as long after each republish (`republished_jobs`), so a job stuck for
//!   another reason is retried ever more rarely rather than every sweep.

use sqlx::{PgPool, pool::PoolConnection};
use uuid::Uuid;

/// Key of the advisory lock the republisher holds for its round.
const REPUBLISHER_LOCK: i64 = 0x626d_735f_7265_7075; // "bms_repu"

/// The right to republish, held until dropped (or the connection closes with the process).
pub struct Republisher {
    connection: Option<PoolConnection<sqlx::Postgres>>,
}

impl Republisher {
    /// The lock if no other replica holds it now; `None` if one does.
    pub async fn try_lead(db: &PgPool) -> Result<Option<Self>, sqlx::Error> {
        let mut connection = db.acquire().await?;
        let locked = sqlx::query_scalar!("SELECT pg_try_advisory_lock($1)", REPUBLISHER_LOCK)
            .fetch_one(&mut *connection)
            .await;
        match locked {
            Ok(Some(true)) => Ok(Some(Self {
                connection: Some(connection),
            })),
            Ok(_) => Ok(None),
            Err(error) => {
                // Whether the lock was granted is unknown: the connection must not go back to
                // the pool, where it could keep it.
                drop(connection.detach());
                Err(error)
            }
        }
    }

    /// Records that these jobs of `kind` were just published again.
    pub async fn record(&mut self, kind: &str, ids: &[Uuid]) -> Result<(), sqlx::Error> {
        let Some(connection) = self.connection.as_mut() else {
            return Ok(());
        };
        sqlx::query!(
            "INSERT INTO republished_jobs (kind, job_id, republished_at, times)
             SELECT $1, id, now(), 1 FROM unnest($2::uuid[]) AS id
             ON CONFLICT (kind, job_id)
             DO UPDATE SET republished_at = now(), times = republished_jobs.times + 1",
            kind,
            ids
        )
        .execute(&mut **connection)
        .await?;
        Ok(())
    }

    /// Gives the lock back. Until the unlock is confirmed the connection stays here, so that
    /// any failure (or this future being dropped) ends in `Drop`, which closes it.
    pub async fn release(mut self) {
        let Some(connection) = self.connection.as_mut() else {
            return;
        };
        let unlocked = sqlx::query_scalar!("SELECT pg_advisory_unlock($1)", REPUBLISHER_LOCK)
            .fetch_one(&mut **connection)
            .await;
        if matches!(unlocked, Ok(Some(true))) {
            // Unlocked: the connection may go back to the pool.
            drop(self.connection.take());
        }
    }
}

/// Records that publishing this job failed (the broker was unreachable), so the next sweep
/// publishes it at once, without waiting for it to look stale.
pub async fn not_published(db: &PgPool, kind: &str, job_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO republished_jobs (kind, job_id, republished_at, times)
         VALUES ($1, $2, now(), 0) ON CONFLICT (kind, job_id) DO NOTHING",
        kind,
        job_id
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Forgets republications older than a day: their jobs are long decided.
pub async fn purge(db: &PgPool) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query!(
        "DELETE FROM republished_jobs WHERE republished_at < now() - interval '24 hours'"
    )
    .execute(db)
    .await?
    .rows_affected())
}

impl Drop for Republisher {
    fn drop(&mut self) {
        // Released without `release` (an error or a cancelled round): close the connection, so
        // the lock goes with it rather than stay with a connection back in the pool.
        if let Some(connection) = self.connection.take() {
            drop(connection.detach());
        }
    }
}
