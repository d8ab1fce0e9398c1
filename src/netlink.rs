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
//! list when it need not. Any error is "don't know", and the caller lists with `ip`: that
//! includes a reply the rust-netlink crates cannot decode (a link attribute of a newer
//! kernel that they get wrong, an alias that is not UTF-8).
//!
//! The messages are built and decoded by netlink-packet-route (the rust-netlink crates
//! behind rtnetlink), the socket is netlink-sys's, and setns(2) and SO_RCVTIMEO are nix's:
//! no hand-laid header, attribute or `unsafe` of our own.

use std::io;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket};
use nix::sched::CloneFlags;
use nix::sys::socket::sockopt::ReceiveTimeout;
use nix::sys::time::{TimeVal, TimeValLike};

use crate::link::ALIAS_PREFIX;

/// Whether the namespace (`--netns NS`, else qosctl's own) has an ifb whose alias marks
/// it as qosctl's ([`crate::link::ALIAS_PREFIX`]).
pub fn has_own_ifb(netns: Option<&str>) -> io::Result<bool> {
    let path = netns.map(|_| crate::lock::netns_path(netns));
    // setns(2) moves only the calling thread: a thread of its own enters the namespace,
    // opens the socket there (a socket stays in the namespace it was made in) and ends.
    std::thread::spawn(move || {
        if let Some(p) = path {
            let ns = std::fs::File::open(p)?;
            nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET)?;
        }
        dump_has_own_ifb()
    })
    .join()
    .map_err(|_| io::Error::other("the netlink thread panicked"))?
}

/// `RTM_GETLINK` dump filtered to kind `ifb`, read to its end.
fn dump_has_own_ifb() -> io::Result<bool> {
    let sock = Socket::new(NETLINK_ROUTE)?;
    // A kernel that never answers must not hang apply: after 5 s this is "don't know".
    nix::sys::socket::setsockopt(&sock, ReceiveTimeout, &TimeVal::seconds(5))?;
    let req = request();
    // Unbound and unconnected: the kernel binds the socket on first send, to itself.
    if sock.send(&req, 0)? != req.len() {
        return Err(io::Error::other("netlink request sent short"));
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut found = false;
    loop {
        // MSG_TRUNC makes recv return the datagram's real length, so a cut one is noticed.
        let n = match sock.recv(&mut &mut buf[..], libc::MSG_TRUNC) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            n => n?,
        };
        if n == 0 || n > buf.len() {
            return Err(io::Error::other("netlink dump cut short"));
        }
        if read_messages(&buf[..n], &mut found)? {
            return Ok(found);
        }
    }
}

/// nlmsghdr + ifinfomsg (all zero: any family, any link) + IFLA_LINKINFO { IFLA_INFO_KIND
/// "ifb" }, the kind filter of `ip link show type ifb`.
fn request() -> Vec<u8> {
    let mut link = LinkMessage::default();
    link.attributes
        .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Ifb)]));
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = 1;
    let mut msg = NetlinkMessage::new(header, RouteNetlinkMessage::GetLink(link).into());
    msg.finalize();
    let mut buf = vec![0; msg.buffer_len()];
    msg.serialize(&mut buf);
    buf
}

/// The messages of one datagram; `found` is set at a link with qosctl's alias. True at
/// the end of the dump.
fn read_messages(mut buf: &[u8], found: &mut bool) -> io::Result<bool> {
    while !buf.is_empty() {
        // Checks the length field against the datagram, so a cut message is an error.
        let msg =
            NetlinkMessage::<RouteNetlinkMessage>::deserialize(buf).map_err(io::Error::other)?;
        match &msg.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                *found |= link
                    .attributes
                    .iter()
                    .any(|a| matches!(a, LinkAttribute::IfAlias(a) if a.starts_with(ALIAS_PREFIX)));
            }
            NetlinkPayload::Done(_) => return Ok(true),
            NetlinkPayload::Error(e) => return Err(e.to_io()),
            _ => {}
        }
        // Messages in a datagram start at 4-byte boundaries (NLMSG_ALIGN).
        let next = (msg.header.length as usize).next_multiple_of(4);
        buf = buf.get(next..).unwrap_or_default();
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{DoneMessage, ErrorMessage};
    use std::num::NonZeroI32;

    /// One message as the kernel lays it out, made by the same crates.
    fn msg(payload: NetlinkPayload<RouteNetlinkMessage>) -> Vec<u8> {
        let mut m = NetlinkMessage::new(NetlinkHeader::default(), payload);
        m.finalize();
        let mut v = vec![0; m.buffer_len()];
        m.serialize(&mut v);
        v
    }

    /// A link message: IFLA_IFNAME, and IFLA_IFALIAS when given.
    fn link(name: &str, alias: Option<&str>) -> Vec<u8> {
        let mut l = LinkMessage::default();
        l.attributes.push(LinkAttribute::IfName(name.into()));
        if let Some(a) = alias {
            l.attributes.push(LinkAttribute::IfAlias(a.into()));
        }
        msg(RouteNetlinkMessage::NewLink(l).into())
    }

    #[test]
    fn the_request_is_the_one_ip_sends_and_only_our_alias_counts() {
        // The kind filter laid out as iproute2 6.1 lays it (strace of `ip link show type
        // ifb`): IFLA_LINKINFO without NLA_F_NESTED. ip also sets family AF_PACKET and
        // IFLA_EXT_MASK, which a dump filtered by kind does not need, and leaves the kind's
        // NUL to the padding (length 7, not 8): the kernel compares the string either way.
        // That the kernel filters by it is tests/apply_cost.rs's (a veth with qosctl's
        // alias does not count).
        let r = request();
        let mut ip = vec![44, 0, 0, 0, 18, 0, 1, 3, 1, 0, 0, 0, 0, 0, 0, 0];
        ip.extend([0; 16]);
        ip.extend([12, 0, 18, 0, 8, 0, 1, 0]);
        ip.extend(b"ifb\0");
        assert_eq!(r, ip);
        let done = msg(NetlinkPayload::Done(DoneMessage::default()));
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
        let mut nack = ErrorMessage::default();
        nack.code = NonZeroI32::new(-libc::EPERM);
        let err = read_messages(&msg(NetlinkPayload::Error(nack)), &mut found).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
        let mut short = link("ifb0", None);
        short.truncate(20);
        assert!(read_messages(&short, &mut found).is_err());
    }
}
