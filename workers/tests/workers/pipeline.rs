//! The booking pipeline end to end under real concurrency: buyers through the HTTP API, real
//! worker processes (the `workers` binary), real RabbitMQ, Postgres and Redis. After each run the
//! invariants are checked in Postgres.

use std::collections::HashMap;

use serde_json::{Value, json};
use sqlx::PgPool;
use test_support::{
    TestEnv, eventually,
    fixtures::{self, Buyer, ShowtimeFixture},
    proxy::CuttableProxy,
};
use uuid::Uuid;

use crate::helpers::{WorkerProcess, gauge};

struct Sale {
    env: TestEnv,
    db: PgPool,
    api: String,
    client: reqwest::Client,
    showtime: ShowtimeFixture,
    buyers: Vec<Buyer>,
}

impl Sale {
    async fn new(env: TestEnv, layout: &[(i32, i32)], buyers: usize) -> Self {
        let db = env.db();
        let showtime = fixtures::showtime_on_sale(&db, layout).await;
        let buyers = fixtures::buyers(&db, &env.settings(), buyers).await;
        let app = api::startup::Application::build(env.settings())
            .await
            .unwrap();
        let api = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped(std::future::pending()));
        Self {
            env,
            db,
            api,
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .unwrap(),
            showtime,
            buyers,
        }
    }

    /// Buyer `i` asks for 1-2 of the first `hot` seats by name (every third buyer), or for 1-3
    /// seats best-available in one of the sections.
    fn request(&self, i: usize, hot: usize) -> Value {
        let showtime_id = self.showtime.showtime_id;
        if i.is_multiple_of(3) {
            let hot_seats = &self.showtime.sections[0].seat_ids[..hot];
            let first = (i * 7) % hot;
            let mut seats = vec![hot_seats[first]];
            if i.is_multiple_of(2) {
                seats.push(hot_seats[(first + 1) % hot]);
            }
            json!({"showtime_id": showtime_id, "seat_ids": seats})
        } else {
            let section = &self.showtime.sections[i % self.showtime.sections.len()];
            json!({"showtime_id": showtime_id, "section_id": section.section_id, "quantity": 1 + i % 3})
        }
    }

    async fn submit(&self, i: usize, hot: usize) -> Uuid {
        let response = self
            .client
            .post(format!("{}/api/bookings", self.api))
            .bearer_auth(&self.buyers[i].token)
            .header("idempotency-key", format!("buyer-{i}"))
            .json(&self.request(i, hot))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        let body: Value = response.json().await.unwrap();
        body["booking_id"].as_str().unwrap().parse().unwrap()
    }

    /// Long-polls until the booking is decided.
    async fn decided(&self, i: usize, booking: Uuid) -> Value {
        for _ in 0..60 {
            let response = self
                .client
                .get(format!("{}/api/bookings/{booking}?wait=10", self.api))
                .bearer_auth(&self.buyers[i].token)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let view: Value = response.json().await.unwrap();
            assert_eq!(status, 200, "status of booking {booking}: {view}");
            if view["status"] != "PENDING" {
                return view;
            }
        }
        panic!("booking {booking} was never decided");
    }

    async fn decided_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM bookings WHERE status <> 'PENDING'")
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    /// Buyer `i` books and waits for the answer.
    async fn buy(&self, i: usize, hot: usize) -> (usize, Value) {
        let booking = self.submit(i, hot).await;
        (i, self.decided(i, booking).await)
    }

    /// Every buyer books at once and waits for the answer.
    async fn run(&self, hot: usize) -> Vec<(usize, Value)> {
        futures::future::join_all((0..self.buyers.len()).map(|i| self.buy(i, hot))).await
    }

    /// The first `early` buyers book at once (too few to sell the showtime out); `fault` runs
    /// beside them (it waits for what it needs first), and only when it is done do the others
    /// book. However fast the workers, the fault lands mid-sale; the caller checks that seats
    /// were still reserved after it ([`Self::reserved_after`]).
    async fn run_around<T>(
        &self,
        hot: usize,
        early: usize,
        fault: impl Future<Output = T>,
    ) -> (Vec<(usize, Value)>, T) {
        let first = futures::future::join_all((0..early).map(|i| self.buy(i, hot)));
        let rest = async {
            let injected = fault.await;
            let outcomes =
                futures::future::join_all((early..self.buyers.len()).map(|i| self.buy(i, hot)))
                    .await;
            (outcomes, injected)
        };
        let (mut outcomes, (later, injected)) = tokio::join!(first, rest);
        outcomes.extend(later);
        (outcomes, injected)
    }

    /// How many of the buyers from `early` on, who booked only after the fault, hold seats.
    fn reserved_after(outcomes: &[(usize, Value)], early: usize) -> usize {
        outcomes
            .iter()
            .filter(|(i, view)| *i >= early && view["status"] == "RESERVED")
            .count()
    }

    /// The invariants of the sale, checked in Postgres.
    async fn check_invariants(&self, outcomes: &[(usize, Value)], hot: usize) {
        let sale = test_support::invariants::check_sale(&self.db, self.showtime.showtime_id)
            .await
            .unwrap();
        assert_eq!(sale.seats, self.showtime.all_seats().len() as i64);
        let held = sale.held;
        let bookings: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings")
            .fetch_one(&self.db)
            .await
            .unwrap();
        assert_eq!(
            bookings,
            self.buyers.len() as i64,
            "one booking per buyer, none lost"
        );

        let mut by_status: HashMap<String, i64> = HashMap::new();
        let mut seats_in_answers = 0;
        for (i, view) in outcomes {
            let status = view["status"].as_str().unwrap().to_owned();
            match status.as_str() {
                "RESERVED" => seats_in_answers += view["seats"].as_array().unwrap().len() as i64,
                "REJECTED" => {
                    let named = i.is_multiple_of(3);
                    let expected = if named { "SEAT_TAKEN" } else { "SOLD_OUT" };
                    assert_eq!(view["reject_reason"], expected, "buyer {i}: {view}");
                }
                other => panic!("buyer {i} ended {other}"),
            }
            *by_status.entry(status).or_default() += 1;
        }
        assert_eq!(
            seats_in_answers, held,
            "what buyers were told matches the database"
        );
        assert!(by_status.get("RESERVED").copied().unwrap_or(0) > 0);
        assert!(by_status.get("REJECTED").copied().unwrap_or(0) > 0);
        // Demand far exceeds supply: the hot seats are all gone.
        let hot_free: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM showtime_seats WHERE showtime_id = $1 AND seat_id = ANY($2)
               AND status = 'AVAILABLE'",
        )
        .bind(self.showtime.showtime_id)
        .bind(&self.showtime.sections[0].seat_ids[..hot])
        .fetch_one(&self.db)
        .await
        .unwrap();
        assert!(
            hot_free <= 1,
            "{hot_free} hot seats left free under 100 requests for them"
        );
    }
}

