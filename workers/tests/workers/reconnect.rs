//! A worker process outlives its broker: when RabbitMQ drops every connection (as a restart
//! does) and refuses new ones for a while, the consumer reports itself down, reconnects with
//! back-off once the broker is back, and processes what was published meanwhile. The broker
//! is cut through a proxy the test controls, never by stopping the shared server.

use serde_json::Value;
use workers::{context::JobContext, startup::Application};

use test_support::eventually;

use crate::helpers::{Harness, Probe, Running};

async fn health(port: u16) -> (u16, Value) {
    let response = reqwest::get(format!("http://127.0.0.1:{port}/health"))
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn reconnects(port: u16) -> f64 {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| {
            line.starts_with("broker_reconnects_total") && line.contains("kind=\"probe\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_consumer_reconnects_after_the_broker_drops_it_and_catches_up() {
    let harness = Harness::new().await;
    let mut env = harness.env.clone();
    let proxy = env.route_through_proxy("RABBITMQ_URL", 5672).await;
    let settings = env.settings();
    let mut app = Application::empty(JobContext::new(settings).unwrap())
        .await
        .unwrap();
    app.consume::<Probe>(4);
    let port = app.http_port();
    let workers = Running::start(app);

    let before = Probe::succeeding();
    harness.publisher.publish(&before).await.unwrap();
    eventually!(
        "the first job completes",
        harness.completions(before.id).await == 1
    );
    assert_eq!(health(port).await.1["consumers"]["probe"], "up");

    // The broker goes away: every connection dropped, new ones refused.
    proxy.cut();
    eventually!("health reports the consumer down", {
        let (status, body) = health(port).await;
        status == 503 && body["consumers"]["probe"] == "down"
    });
    let during = Probe::succeeding();
    harness.publisher.publish(&during).await.unwrap();
    assert!(
        !workers.handle.is_finished(),
        "the process outlives the broker"
    );

    proxy.restore();
    eventually!(
        "the job published during the outage completes",
        harness.completions(during.id).await == 1
    );
    eventually!("health is up again", {
        let (status, body) = health(port).await;
        status == 200 && body["consumers"]["probe"] == "up"
    });
    assert!(reconnects(port).await >= 1.0, "the reconnect is counted");

    // A drop without a refusal, as a broker-initiated close: back at once.
    proxy.sever();
    let after = Probe::succeeding();
    harness.publisher.publish(&after).await.unwrap();
    eventually!(
        "a job after the second drop completes",
        harness.completions(after.id).await == 1
    );

    // A job whose acknowledgement was lost with the connection is delivered again (at least
    // once); in the end nothing is left queued and nothing was dead-lettered.
    eventually!(
        "nothing is left queued or dead-lettered",
        harness.probe_queues().await == (0, 0)
    );
    workers.stop().await;
    assert_eq!(
        harness.attempts(before.id).await,
        1,
        "acknowledged before the cut"
    );
}
