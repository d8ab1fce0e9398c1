//! One classification rule of the policy (`[[…classes.Y.match]]`): what a packet must look
//! like to be steered into a class, independent of the classifier that implements it.
//!
//! Fields of one [`Match`] AND; several matches of a class OR. Every field is parsed from the
//! policy's words by its own `FromStr` (so the policy layer can call it from `Deserialize` and
//! get line, column and caret for free) and the combination is checked by
//! [`Match::validate`], which names the offending field so a diagnostic can point at it.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use thiserror::Error;

/// IPv4 or IPv6: u32 keys are offsets into the network header, so a filter is one or the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// The tc `protocol` word of a filter for this family.
    pub fn tc_protocol(self) -> &'static str {
        match self {
            Family::V4 => "ip",
            Family::V6 => "ipv6",
        }
    }
    pub fn from_tc_protocol(p: &str) -> Option<Family> {
        match p {
            "ip" => Some(Family::V4),
            "ipv6" => Some(Family::V6),
            _ => None,
        }
    }
    /// Address length in bits.
    pub fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
}

/// Why a field or a combination of fields is not a valid match. The text is the message of a
/// policy diagnostic; [`MatchError::hint`] is its fix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MatchError {
    #[error("\"{0}\" is not an IPv4 or IPv6 address or CIDR")]
    BadAddress(String),
    #[error("prefix length /{len} is too long for an {family} address (at most /{max})")]
    PrefixTooLong {
        len: u32,
        family: &'static str,
        max: u8,
    },
    #[error("\"{given}\" has host bits set below its /{len} prefix")]
    HostBits {
        given: String,
        len: u8,
        network: String,
    },
    #[error("unknown protocol \"{0}\"")]
    BadProto(String),
    #[error("\"{0}\" is not a port (0-65535) or a range (\"1000-2000\")")]
    BadPort(String),
    #[error("port range \"{0}\" runs backwards")]
    BackwardsRange(String),
    #[error("unknown DSCP \"{0}\"")]
    BadDscp(String),
    #[error("\"{0}\" is not a mark (a number or \"VALUE/MASK\")")]
    BadMark(String),
    #[error("an IPv4 address next to an IPv6 one: a packet is one or the other")]
    MixedFamily,
    #[error("protocol {proto} is {proto_family}-only, but the address is {addr_family}")]
    ProtoFamily {
        proto: String,
        proto_family: &'static str,
        addr_family: &'static str,
    },
    #[error("a port needs a protocol that has ports")]
    PortWithoutProto,
    #[error("protocol {0} has no ports")]
    ProtoWithoutPorts(String),
    #[error("mark cannot be combined with other fields in one match")]
    MarkWithOthers,
    #[error("an empty match would steer every packet")]
    Empty,
    #[error("\"{0}\" is not a match field")]
    UnknownField(String),
    #[error("\"{0}\" has no value")]
    MissingValue(String),
}

impl MatchError {
    /// How to fix it, in the policy's words.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            MatchError::BadAddress(_) => {
                "write an address (\"10.0.0.5\", \"2001:db8::1\") or a CIDR (\"10.0.0.0/24\")"
                    .into()
            }
            MatchError::PrefixTooLong { max, .. } => {
                format!("use a prefix length of at most {max}")
            }
            MatchError::HostBits { network, .. } => format!("did you mean \"{network}\"?"),
            MatchError::BadProto(_) => {
                "use tcp, udp, icmp, icmpv6, sctp or a protocol number 0-255".into()
            }
            MatchError::BadPort(_) | MatchError::BackwardsRange(_) => {
                "write a port (443) or a range with the low port first (\"1000-2000\")".into()
            }
            MatchError::BadDscp(_) => {
                "use a name of RFC 4594 (EF, AF11…AF43, CS0…CS7, VA) or a number 0-63".into()
            }
            MatchError::BadMark(_) => "write a mark as 16, 0x10 or \"0x10/0xff\"".into(),
            MatchError::MixedFamily => "split it into two matches, one per address family".into(),
            MatchError::ProtoFamily { proto_family, .. } => format!(
                "use {} for {} traffic",
                if *proto_family == "IPv4" {
                    "icmpv6"
                } else {
                    "icmp"
                },
                if *proto_family == "IPv4" {
                    "IPv6"
                } else {
                    "IPv4"
                }
            ),
            MatchError::PortWithoutProto => {
                "add proto = \"tcp\" (or udp, sctp) to this match".into()
            }
            MatchError::ProtoWithoutPorts(_) => {
                "remove sport/dport, or use tcp, udp or sctp".into()
            }
            // This kernel's u32 accepts `match mark` and ignores it (no CONFIG_CLS_U32_MARK):
            // the filter would then match everything. A mark alone is an fw filter instead.
            MatchError::MarkWithOthers => {
                "put the mark in a match of its own (it becomes an fw filter)".into()
            }
            MatchError::Empty => {
                "give at least one of src, dst, proto, sport, dport, dscp, mark".into()
            }
            MatchError::UnknownField(_) | MatchError::MissingValue(_) => {
                "write fields and values: \"dst 10.0.0.5/32 proto tcp dport 443\"".into()
            }
        })
    }
}

