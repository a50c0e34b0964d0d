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

/// Whether `fd` is a socket that listens (`SO_ACCEPTCONN`).
pub(crate) fn accepts_connections(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value and len are valid out pointers of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r == 0 {
        Ok(value != 0)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets `FD_CLOEXEC` on `fd`.
pub(crate) fn set_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: F_GETFD/F_SETFD on a live descriptor.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
    // SAFETY: as above.
    if flags < 0
        || unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The running program's GNU build ID (its `.note.gnu.build-id`: a hash
/// of the linked contents), read from its own program headers in memory,
/// without a system call. `None` when the linker wrote none.
pub(crate) fn build_id() -> Option<&'static [u8]> {
    /// Called for the program, then each shared object; stops at once, so
    /// only the program's headers are read.
    unsafe extern "C" fn first(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        found: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: dl_iterate_phdr passes a valid info for the duration of
        // the call, and `found` is the Option build_id passed in.
        let (info, found) = unsafe { (&*info, &mut *found.cast::<Option<&'static [u8]>>()) };
        if info.dlpi_phdr.is_null() {
            return 1;
        }
        // SAFETY: the loader's program headers, dlpi_phnum of them.
        let headers = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum.into()) };
        for header in headers.iter().filter(|h| h.p_type == libc::PT_NOTE) {
            let start = (info.dlpi_addr as usize).wrapping_add(header.p_vaddr as usize);
            // SAFETY: a PT_NOTE segment is mapped, readable, for as long as
            // the program runs (it is inside a loaded segment).
            let notes =
                unsafe { std::slice::from_raw_parts(start as *const u8, header.p_memsz as usize) };
            let align = if header.p_align == 8 { 8 } else { 4 };
            if let Some(id) = gnu_build_id(notes, align) {
                *found = Some(id);
                break;
            }
        }
        1
    }
    let mut found: Option<&'static [u8]> = None;
    // SAFETY: `first` matches the callback type and only reads what the
    // loader hands it; `found` outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(first), (&mut found as *mut Option<&[u8]>).cast()) };
    found
}

/// The descriptor of the `NT_GNU_BUILD_ID` note among `notes` (each: name
/// size, descriptor size, type, then name and descriptor, each padded to
/// `align`).
fn gnu_build_id(mut notes: &[u8], align: usize) -> Option<&[u8]> {
    const NT_GNU_BUILD_ID: u32 = 3;
    let word = |b: &[u8], at: usize| u32::from_ne_bytes(b[at..at + 4].try_into().unwrap());
    while notes.len() >= 12 {
        let (name_size, desc_size, kind) = (
            word(notes, 0) as usize,
            word(notes, 4) as usize,
            word(notes, 8),
        );
        let desc_start = 12usize.checked_add(name_size.checked_next_multiple_of(align)?)?;
        let desc_end = desc_start.checked_add(desc_size)?;
        if desc_end > notes.len() {
            return None;
        }
        if kind == NT_GNU_BUILD_ID && notes[12..12 + name_size] == *b"GNU\0" && desc_size > 0 {
            return Some(&notes[desc_start..desc_end]);
        }
        let next = desc_start.checked_add(desc_size.checked_next_multiple_of(align)?)?;
        notes = notes.get(next..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_id_is_the_one_readelf_reads() {
        let id = build_id().expect("a build ID (Debian's gcc links with --build-id)");
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new("readelf")
            .arg("-n")
            .arg(&exe)
            .output()
            .expect("readelf (binutils)");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("Build ID: {hex}")),
            "{hex} not in:\n{text}"
        );
    }

    #[test]
    fn notes_are_walked_with_their_padding() {
        let mut notes = Vec::new();
        // An ABI tag (name "GNU\0", 16 bytes), then a build ID of 5 bytes.
        for (kind, desc) in [(1u32, &[0u8; 16][..]), (3, &[1, 2, 3, 4, 5][..])] {
            notes.extend_from_slice(&4u32.to_ne_bytes());
            notes.extend_from_slice(&(desc.len() as u32).to_ne_bytes());
            notes.extend_from_slice(&kind.to_ne_bytes());
            notes.extend_from_slice(b"GNU\0");
            notes.extend_from_slice(desc);
            notes.resize(notes.len().next_multiple_of(4), 0);
        }
        assert_eq!(gnu_build_id(&notes, 4), Some(&[1, 2, 3, 4, 5][..]));
        assert_eq!(gnu_build_id(&notes[..notes.len() - 4], 4), None);
        assert_eq!(gnu_build_id(&[0xff; 16], 4), None);
    }
}
