//! Whether a network namespace has an ifb that qosctl made, asked of the kernel in-process:
//! one rtnetlink dump of the links of kind `ifb` (what `ip link show type ifb` sends), read
//! only for each link's alias.
//!
//! Every apply has to know the namespace's ifbs of its own, to find left-over ones
//! (docs/ingress.md); most namespaces have none (the ifb module's own `ifb0`, `ifb1` are
//! not qosctl's). Under emulation (the kernel lab) starting `ip` costs tens of ms, so
//! [`crate::link::Listing`] starts it only when this says there is one, or cannot say.
//! A kernel that cannot filter the dump by kind (an old one, or the ifb module not loaded)
//! sends every link: then any link with qosctl's alias counts, which can only make apply
//! list when it need not. Any error is "don't know", and the caller lists with `ip`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::link::ALIAS_PREFIX;

// Linux UAPI (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h).
const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const IFLA_IFALIAS: u16 = 20;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
/// sizeof(struct ifinfomsg).
const IFINFOMSG_LEN: usize = 16;

/// Whether the namespace (`--netns NS`, else qosctl's own) has an ifb whose alias marks
/// it as qosctl's ([`crate::link::ALIAS_PREFIX`]).
pub fn has_own_ifb(netns: Option<&str>) -> io::Result<bool> {
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
        dump_has_own_ifb()
    })
    .join()
    .map_err(|_| io::Error::other("the netlink thread panicked"))?
}

/// `RTM_GETLINK` dump filtered to kind `ifb`, read to its end.
fn dump_has_own_ifb() -> io::Result<bool> {
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
    let mut found = false;
    loop {
        // SAFETY: recv(2) into a buffer we own, at most its length; MSG_TRUNC makes it
        // return the datagram's real length, so a cut one is noticed.
        let n = unsafe {
            libc::recv(
                sock.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 || n as usize > buf.len() {
            return Err(io::Error::other("netlink dump cut short"));
        }
        if read_messages(&buf[..n as usize], &mut found)? {
            return Ok(found);
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

/// The messages of one datagram; `found` is set at a link with qosctl's alias. True at
/// the end of the dump.
fn read_messages(mut buf: &[u8], found: &mut bool) -> io::Result<bool> {
    while buf.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes(buf[0..4].try_into().expect("4 bytes")) as usize;
        let kind = u16::from_ne_bytes(buf[4..6].try_into().expect("2 bytes"));
        if len < NLMSG_HDRLEN || len > buf.len() {
            return Err(io::Error::other("malformed netlink message"));
        }
        match kind {
            RTM_NEWLINK => {
                let attrs = buf
                    .get(NLMSG_HDRLEN + IFINFOMSG_LEN..len)
                    .unwrap_or_default();
                *found |= alias(attrs)?.is_some_and(|a| a.starts_with(ALIAS_PREFIX.as_bytes()));
            }
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let code = buf
                    .get(NLMSG_HDRLEN..NLMSG_HDRLEN + 4)
                    .map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
                    .unwrap_or(-libc::EIO);
                return Err(io::Error::from_raw_os_error(-code));
            }
            _ => {}
        }
        buf = buf.get(align(len)..).unwrap_or_default();
    }
    Ok(false)
}

/// The IFLA_IFALIAS of a link's attributes (without its NUL), if it has one.
fn alias(mut attrs: &[u8]) -> io::Result<Option<&[u8]>> {
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]);
        if len < 4 || len > attrs.len() {
            return Err(io::Error::other("malformed netlink attribute"));
        }
        if kind == IFLA_IFALIAS {
            let v = &attrs[4..len];
            return Ok(Some(v.strip_suffix(b"\0").unwrap_or(v)));
        }
        attrs = attrs.get(align(len)..).unwrap_or_default();
    }
    Ok(None)
}

fn align(len: usize) -> usize {
    (len + 3) & !3
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

    /// A link message: ifinfomsg, IFLA_IFNAME, and IFLA_IFALIAS when given.
    fn link(name: &str, alias: Option<&str>) -> Vec<u8> {
        let mut body = vec![0u8; IFINFOMSG_LEN];
        let mut attr = |kind: u16, v: &str| {
            let data = format!("{v}\0");
            body.extend(((4 + data.len()) as u16).to_ne_bytes());
            body.extend(kind.to_ne_bytes());
            body.extend(data.as_bytes());
            body.resize(align(body.len()), 0);
        };
        attr(3, name);
        if let Some(a) = alias {
            attr(IFLA_IFALIAS, a);
        }
        msg(RTM_NEWLINK, &body)
    }

    #[test]
    fn the_request_is_the_one_ip_sends_and_only_our_alias_counts() {
        let r = request();
        assert_eq!(r.len(), 44);
        assert_eq!(u32::from_ne_bytes(r[0..4].try_into().unwrap()), 44);
        assert_eq!(&r[40..44], b"ifb\0");
        let done = msg(NLMSG_DONE, &[0; 4]);
        let read = |parts: &[Vec<u8>]| {
            let mut found = false;
            let end = read_messages(&parts.concat(), &mut found).unwrap();
            (end, found)
        };
        // The lab's own ifb0 and a hand-made one with another alias are not qosctl's.
        let theirs = [link("ifb0", None), link("ifb9", Some("ops team"))];
        assert_eq!(
            read(&[theirs[0].clone(), theirs[1].clone(), done.clone()]),
            (true, false)
        );
        let ours = link("ifb-a0", Some("qosctl:ifb-for:a0"));
        assert_eq!(read(&[theirs[0].clone(), ours.clone(), done]), (true, true));
        // Not the end yet: the dump goes on in the next datagram.
        assert_eq!(read(&[ours]), (false, true));
        let mut found = false;
        let err = read_messages(&msg(NLMSG_ERROR, &(-libc::EPERM).to_ne_bytes()), &mut found)
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
        let mut short = link("ifb0", None);
        short.truncate(20);
        assert!(read_messages(&short, &mut found).is_err());
    }
}
