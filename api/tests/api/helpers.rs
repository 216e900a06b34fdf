use api::startup::Application;
use reqwest::{Client, Response};
use test_support::TestEnv;

/// A running API on its own port with its own database, Redis prefix and queue prefix.
pub struct TestApp {
    pub address: String,
    pub client: Client,
    pub env: TestEnv,
}

/// Starts the API on port 0 with a fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(TestEnv::new().await).await
}

/// Starts the API with settings the test adjusted (a dependency pointed at a closed port).
pub async fn spawn_app_with(env: TestEnv) -> TestApp {
    let application = Application::build(env.settings())
        .await
        .expect("the application builds");
    let address = format!("http://127.0.0.1:{}", application.port());
    tokio::spawn(application.run_until_stopped(std::future::pending()));
    TestApp {
        address,
        client: Client::new(),
        env,
    }
}

impl TestApp {
    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("the request is answered")
    }

    pub async fn get_health(&self) -> Response {
        self.get("/health").await
    }
}

/// An address where nothing listens, to play a dependency that is down.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}
