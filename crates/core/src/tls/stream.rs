//! A connection served over TLS: the same [`Input`] and [`Output`] as a
//! plaintext one, so everything that serves a request serves it unchanged.

use std::cell::RefCell;
use std::io::{self, Read, Write};

use rustls::ServerConnection;

use crate::conn::{Input, Output};
use crate::Deadline;

/// TLS over a connection's two halves (the same socket on fd 0 and 1 under
/// a super-server, or one socket twice). The handshake advances as the
/// request is read; reads respect the caller's deadline (the last one given
/// to [`Input::wait_readable`]).
pub struct TlsStream<'a, I: ?Sized, O: ?Sized> {
    input: &'a mut I,
    output: &'a mut O,
    conn: &'a mut ServerConnection,
    deadline: Option<Deadline>,
    eof: bool,
}

impl<'a, I, O> TlsStream<'a, I, O>
where
    I: Input + ?Sized,
    O: Output + ?Sized,
{
    /// A stream over `input` and `output`, with `conn` its TLS state.
    pub fn new(input: &'a mut I, output: &'a mut O, conn: &'a mut ServerConnection) -> Self {
        TlsStream {
            input,
            output,
            conn,
            deadline: None,
            eof: false,
        }
    }

    /// Takes `bytes` already read from the connection (the first ones,
    /// read to tell TLS from plaintext) as if read now.
    ///
    /// # Errors
    /// The handshake failing on them (an alert is sent first).
    pub fn received(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        self.output.send_at_once();
        while !bytes.is_empty() {
            self.conn.read_tls(&mut bytes)?;
            self.process()?;
        }
        Ok(())
    }

    /// Processes the records read, and sends what they call for. An alert
    /// for the client (a bad certificate, a protocol error) is sent before
    /// the error is reported, whatever happens next.
    fn process(&mut self) -> io::Result<()> {
        let processed = self.conn.process_new_packets();
        let sent = self.send_pending();
        if let Err(e) = processed {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("TLS: {e}"),
            ));
        }
        sent
    }

    /// Sends what TLS has to send (handshake flights, alerts). On a
    /// non-blocking socket what does not fit now stays queued, and goes at
    /// the next flush (the event loop waits for room for it).
    fn send_pending(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut Writer(&mut *self.output)) {
                // An output that takes nothing would be asked for ever.
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads one batch of records from the socket and processes them; at
    /// the end of the stream, notes it (`eof`). A socket with nothing to
    /// read says so (`WouldBlock`).
    fn receive(&mut self) -> io::Result<()> {
        if self.conn.read_tls(&mut &mut *self.input)? == 0 {
            self.eof = true;
            return Ok(());
        }
        self.process()
    }
}

impl<I, O> Read for TlsStream<'_, I, O>
where
    I: Input + ?Sized,
    O: Output + ?Sized,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                // A client gone without close_notify: its request is
                // complete or it is not, as over plaintext.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.eof {
                return Ok(0);
            }
            self.receive()?;
            // A record may be complete now; if only part of one came,
            // wait for the rest within the deadline.
            if !self.eof && self.conn.wants_read() && !self.has_plaintext() {
                let deadline = self
                    .deadline
                    .unwrap_or_else(|| Deadline::after(std::time::Duration::ZERO));
                if !self.input.wait_readable(deadline)? {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
            }
        }
    }
}

impl<I, O> TlsStream<'_, I, O>
where
    I: Input + ?Sized,
    O: Output + ?Sized,
{
    fn has_plaintext(&mut self) -> bool {
        self.conn
            .process_new_packets()
            .is_ok_and(|s| s.plaintext_bytes_to_read() > 0)
    }
}

impl<I, O> Input for TlsStream<'_, I, O>
where
    I: Input + ?Sized,
    O: Output + ?Sized,
{
    fn wait_readable(&mut self, deadline: Deadline) -> io::Result<bool> {
        self.deadline = Some(deadline);
        if self.eof || self.has_plaintext() {
            return Ok(true);
        }
        self.input.wait_readable(deadline)
    }
}

impl<I, O> Write for TlsStream<'_, I, O>
where
    I: Input + ?Sized,
    O: Output + ?Sized,
{
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.conn.writer().write(buf)?;
        self.send_pending()?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_pending()?;
        self.output.flush()
    }
}

impl<I, O> Output for TlsStream<'_, I, O>
where
    I: Input + ?Sized,
    O: Output + ?Sized,
{
    fn close_write(&mut self) -> io::Result<()> {
        // close_notify first: a client that checks for truncation (curl,
        // OpenSSL) knows the response is whole.
        self.conn.send_close_notify();
        self.send_pending()?;
        self.output.close_write()
    }
}

struct Writer<'a, O: ?Sized>(&'a mut O);

impl<O: Write + ?Sized> Write for Writer<'_, O> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// One stream as the two halves a server writes to and reads from.
pub struct Half<'s, 'a, I: ?Sized, O: ?Sized>(&'s RefCell<TlsStream<'a, I, O>>);

/// `stream` as an [`Input`] and an [`Output`].
pub fn halves<'s, 'a, I: ?Sized, O: ?Sized>(
    stream: &'s RefCell<TlsStream<'a, I, O>>,
) -> (Half<'s, 'a, I, O>, Half<'s, 'a, I, O>) {
    (Half(stream), Half(stream))
}

impl<I, O> Read for Half<'_, '_, I, O>
where
    I: Input + ?Sized,
    O: Output + ?Sized,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.borrow_mut().read(buf)
    }
}

impl<I, O> Input for Half<'_, '_, I, O>
where
    I: Input + ?Sized,
    O: Output + ?Sized,
{
    fn wait_readable(&mut self, deadline: Deadline) -> io::Result<bool> {
        self.0.borrow_mut().wait_readable(deadline)
    }
}

impl<I, O> Write for Half<'_, '_, I, O>
where
    I: Input + ?Sized,
    O: Output + ?Sized,
{
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.borrow_mut().flush()
    }
}

impl<I, O> Output for Half<'_, '_, I, O>
where
    I: Input + ?Sized,
    O: Output + ?Sized,
{
    fn close_write(&mut self) -> io::Result<()> {
        self.0.borrow_mut().close_write()
    }
}