/// An address with a prefix length; host bits are zero (checked when parsed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl Prefix {
    pub fn family(&self) -> Family {
        match self.addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
    /// The address as bytes, network order (4 or 16).
    pub fn octets(&self) -> Vec<u8> {
        match self.addr {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        }
    }
    /// Builds a prefix from network-order bytes, zeroing host bits.
    pub fn from_octets(bytes: &[u8], len: u8) -> Option<Prefix> {
        let masked = mask_bytes(bytes, len);
        let addr = match masked.len() {
            4 => IpAddr::from(<[u8; 4]>::try_from(masked.as_slice()).ok()?),
            16 => IpAddr::from(<[u8; 16]>::try_from(masked.as_slice()).ok()?),
            _ => return None,
        };
        Some(Prefix { addr, len })
    }
    /// True when every address of `other` is in `self`.
    pub fn contains(&self, other: &Prefix) -> bool {
        self.family() == other.family()
            && self.len <= other.len
            && mask_bytes(&other.octets(), self.len) == self.octets()
    }
    pub fn is_host(&self) -> bool {
        self.len == self.family().bits()
    }
}

fn mask_bytes(bytes: &[u8], len: u8) -> Vec<u8> {
    bytes
        .iter()
        .enumerate()
        .map(|(i, b)| b & mask_byte(len, i))
        .collect()
}

/// Byte `i` (network order) of the mask of a `len`-bit prefix.
pub fn mask_byte(len: u8, i: usize) -> u8 {
    let keep = u32::from(len).saturating_sub(8 * i as u32).min(8);
    (0xff00u16 >> keep) as u8
}

impl FromStr for Prefix {
    type Err = MatchError;
    fn from_str(s: &str) -> Result<Prefix, MatchError> {
        let t = s.trim();
        let (a, l) = match t.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (t, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| MatchError::BadAddress(s.into()))?;
        let (fam, max) = match addr {
            IpAddr::V4(_) => ("IPv4", 32u8),
            IpAddr::V6(_) => ("IPv6", 128u8),
        };
        let len = match l {
            None => max,
            Some(l) => {
                let n: u32 = l.parse().map_err(|_| MatchError::BadAddress(s.into()))?;
                if n > u32::from(max) {
                    return Err(MatchError::PrefixTooLong {
                        len: n,
                        family: fam,
                        max,
                    });
                }
                n as u8
            }
        };
        let p = Prefix { addr, len };
        let net = Prefix::from_octets(&p.octets(), len).ok_or(MatchError::BadAddress(s.into()))?;
        if net != p {
            return Err(MatchError::HostBits {
                given: s.into(),
                len,
                network: net.to_string(),
            });
        }
        Ok(p)
    }
}

