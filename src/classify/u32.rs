//! A [`Match`] as u32 keys (`match u32 VALUE MASK at OFFSET`), and u32 keys back into a
//! [`Match`].
//!
//! Offsets are from the start of the network header (u32 on an htb or ingress qdisc sees the
//! packet there). The layout (RFC 791, RFC 8200):
//!
//! | field | IPv4 | IPv6 |
//! |---|---|---|
//! | DSCP | byte 1, bits 7..2 (key at 0, mask `00fc0000`) | traffic class bits 7..2 (key at 0, mask `0fc00000`) |
//! | protocol | byte 9 (key at 8, mask `00ff0000`) | next header, byte 6 (key at 4, mask `0000ff00`) |
//! | src / dst | 12 / 16 | 8..24 / 24..40 |
//! | sport / dport | 20 / 22: only when IHL = 5 | 40 / 42: only without extension headers |
//!
//! Ports sit behind a header of variable length. iproute2's `match ip dport` simply reads
//! offset 22, which misreads packets with IP options and non-first fragments (their payload
//! is where the ports would be). qosctl adds two keys to every IPv4 port match, IHL = 5
//! (`05000000/0f000000 at 0`) and fragment offset 0 (`00000000/00001fff at 4`), so such packets
//! are never mis-steered: they are not matched (they go to the default class). IPv6 port
//! matches always carry the next-header key, which makes a packet with an extension header
//! fail it for the same effect. u32's `nexthdr+` offsets would follow the header length, but
//! only inside a hash-table link with an `offset` computation; one filter per match is simpler
//! to diff and read back.
//!
//! Keys are word-aligned and merged per offset (one key per 32-bit word, in offset order):
//! exactly what the kernel stores and `tc filter show` prints back, so the read-back compares
//! key for key with what was rendered. The decoder does not depend on that: it reads any
//! keys bit by bit (tc's `match ip …` forms, other tools' filters) and reports whether they
//! are qosctl's own canonical encoding.

use std::fmt;

use super::matcher::{Dscp, Family, Mark, Match, PortRange, Prefix, Proto};

/// One u32 key: the 32-bit word at `off` (bytes from the network header), masked, equals
/// `value` (`value` has no bits outside `mask`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub value: u32,
    pub mask: u32,
    pub off: i32,
}

impl fmt::Display for Key {
    /// The tc argument form: `match u32 0x0a000005 0xffffffff at 16`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "match u32 {:#010x} {:#010x} at {}",
            self.value, self.mask, self.off
        )
    }
}

impl serde::Serialize for Key {
    /// `0a000005/ffffffff at 16`, as tc prints a key.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!(
            "{:08x}/{:08x} at {}",
            self.value, self.mask, self.off
        ))
    }
}

/// What keys test, per offset: (value, mask) with the words of one offset merged and
/// zero masks dropped. How bits are split into keys does not change what they match, so
/// two key lists match the same packets exactly when these are equal.
///
/// In offset order, as a list: a filter has a few keys, and the differ computes this for
/// each of 20,000 filters of a no-op (a map per filter cost it 4 allocations each).
pub fn bits_of(keys: &[Key]) -> Vec<(i32, (u32, u32))> {
    let mut m: Vec<(i32, (u32, u32))> = keys
        .iter()
        .map(|k| (k.off, (k.value & k.mask, k.mask)))
        .collect();
    m.sort_unstable_by_key(|&(off, _)| off);
    m.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1 .0 |= later.1 .0;
            kept.1 .1 |= later.1 .1;
        }
        same
    });
    m.retain(|(_, (_, mask))| *mask != 0);
    m
}

