//! Hostile traffic against a real `ao serve` process.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::path_str;

/// `ao serve --simulated` on a loopback port in a fresh directory; killed when dropped.
struct Gateway {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Gateway {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("ao.toml");
        let mut child = Command::new(env!("CARGO_BIN_EXE_ao"))
            .args(["serve", "--simulated", "--listen", "127.0.0.1:0"])
            .args(["--config", path_str(&config)])
            .env_remove("AO_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().unwrap().unwrap();
            if let Some(rest) = line.strip_prefix("agent-orchestrator gateway listening on http://")
            {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Gateway {
            child,
            addr,
            _dir: dir,
        }
    }

    /// A field of `/proc/<pid>/status`, in kB.
    fn status_kb(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An unauthenticated client starts a 1 GB chunked upload to an admin route. The token is
/// checked before any of the body is read: 401, and the gateway's peak memory barely moves.
#[test]
fn an_unauthenticated_gigabyte_to_admin_is_refused_without_being_read() {
    let gateway = Gateway::start();
    let peak_before = gateway.status_kb("VmHWM:");
    let mut stream = TcpStream::connect(&gateway.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST /admin/keys HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .unwrap();
    let chunk = vec![b'x'; 1 << 20];
    let mut sent: u64 = 0;
    let reader = {
        let mut reader = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut head = [0u8; 12];
            reader.read_exact(&mut head).ok().map(|()| head)
        })
    };
    // Up to 1 GB, until the gateway closes the connection on us.
    while sent < 1 << 30 {
        if write!(stream, "{:x}\r\n", chunk.len())
            .and_then(|()| stream.write_all(&chunk))
            .and_then(|()| stream.write_all(b"\r\n"))
            .is_err()
        {
            break;
        }
        sent += chunk.len() as u64;
    }
    let head = reader.join().unwrap().expect("the gateway answered");
    assert_eq!(&head, b"HTTP/1.1 401", "{}", String::from_utf8_lossy(&head));
    let grown_kb = gateway.status_kb("VmHWM:").saturating_sub(peak_before);
    assert!(
        grown_kb < 16 * 1024,
        "peak memory grew by {grown_kb} kB while {sent} bytes were offered"
    );
}
