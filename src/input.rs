//! Reading a file named on the command line without trusting what it is: a FIFO would
//! block forever, `/dev/zero` would fill memory. Only regular files are read, and at most
//! [`MAX_POLICY_BYTES`].

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// A policy of 10,000 classes is ~1 MB; 16 MiB leaves room and still bounds the memory.
pub const MAX_POLICY_BYTES: u64 = 16 << 20;

/// The bytes of the regular file `path`, at most `max` of them (more is an error).
pub fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>> {
    // O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever, before we
    // could even look at what it is. It has no effect on reading a regular file.
    let f = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let md = f
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?;
    let ft = md.file_type();
    if !ft.is_file() {
        let what = if ft.is_dir() {
            "a directory"
        } else if ft.is_fifo() {
            "a FIFO (named pipe)"
        } else if ft.is_char_device() {
            "a character device"
        } else if ft.is_block_device() {
            "a block device"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        bail!(
            "{} is {what}: a policy must be a regular file (to use a generated policy, write it to a file first)",
            path.display()
        );
    }
    if md.len() > max {
        bail!(
            "{} is {} bytes, more than the {max} a policy may have",
            path.display(),
            md.len()
        );
    }
    let mut v = Vec::with_capacity(md.len() as usize);
    // take(max + 1): a file that grows while we read is still bounded.
    f.take(max + 1)
        .read_to_end(&mut v)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if v.len() as u64 > max {
        bail!(
            "{} is more than the {max} bytes a policy may have",
            path.display()
        );
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_bound_are_read() {
        let e = read_bounded(Path::new("/dev/zero"), 1024).unwrap_err();
        assert!(format!("{e:#}").contains("a character device"), "{e:#}");
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo(3) on a path we own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_bounded(&fifo, 1024).unwrap_err();
        assert!(format!("{e:#}").contains("FIFO"), "{e:#}");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'#'; 2000]).unwrap();
        assert!(format!("{:#}", read_bounded(&big, 1024).unwrap_err()).contains("more than"));
        assert_eq!(read_bounded(&big, 4096).unwrap().len(), 2000);
    }
}
