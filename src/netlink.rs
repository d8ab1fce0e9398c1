//! Whether a network namespace has any ifb device, asked of the kernel in-process: one
//! rtnetlink dump of the links of kind `ifb` (what `ip link show type ifb` sends), of which
//! only the message types are looked at.
//!
//! Every apply has to know the namespace's ifbs, to find left-over ones of its own
//! (docs/ingress.md); most namespaces have none. Under emulation (the kernel lab) starting
//! `ip` costs tens of ms, so [`crate::link::Listing`] starts it only when this says there is
//! an ifb. The answer is "none" only when the kernel's dump holds no link at all: a kernel
//! that cannot filter by kind (an old one, or the ifb module not loaded) sends every link,
//! and `lo` exists in every namespace, so it never looks empty. Any error is "don't know",
//! and the caller lists with `ip` as before.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

// Linux UAPI (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h).
const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
/// sizeof(struct ifinfomsg).
const IFINFOMSG_LEN: usize = 16;

/// Whether the namespace (`--netns NS`, else qosctl's own) has an ifb device.
pub fn has_ifb(netns: Option<&str>) -> io::Result<bool> {
    let path = netns.map(|_| crate::lock::netns_path(netns));
    // setns(2) moves only the calling thread: a thread of its own enters the namespace,
    // opens the socket there (a socket stays in the namespace it was made in) and ends.
    std::thread::spawn(move || {
        if let Some(p) = path {
            let ns = std::fs::File::open(p)?;
            // SAFETY: setns(2) on a file descriptor we own, for this thread only.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        dump_has_link()
    })
    .join()
    .map_err(|_| io::Error::other("the netlink thread panicked"))?
}

/// `RTM_GETLINK` dump filtered to kind `ifb`: true at its first link.
fn dump_has_link() -> io::Result<bool> {
    // SAFETY: socket(2); the descriptor is owned (and closed) by `sock`.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let timeout = libc::timeval {
        tv_sec: 5,
        tv_usec: 0,
    };
    // SAFETY: setsockopt(2) with a timeval we own and its size.
    let set = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if set != 0 {
        return Err(io::Error::last_os_error());
    }
    let req = request();
    // SAFETY: send(2) of a buffer we own; the kernel binds the socket on first send.
    let sent = unsafe { libc::send(sock.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
    if sent != req.len() as isize {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: recv(2) into a buffer we own, at most its length.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::Error::other("netlink socket closed mid-dump"));
        }
        if let Some(answer) = read_messages(&buf[..n as usize])? {
            return Ok(answer);
        }
    }
}

/// nlmsghdr + ifinfomsg (all zero: any family, any link) + IFLA_LINKINFO { IFLA_INFO_KIND
/// "ifb" }, laid out as iproute2 lays it out (no NLA_F_NESTED).
fn request() -> Vec<u8> {
    let kind = b"ifb\0";
    let inner = 4 + kind.len();
    let nested = 4 + inner;
    let len = NLMSG_HDRLEN + IFINFOMSG_LEN + nested;
    let mut v = Vec::with_capacity(len);
    v.extend((len as u32).to_ne_bytes());
    v.extend(RTM_GETLINK.to_ne_bytes());
    v.extend((NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    v.extend(1u32.to_ne_bytes()); // sequence number
    v.extend(0u32.to_ne_bytes()); // port id: the kernel fills it in
    v.extend([0u8; IFINFOMSG_LEN]);
    v.extend((nested as u16).to_ne_bytes());
    v.extend(IFLA_LINKINFO.to_ne_bytes());
    v.extend((inner as u16).to_ne_bytes());
    v.extend(IFLA_INFO_KIND.to_ne_bytes());
    v.extend(kind);
    v
}

/// The messages of one datagram: `Some(true)` at a link, `Some(false)` at the end of the
/// dump, `None` when the dump goes on in the next datagram.
fn read_messages(mut buf: &[u8]) -> io::Result<Option<bool>> {
    while buf.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes(buf[0..4].try_into().expect("4 bytes")) as usize;
        let kind = u16::from_ne_bytes(buf[4..6].try_into().expect("2 bytes"));
        if len < NLMSG_HDRLEN || len > buf.len() {
            return Err(io::Error::other("malformed netlink message"));
        }
        match kind {
            RTM_NEWLINK => return Ok(Some(true)),
            NLMSG_DONE => return Ok(Some(false)),
            NLMSG_ERROR => {
                let code = buf
                    .get(NLMSG_HDRLEN..NLMSG_HDRLEN + 4)
                    .map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
                    .unwrap_or(-libc::EIO);
                return Err(io::Error::from_raw_os_error(-code));
            }
            _ => {}
        }
        let step = (len + 3) & !3;
        buf = buf.get(step..).unwrap_or_default();
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        v.extend(kind.to_ne_bytes());
        v.extend([0u8; 10]);
        v.extend(body);
        v
    }

    #[test]
    fn the_request_is_the_one_ip_sends_and_answers_are_read_by_type() {
        let r = request();
        assert_eq!(r.len(), 44);
        assert_eq!(u32::from_ne_bytes(r[0..4].try_into().unwrap()), 44);
        assert_eq!(&r[40..44], b"ifb\0");
        // A link, then more: a link is enough.
        let mut two = msg(RTM_NEWLINK, &[0; 20]);
        two.extend(msg(NLMSG_DONE, &[0; 4]));
        assert_eq!(read_messages(&two).unwrap(), Some(true));
        assert_eq!(
            read_messages(&msg(NLMSG_DONE, &[0; 4])).unwrap(),
            Some(false)
        );
        // Another type (none is expected): the dump goes on.
        assert_eq!(read_messages(&msg(0x10 + 4, &[])).unwrap(), None);
        let err = read_messages(&msg(NLMSG_ERROR, &(-libc::EPERM).to_ne_bytes())).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
        let mut short = msg(RTM_NEWLINK, &[0; 20]);
        short.truncate(20);
        assert!(read_messages(&short).is_err());
    }
}
