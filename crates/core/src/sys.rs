//! The few system calls std does not wrap, each once, with its `unsafe`
//! documented here rather than at every use.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `fstat(2)` of an open descriptor: checks made on what was opened leave
/// no window between the check and the use.
pub(crate) fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    // SAFETY: an all-zero stat is a valid value to be overwritten by fstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is a live descriptor; st is a valid out pointer.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } == 0 {
        Ok(st)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The effective user id.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}