impl fmt::Display for Prefix {
    /// Always with the prefix length, as `show` prints it: `10.0.0.5/32`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// An IP protocol number, named where the policy has a name for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Proto(pub u8);

impl Proto {
    pub const ICMP: Proto = Proto(1);
    pub const TCP: Proto = Proto(6);
    pub const UDP: Proto = Proto(17);
    pub const ICMPV6: Proto = Proto(58);
    pub const SCTP: Proto = Proto(132);
    const NAMES: [(&'static str, u8); 5] = [
        ("icmp", 1),
        ("tcp", 6),
        ("udp", 17),
        ("icmpv6", 58),
        ("sctp", 132),
    ];

    /// Protocols whose header starts with 16-bit source and destination ports
    /// (tcp, udp, dccp, sctp, udplite): only these can carry `sport`/`dport`.
    pub fn has_ports(self) -> bool {
        matches!(self.0, 6 | 17 | 33 | 132 | 136)
    }
    /// The only family this protocol exists in, if any.
    pub fn family(self) -> Option<Family> {
        match self.0 {
            1 => Some(Family::V4),
            58 => Some(Family::V6),
            _ => None,
        }
    }
}

impl FromStr for Proto {
    type Err = MatchError;
    fn from_str(s: &str) -> Result<Proto, MatchError> {
        let t = s.trim().to_ascii_lowercase();
        if let Some((_, n)) = Proto::NAMES.iter().find(|(name, _)| *name == t) {
            return Ok(Proto(*n));
        }
        t.parse::<u8>()
            .map(Proto)
            .map_err(|_| MatchError::BadProto(s.into()))
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Proto::NAMES.iter().find(|(_, n)| *n == self.0) {
            Some((name, _)) => f.write_str(name),
            None => write!(f, "{}", self.0),
        }
    }
}

/// A port or an inclusive range of ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    pub fn one(p: u16) -> PortRange {
        PortRange { lo: p, hi: p }
    }
    pub fn overlaps(&self, o: &PortRange) -> bool {
        self.lo <= o.hi && o.lo <= self.hi
    }
    /// Number of ports, as f64 log2-friendly width.
    pub fn width(&self) -> u32 {
        u32::from(self.hi - self.lo) + 1
    }
}

impl FromStr for PortRange {
    type Err = MatchError;
    fn from_str(s: &str) -> Result<PortRange, MatchError> {
        let bad = || MatchError::BadPort(s.into());
        let t = s.trim();
        let (lo, hi) = match t.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (t, t),
        };
        let lo: u16 = lo.parse().map_err(|_| bad())?;
        let hi: u16 = hi.parse().map_err(|_| bad())?;
        if lo > hi {
            return Err(MatchError::BackwardsRange(s.into()));
        }
        Ok(PortRange { lo, hi })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

/// A DiffServ code point, 0–63 (the upper six bits of the IPv4 TOS / IPv6 traffic class).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dscp(u8);

impl Dscp {
    pub fn new(v: u8) -> Option<Dscp> {
        (v < 64).then_some(Dscp(v))
    }
    pub fn value(self) -> u8 {
        self.0
    }
    /// RFC 4594's names (RFC 2474 class selectors, RFC 2597 AF, RFC 3246 EF, RFC 5865 VA).
    fn name(self) -> Option<String> {
        let v = self.0;
        match v {
            46 => Some("EF".into()),
            44 => Some("VA".into()),
            _ if v.is_multiple_of(8) => Some(format!("CS{}", v / 8)),
            // AFxy = 8x + 2y, x 1..4, y 1..3.
            _ if v.is_multiple_of(2)
                && (1..=4).contains(&(v / 8))
                && (1..=3).contains(&((v % 8) / 2)) =>
            {
                Some(format!("AF{}{}", v / 8, (v % 8) / 2))
            }
            _ => None,
        }
    }
}

impl FromStr for Dscp {
    type Err = MatchError;
    fn from_str(s: &str) -> Result<Dscp, MatchError> {
        let bad = || MatchError::BadDscp(s.into());
        let t = s.trim().to_ascii_uppercase();
        let v = match t.as_str() {
            "EF" => 46,
            "VA" | "VOICE-ADMIT" => 44,
            "BE" | "DF" => 0,
            _ if t.starts_with("CS") => {
                let n: u8 = t[2..].parse().map_err(|_| bad())?;
                if n > 7 {
                    return Err(bad());
                }
                n * 8
            }
            _ if t.starts_with("AF") && t.len() == 4 => {
                let d = t.as_bytes();
                let (x, y) = (d[2].wrapping_sub(b'0'), d[3].wrapping_sub(b'0'));
                if !(1..=4).contains(&x) || !(1..=3).contains(&y) {
                    return Err(bad());
                }
                8 * x + 2 * y
            }
            _ => match t.strip_prefix("0X") {
                Some(h) => u8::from_str_radix(h, 16).map_err(|_| bad())?,
                None => t.parse().map_err(|_| bad())?,
            },
        };
        Dscp::new(v).ok_or_else(bad)
    }
}

impl fmt::Display for Dscp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(&n),
            None => write!(f, "{}", self.0),
        }
    }
}

