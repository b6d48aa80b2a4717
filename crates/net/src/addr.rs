//! Address policy for outbound requests to partner-controlled URLs.
//!
//! Partners hand keystead URLs (metadata, JWKS, webhook endpoints) and
//! keystead fetches them from inside our network, so a hostile or careless
//! partner could point us at loopback admin ports, the cloud metadata service
//! or private infrastructure (SSRF). The defence has to be decided on the
//! *address actually connected to*, not on the URL text: the same loopback
//! host can be written `2130706433`, `0x7f.1`, `[::ffff:7f00:1]`,
//! `１２７.０.０.１` or smuggled through userinfo. We therefore let the WHATWG
//! parser in the `url` crate (the same parser the HTTP client uses) produce
//! the canonical host first and only then classify it, so that "what we
//! checked" and "what we connect to" cannot diverge. Classification is
//! deny-by-default where the address space permits it: IPv6 is only global
//! inside `2000::/3`, and every IPv6 form that embeds an IPv4 address is
//! judged by that IPv4 address. Names cannot be classified without DNS, so
//! they come back as [`Target::Domain`] and every resolved address must again
//! pass [`address_allowed`] before a connection is made (and the connection
//! must be pinned to the checked address to avoid DNS rebinding).
//!
//! Documented decisions:
//! * IPv4-mapped (`::ffff:0:0/96`) and IPv4-compatible (`::/96`) addresses
//!   are classified by their embedded IPv4 address, so `::ffff:8.8.8.8` and
//!   `::8.8.8.8` are allowed while `::ffff:127.0.0.1`, `::127.0.0.1`, `::` and
//!   `::1` (which embed `0.0.0.0/8` addresses) are rejected. Connecting to a
//!   mapped address reaches exactly the embedded IPv4 host, so rejecting a
//!   public one would add no safety.
//! * NAT64 `64:ff9b::/96` is classified by its low 32 bits. Of the local-use
//!   NAT64 block `64:ff9b:1::/48` only the `/96` layout with zero middle bits
//!   (`64:ff9b:1::a.b.c.d`) is classified by its low 32 bits; any other
//!   address in that block is rejected, because where the IPv4 address sits
//!   depends on a prefix length chosen by the local operator that we cannot
//!   see. 6to4 `2002::/16` is classified by the IPv4 address in bits 16..48.
//!   The SIIT form `::ffff:0:a.b.c.d` lies in reserved `::/8` and is rejected.
//! * The whole IETF protocol assignment blocks `192.0.0.0/24` and
//!   `2001::/23` are rejected, including Teredo, benchmarking, ORCHID(v2) and
//!   the few anycast/AMT/AS112 entries IANA marks globally reachable: no
//!   partner HTTPS endpoint lives there.
//! * The allow list is checked against the address as given and, for an
//!   IPv4-mapped IPv6 address, also against the unwrapped IPv4 address (the
//!   same destination). Other embeddings (compatible, NAT64, 6to4) are not
//!   unwrapped for the allow list: they are different destinations.
//! * Names rejected without a lookup ([`Rejection::LocalName`]) while the
//!   allow list is empty (production): `localhost` and `*.localhost` (RFC 6761), `*.local`
//!   (mDNS, RFC 6762), `*.internal` (private-use TLD; covers
//!   `metadata.google.internal`), `*.home.arpa` (RFC 8375), and single-label
//!   names such as `intranet` or `metadata`, whose meaning depends on the
//!   resolver search list. Trailing dots are ignored for this check. With
//!   an allow list (dev/tests), such names are resolved like any other and
//!   every address must still pass [`address_allowed`], so `localhost`
//!   works exactly when all its addresses are in the allow list.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Why a URL or address is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The scheme is not `https`.
    NotHttps,
    /// The URL carries a username or password.
    HasUserinfo,
    /// The URL has no host.
    NoHost,
    /// The (normalised) destination address is not allowed.
    Address(IpAddr),
    /// The host name only has a local meaning (`localhost`, `*.local`, ...).
    LocalName,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::NotHttps => f.write_str("the URL must use the https scheme"),
            Rejection::HasUserinfo => {
                f.write_str("the URL must not contain a username or password")
            }
            Rejection::NoHost => f.write_str("the URL has no host"),
            Rejection::Address(ip) => {
                write!(f, "the destination address {ip} is not publicly routable")
            }
            Rejection::LocalName => {
                f.write_str("the host name refers to the local machine or a local network")
            }
        }
    }
}