/// The tc arguments of a key list (an empty list is `match u32 0 0 at 0`: every packet).
pub fn render_keys(keys: &[Key]) -> String {
    if keys.is_empty() {
        return "match u32 0 0 at 0".to_string();
    }
    keys.iter()
        .map(Key::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Byte offsets of each field, per family.
struct Layout {
    proto: usize,
    src: usize,
    dst: usize,
    ports: usize,
}

fn layout(f: Family) -> Layout {
    match f {
        Family::V4 => Layout {
            proto: 9,
            src: 12,
            dst: 16,
            ports: 20,
        },
        Family::V6 => Layout {
            proto: 6,
            src: 8,
            dst: 24,
            ports: 40,
        },
    }
}

/// The bytes of a header image: every field qosctl encodes lies in the first 44 (the IPv6
/// ports end there). A live key that tests bits further on tests no field, so it could
/// never decode; [`Bits::from_keys`] refuses it at once.
const IMAGE: usize = 64;

/// A header image: per byte offset, the bits that must match and their values. An array,
/// not a map: `check` of 10,000 matches encodes and decodes each, and a map per image
/// cost that 1,300 instructions per address.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Bits([(u8, u8); IMAGE]); // per offset: (value, mask)

impl Default for Bits {
    fn default() -> Bits {
        Bits([(0, 0); IMAGE])
    }
}

impl Bits {
    /// `off` is below [`IMAGE`]: the layout's own offsets, or checked by `from_keys`.
    fn put(&mut self, off: usize, value: u8, mask: u8) {
        let e = &mut self.0[off];
        e.0 = (e.0 & !mask) | (value & mask);
        e.1 |= mask;
    }
    fn put_bytes(&mut self, off: usize, bytes: &[u8], masks: &[u8]) {
        for (i, (b, m)) in bytes.iter().zip(masks).enumerate() {
            if *m != 0 {
                self.put(off + i, *b, *m);
            }
        }
    }
    fn put_u16(&mut self, off: usize, value: u16, mask: u16) {
        self.put_bytes(off, &value.to_be_bytes(), &mask.to_be_bytes());
    }
    /// Takes (and clears) the bits under `mask` at `off`: (value, mask actually present).
    fn take(&mut self, off: usize, mask: u8) -> (u8, u8) {
        let Some(e) = self.0.get_mut(off) else {
            return (0, 0);
        };
        let got = (e.0 & mask, e.1 & mask);
        e.1 &= !mask;
        e.0 &= e.1;
        got
    }
    /// Whether some bits are still tested (none was taken).
    fn any(&self) -> bool {
        self.0.iter().any(|&(_, m)| m != 0)
    }
    /// One key per 32-bit word that tests any bit, in offset order.
    fn keys(&self) -> Vec<Key> {
        self.0
            .chunks(4)
            .enumerate()
            .filter_map(|(w, bytes)| {
                let (mut value, mut mask) = (0u32, 0u32);
                for &(v, m) in bytes {
                    value = (value << 8) | u32::from(v);
                    mask = (mask << 8) | u32::from(m);
                }
                (mask != 0).then_some(Key {
                    value,
                    mask,
                    off: (4 * w) as i32,
                })
            })
            .collect()
    }
    fn from_keys(keys: &[Key]) -> Option<Bits> {
        let mut b = Bits::default();
        for k in keys {
            let off = usize::try_from(k.off).ok()?;
            for (i, (v, m)) in k
                .value
                .to_be_bytes()
                .iter()
                .zip(k.mask.to_be_bytes())
                .enumerate()
            {
                if m != 0 {
                    if off + i >= IMAGE {
                        return None;
                    }
                    b.put(off + i, *v, m);
                }
            }
        }
        Some(b)
    }
}

/// The fewest (value, mask) pairs whose union is exactly `r`: the range's minimal cover by
/// aligned power-of-two blocks (at most 30 for 16-bit ports).
pub fn port_cover(r: PortRange) -> Vec<(u16, u16)> {
    let (mut lo, hi) = (u32::from(r.lo), u32::from(r.hi));
    let mut out = Vec::new();
    while lo <= hi {
        // The largest block that starts at lo (alignment) and stays within hi.
        let mut size = if lo == 0 {
            1 << 16
        } else {
            1u32 << lo.trailing_zeros()
        };
        while lo + size - 1 > hi {
            size >>= 1;
        }
        out.push((lo as u16, !((size - 1) as u16)));
        lo += size;
    }
    out
}

/// The u32 key lists of `m` for family `fam`: one list per filter. A match is one filter,
/// except that port ranges need one filter per block of their cover (keys of one filter
/// AND; OR takes several filters), and a sport range × dport range the product.
pub fn encode(m: &Match, fam: Family) -> Vec<Vec<Key>> {
    let l = layout(fam);
    let mut base = Bits::default();
    if let Some(d) = m.dscp {
        match fam {
            Family::V4 => base.put(1, d.value() << 2, 0xfc),
            Family::V6 => {
                // Traffic class straddles bytes 0 and 1: version(4) TC(8) flow label(20).
                base.put(0, d.value() >> 2, 0x0f);
                base.put(1, (d.value() & 3) << 6, 0xc0);
            }
        }
    }
    if let Some(p) = m.proto {
        base.put(l.proto, p.0, 0xff);
    }
    for (p, off) in [(m.src, l.src), (m.dst, l.dst)] {
        if let Some(p) = p {
            let octets = p.octets();
            base.put_bytes(off, &octets, &prefix_mask(p.len, octets.len()));
        }
    }
    let has_ports = m.sport.is_some() || m.dport.is_some();
    if has_ports && fam == Family::V4 {
        base.put(0, 0x05, 0x0f); // IHL = 5: the ports are at 20
        base.put_u16(6, 0, 0x1fff); // fragment offset 0: the ports are in this packet
    }
    let any = vec![(0u16, 0u16)];
    let sports = m.sport.map(port_cover).unwrap_or_else(|| any.clone());
    let dports = m.dport.map(port_cover).unwrap_or(any);
    let mut out = Vec::with_capacity(sports.len() * dports.len());
    for &(sv, sm) in &sports {
        for &(dv, dm) in &dports {
            let mut b = base.clone();
            if sm != 0 {
                b.put_u16(l.ports, sv, sm);
            }
            if dm != 0 {
                b.put_u16(l.ports + 2, dv, dm);
            }
            out.push(b.keys());
        }
    }
    out
}

/// The network-order mask of a `len`-bit prefix over `n` bytes.
fn prefix_mask(len: u8, n: usize) -> [u8; 16] {
    let mut mask = [0u8; 16];
    for (i, byte) in mask.iter_mut().enumerate().take(n) {
        *byte = super::matcher::mask_byte(len, i);
    }
    mask
}

/// What a filter's keys say, in the policy's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub m: Match,
    /// The keys are exactly what [`encode`] makes of `m` (one block of its port cover):
    /// qosctl's own encoding. `false` for an equivalent foreign form (e.g. tc's
    /// `match ip dport 22 0xffff`, which lacks the IHL and fragment keys): the differ must
    /// then replace the filter although it reads the same.
    pub canonical: bool,
}

/// Reads u32 keys back into a match. `None` when some key tests bits that are not a field
/// qosctl knows (e.g. a TOS mask other than the DSCP bits, a non-prefix address mask,
/// `nexthdr+` offsets): the filter is then shown raw and treated as foreign.
pub fn decode(keys: &[Key], fam: Family) -> Option<Decoded> {
    let m = decode_match(keys, fam)?;
    // Compared bit for bit: how the bits are split into keys does not change what matches.
    let live = Bits::from_keys(keys)?.keys();
    let canonical = encode(&m, fam).contains(&live);
    Some(Decoded { m, canonical })
}

/// What `keys` match, without [`decode`]'s check that they are qosctl's own encoding: for
/// the layout, whose keys [`encode`] just made. That check encodes the match once more,
/// which `check` of 10,000 matches paid for 10,000 times.
pub fn decode_match(keys: &[Key], fam: Family) -> Option<Match> {
    let l = layout(fam);
    let mut b = Bits::from_keys(keys)?;
    let mut m = Match::default();
    match fam {
        Family::V4 => {
            let (v, mask) = b.take(1, 0xfc);
            m.dscp = field(mask, 0xfc, || Dscp::new(v >> 2))?;
            // IHL = 5 and fragment offset 0 are structure, not fields: accepted anywhere.
            let (ihl, ihl_mask) = b.take(0, 0x0f);
            if ihl_mask != 0 && (ihl_mask, ihl) != (0x0f, 5) {
                return None;
            }
            let (f0, f1) = (b.take(6, 0x1f), b.take(7, 0xff));
            if f0.0 != 0 || f1.0 != 0 || (f0.1 != 0 && f0.1 != 0x1f) || (f1.1 != 0 && f1.1 != 0xff)
            {
                return None;
            }
        }
        Family::V6 => {
            let (hi, hm) = b.take(0, 0x0f);
            let (lo, lm) = b.take(1, 0xc0);
            if (hm == 0) != (lm == 0) {
                return None;
            }
            m.dscp = field(hm, 0x0f, || Dscp::new((hi << 2) | (lo >> 6)))?;
            if hm != 0 && lm != 0xc0 {
                return None;
            }
        }
    }
    let (pv, pm) = b.take(l.proto, 0xff);
    m.proto = field(pm, 0xff, || Some(Proto(pv)))?;
    let n = fam.bits() as usize / 8;
    m.src = prefix(&mut b, l.src, n)?;
    m.dst = prefix(&mut b, l.dst, n)?;
    m.sport = port(&mut b, l.ports)?;
    m.dport = port(&mut b, l.ports + 2)?;
    if b.any() {
        return None;
    }
    Some(m)
}

/// `Some(None)` when the field is absent, `Some(Some(v))` when fully present, `None` (not
/// decodable) when only some of its bits are tested.
fn field<T>(got: u8, full: u8, v: impl FnOnce() -> Option<T>) -> Option<Option<T>> {
    if got == 0 {
        Some(None)
    } else if got == full {
        v().map(Some)
    } else {
        None
    }
}

fn prefix(b: &mut Bits, off: usize, n: usize) -> Option<Option<Prefix>> {
    let (mut v, mut mask) = ([0u8; 16], 0u128);
    for (i, byte) in v.iter_mut().enumerate().take(n) {
        let (value, m) = b.take(off + i, 0xff);
        *byte = value;
        mask = (mask << 8) | u128::from(m);
    }
    let ones = mask.count_ones();
    if ones == 0 {
        return Some(None);
    }
    // The mask must be a prefix: ones, then zeros.
    if (mask << (128 - 8 * n)).leading_ones() != ones {
        return None;
    }
    Prefix::from_octets(&v[..n], ones as u8).map(Some)
}

fn port(b: &mut Bits, off: usize) -> Option<Option<PortRange>> {
    let ((v0, m0), (v1, m1)) = (b.take(off, 0xff), b.take(off + 1, 0xff));
    let value = u16::from_be_bytes([v0, v1]);
    let mask = u16::from_be_bytes([m0, m1]);
    if mask == 0 {
        return Some(None);
    }
    // A prefix mask is a block of ports; any other mask is a set that is not a range.
    if mask.leading_ones() + mask.trailing_zeros() != 16 {
        return None;
    }
    Some(Some(PortRange {
        lo: value,
        hi: value | !mask,
    }))
}

/// Merges matches that differ only in adjacent port blocks (the filters of one port range)
/// back into ranges, for display: `dport 1024-2047` + `dport 2048-4095` → `dport 1024-4095`.
pub fn coalesce(mut ms: Vec<Match>) -> Vec<Match> {
    ms.sort();
    ms.dedup();
    fn dport(m: &mut Match) -> &mut Option<PortRange> {
        &mut m.dport
    }
    fn sport(m: &mut Match) -> &mut Option<PortRange> {
        &mut m.sport
    }
    for pick in [dport as fn(&mut Match) -> &mut Option<PortRange>, sport] {
        let mut out: Vec<Match> = Vec::with_capacity(ms.len());
        // Sorting with the picked port last makes mergeable blocks neighbours.
        ms.sort_by_key(|m| {
            let mut k = m.clone();
            let p = *pick(&mut k);
            *pick(&mut k) = None;
            (k, p)
        });
        for m in ms {
            if let Some(last) = out.last_mut() {
                let (mut a, mut b) = (last.clone(), m.clone());
                let (pa, pb) = (*pick(&mut a), *pick(&mut b));
                *pick(&mut a) = None;
                *pick(&mut b) = None;
                if let (true, Some(x), Some(y)) = (a == b, pa, pb) {
                    if u32::from(x.hi) + 1 == u32::from(y.lo) {
                        *pick(last) = Some(PortRange { lo: x.lo, hi: y.hi });
                        continue;
                    }
                }
            }
            out.push(m);
        }
        ms = out;
    }
    ms
}

/// A mark match alone is not a u32 filter (u32 `match mark` is silently ignored by kernels
/// without `CONFIG_CLS_U32_MARK`, this machine's among them): it is an fw filter.
pub fn mark_only(m: &Match) -> Option<Mark> {
    let mark = m.mark?;
    (Match {
        mark: None,
        ..m.clone()
    } == Match::default())
    .then_some(mark)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Match {
        s.replace('=', " ").parse().unwrap()
    }
    fn k(value: u32, mask: u32, off: i32) -> Key {
        Key { value, mask, off }
    }

    #[test]
    fn ipv4_offsets() {
        assert_eq!(
            encode(&m("dst=10.0.0.5"), Family::V4),
            vec![vec![k(0x0a00_0005, 0xffff_ffff, 16)]]
        );
        assert_eq!(
            encode(&m("src=10.99.0.0/24 proto=udp"), Family::V4),
            vec![vec![
                k(0x0011_0000, 0x00ff_0000, 8),
                k(0x0a63_0000, 0xffff_ff00, 12)
            ]]
        );
        // Ports: IHL and fragment keys, sport and dport share the word at 20.
        assert_eq!(
            encode(&m("proto=tcp sport=1234 dport=443"), Family::V4),
            vec![vec![
                k(0x0500_0000, 0x0f00_0000, 0),
                k(0, 0x0000_1fff, 4),
                k(0x0006_0000, 0x00ff_0000, 8),
                k(0x04d2_01bb, 0xffff_ffff, 20),
            ]]
        );
        // DSCP EF = 46 → TOS 0xb8.
        assert_eq!(
            encode(&m("dscp=EF"), Family::V4),
            vec![vec![k(0x00b8_0000, 0x00fc_0000, 0)]]
        );
    }

    #[test]
    fn ipv6_offsets() {
        assert_eq!(
            encode(&m("dst=2001:db8::/32"), Family::V6),
            vec![vec![k(0x2001_0db8, 0xffff_ffff, 24)]]
        );
        let keys = &encode(
            &m("src=2001:db8::1 proto=tcp dport=443 dscp=AF41"),
            Family::V6,
        )[0];
        // AF41 = 34: traffic class 0x88, i.e. 0x0880_0000 under 0x0fc0_0000.
        assert_eq!(keys[0], k(0x0880_0000, 0x0fc0_0000, 0));
        assert_eq!(keys[1], k(0x0000_0600, 0x0000_ff00, 4));
        assert_eq!(keys[2], k(0x2001_0db8, 0xffff_ffff, 8));
        assert_eq!(keys[5], k(0x0000_0001, 0xffff_ffff, 20));
        assert_eq!(keys[6], k(0x0000_01bb, 0x0000_ffff, 40));
        assert_eq!(keys.len(), 7);
    }

    #[test]
    fn port_cover_is_minimal_and_exact() {
        assert_eq!(port_cover(PortRange::one(443)), vec![(443, 0xffff)]);
        assert_eq!(port_cover(PortRange { lo: 0, hi: 65535 }), vec![(0, 0)]);
        assert_eq!(
            port_cover(PortRange {
                lo: 16384,
                hi: 32767
            }),
            vec![(16384, 0xc000)]
        );
        assert_eq!(
            port_cover(PortRange { lo: 1000, hi: 2000 }),
            vec![
                (1000, 0xfff8), // 1000-1007
                (1008, 0xfff0), // 1008-1023
                (1024, 0xfe00), // 1024-1535
                (1536, 0xff00), // 1536-1791
                (1792, 0xff80), // 1792-1919
                (1920, 0xffc0), // 1920-1983
                (1984, 0xfff0), // 1984-1999
                (2000, 0xffff),
            ]
        );
        // Exhaustive for many ranges: the union is exactly the range and the blocks are disjoint;
        // and no cover is longer than the known bound 2·16 − 2.
        for (lo, hi) in [
            (1, 65534),
            (1, 1),
            (3, 9),
            (80, 8080),
            (1023, 1025),
            (0, 1),
            (65535, 65535),
        ] {
            let cover = port_cover(PortRange { lo, hi });
            assert!(cover.len() <= 30);
            let mut hit = vec![0u8; 65536];
            for (v, mask) in &cover {
                for p in 0..=65535u32 {
                    if (p as u16) & mask == *v {
                        hit[p as usize] += 1;
                    }
                }
            }
            for p in 0..=65535u32 {
                let want = u8::from(p >= u32::from(lo) && p <= u32::from(hi));
                assert_eq!(hit[p as usize], want, "{lo}-{hi} port {p}");
            }
        }
    }

    #[test]
    fn roundtrip_every_field_both_families() {
        let cases = [
            ("dst=10.0.0.5", Family::V4),
            ("src=10.0.0.0/8 dst=192.168.1.0/24", Family::V4),
            ("proto=udp dport=53", Family::V4),
            ("proto=udp dport=53", Family::V6),
            ("proto=tcp sport=1024-65535 dport=22", Family::V4),
            ("proto=icmp", Family::V4),
            ("proto=icmpv6", Family::V6),
            ("dscp=CS6", Family::V4),
            ("dscp=CS6", Family::V6),
            ("dscp=63", Family::V6),
            (
                "src=2001:db8:1::/48 dst=2001:db8::5 proto=sctp dport=5000-5999 dscp=EF",
                Family::V6,
            ),
        ];
        for (s, fam) in cases {
            let want = m(s);
            let decoded: Vec<Match> = encode(&want, fam)
                .iter()
                .map(|keys| {
                    let d = decode(keys, fam).unwrap_or_else(|| panic!("{s}: {keys:?}"));
                    assert!(d.canonical, "{s}");
                    d.m
                })
                .collect();
            assert_eq!(coalesce(decoded), vec![want.clone()], "{s}");
        }
    }

    #[test]
    fn foreign_forms_decode_but_are_not_canonical() {
        // `match ip dst 10.99.0.2/32 match ip dport 5001 0xffff` (tc 5.4 … 7.1 fixtures).
        let d = decode(
            &[
                k(0x0a63_0002, 0xffff_ffff, 16),
                k(0x0000_1389, 0x0000_ffff, 20),
            ],
            Family::V4,
        )
        .unwrap();
        assert_eq!(d.m.to_string(), "dst 10.99.0.2/32 dport 5001");
        assert!(!d.canonical);
        // Split keys in another order decode the same.
        let d2 = decode(
            &[
                k(0x0000_0005, 0x0000_00ff, 16),
                k(0x0a00_0000, 0xffff_ff00, 16),
            ],
            Family::V4,
        )
        .unwrap();
        assert_eq!(d2.m.to_string(), "dst 10.0.0.5/32");
        assert!(d2.canonical);
        // The match-all key.
        let all = decode(&[k(0, 0, 0)], Family::V4).unwrap();
        assert_eq!(all.m, Match::default());
    }

    #[test]
    fn undecodable_keys_are_refused() {
        // Whole TOS byte (ECN bits too), a non-prefix address mask, half a protocol byte,
        // a port mask that is no block, a key beyond the fields.
        for keys in [
            vec![k(0x00b8_0000, 0x00ff_0000, 0)],
            vec![k(0x0a00_0005, 0xff00_00ff, 16)],
            vec![k(0x0006_0000, 0x000f_0000, 8)],
            vec![k(0x0000_0005, 0x0000_00f5, 20)],
            vec![k(1, 1, 60)],
            vec![k(1, 1, -4)],
            // Beyond the header image (IMAGE): refused before it is read, next to a key
            // that alone would decode.
            vec![k(0x0a00_0005, 0xffff_ffff, 16), k(1, 1, 64)],
            vec![
                k(0x0a00_0005, 0xffff_ffff, 16),
                k(0x0100_0000, 0xff00_0000, 4096),
            ],
        ] {
            assert_eq!(decode(&keys, Family::V4), None, "{keys:?}");
            assert_eq!(decode(&keys, Family::V6), None, "{keys:?}");
        }
        // A zero-mask key far out tests nothing: the address alone is read, and bit for
        // bit it is qosctl's own encoding.
        let far = [k(0x0a00_0005, 0xffff_ffff, 16), k(0, 0, 4096)];
        let d = decode(&far, Family::V4).expect("decodes");
        assert_eq!(d.m.to_string(), "dst 10.0.0.5/32");
        assert!(d.canonical);
    }

    #[test]
    fn render_is_tc_syntax() {
        assert_eq!(
            render_keys(&encode(&m("dst=10.0.0.5"), Family::V4)[0]),
            "match u32 0x0a000005 0xffffffff at 16"
        );
        assert_eq!(render_keys(&[]), "match u32 0 0 at 0");
    }

    #[test]
    fn coalesce_merges_only_true_neighbours() {
        let a = m("proto=tcp dport=1000-1007");
        let b = m("proto=tcp dport=1008-1023");
        let c = m("proto=tcp dport=2000");
        assert_eq!(
            coalesce(vec![c.clone(), b, a]),
            vec![m("proto=tcp dport=1000-1023"), c]
        );
    }
}
