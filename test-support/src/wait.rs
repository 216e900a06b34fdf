//! Waiting for what happens in the background (a worker's job, a push, another instance's
//! cache), the one way every test does it: [`eventually!`](crate::eventually) polls a
//! condition until it holds and gives up after a bound that only stops a hang. Nothing here
//! asserts how fast anything is.

use std::{future::Future, time::Duration};

/// How often a condition is looked at.
const EVERY: Duration = Duration::from_millis(50);
/// When a test gives up waiting: a bound on a hang, not a timing claim.
const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

/// What a condition yields: `true`, or `Some(value)`, once it holds.
pub trait Settled {
    type Value;
    fn settled(self) -> Option<Self::Value>;
}

impl Settled for bool {
    type Value = ();
    fn settled(self) -> Option<()> {
        self.then_some(())
    }
}

impl<T> Settled for Option<T> {
    type Value = T;
    fn settled(self) -> Option<T> {
        self
    }
}

/// Polls `condition` until it holds and returns what it yielded; panics naming `what` after
/// [`GIVE_UP_AFTER`]. Called through [`eventually!`](crate::eventually).
pub async fn until<S, F, Fut>(what: &str, mut condition: F) -> S::Value
where
    S: Settled,
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
{
    let attempts = GIVE_UP_AFTER.as_millis() / EVERY.as_millis();
    for _ in 0..attempts {
        if let Some(value) = condition().await.settled() {
            return value;
        }
        tokio::time::sleep(EVERY).await;
    }
    panic!("gave up waiting: {what}");
}

/// `eventually!(condition)` or `eventually!("what", condition)`: waits until `condition` (an
/// expression that may `.await`) is `true` or `Some(value)`, and yields `()` or the value. The
/// failure names `what`, or the condition and where it is.
#[macro_export]
macro_rules! eventually {
    ($what:literal, $condition:expr) => {
        $crate::wait::until($what, || async { $condition }).await
    };
    ($condition:expr) => {
        $crate::wait::until(
            concat!(file!(), ":", line!(), ": ", stringify!($condition)),
            || async { $condition },
        )
        .await
    };
}