impl std::error::Error for Rejection {}

/// What a checked URL points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An IP literal that passed the policy (as normalised by the URL parser).
    Ip(IpAddr),
    /// A name (ASCII, lowercase, as the URL parser produced it) that must be
    /// resolved; every resolved address must pass [`address_allowed`].
    Domain(String),
}

/// Policy for one address (after DNS resolution or from an IP literal).
///
/// An address inside any network of `allow` is allowed even if it is
/// special-purpose; an IPv4-mapped IPv6 address is matched against `allow`
/// both as IPv6 and as its embedded IPv4 address. Everything else must be
/// [`is_global`].
pub fn address_allowed(ip: IpAddr, allow: &[ipnet::IpNet]) -> bool {
    let unwrapped = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
        IpAddr::V4(_) => None,
    };
    let listed = allow
        .iter()
        .any(|net| net.contains(&ip) || unwrapped.is_some_and(|v4| net.contains(&v4)));
    listed || is_global(ip)
}

/// Is this address globally reachable by the rules above (ignores the allow list).
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => is_global_v6(v6),
    }
}

/// Parse + check a URL: scheme, userinfo, host; IP literals are checked here, domains need DNS.
pub fn check_url(url: &Url, allow: &[ipnet::IpNet]) -> Result<Target, Rejection> {
    // The parser lowercases the scheme, so this is an exact comparison.
    if url.scheme() != "https" {
        return Err(Rejection::NotHttps);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Rejection::HasUserinfo);
    }
    let ip = match url.host() {
        None => return Err(Rejection::NoHost),
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(Host::Domain(name)) => {
            return if allow.is_empty() && is_local_name(name) {
                Err(Rejection::LocalName)
            } else {
                Ok(Target::Domain(name.to_owned()))
            };
        }
    };
    if address_allowed(ip, allow) {
        Ok(Target::Ip(ip))
    } else {
        Err(Rejection::Address(ip))
    }
}

/// Names that only have a meaning on this machine or the local network.
fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() || !name.contains('.') {
        // Single-label names are expanded through the resolver search list.
        return true;
    }
    const LOCAL_SUFFIXES: [&str; 4] = ["localhost", "local", "internal", "home.arpa"];
    LOCAL_SUFFIXES.iter().any(|suffix| {
        name == *suffix
            || name
                .strip_suffix(suffix)
                .is_some_and(|head| head.ends_with('.'))
    })
}

/// IPv4 networks that are not globally reachable, as `(network, prefix length)`.
const V4_REJECTED: [(u32, u32); 15] = [
    (0x0000_0000, 8),  // 0.0.0.0/8 "this network", incl. 0.0.0.0
    (0x0a00_0000, 8),  // 10.0.0.0/8 private
    (0x6440_0000, 10), // 100.64.0.0/10 CGNAT shared address space
    (0x7f00_0000, 8),  // 127.0.0.0/8 loopback
    (0xa9fe_0000, 16), // 169.254.0.0/16 link-local, incl. 169.254.169.254
    (0xac10_0000, 12), // 172.16.0.0/12 private
    (0xc000_0000, 24), // 192.0.0.0/24 IETF protocol assignments
    (0xc000_0200, 24), // 192.0.2.0/24 TEST-NET-1
    (0xc058_6300, 24), // 192.88.99.0/24 6to4 relay anycast
    (0xc0a8_0000, 16), // 192.168.0.0/16 private
    (0xc612_0000, 15), // 198.18.0.0/15 benchmarking
    (0xc633_6400, 24), // 198.51.100.0/24 TEST-NET-2
    (0xcb00_7100, 24), // 203.0.113.0/24 TEST-NET-3
    (0xe000_0000, 4),  // 224.0.0.0/4 multicast
    (0xf000_0000, 4),  // 240.0.0.0/4 reserved, incl. 255.255.255.255
];

fn in_v4(addr: u32, (net, len): (u32, u32)) -> bool {
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    addr & mask == net
}

fn in_v6(addr: u128, net: u128, len: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    addr & mask == net
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let addr = u32::from(ip);
    !V4_REJECTED.iter().any(|&net| in_v4(addr, net))
}