/// A firewall mark with its mask (all ones unless written `VALUE/MASK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mark {
    pub value: u32,
    pub mask: u32,
}

impl FromStr for Mark {
    type Err = MatchError;
    fn from_str(s: &str) -> Result<Mark, MatchError> {
        let num = |t: &str| {
            let t = t.trim();
            match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                Some(h) => u32::from_str_radix(h, 16).ok(),
                None => t.parse().ok(),
            }
        };
        let bad = || MatchError::BadMark(s.into());
        let (v, m) = match s.split_once('/') {
            Some((v, m)) => (num(v).ok_or_else(bad)?, num(m).ok_or_else(bad)?),
            None => (num(s).ok_or_else(bad)?, u32::MAX),
        };
        Ok(Mark { value: v, mask: m })
    }
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mask == u32::MAX {
            write!(f, "{:#x}", self.value)
        } else {
            write!(f, "{:#x}/{:#x}", self.value, self.mask)
        }
    }
}

/// Which field of a match an error is about, so the policy layer can point at its span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Src,
    Dst,
    Proto,
    Sport,
    Dport,
    Dscp,
    Mark,
    /// The match as a whole (an empty one).
    Entry,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: Field,
    pub error: MatchError,
}

/// One match entry. `Default` (every field `None`) matches every packet; it is what an
/// all-zero u32 key decodes to, and [`Match::validate`] refuses it in a policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Match {
    pub src: Option<Prefix>,
    pub dst: Option<Prefix>,
    pub proto: Option<Proto>,
    pub sport: Option<PortRange>,
    pub dport: Option<PortRange>,
    pub dscp: Option<Dscp>,
    pub mark: Option<Mark>,
}

impl Match {
    /// The address family the fields pin down; `None` = both (the match becomes one filter
    /// per family).
    pub fn family(&self) -> Option<Family> {
        self.src
            .map(|p| p.family())
            .or(self.dst.map(|p| p.family()))
            .or(self.proto.and_then(Proto::family))
    }

    /// The families this match is emitted for.
    pub fn families(&self) -> Vec<Family> {
        match self.family() {
            Some(f) => vec![f],
            None => vec![Family::V4, Family::V6],
        }
    }

