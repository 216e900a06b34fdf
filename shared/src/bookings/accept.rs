//! Accepting a booking request: the API's whole share of a booking, which in the steady state
//! asks Postgres nothing.
//!
//! 1. The request is checked against the showtime as this process knows it ([`sale`]): on
//!    sale, seats of this showtime, a section it sells. A refused request whose key was
//!    accepted before answers with that booking instead: a retry gets its own booking, whatever
//!    the checks say now.
//! 2. Its booking id is minted from the buyer and key ([`BookingIds`]).
//! 3. One Redis script claims the key with the request's fingerprint (same key and request:
//!    the same booking; another request: refused), writes the PENDING status copy and records
//!    the job as accepted-not-yet-published ([`claims`]).
//! 4. The reservation job, carrying the request, is published with a publisher confirm. The
//!    worker records the booking in the transaction that decides it.
//!
//! The per-buyer cap is the worker's to decide, under its lock.
//!
//! Degraded paths, each keeping the same booking id, so a request is never booked twice:
//! - the broker cannot take the job: the booking is recorded PENDING in Postgres, and the
//!   sweep publishes it;
//! - Redis cannot be asked: idempotency and the checks go to Postgres
//!   ([`create::create_pending`]), then the job is published (or left to the sweep);
//! - the process dies between the claim and the publish: no answer was sent, so the client
//!   retries and the replay publishes the job again; if it never retries, the republisher
//!   publishes the job kept with the claim;
//! - the job is lost after its confirm (a broker that lost it, a dead letter, a partition
//!   nobody consumes): it is kept until a worker records the row, and published again once the
//!   queues have run dry ([`claims::unrecorded`]).

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use sqlx::PgPool;
use uuid::Uuid;

use super::{
    BookingStatus, claims,
    create::{self, Accepted, BookingRequest, CreateError},
    ids::BookingIds,
    sale::{self, Refusal, SaleFacts},
    view::{self, BookingView},
};
use crate::{
    cache::{Cache, TypedCache},
    catalogue::scopes,
    jobs::{Job, JobPublisher, NewBooking, ReservationScope, ReserveSeats, republish},
    redis_client::RedisClient,
};

/// Showtimes whose sale facts one process keeps.
const SHOWTIMES_KEPT: u64 = 256;

#[derive(Clone)]
pub struct Acceptor {
    db: PgPool,
    redis: RedisClient,
    jobs: JobPublisher,
    ids: BookingIds,
    facts: Arc<TypedCache<SaleFacts>>,
    status_ttl: Duration,
}

impl Acceptor {
    pub fn new(
        db: PgPool,
        redis: RedisClient,
        jobs: JobPublisher,
        ids: BookingIds,
        cache: &Cache,
        facts_ttl: Duration,
        status_ttl: Duration,
    ) -> Self {
        Self {
            db,
            redis,
            jobs,
            ids,
            facts: Arc::new(cache.typed(SHOWTIMES_KEPT, facts_ttl)),
            status_ttl,
        }
    }

    pub fn ids(&self) -> &BookingIds {
        &self.ids
    }

    /// Accepts `request`: its booking is PENDING and its job published (or, on a degraded
    /// path, recorded for the sweep to publish) when this returns `Ok`.
    #[tracing::instrument(skip_all, fields(user_id = %request.user_id, showtime_id = %request.showtime_id))]
    pub async fn accept(&self, request: BookingRequest) -> Result<Accepted, CreateError> {
        let booking_id = self
            .ids
            .mint(request.user_id, request.idempotency_key.as_str());
        let fingerprint = request.fingerprint();
        let now = Utc::now();
        let job = ReserveSeats {
            booking_id,
            scope: Some(ReservationScope {
                showtime_id: request.showtime_id,
                section_id: request.selection.section_id(),
            }),
            request: Some(NewBooking {
                user_id: request.user_id,
                showtime_id: request.showtime_id,
                selection: request.selection.clone(),
                idempotency_key: request.idempotency_key.as_str().to_owned(),
                fingerprint: fingerprint.clone(),
                accepted_at: now,
            }),
        };
        let facts = self
            .facts
            .get_or_load(
                &scopes::showtime(request.showtime_id),
                sale::load(&self.db, request.showtime_id),
            )
            .await?
            .ok_or(CreateError::ShowtimeNotFound)?;
        if let Err(refusal) = facts.check(&request.selection, now) {
            return match self.replay_of(&request, &fingerprint).await? {
                Some(accepted) => Ok(accepted),
                None => Err(match refusal {
                    Refusal::NotOnSale => CreateError::NotOnSale,
                    Refusal::UnknownSeats(seats) => CreateError::UnknownSeats(seats),
                    Refusal::UnknownSection => CreateError::UnknownSection,
                }),
            };
        }
        let pending = BookingView::accepted(booking_id, &request, now);
        let status_json = serde_json::to_string(&pending).unwrap_or_default();
        let job_json = serde_json::to_string(&job).unwrap_or_default();
        let claim = claims::NewClaim {
            user_id: request.user_id,
            idempotency_key: request.idempotency_key.as_str(),
            fingerprint: &fingerprint,
            booking_id,
            status_json: &status_json,
            status_ttl: self.status_ttl,
            job_json: &job_json,
        };
        match claims::claim(&self.redis, &claim).await {
            Ok(None) => self.publish_new(&request, &claim, &job).await,
            Ok(Some(existing)) => self.replay(existing, &fingerprint, &job).await,
            Err(error) => {
                tracing::warn!(%error, "Redis cannot claim the key; accepting through Postgres");
                self.accept_in_postgres(&request, &job).await
            }
        }
    }

