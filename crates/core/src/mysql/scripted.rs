//! Scripted servers on a unix socket for the unit tests, which check the
//! protocol against them: exact bytes both ways, every failure path. (The
//! real server is exercised by tests/mariadb.rs.)

use std::io::Read;
use std::os::unix::net::{UnixListener, UnixStream};
use std::thread;
use std::time::Duration;

use super::{Conn, Endpoint, MysqlError};
use crate::Deadline;

pub(super) const VERSION: &str = "5.5.5-10.11.6-MariaDB-0+deb12u1";
pub(super) const SCRAMBLE: &[u8; 20] = b"abcdefgh12345678ijkl";

pub(super) fn greeting_bytes(plugin: &str) -> Vec<u8> {
    let mut p = vec![10];
    p.extend_from_slice(VERSION.as_bytes());
    p.push(0);
    p.extend_from_slice(&42u32.to_le_bytes());
    p.extend_from_slice(&SCRAMBLE[..8]);
    p.push(0);
    let server_caps: u32 = 0xF7FE | (0x81BF << 16);
    p.extend_from_slice(&(server_caps as u16).to_le_bytes());
    p.push(45);
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&((server_caps >> 16) as u16).to_le_bytes());
    p.push(21);
    p.extend_from_slice(&[0; 10]);
    p.extend_from_slice(&SCRAMBLE[8..]);
    p.push(0);
    p.extend_from_slice(plugin.as_bytes());
    p.push(0);
    p
}

pub(super) fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_le_bytes()[..3].to_vec();
    out.push(seq);
    out.extend_from_slice(payload);
    out
}

pub(super) fn err_packet(code: u16, state: &str, msg: &str) -> Vec<u8> {
    let mut p = vec![0xFF];
    p.extend_from_slice(&code.to_le_bytes());
    p.push(b'#');
    p.extend_from_slice(state.as_bytes());
    p.extend_from_slice(msg.as_bytes());
    p
}

pub(super) fn read_packet_from(s: &mut UnixStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 4];
    s.read_exact(&mut head).unwrap();
    let len = usize::from(head[0]) | usize::from(head[1]) << 8 | usize::from(head[2]) << 16;
    let mut payload = vec![0; len];
    s.read_exact(&mut payload).unwrap();
    (head[3], payload)
}

/// Runs `script` as the server of one connection; returns the socket path
/// and the server thread.
pub(super) fn server(
    script: impl FnOnce(UnixStream) + Send + 'static,
) -> (tempdir::Dir, thread::JoinHandle<()>) {
    let dir = tempdir::Dir::new();
    let listener = UnixListener::bind(dir.sock()).unwrap();
    let handle = thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        script(s);
    });
    (dir, handle)
}

pub(super) mod tempdir {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub struct Dir(PathBuf);
    impl Dir {
        pub fn new() -> Dir {
            static N: AtomicUsize = AtomicUsize::new(0);
            let p = std::env::temp_dir().join(format!(
                "ih-mysql-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
        pub fn sock(&self) -> PathBuf {
            self.0.join("s")
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub(super) fn connect(dir: &tempdir::Dir, budget_ms: u64) -> Result<Conn, MysqlError> {
    Conn::connect(
        &Endpoint::Unix(dir.sock()),
        &[],
        Deadline::after(Duration::from_millis(budget_ms)),
    )
}