    /// Every rule a policy match must follow; all problems at once, each with its field.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errs = Vec::new();
        let mut e = |field, error| errs.push(FieldError { field, error });
        if *self == Match::default() {
            e(Field::Entry, MatchError::Empty);
        }
        if self.mark.is_some()
            && (Match {
                mark: None,
                ..self.clone()
            }) != Match::default()
        {
            e(Field::Mark, MatchError::MarkWithOthers);
        }
        if let (Some(s), Some(d)) = (self.src, self.dst) {
            if s.family() != d.family() {
                e(Field::Dst, MatchError::MixedFamily);
            }
        }
        let addr_family = self.src.or(self.dst).map(|p| p.family());
        if let (Some(p), Some(af)) = (self.proto, addr_family) {
            if let Some(pf) = p.family().filter(|pf| *pf != af) {
                e(
                    Field::Proto,
                    MatchError::ProtoFamily {
                        proto: p.to_string(),
                        proto_family: family_name(pf),
                        addr_family: family_name(af),
                    },
                );
            }
        }
        for (field, port) in [(Field::Sport, self.sport), (Field::Dport, self.dport)] {
            if port.is_none() {
                continue;
            }
            match self.proto {
                None => e(field, MatchError::PortWithoutProto),
                Some(p) if !p.has_ports() => e(field, MatchError::ProtoWithoutPorts(p.to_string())),
                Some(_) => {}
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs)
        }
    }

    /// True when some packet satisfies both matches (absent fields match anything).
    pub fn overlaps(&self, o: &Match) -> bool {
        fn both<T>(a: &Option<T>, b: &Option<T>, f: impl Fn(&T, &T) -> bool) -> bool {
            match (a, b) {
                (Some(a), Some(b)) => f(a, b),
                _ => true,
            }
        }
        let pfx = |a: &Prefix, b: &Prefix| a.contains(b) || b.contains(a);
        let fam_ok = match (self.family(), o.family()) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        fam_ok
            && both(&self.src, &o.src, pfx)
            && both(&self.dst, &o.dst, pfx)
            && both(&self.proto, &o.proto, |a, b| a == b)
            && both(&self.sport, &o.sport, PortRange::overlaps)
            && both(&self.dport, &o.dport, PortRange::overlaps)
            && both(&self.dscp, &o.dscp, |a, b| a == b)
            && both(&self.mark, &o.mark, |a, b| {
                (a.value ^ b.value) & a.mask & b.mask == 0
            })
    }

    /// How many header bits the match fixes: the more, the more specific. Overlapping
    /// matches of different classes are tried most specific first (see `layout`).
    pub fn specificity(&self) -> u32 {
        let port = |r: &Option<PortRange>| {
            r.map(|r| 16 - (32 - (r.width() - 1).leading_zeros()).min(16))
                .unwrap_or(0)
        };
        self.src.map_or(0, |p| u32::from(p.len))
            + self.dst.map_or(0, |p| u32::from(p.len))
            + self.proto.map_or(0, |_| 8)
            + port(&self.sport)
            + port(&self.dport)
            + self.dscp.map_or(0, |_| 6)
            + self.mark.map_or(0, |m| m.mask.count_ones())
    }
}

fn family_name(f: Family) -> &'static str {
    match f {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    }
}

impl fmt::Display for Match {
    /// The policy's words, in the policy's field order: `dst 10.0.0.5/32 proto tcp dport 443`.
    /// The empty match prints as `all`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if let Some(v) = self.src {
            parts.push(format!("src {v}"));
        }
        if let Some(v) = self.dst {
            parts.push(format!("dst {v}"));
        }
        if let Some(v) = self.proto {
            parts.push(format!("proto {v}"));
        }
        if let Some(v) = self.sport {
            parts.push(format!("sport {v}"));
        }
        if let Some(v) = self.dport {
            parts.push(format!("dport {v}"));
        }
        if let Some(v) = self.dscp {
            parts.push(format!("dscp {v}"));
        }
        if let Some(v) = self.mark {
            parts.push(format!("mark {v}"));
        }
        if parts.is_empty() {
            f.write_str("all")
        } else {
            f.write_str(&parts.join(" "))
        }
    }
}

impl serde::Serialize for Match {
    /// In the policy's words (`dst 10.0.0.5/32 dport 443`), as `show` prints it.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl FromStr for Match {
    type Err = FieldError;
    /// The words [`Display`](fmt::Display) prints, read back: `dst 10.0.0.5/32 proto tcp
    /// dport 443`, `all`. (For tests, tools and messages; the policy has its own TOML keys.)
    fn from_str(s: &str) -> Result<Match, FieldError> {
        let mut m = Match::default();
        let w: Vec<&str> = s.split_whitespace().collect();
        if w == ["all"] {
            return Ok(m);
        }
        let entry = |e| FieldError {
            field: Field::Entry,
            error: e,
        };
        if let Some(last) = w.last().filter(|_| !w.len().is_multiple_of(2)) {
            return Err(entry(MatchError::MissingValue(last.to_string())));
        }
        for kv in w.chunks(2) {
            let (k, v) = (kv[0], kv[1]);
            let at = |field| move |error| FieldError { field, error };
            match k {
                "src" => m.src = Some(v.parse().map_err(at(Field::Src))?),
                "dst" => m.dst = Some(v.parse().map_err(at(Field::Dst))?),
                "proto" => m.proto = Some(v.parse().map_err(at(Field::Proto))?),
                "sport" => m.sport = Some(v.parse().map_err(at(Field::Sport))?),
                "dport" => m.dport = Some(v.parse().map_err(at(Field::Dport))?),
                "dscp" => m.dscp = Some(v.parse().map_err(at(Field::Dscp))?),
                "mark" => m.mark = Some(v.parse().map_err(at(Field::Mark))?),
                _ => return Err(entry(MatchError::UnknownField(k.into()))),
            }
        }
        Ok(m)
    }
}