#[tokio::test]
async fn three_hundred_buyers_race_for_fifty_seats_with_two_worker_processes() {
    let sale = Sale::new(TestEnv::new().await, &[(2, 10), (3, 10)], 300).await;
    let _first = WorkerProcess::start(&sale.env);
    let _second = WorkerProcess::start(&sale.env);

    let outcomes = sale.run(8).await;

    sale.check_invariants(&outcomes, 8).await;
}

#[tokio::test]
async fn worker_processes_share_the_reservation_partitions_and_take_over_a_dead_ones() {
    let sale = Sale::new(TestEnv::new().await, &[(2, 10), (3, 10)], 120).await;
    let partitions = sale.env.settings().rabbitmq.partitions;
    let held = |port| async move {
        gauge(port, "partitions_held", "reserve-seats")
            .await
            .unwrap_or(0.0) as u16
    };
    let (_first, first) = WorkerProcess::start_observed(&sale.env);
    let (mut second, second_port) = WorkerProcess::start_observed(&sale.env);

    // Each holds its share, and together every partition.
    eventually!("two processes split the partitions evenly", {
        let (a, b) = (held(first).await, held(second_port).await);
        a + b == partitions && a.abs_diff(b) <= 1
    });

    second.kill_hard();
    eventually!(
        "the survivor takes every partition",
        held(first).await == partitions
    );
    // None is left unconsumed: every booking of the sale, whatever its partition, is decided.
    let outcomes = sale.run(8).await;
    sale.check_invariants(&outcomes, 8).await;
}

#[tokio::test]
async fn reservations_stay_correct_when_redis_goes_away_mid_race() {
    let mut env = TestEnv::new().await;
    let redis: std::net::SocketAddr = "127.0.0.1:6379".parse().unwrap();
    let proxy = CuttableProxy::start(redis).await;
    env.set("REDIS_URL", format!("redis://{}", proxy.address()));
    let sale = Sale::new(env, &[(2, 10), (2, 10)], 150).await;
    let _workers = WorkerProcess::start(&sale.env);

    // 10 early buyers ask for at most 30 of the 40 seats.
    let (outcomes, ()) = sale
        .run_around(8, 10, async {
            eventually!(
                "a first booking is decided",
                sale.decided_count().await >= 1
            );
            proxy.cut();
        })
        .await;

    sale.check_invariants(&outcomes, 8).await;
    assert!(
        Sale::reserved_after(&outcomes, 10) > 0,
        "seats were reserved without Redis"
    );
}

#[tokio::test]
async fn a_worker_killed_mid_reservation_loses_nothing_and_applies_nothing_twice() {
    let mut env = TestEnv::new().await;
    // One booking per transaction, so the kill most likely lands inside one.
    env.set("WORKER_CONCURRENCY_RESERVE_SEATS", "1");
    let sale = Sale::new(env, &[(4, 10), (4, 10)], 200).await;
    let mut doomed = WorkerProcess::start(&sale.env);

    // 20 early buyers ask for at most 60 of the 80 seats.
    let (outcomes, _replacement) = sale
        .run_around(8, 20, async {
            eventually!("the first worker is busy", sale.decided_count().await >= 1);
            doomed.kill_hard();
            WorkerProcess::start(&sale.env)
        })
        .await;

    sale.check_invariants(&outcomes, 8).await;
    assert!(
        Sale::reserved_after(&outcomes, 20) > 0,
        "the replacement reserved seats"
    );
    let released_from_live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM booking_seats bs JOIN bookings b ON b.id = bs.booking_id
         WHERE b.status = 'RESERVED' AND bs.released_at IS NOT NULL",
    )
    .fetch_one(&sale.db)
    .await
    .unwrap();
    assert_eq!(
        released_from_live, 0,
        "no reservation was applied, undone and applied again"
    );
}
