//! `--listen`: the same per-connection code behind an accept loop, for
//! trying the tool without a super-server (and for systemd `Accept=no`).

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use inetd_health::{serve_service, Options, Service};

use crate::log::Log;

/// Serves until accepting fails for good; returns only with that error.
pub fn run(
    addr: SocketAddr,
    max_connections: u32,
    service: &Service,
    options: &Options,
    log: &Log,
) -> io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    log.info(&format!("listening on {}", listener.local_addr()?));
    let slots = Slots::new(max_connections as usize);
    std::thread::scope(|scope| loop {
        // Waiting for a slot before accepting leaves the excess in the
        // kernel's backlog, where it costs no thread and no memory here.
        slots.acquire();
        let (stream, peer) = match listener.accept() {
            Ok(conn) => conn,
            Err(e) => {
                slots.release();
                if transient(&e) {
                    log.error(&format!("accept: {e}"));
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                return Err(e);
            }
        };
        let slots = &slots;
        scope.spawn(move || {
            let started = Instant::now();
            let served = serve_service(
                &mut &stream,
                &mut &stream,
                options,
                service,
                Some(peer.ip()),
            );
            log.connection(Some(&peer.ip().to_string()), &served, started.elapsed());
            slots.release();
        });
    })
}

/// Errors after which accepting again makes sense (out of descriptors, a
/// connection aborted before it was taken).
fn transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::EMFILE
                | libc::ENFILE
                | libc::ENOBUFS
                | libc::ENOMEM
                | libc::ECONNABORTED
                | libc::EINTR
                | libc::EPROTO
        )
    )
}

struct Slots {
    used: Mutex<usize>,
    freed: Condvar,
    max: usize,
}

impl Slots {
    fn new(max: usize) -> Self {
        Slots {
            used: Mutex::new(0),
            freed: Condvar::new(),
            max,
        }
    }

    fn acquire(&self) {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        while *used >= self.max {
            used = self.freed.wait(used).unwrap_or_else(|p| p.into_inner());
        }
        *used += 1;
    }

    fn release(&self) {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        *used -= 1;
        self.freed.notify_one();
    }
}