/// Two entries of a tree that cannot both be honoured: the same match steering into two
/// classes, or two equally specific overlapping matches of different classes (nothing says
/// which wins). Indexes are into the slice given to [`conflicts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    SameMatch { first: usize, second: usize },
    Ambiguous { first: usize, second: usize },
}

/// Conflicts among `(match, class)` pairs of one direction of one interface. Identical
/// matches in one class are not a conflict (the duplicate is dropped by `layout`).
///
/// Pairwise, but only where an overlap is possible: equally specific matches with host or
/// prefix addresses of the same length overlap only when the addresses are equal, so the
/// 10,000-subscriber case (one /32 each) costs a hash lookup per match, not 10⁸ comparisons.
pub fn conflicts<C: PartialEq>(items: &[(Match, C)]) -> Vec<Conflict> {
    // FxHash (Cargo.toml says why), sized once: at 10,000 matches the SipHash and the
    // rehashing of this map were 48 M instructions of a 600 M `check`.
    use rustc_hash::FxHashMap as HashMap;
    let mut out = Vec::new();
    let mut seen: HashMap<&Match, usize> =
        HashMap::with_capacity_and_hasher(items.len(), Default::default());
    for (i, (m, c)) in items.iter().enumerate() {
        match seen.get(m) {
            Some(&j) if items[j].1 != *c => out.push(Conflict::SameMatch {
                first: j,
                second: i,
            }),
            Some(_) => {}
            None => {
                seen.insert(m, i);
            }
        }
    }
    // Group the distinct matches by (specificity, dst prefix length, dst) so that only
    // candidates that can overlap are compared.
    type ByDst = HashMap<Option<Prefix>, Vec<usize>>;
    let mut groups: HashMap<u32, HashMap<Option<u8>, ByDst>> = HashMap::default();
    let mut firsts: Vec<usize> = seen.values().copied().collect();
    firsts.sort_unstable();
    for &i in &firsts {
        let m = &items[i].0;
        groups
            .entry(m.specificity())
            .or_default()
            .entry(m.dst.map(|d| d.len))
            .or_default()
            .entry(m.dst)
            .or_default()
            .push(i);
    }
    let check = |a: usize, b: usize, out: &mut Vec<Conflict>| {
        let (x, y) = (a.min(b), a.max(b));
        if items[x].1 != items[y].1 && items[x].0.overlaps(&items[y].0) {
            out.push(Conflict::Ambiguous {
                first: x,
                second: y,
            });
        }
    };
    for by_len in groups.values() {
        let lens: Vec<&Option<u8>> = by_len.keys().collect();
        for (li, la) in lens.iter().enumerate() {
            let same_len = &by_len[*la];
            // Same dst length: only the same dst (or no dst at all) can overlap.
            for members in same_len.values() {
                for (k, &a) in members.iter().enumerate() {
                    for &b in &members[k + 1..] {
                        check(a, b, &mut out);
                    }
                }
            }
            // Different lengths (or one without dst): compare across.
            for lb in &lens[li + 1..] {
                for a in same_len.values().flatten() {
                    for b in by_len[*lb].values().flatten() {
                        check(*a, *b, &mut out);
                    }
                }
            }
        }
    }
    out.sort_by_key(|c| match c {
        Conflict::SameMatch { first, second } | Conflict::Ambiguous { first, second } => {
            (*first, *second)
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Match {
        s.replace('=', " ").parse().expect("a match")
    }

    #[test]
    fn display_and_from_str_round_trip() {
        for s in [
            "all",
            "dst 10.0.0.5/32 proto tcp dport 443",
            "src 2001:db8::/48 proto udp sport 1000-2000 dscp EF",
            "mark 0x10/0xff",
        ] {
            assert_eq!(s.parse::<Match>().unwrap().to_string(), s);
        }
        let e = "dst 10.0.0.5/24".parse::<Match>().unwrap_err();
        assert_eq!(e.field, Field::Dst);
        assert!("dst".parse::<Match>().is_err());
        assert!("color red".parse::<Match>().is_err());
    }

    #[test]
    fn prefixes_parse_and_refuse_host_bits() {
        let p: Prefix = "10.0.0.5".parse().unwrap();
        assert_eq!(p.to_string(), "10.0.0.5/32");
        assert_eq!("2001:db8::/32".parse::<Prefix>().unwrap().len, 32);
        let e = "10.0.0.5/24".parse::<Prefix>().unwrap_err();
        assert_eq!(e.hint().unwrap(), "did you mean \"10.0.0.0/24\"?");
        assert!(matches!(
            "10.0.0.0/33".parse::<Prefix>(),
            Err(MatchError::PrefixTooLong { len: 33, .. })
        ));
        assert!(matches!(
            "10.0.0/8".parse::<Prefix>(),
            Err(MatchError::BadAddress(_))
        ));
        assert!("10.1.2.3/8"
            .parse::<Prefix>()
            .unwrap_err()
            .to_string()
            .contains("host bits"));
        assert_eq!(
            "2001:db8::1:0/112".parse::<Prefix>().unwrap().to_string(),
            "2001:db8::1:0/112"
        );
    }

    #[test]
    fn dscp_names_of_rfc4594_and_numbers() {
        for (name, v) in [
            ("EF", 46),
            ("af11", 10),
            ("AF43", 38),
            ("AF21", 18),
            ("CS0", 0),
            ("CS7", 56),
            ("VA", 44),
            ("63", 63),
            ("0x2e", 46),
        ] {
            assert_eq!(name.parse::<Dscp>().unwrap().value(), v, "{name}");
        }
        for bad in ["AF44", "AF51", "CS8", "64", "EFX", ""] {
            assert!(bad.parse::<Dscp>().is_err(), "{bad}");
        }
        // Display goes back to the name wherever there is one.
        for v in 0..64u8 {
            let d = Dscp::new(v).unwrap();
            assert_eq!(d.to_string().parse::<Dscp>().unwrap(), d);
        }
        assert_eq!(Dscp::new(34).unwrap().to_string(), "AF41");
        assert_eq!(Dscp::new(7).unwrap().to_string(), "7");
    }

    #[test]
    fn protos_ports_marks() {
        assert_eq!("TCP".parse::<Proto>().unwrap(), Proto::TCP);
        assert_eq!("47".parse::<Proto>().unwrap().to_string(), "47");
        assert!("tcpp".parse::<Proto>().is_err());
        assert_eq!(
            "1000-2000".parse::<PortRange>().unwrap(),
            PortRange { lo: 1000, hi: 2000 }
        );
        assert!(matches!(
            "2000-1000".parse::<PortRange>(),
            Err(MatchError::BackwardsRange(_))
        ));
        assert!("65536".parse::<PortRange>().is_err());
        assert_eq!(
            "0x10/0xff".parse::<Mark>().unwrap(),
            Mark {
                value: 0x10,
                mask: 0xff
            }
        );
        assert_eq!("16".parse::<Mark>().unwrap().to_string(), "0x10");
    }

    fn fields(m: &Match) -> Vec<(Field, MatchError)> {
        m.validate()
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.field, e.error))
            .collect()
    }

    #[test]
    fn validation_names_the_field() {
        assert!(m("dst=10.0.0.5 proto=tcp dport=443").validate().is_ok());
        assert!(m("proto=udp dport=16384-32767").validate().is_ok());
        assert_eq!(
            fields(&m("src=10.0.0.0/8 dst=2001:db8::1")),
            vec![(Field::Dst, MatchError::MixedFamily)]
        );
        assert_eq!(
            fields(&m("dport=443")),
            vec![(Field::Dport, MatchError::PortWithoutProto)]
        );
        assert_eq!(
            fields(&m("proto=icmp sport=1")),
            vec![(Field::Sport, MatchError::ProtoWithoutPorts("icmp".into()))]
        );
        let pf = fields(&m("dst=2001:db8::1 proto=icmp"));
        assert_eq!(pf.len(), 1);
        assert_eq!(pf[0].0, Field::Proto);
        assert_eq!(
            pf[0].1.hint().unwrap(),
            "use icmpv6 for IPv6 traffic".to_string()
        );
        assert_eq!(
            fields(&m("mark=0x10 dst=10.0.0.1")),
            vec![(Field::Mark, MatchError::MarkWithOthers)]
        );
        assert!(m("mark=0x10").validate().is_ok());
        assert_eq!(
            fields(&Match::default()),
            vec![(Field::Entry, MatchError::Empty)]
        );
    }

    #[test]
    fn family_follows_addresses_or_icmp() {
        assert_eq!(m("dst=10.0.0.1").families(), vec![Family::V4]);
        assert_eq!(m("proto=icmpv6").families(), vec![Family::V6]);
        assert_eq!(
            m("proto=tcp dport=22").families(),
            vec![Family::V4, Family::V6]
        );
        assert_eq!(m("dscp=EF").families(), vec![Family::V4, Family::V6]);
    }

    #[test]
    fn summary_in_policy_words() {
        assert_eq!(
            m("dst=10.0.0.5 proto=tcp dport=443").to_string(),
            "dst 10.0.0.5/32 proto tcp dport 443"
        );
        assert_eq!(
            m("src=2001:db8::/48 proto=udp sport=1000-2000 dscp=46").to_string(),
            "src 2001:db8::/48 proto udp sport 1000-2000 dscp EF"
        );
        assert_eq!(Match::default().to_string(), "all");
    }

    #[test]
    fn overlap_and_specificity() {
        assert!(m("dst=10.0.0.0/24").overlaps(&m("dst=10.0.0.5")));
        assert!(!m("dst=10.0.0.6").overlaps(&m("dst=10.0.0.5")));
        assert!(!m("dst=10.0.0.0/8").overlaps(&m("dst=2001:db8::1")));
        assert!(m("proto=tcp dport=80-90").overlaps(&m("proto=tcp dport=90")));
        assert!(!m("proto=tcp dport=80-89").overlaps(&m("proto=tcp dport=90")));
        assert!(!m("proto=tcp").overlaps(&m("proto=udp")));
        assert_eq!(m("dst=10.0.0.5").specificity(), 32);
        assert_eq!(m("proto=tcp dport=443").specificity(), 24);
        // A range of 1024 aligned ports fixes 6 bits, 1000-2000 at least 6.
        assert_eq!(m("proto=tcp dport=1024-2047").specificity(), 14);
        assert!(m("dst=10.0.0.5 dport=443").specificity() > m("dst=10.0.0.5").specificity());
    }

    #[test]
    fn conflicts_same_match_two_classes_and_ambiguous_overlap() {
        let items = vec![
            (m("dst=10.0.0.5"), "a"),
            (m("dst=10.0.0.5"), "b"),
            (m("dst=10.0.0.5"), "a"),
            (m("dst=10.0.0.6"), "b"),
            // Equally specific (24), overlapping, different classes: nothing says who wins.
            (m("proto=tcp dport=443"), "a"),
            (m("dst=10.9.0.0/24"), "b"),
            // More specific than the /24: wins by order, no conflict.
            (m("dst=10.9.0.7"), "a"),
        ];
        assert_eq!(
            conflicts(&items),
            vec![
                Conflict::SameMatch {
                    first: 0,
                    second: 1
                },
                Conflict::Ambiguous {
                    first: 4,
                    second: 5
                },
            ]
        );
    }

    #[test]
    fn conflicts_scale_to_ten_thousand_hosts() {
        let items: Vec<(Match, usize)> = (0..10_000u32)
            .map(|i| {
                let a = std::net::Ipv4Addr::from(0x0a00_0000 + i);
                (m(&format!("dst={a}")), i as usize)
            })
            .collect();
        let t = std::time::Instant::now();
        assert!(conflicts(&items).is_empty());
        assert!(t.elapsed().as_millis() < 2_000, "{:?}", t.elapsed());
    }
}
