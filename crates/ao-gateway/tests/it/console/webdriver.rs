//! Headless Chromium through chromedriver, spoken to in plain W3C WebDriver (JSON over HTTP on
//! loopback): a dozen commands, so no client crate.
//!
//! Chromium and chromedriver are Debian's (`apt-get install chromium chromium-driver`, which
//! `.ci/run` does), found on `PATH` or at `AO_CHROMIUM` / `AO_CHROMEDRIVER`. Without them a test
//! is skipped, loudly; under CI (`CI` set) it fails instead.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

/// The key under which WebDriver returns an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a wait for the page lasts before the test fails.
const WAIT: Duration = Duration::from_secs(10);

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

fn tool(variable: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(variable) {
        return Some(PathBuf::from(path));
    }
    names.iter().find_map(|name| on_path(name))
}

/// Where screenshots go: `target/console-screenshots/`.
pub(crate) fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    target.join("console-screenshots")
}

/// A browser session: chromedriver, and the Chromium it started with a fresh profile.
pub(crate) struct Browser {
    http: reqwest::Client,
    driver_port: u16,
    session: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A headless Chromium, or `None` (after saying so) when there is none and this is not CI.
    pub(crate) async fn launch(test: &str) -> Option<Browser> {
        let chromium = tool("AO_CHROMIUM", &["chromium", "chromium-browser"]);
        let chromedriver = tool("AO_CHROMEDRIVER", &["chromedriver"]);
        let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: chromium and chromedriver are missing, and CI is set: the browser tests \
                 must run in CI (.ci/run installs Debian's chromium and chromium-driver)"
            );
            // Straight to the process's stderr: the test harness captures `eprintln!`.
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED {test}: no chromium/chromedriver on PATH. \
                 Install them: apt-get install chromium chromium-driver ***\n"
            );
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Browser {
            http: reqwest::Client::new(),
            driver_port: port,
            session: String::new(),
            driver,
            _profile: profile,
        };
        browser.wait_for_driver().await;
        browser.open_session(&chromium).await;
        Some(browser)
    }

    fn driver_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.driver_port)
    }

    async fn wait_for_driver(&self) {
        let started = Instant::now();
        loop {
            if let Ok(response) = self.http.get(self.driver_url("/status")).send().await
                && let Ok(status) = response.json::<Value>().await
                && status["value"]["ready"] == true
            {
                return;
            }
            assert!(started.elapsed() < WAIT, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn open_session(&mut self, chromium: &Path) {
        let profile = self._profile.path().display().to_string();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1360,1000",
            "--force-device-scale-factor=1",
            &format!("--user-data-dir={profile}"),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let response: Value = self
            .http
            .post(self.driver_url("/session"))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = response["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver refused a session: {response}"));
        self.session = format!("/session/{id}");
    }

    /// Sends a WebDriver command; answers its `value`, and fails the test on an error.
    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = self.driver_url(&format!("{}{path}", self.session));
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response: Value = request.send().await.unwrap().json().await.unwrap();
        let value = response["value"].clone();
        if let Some(error) = value.get("error") {
            panic!("webdriver {path}: {error}: {}", value["message"]);
        }
        value
    }

    /// Opens `url`.
    pub(crate) async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page; answers its value.
    pub(crate) async fn run(&self, script: &str, args: Value) -> Value {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Waits until `script` answers something truthy; answers it. Fails the test after 10 s,
    /// saying `what` it waited for.
    pub(crate) async fn wait_for(&self, what: &str, script: &str, args: Value) -> Value {
        let started = Instant::now();
        loop {
            let value = self.run(script, args.clone()).await;
            let truthy = !matches!(&value, Value::Null | Value::Bool(false))
                && value != json!("")
                && value != json!(0);
            if truthy {
                return value;
            }
            assert!(started.elapsed() < WAIT, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The first element matching `css`, waiting for it to be there and shown.
    async fn element(&self, css: &str) -> String {
        self.wait_for(
            &format!("`{css}` to be shown"),
            "const e = document.querySelector(arguments[0]); \
             return !!e && e.getClientRects().length > 0 && !e.disabled;",
            json!([css]),
        )
        .await;
        let found = self
            .command(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element `{css}`: {found}"))
            .to_owned()
    }

    /// Clicks the element matching `css`, as a user would.
    pub(crate) async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Types `text` into the element matching `css`, as a user would.
    pub(crate) async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{id}/clear"),
            Some(json!({})),
        )
        .await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// The text of the element matching `css`, once it is shown.
    pub(crate) async fn text(&self, css: &str) -> String {
        self.element(css).await;
        self.run(
            "return document.querySelector(arguments[0]).textContent;",
            json!([css]),
        )
        .await
        .as_str()
        .unwrap()
        .to_owned()
    }

    /// Saves a PNG of the page as `target/console-screenshots/{name}.png`.
    pub(crate) async fn screenshot(&self, name: &str) {
        let data = self
            .command(reqwest::Method::GET, "/screenshot", None)
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap())
            .unwrap();
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

impl Drop for Browser {
    /// Ends the session (chromedriver closes Chromium), then chromedriver itself. Blocking and
    /// best effort: it also runs when a test fails.
    fn drop(&mut self) {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.driver_port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let request = format!(
                "DELETE {} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session
            );
            if stream.write_all(request.as_bytes()).is_ok() {
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