    /// A new claim: publish, or have Postgres record the booking for the sweep.
    async fn publish_new(
        &self,
        request: &BookingRequest,
        claim: &claims::NewClaim<'_>,
        job: &ReserveSeats,
    ) -> Result<Accepted, CreateError> {
        let accepted = Accepted {
            booking_id: claim.booking_id,
            status: BookingStatus::Pending,
            replayed: false,
        };
        let Err(error) = self.jobs.publish(job).await else {
            claims::published(&self.redis, claim.booking_id).await;
            return Ok(accepted);
        };
        tracing::warn!(%error, booking_id = %claim.booking_id, "broker unreachable; recording the booking for the sweep");
        let recorded = async {
            create::record_checked(&self.db, request, claim.booking_id).await?;
            republish::not_published(&self.db, ReserveSeats::NAME, claim.booking_id).await
        };
        match recorded.await {
            Ok(()) => {
                claims::settled(&self.redis, &[claim.booking_id]).await;
                Ok(accepted)
            }
            Err(error) => {
                tracing::error!(%error, "neither the broker nor Postgres could take the booking");
                claims::release(&self.redis, claim).await;
                Err(CreateError::Unavailable("the booking service"))
            }
        }
    }

    /// The key was claimed before: the same request gets the same booking (its job published
    /// again while it is undecided, the job being idempotent); another request is refused.
    async fn replay(
        &self,
        existing: claims::Existing,
        fingerprint: &str,
        job: &ReserveSeats,
    ) -> Result<Accepted, CreateError> {
        if existing.fingerprint != fingerprint {
            return Err(CreateError::KeyReused);
        }
        let status = view::cached(&self.redis, existing.booking_id)
            .await
            .map_or(BookingStatus::Pending, |view| view.status);
        if status == BookingStatus::Pending {
            match self.jobs.publish(job).await {
                Ok(()) => claims::published(&self.redis, existing.booking_id).await,
                Err(error) => {
                    tracing::warn!(%error, booking_id = %existing.booking_id, "replay not republished; the republisher or the sweep will");
                }
            }
        }
        Ok(Accepted {
            booking_id: existing.booking_id,
            status,
            replayed: true,
        })
    }

    /// The booking a refused request's key made before, wherever it was recorded.
    async fn replay_of(
        &self,
        request: &BookingRequest,
        fingerprint: &str,
    ) -> Result<Option<Accepted>, CreateError> {
        match claims::lookup(
            &self.redis,
            request.user_id,
            request.idempotency_key.as_str(),
        )
        .await
        {
            Ok(Some(existing)) if existing.fingerprint != fingerprint => {
                Err(CreateError::KeyReused)
            }
            Ok(Some(existing)) => {
                let status = view::cached(&self.redis, existing.booking_id)
                    .await
                    .map_or(BookingStatus::Pending, |view| view.status);
                Ok(Some(Accepted {
                    booking_id: existing.booking_id,
                    status,
                    replayed: true,
                }))
            }
            // Not claimed in Redis (or Redis is away): Postgres may have it from a degraded path.
            Ok(None) | Err(_) => create::replayed(&self.db, request).await,
        }
    }

    /// Redis is away: Postgres checks, claims the key and records the booking, then the job
    /// is published (or left to the sweep).
    async fn accept_in_postgres(
        &self,
        request: &BookingRequest,
        job: &ReserveSeats,
    ) -> Result<Accepted, CreateError> {
        let accepted = create::create_pending(&self.db, request, job.booking_id).await?;
        if accepted.status == BookingStatus::Pending
            && let Err(error) = self.jobs.publish(job).await
        {
            tracing::error!(%error, booking_id = %accepted.booking_id, "reservation job not published yet; the sweep will");
            if let Err(error) =
                republish::not_published(&self.db, ReserveSeats::NAME, accepted.booking_id).await
            {
                tracing::warn!(%error, "could not mark the booking for the sweep");
            }
        }
        Ok(accepted)
    }

    /// What the API answers a booking's owner when neither Redis nor Postgres knows it yet but
    /// its id was minted for them: it is accepted and waiting in the queue.
    pub fn queued(&self, booking_id: Uuid, user_id: Uuid) -> Option<BookingView> {
        self.ids
            .minted_for(booking_id, user_id)
            .then(|| BookingView::queued(booking_id, user_id))
    }
}