fn low_v4(addr: u128) -> Ipv4Addr {
    // Truncation to the low 32 bits is the point.
    Ipv4Addr::from((addr & 0xffff_ffff) as u32)
}

fn is_global_v6(ip: Ipv6Addr) -> bool {
    let addr = u128::from(ip);

    // Forms that carry an IPv4 address in their low 32 bits are judged by it.
    const V4_IN_LOW_BITS: [u128; 4] = [
        0x0000_0000_0000_0000_0000_ffff_0000_0000, // ::ffff:0:0/96 IPv4-mapped
        0x0000_0000_0000_0000_0000_0000_0000_0000, // ::/96 IPv4-compatible, incl. :: and ::1
        0x0064_ff9b_0000_0000_0000_0000_0000_0000, // 64:ff9b::/96 NAT64 well-known
        0x0064_ff9b_0001_0000_0000_0000_0000_0000, // 64:ff9b:1::/96 NAT64 local-use, /96 layout only
    ];
    if V4_IN_LOW_BITS.iter().any(|&net| in_v6(addr, net, 96)) {
        return is_global_v4(low_v4(addr));
    }
    if in_v6(addr, 0x2002_0000_0000_0000_0000_0000_0000_0000, 16) {
        // 6to4: the IPv4 address is in bits 16..48.
        return is_global_v4(low_v4(addr >> 80));
    }

    // Only 2000::/3 is global unicast; this rejects ::/8 (rest), 64:ff9b:1::/48
    // (other layouts), 100::/64, fc00::/7, fe80::/10, fec0::/10, ff00::/8, ...
    if !in_v6(addr, 0x2000_0000_0000_0000_0000_0000_0000_0000, 3) {
        return false;
    }
    const V6_REJECTED: [(u128, u32); 3] = [
        // 2001::/23 IETF protocol assignments: Teredo 2001::/32, benchmarking
        // 2001:2::/48, ORCHID 2001:10::/28, ORCHIDv2 2001:20::/28, ...
        (0x2001_0000_0000_0000_0000_0000_0000_0000, 23),
        (0x2001_0db8_0000_0000_0000_0000_0000_0000, 32), // documentation
        (0x3fff_0000_0000_0000_0000_0000_0000_0000, 20), // documentation
    ];
    !V6_REJECTED.iter().any(|&(net, len)| in_v6(addr, net, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected outcome of one table row.
    #[derive(Debug)]
    enum Want {
        /// `Ok(Target::Ip(..))` with this address.
        Allow(&'static str),
        /// `Ok(Target::Domain(..))` with this name.
        Domain(&'static str),
        /// `Err(Rejection::Address(..))` with this normalised address.
        Addr(&'static str),
        NotHttps,
        Userinfo,
        Local,
        /// `Url::parse` itself refuses the input.
        ParseErr,
    }
    use Want::*;

    const CASES: &[(&str, Want)] = &[
        // 127.0.0.1 in every numeric spelling.
        ("https://127.0.0.1/", Addr("127.0.0.1")),
        ("https://2130706433/", Addr("127.0.0.1")),
        ("https://0x7f000001/", Addr("127.0.0.1")),
        ("https://0x7f.1/", Addr("127.0.0.1")),
        ("https://0X7F.1/", Addr("127.0.0.1")),
        ("https://0X7F.0X0.0X0.0X1/", Addr("127.0.0.1")),
        ("https://127.1/", Addr("127.0.0.1")),
        ("https://127.0.1/", Addr("127.0.0.1")),
        ("https://017700000001/", Addr("127.0.0.1")),
        ("https://0177.0.0.1/", Addr("127.0.0.1")),
        ("https://0177.1/", Addr("127.0.0.1")),
        ("https://127.000.000.001/", Addr("127.0.0.1")),
        ("https://127.0.0.1./", Addr("127.0.0.1")),
        ("https://127.0.0.1:8443/x", Addr("127.0.0.1")),
        ("https://127.255.255.254/", Addr("127.255.255.254")),
        (
            "https://\u{ff11}\u{ff12}\u{ff17}.\u{ff10}.\u{ff10}.\u{ff11}/",
            Addr("127.0.0.1"),
        ),
        ("https://%31%32%37.0.0.1/", Addr("127.0.0.1")),
        ("https://%30x7f.1/", Addr("127.0.0.1")),
        // 10.0.0.1
        ("https://10.0.0.1/", Addr("10.0.0.1")),
        ("https://167772161/", Addr("10.0.0.1")),
        ("https://0xa000001/", Addr("10.0.0.1")),
        ("https://0xA.0.0.1/", Addr("10.0.0.1")),
        ("https://012.0.0.1/", Addr("10.0.0.1")),
        ("https://10.1/", Addr("10.0.0.1")),
        ("https://10.0.1./", Addr("10.0.0.1")),
        // 169.254.169.254 (cloud metadata)
        (
            "https://169.254.169.254/latest/meta-data/",
            Addr("169.254.169.254"),
        ),
        ("https://2852039166/", Addr("169.254.169.254")),
        ("https://0xa9fea9fe/", Addr("169.254.169.254")),
        ("https://0251.0376.0251.0376/", Addr("169.254.169.254")),
        ("https://169.254.43518/", Addr("169.254.169.254")),
        ("https://0xA9.0xFE.0xA9.0xFE./", Addr("169.254.169.254")),
        // this network / unspecified
        ("https://0.0.0.0/", Addr("0.0.0.0")),
        ("https://0/", Addr("0.0.0.0")),
        ("https://0x0/", Addr("0.0.0.0")),
        ("https://0.1.2.3/", Addr("0.1.2.3")),
        // IPv4-mapped / compatible / SIIT
        ("https://[::ffff:127.0.0.1]/", Addr("::ffff:127.0.0.1")),
        ("https://[::ffff:7f00:1]/", Addr("::ffff:127.0.0.1")),
        ("https://[::FFFF:7F00:1]/", Addr("::ffff:127.0.0.1")),
        (
            "https://[0:0:0:0:0:ffff:7f00:0001]/",
            Addr("::ffff:127.0.0.1"),
        ),
        (
            "https://[::ffff:169.254.169.254]/",
            Addr("::ffff:169.254.169.254"),
        ),
        ("https://[::ffff:a00:1]/", Addr("::ffff:10.0.0.1")),
        ("https://[::127.0.0.1]/", Addr("::127.0.0.1")),
        ("https://[::a00:1]/", Addr("::10.0.0.1")),
        ("https://[::ffff:0:7f00:1]/", Addr("::ffff:0:7f00:1")),
        ("https://[::ffff:0:808:808]/", Addr("::ffff:0:808:808")),
        ("https://[::ffff:8.8.8.8]/", Allow("::ffff:8.8.8.8")),
        ("https://[::ffff:808:808]/", Allow("::ffff:8.8.8.8")),
        ("https://[::8.8.8.8]/", Allow("::8.8.8.8")),
        // NAT64
        ("https://[64:ff9b::7f00:1]/", Addr("64:ff9b::7f00:1")),
        (
            "https://[64:ff9b::169.254.169.254]/",
            Addr("64:ff9b::a9fe:a9fe"),
        ),
        ("https://[64:ff9b::808:808]/", Allow("64:ff9b::808:808")),
        ("https://[64:ff9b:1::a00:1]/", Addr("64:ff9b:1::a00:1")),
        ("https://[64:ff9b:1::808:808]/", Allow("64:ff9b:1::808:808")),
        (
            "https://[64:ff9b:1:ab::808:808]/",
            Addr("64:ff9b:1:ab::808:808"),
        ),
        (
            "https://[64:ff9b:0:0:1::808:808]/",
            Addr("64:ff9b::1:0:808:808"),
        ),
        // 6to4
        ("https://[2002:7f00:1::]/", Addr("2002:7f00:1::")),
        ("https://[2002:c0a8:101::1]/", Addr("2002:c0a8:101::1")),
        ("https://[2002:a9fe:a9fe::1]/", Addr("2002:a9fe:a9fe::1")),
        ("https://[2002:c058:6301::1]/", Addr("2002:c058:6301::1")),
        ("https://[2002:808:808::1]/", Allow("2002:808:808::1")),
        // Teredo, benchmarking, ORCHIDv2
        (
            "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
            Addr("2001:0:4136:e378:8000:63bf:3fff:fdd2"),
        ),
        ("https://[2001:2::1]/", Addr("2001:2::1")),
        ("https://[2001:20::1]/", Addr("2001:20::1")),
        // IPv6 loopback, unspecified, link-local, ULA, site-local, multicast
        ("https://[::1]/", Addr("::1")),
        ("https://[0:0:0:0:0:0:0:1]:443/", Addr("::1")),
        ("https://[::]/", Addr("::")),
        ("https://[fe80::1%25eth0]/", ParseErr),
        ("https://[fe80::1]/", Addr("fe80::1")),
        ("https://[FE80::A9FE:A9FE]/", Addr("fe80::a9fe:a9fe")),
        ("https://[fc00::1]/", Addr("fc00::1")),
        ("https://[fd00::1]/", Addr("fd00::1")),
        ("https://[fd00:ec2::254]/", Addr("fd00:ec2::254")),
        ("https://[fec0::1]/", Addr("fec0::1")),
        ("https://[ff02::1]/", Addr("ff02::1")),
        ("https://[ff0e::1]/", Addr("ff0e::1")),
        ("https://[100::1]/", Addr("100::1")),
        ("https://[2001:db8::1]/", Addr("2001:db8::1")),
        ("https://[3fff::1]/", Addr("3fff::1")),
        ("https://[5f00::1]/", Addr("5f00::1")),
        // IPv4 special-purpose
        ("https://224.0.0.1/", Addr("224.0.0.1")),
        ("https://239.255.255.250/", Addr("239.255.255.250")),
        ("https://255.255.255.255/", Addr("255.255.255.255")),
        ("https://4294967295/", Addr("255.255.255.255")),
        ("https://240.0.0.1/", Addr("240.0.0.1")),
        ("https://100.64.0.1/", Addr("100.64.0.1")),
        ("https://100.127.255.254/", Addr("100.127.255.254")),
        ("https://192.0.2.1/", Addr("192.0.2.1")),
        ("https://198.51.100.7/", Addr("198.51.100.7")),
        ("https://203.0.113.9/", Addr("203.0.113.9")),
        ("https://198.18.0.1/", Addr("198.18.0.1")),
        ("https://198.19.255.255/", Addr("198.19.255.255")),
        ("https://192.0.0.1/", Addr("192.0.0.1")),
        ("https://192.0.0.9/", Addr("192.0.0.9")),
        ("https://192.88.99.1/", Addr("192.88.99.1")),
        ("https://172.16.0.1/", Addr("172.16.0.1")),
        ("https://172.31.255.255/", Addr("172.31.255.255")),
        ("https://192.168.1.1/", Addr("192.168.1.1")),
        // Public addresses, including range boundaries.
        ("https://8.8.8.8/", Allow("8.8.8.8")),
        ("https://134744072/", Allow("8.8.8.8")),
        ("https://1.1.1.1:8443/", Allow("1.1.1.1")),
        ("https://172.32.0.1/", Allow("172.32.0.1")),
        ("https://100.128.0.1/", Allow("100.128.0.1")),
        ("https://198.20.0.1/", Allow("198.20.0.1")),
        ("https://223.255.255.255/", Allow("223.255.255.255")),
        (
            "https://[2606:4700:4700::1111]/",
            Allow("2606:4700:4700::1111"),
        ),
        (
            "https://[2001:4860:4860::8888]/",
            Allow("2001:4860:4860::8888"),
        ),
        ("https://[2001:200::1]/", Allow("2001:200::1")),
        ("HTTPS://8.8.8.8/", Allow("8.8.8.8")),
        // Schemes.
        ("http://8.8.8.8/", NotHttps),
        ("http://127.0.0.1/", NotHttps),
        ("http://idp.example.com/", NotHttps),
        ("ftp://idp.example.com/", NotHttps),
        ("wss://idp.example.com/", NotHttps),
        ("file:///etc/passwd", NotHttps),
        ("gopher://127.0.0.1:6379/_INFO", NotHttps),
        // Userinfo tricks: the classified host is the one the parser found.
        ("https://evil.com@127.0.0.1/", Userinfo),
        ("https://8.8.8.8@127.0.0.1/", Userinfo),
        ("https://user:pass@idp.example.com/", Userinfo),
        ("https://:pass@idp.example.com/", Userinfo),
        ("https://127.0.0.1#@evil.com", Addr("127.0.0.1")),
        ("https://127.0.0.1?@evil.com", Addr("127.0.0.1")),
        ("https://127.0.0.1\\@evil.com", Addr("127.0.0.1")),
        ("https://evil.com\\@127.0.0.1/", Domain("evil.com")),
        ("https://evil.com%40127.0.0.1/", ParseErr),
        // Names.
        ("https://idp.example.com/x", Domain("idp.example.com")),
        ("https://IdP.Example.COM./", Domain("idp.example.com.")),
        (
            "https://b\u{fc}cher.example/",
            Domain("xn--bcher-kva.example"),
        ),
        (
            "https://localhost.example.com/",
            Domain("localhost.example.com"),
        ),
        ("https://127.0.0.1.nip.io/", Domain("127.0.0.1.nip.io")),
        ("https://0x7f.0x0.0x0.0x1g/", Domain("0x7f.0x0.0x0.0x1g")),
        ("https://localhost/", Local),
        ("https://LOCALHOST./", Local),
        ("https://localhost:8443/", Local),
        ("https://foo.localhost/", Local),
        ("https://a.b.LocalHost./", Local),
        (
            "https://\u{ff4c}\u{ff4f}\u{ff43}\u{ff41}\u{ff4c}\u{ff48}\u{ff4f}\u{ff53}\u{ff54}/",
            Local,
        ),
        ("https://printer.local/", Local),
        ("https://metadata.google.internal/", Local),
        ("https://router.home.arpa/", Local),
        ("https://intranet/", Local),
        ("https://metadata./", Local),
        // Malformed numeric hosts never reach the policy.
        ("https://1.2.3.4.5/", ParseErr),
        ("https://256.0.0.1/", ParseErr),
        ("https://127.0.0.1.5/", ParseErr),
        ("https://[::ffff:127.0.0.1.1]/", ParseErr),
    ];

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    fn check_str(input: &str, allow: &[ipnet::IpNet]) -> Option<Result<Target, Rejection>> {
        Url::parse(input).ok().map(|url| check_url(&url, allow))
    }

    #[test]
    fn table() {
        assert!(CASES.len() >= 60, "only {} cases", CASES.len());
        let mut failures = Vec::new();
        for (input, want) in CASES {
            let got = check_str(input, &[]);
            let ok = match (want, &got) {
                (ParseErr, None) => true,
                (Allow(a), Some(Ok(Target::Ip(g)))) => ip(a) == Some(*g),
                (Addr(a), Some(Err(Rejection::Address(g)))) => ip(a) == Some(*g),
                (Domain(d), Some(Ok(Target::Domain(g)))) => d == g,
                (NotHttps, Some(Err(Rejection::NotHttps)))
                | (Userinfo, Some(Err(Rejection::HasUserinfo)))
                | (Local, Some(Err(Rejection::LocalName))) => true,
                _ => false,
            };
            if !ok {
                failures.push(format!("{input:?}: want {want:?}, got {got:?}"));
            }
        }
        assert!(
            failures.is_empty(),
            "{} failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
        let parsed: Vec<ipnet::IpNet> = list.iter().filter_map(|s| s.parse().ok()).collect();
        assert_eq!(parsed.len(), list.len(), "bad test network in {list:?}");
        parsed
    }

    fn allowed(addr: &str, allow: &[ipnet::IpNet]) -> bool {
        ip(addr).is_some_and(|a| address_allowed(a, allow))
    }

    #[test]
    fn allow_list_loopback_v4() {
        let allow = nets(&["127.0.0.0/8"]);
        assert!(allowed("127.0.0.1", &allow));
        assert!(allowed("127.9.8.7", &allow));
        assert!(allowed("::ffff:127.0.0.1", &allow));
        assert!(!allowed("10.0.0.1", &allow));
        assert!(!allowed("::1", &allow));
        assert!(
            !allowed("::127.0.0.1", &allow),
            "compatible is not unwrapped"
        );
        assert!(
            !allowed("64:ff9b::7f00:1", &allow),
            "NAT64 is not unwrapped"
        );
        assert!(allowed("8.8.8.8", &allow), "public stays allowed");

        assert_eq!(
            check_str("https://127.0.0.1:8443/cb", &allow),
            ip("127.0.0.1").map(|a| Ok(Target::Ip(a)))
        );
        assert!(matches!(
            check_str("https://0x7f.1/", &allow),
            Some(Ok(Target::Ip(_)))
        ));
        assert!(matches!(
            check_str("https://[::ffff:7f00:1]/", &allow),
            Some(Ok(Target::Ip(_)))
        ));
        // with an allow list, a local name is resolved and its addresses
        // checked against it (see the resolver); without one it is refused
        assert_eq!(
            check_str("https://localhost/", &allow),
            Some(Ok(Target::Domain("localhost".into())))
        );
        assert_eq!(
            check_str("https://localhost/", &[]),
            Some(Err(Rejection::LocalName))
        );
        assert_eq!(
            check_str("http://127.0.0.1/", &allow),
            Some(Err(Rejection::NotHttps))
        );
        assert_eq!(
            check_str("https://u@127.0.0.1/", &allow),
            Some(Err(Rejection::HasUserinfo))
        );
        assert!(matches!(
            check_str("https://10.0.0.1/", &allow),
            Some(Err(Rejection::Address(_)))
        ));
    }

    #[test]
    fn allow_list_loopback_v6() {
        let allow = nets(&["::1/128"]);
        assert!(allowed("::1", &allow));
        assert!(!allowed("127.0.0.1", &allow));
        assert!(!allowed("::", &allow));
        assert!(!allowed("::2", &allow));
        assert!(matches!(
            check_str("https://[::1]:8443/", &allow),
            Some(Ok(Target::Ip(_)))
        ));
        assert!(matches!(
            check_str("https://[::]/", &allow),
            Some(Err(Rejection::Address(_)))
        ));
    }

    #[test]
    fn allow_list_mixed() {
        let allow = nets(&["10.1.0.0/16", "fd00::/8"]);
        assert!(allowed("10.1.2.3", &allow));
        assert!(allowed("::ffff:10.1.2.3", &allow));
        assert!(!allowed("10.2.0.1", &allow));
        assert!(allowed("fd00::1", &allow));
        assert!(!allowed("fc00::1", &allow));
        assert!(!allowed("169.254.169.254", &allow));
        assert!(!allowed("127.0.0.1", &[]));
        assert!(allowed("1.1.1.1", &[]));
    }

    /// Every IPv6 embedding of an IPv4 address is judged like the IPv4 address.
    #[test]
    fn embeddings_agree_with_v4() {
        let samples = [
            "0.0.0.0",
            "0.0.0.1",
            "10.0.0.1",
            "100.64.0.1",
            "127.0.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "192.0.0.9",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.0.1",
            "198.18.0.1",
            "198.51.100.1",
            "203.0.113.1",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "8.8.8.8",
            "1.1.1.1",
            "100.128.0.0",
            "172.32.0.0",
            "9.255.255.255",
            "11.0.0.0",
            "126.255.255.255",
            "128.0.0.0",
        ];
        let mut failures = Vec::new();
        for s in samples {
            let Ok(v4) = s.parse::<Ipv4Addr>() else {
                failures.push(format!("bad sample {s}"));
                continue;
            };
            let bits = u128::from(u32::from(v4));
            let want = is_global(IpAddr::V4(v4));
            let forms = [
                ("mapped", bits | 0xffff_0000_0000),
                ("compatible", bits),
                ("nat64", bits | (0x0064_ff9b_u128 << 96)),
                ("nat64-local", bits | (0x0064_ff9b_0001_u128 << 80)),
                ("6to4", (0x2002_u128 << 112) | (bits << 80) | 1),
            ];
            for (name, form) in forms {
                if is_global(IpAddr::V6(Ipv6Addr::from(form))) != want {
                    failures.push(format!("{name} form of {s}: want global={want}"));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn display_names_only_the_address() {
        let msgs = [
            Rejection::NotHttps.to_string(),
            Rejection::HasUserinfo.to_string(),
            Rejection::NoHost.to_string(),
            Rejection::LocalName.to_string(),
            Rejection::Address(IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254))).to_string(),
        ];
        assert!(msgs.iter().all(|m| !m.is_empty()));
        assert!(msgs[4].contains("169.254.169.254"));
        let err: &dyn std::error::Error = &Rejection::NoHost;
        assert!(err.source().is_none());
    }
}
