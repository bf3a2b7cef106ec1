//! Which sources a GIF task may read, decided before a byte is fetched (server-side request
//! forgery defence, first line).
//!
//! The converter fetches URLs that strangers submit, from inside the account's network, where a
//! URL such as `http://169.254.169.254/latest/meta-data/` would hand out the function's own
//! credentials. So:
//!
//! * **Schemes**: `http`, `https`, and `s3://bucket/key` for the one configured input bucket.
//!   `file`, `gopher`, `ftp`, `data`, … are refused by name.
//! * **Parsing** is the WHATWG URL algorithm (the `url` crate: what browsers do), which
//!   normalises every spelling of an IPv4 host first: `http://2130706433/`, `http://0x7f.1/`,
//!   `http://0177.0.0.1/` and `http://127.1/` all *are* `127.0.0.1` by the time they are
//!   checked, so an encoded address cannot pass as a "name". Credentials in the URL
//!   (`http://user@host/`) are refused: they only serve to disguise the host.
//! * **Addresses**: [`AddressPolicy`] admits only public unicast addresses. Loopback, private,
//!   link-local (the metadata service), unspecified, carrier-grade NAT, benchmarking,
//!   documentation, multicast, broadcast and reserved ranges are refused, in IPv4 and IPv6;
//!   IPv4-mapped, NAT64 and IPv4-compatible IPv6 forms are judged by the IPv4 address inside,
//!   and 6to4/Teredo tunnels (which can reach anything) are refused. The table follows IANA's
//!   special-purpose registries; std's `IpAddr::is_global` would say the same but is unstable.
//! * **Allow-list**: local tests and the demo serve sources on loopback, so a deployment may list
//!   exact loopback socket addresses (`127.0.0.1:4566`) that are permitted. Only loopback
//!   entries are accepted (a misconfigured list cannot open the private network), and
//!   production leaves it empty.
//!
//! Host names are resolved and every address checked by the converter's fetcher, which then
//! connects to the very address it checked (see `gif-converter`'s `fetch` module): this module
//! is the pure part both the API (fail fast, 400) and the converter (defence in depth) apply.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use crate::{Code, ProcessingError};

/// Longest source URL accepted (presigned URLs run to about 1,500 characters).
pub const MAX_URL_CHARS: usize = 4096;

/// A source as submitted, checked for everything that can be checked without the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceUrl {
    /// An `http` or `https` URL whose host is a name (resolved and checked at fetch time) or an
    /// address already checked by the policy.
    Http(url::Url),
    /// An object in the configured input bucket, key taken verbatim.
    S3 { bucket: String, key: String },
}

impl SourceUrl {
    /// Parses and checks `text`. `input_bucket` is the only bucket `s3://` may name.
    pub fn parse(text: &str, policy: &AddressPolicy, input_bucket: &str) -> Result<SourceUrl, ProcessingError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(refused(Code::SourceUrlInvalid, "the source URL is empty"));
        }
        if text.chars().count() > MAX_URL_CHARS {
            return Err(refused(
                Code::SourceUrlInvalid,
                format!("the source URL is longer than {MAX_URL_CHARS} characters"),
            ));
        }
        if let Some(rest) = strip_prefix_ignore_case(text, "s3://") {
            return parse_s3(rest, input_bucket);
        }
        let url = url::Url::parse(text)
            .map_err(|e| refused(Code::SourceUrlInvalid, format!("the source URL is not a URL: {e}")))?;
        match url.scheme() {
            "http" | "https" => {}
            other => {
                return Err(refused(
                    Code::SourceSchemeRefused,
                    format!("the {other}: scheme is not accepted; use http, https or s3://{input_bucket}/<key>"),
                ))
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refused(
                Code::SourceUrlInvalid,
                "credentials in the source URL are not accepted",
            ));
        }
        let port = url.port_or_known_default().unwrap_or(80);
        match url.host() {
            None => return Err(refused(Code::SourceUrlInvalid, "the source URL has no host")),
            Some(url::Host::Ipv4(ip)) => policy.check(SocketAddr::new(IpAddr::V4(ip), port), &ip.to_string())?,
            Some(url::Host::Ipv6(ip)) => policy.check(SocketAddr::new(IpAddr::V6(ip), port), &format!("[{ip}]"))?,
            Some(url::Host::Domain(_)) => {}
        }
        Ok(SourceUrl::Http(url))
    }

    /// The URL as shown to people and stored with the task; presigned query strings dropped.
    pub fn display_without_query(&self) -> String {
        match self {
            SourceUrl::Http(url) => url_without_query(url),
            SourceUrl::S3 { bucket, key } => format!("s3://{bucket}/{key}"),
        }
    }
}

/// `url` for messages and logs: query and fragment dropped, since a presigned query string is a
/// credential.
pub fn url_without_query(url: &url::Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

fn parse_s3(rest: &str, input_bucket: &str) -> Result<SourceUrl, ProcessingError> {
    let (bucket, key) = rest
        .split_once('/')
        .ok_or_else(|| refused(Code::SourceUrlInvalid, "an s3:// source must be s3://<bucket>/<key>"))?;
    if key.is_empty() {
        return Err(refused(Code::SourceUrlInvalid, "the s3:// source names no key"));
    }
    if bucket != input_bucket {
        return Err(refused(
            Code::SourceBucketRefused,
            format!("s3:// sources must be in the input bucket {input_bucket:?}, not {bucket:?}"),
        ));
    }
    Ok(SourceUrl::S3 {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
    })
}

fn refused(code: Code, reason: impl Into<String>) -> ProcessingError {
    ProcessingError::rejected(code, reason)
}

/// Why an address is not public.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Unspecified,
    Loopback,
    Private,
    LinkLocal,
    SharedCgnat,
    Benchmarking,
    Documentation,
    Multicast,
    Broadcast,
    Reserved,
    Tunnel,
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressClass::Unspecified => "unspecified",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::LinkLocal => "link-local (includes the cloud metadata service)",
            AddressClass::SharedCgnat => "carrier-grade NAT (shared)",
            AddressClass::Benchmarking => "benchmarking",
            AddressClass::Documentation => "documentation",
            AddressClass::Multicast => "multicast",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Reserved => "reserved",
            AddressClass::Tunnel => "IPv6 transition tunnel",
        })
    }
}

/// `None` for a public unicast address, otherwise the reason it is not one.
pub fn classify(ip: IpAddr) -> Option<AddressClass> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, network: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(network)) & mask
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddressClass> {
    use AddressClass::*;
    // IANA IPv4 Special-Purpose Address Registry, most specific first where they nest.
    const TABLE: &[([u8; 4], u32, AddressClass)] = &[
        ([255, 255, 255, 255], 32, Broadcast),
        ([0, 0, 0, 0], 8, Unspecified),
        ([10, 0, 0, 0], 8, Private),
        ([100, 64, 0, 0], 10, SharedCgnat),
        ([127, 0, 0, 0], 8, Loopback),
        ([169, 254, 0, 0], 16, LinkLocal),
        ([172, 16, 0, 0], 12, Private),
        ([192, 0, 0, 0], 24, Reserved),
        ([192, 0, 2, 0], 24, Documentation),
        ([192, 88, 99, 0], 24, Reserved),
        ([192, 168, 0, 0], 16, Private),
        ([198, 18, 0, 0], 15, Benchmarking),
        ([198, 51, 100, 0], 24, Documentation),
        ([203, 0, 113, 0], 24, Documentation),
        ([224, 0, 0, 0], 4, Multicast),
        ([240, 0, 0, 0], 4, Reserved),
    ];
    TABLE
        .iter()
        .find(|(network, prefix, _)| in_v4(ip, *network, *prefix))
        .map(|(_, _, class)| *class)
}

fn in_v6(ip: Ipv6Addr, network: Ipv6Addr, prefix: u32) -> bool {
    let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
    u128::from(ip) & mask == u128::from(network) & mask
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddressClass> {
    use AddressClass::*;
    if ip.is_unspecified() {
        return Some(Unspecified);
    }
    if ip.is_loopback() {
        return Some(Loopback);
    }
    let segments = ip.segments();
    let embedded_v4 = || Ipv4Addr::from((u128::from(ip) & 0xffff_ffff) as u32);
    // ::ffff:a.b.c.d (IPv4-mapped): the socket really talks IPv4 to a.b.c.d.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    // 64:ff9b::/96 (well-known NAT64 prefix): a translator forwards to the IPv4 inside.
    if in_v6(ip, Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96) {
        return classify_v4(embedded_v4());
    }
    // ::/96 (IPv4-compatible, deprecated): never legitimate today; judge it like the IPv4 inside
    // and refuse it even when that is public.
    if in_v6(ip, Ipv6Addr::UNSPECIFIED, 96) {
        return Some(classify_v4(embedded_v4()).unwrap_or(Reserved));
    }
    let table: [(Ipv6Addr, u32, AddressClass); 10] = [
        (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48, Private), // local-use NAT64
        (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64, Reserved),    // discard-only
        (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32, Documentation),
        (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32, Tunnel), // Teredo
        (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23, Reserved), // IETF protocol assignments
        (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16, Tunnel), // 6to4
        (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, Private), // unique local (fd00:ec2::254 = metadata)
        (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, LinkLocal),
        (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, Private), // site-local, deprecated
        (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, Multicast),
    ];
    if let Some((_, _, class)) = table.iter().find(|(net, prefix, _)| in_v6(ip, *net, *prefix)) {
        return Some(*class);
    }
    // Only 2000::/3 is allocated as global unicast; anything else is not (yet) a real host.
    if segments[0] & 0xe000 != 0x2000 {
        return Some(Reserved);
    }
    None
}

/// The one rule for destinations: public unicast addresses, plus the listed loopback ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allowed_loopback: Vec<SocketAddr>,
}

impl AddressPolicy {
    /// Public addresses only (production).
    pub fn public_only() -> Self {
        Self::default()
    }

    /// Public addresses and the listed loopback socket addresses. Non-loopback entries are an
    /// error: the allow-list exists for local sources, not to open the private network.
    pub fn with_loopback_allow_list(entries: Vec<SocketAddr>) -> Result<Self, String> {
        if let Some(bad) = entries.iter().find(|e| !e.ip().is_loopback()) {
            return Err(format!(
                "{bad} is not a loopback address; only loopback sources may be allow-listed"
            ));
        }
        Ok(Self {
            allowed_loopback: entries,
        })
    }

    pub fn allow_list(&self) -> &[SocketAddr] {
        &self.allowed_loopback
    }

    /// Whether a connection to `destination` is permitted; `shown_host` names it in the reason.
    pub fn check(&self, destination: SocketAddr, shown_host: &str) -> Result<(), ProcessingError> {
        let ip = canonical(destination.ip());
        let Some(class) = classify(ip) else {
            return Ok(());
        };
        let canonical_destination = SocketAddr::new(ip, destination.port());
        if class == AddressClass::Loopback
            && self
                .allowed_loopback
                .iter()
                .any(|allowed| SocketAddr::new(canonical(allowed.ip()), allowed.port()) == canonical_destination)
        {
            return Ok(());
        }
        let shown_address = if shown_host.trim_matches(['[', ']']) == ip.to_string() {
            String::new()
        } else {
            format!(" resolves to {ip}, which")
        };
        Err(ProcessingError::rejected(
            Code::SourceAddressForbidden,
            format!(
                "{shown_host}{shown_address} is a {class} address (port {}); only public addresses are fetched",
                destination.port()
            ),
        ))
    }
}

/// IPv4-mapped IPv6 addresses compared as the IPv4 address they are.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The policy from `variable` (a comma-separated list of loopback `address:port`s, empty in
/// production), problems reported through the reader like any other variable's.
pub fn policy_from_env(env: &mut crate::config::EnvReader, variable: &str) -> AddressPolicy {
    let entries: Vec<AllowedSocket> = env.list_or(variable, Vec::new());
    match AddressPolicy::with_loopback_allow_list(entries.into_iter().map(|a| a.0).collect()) {
        Ok(policy) => policy,
        Err(problem) => {
            env.check(false, variable, &problem);
            AddressPolicy::public_only()
        }
    }
}

/// One allow-list entry, `127.0.0.1:4566` or `[::1]:8080`, as read from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllowedSocket(pub SocketAddr);

impl FromStr for AllowedSocket {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.parse::<SocketAddr>()
            .map(AllowedSocket)
            .map_err(|_| format!("expected an address:port such as 127.0.0.1:4566, got {text:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUCKET: &str = "inputs";

    fn parse(text: &str) -> Result<SourceUrl, ProcessingError> {
        SourceUrl::parse(text, &AddressPolicy::public_only(), BUCKET)
    }

    /// The refusal's code, `None` when the URL is accepted.
    fn code(text: &str) -> Option<Code> {
        parse(text).err().map(|e| e.code())
    }

    #[test]
    fn the_refusal_list_is_refused_by_name_before_any_network() {
        for url in [
            "http://127.0.0.1/video.mp4",
            "http://[::1]/video.mp4",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://0.0.0.0/",
            "http://2130706433/",         // decimal 127.0.0.1
            "http://0x7f000001/",         // hex
            "http://0177.0.0.1/",         // octal
            "http://0x7f.1/",             // mixed short form
            "http://127.1/",              // short form
            "http://017700000001/",       // octal whole number
            "http://2852039166/",         // decimal 169.254.169.254
            "http://[::ffff:127.0.0.1]/", // IPv4-mapped
            "http://[::ffff:a9fe:a9fe]/", // IPv4-mapped metadata, hex spelling
            "http://[::127.0.0.1]/",      // IPv4-compatible
            "http://[64:ff9b::a00:1]/",   // NAT64 to 10.0.0.1
            "http://[fd00:ec2::254]/",    // the metadata service over IPv6
            "http://[fe80::1]/",
            "http://[::]/",
            "HTTP://LOCALHOST.:80@127.0.0.1/", // userinfo disguise
        ] {
            let err = parse(url).unwrap_err();
            assert!(
                [Code::SourceAddressForbidden, Code::SourceUrlInvalid].contains(&err.code()),
                "{url}: {err}"
            );
            assert!(!err.is_retryable(), "{url}");
        }
        assert_eq!(code("http://2130706433/"), Some(Code::SourceAddressForbidden));
        let reason = parse("http://169.254.169.254/").unwrap_err().reason;
        assert!(reason.contains("link-local"), "{reason}");
    }

    #[test]
    fn other_schemes_are_refused_by_name() {
        for url in [
            "file:///etc/passwd",
            "gopher://example.com:70/_GET",
            "ftp://example.com/a.mp4",
            "data:video/mp4;base64,AAAA",
            "dict://example.com:11211/",
            "javascript:alert(1)",
        ] {
            assert_eq!(code(url), Some(Code::SourceSchemeRefused), "{url}");
        }
        assert_eq!(code("not a url"), Some(Code::SourceUrlInvalid));
        assert_eq!(code(""), Some(Code::SourceUrlInvalid));
        assert_eq!(
            code(&format!("http://example.com/{}", "a".repeat(MAX_URL_CHARS))),
            Some(Code::SourceUrlInvalid)
        );
    }

    #[test]
    fn public_hosts_and_names_pass_the_static_check() {
        for url in [
            "http://example.com/video.mp4",
            "https://example.com:8443/a%20b.mp4?X-Amz-Signature=abc",
            "http://93.184.216.34/v.mp4",
            "http://[2606:2800:220:1:248:1893:25c8:1946]/v.mp4",
            "http://localhost/x", // a name: resolved and refused at fetch time
        ] {
            assert!(matches!(parse(url), Ok(SourceUrl::Http(_))), "{url}");
        }
    }

    #[test]
    fn s3_sources_only_in_the_input_bucket() {
        assert_eq!(
            parse("s3://inputs/dir/my clip+1.mp4").unwrap(),
            SourceUrl::S3 {
                bucket: "inputs".into(),
                key: "dir/my clip+1.mp4".into()
            }
        );
        assert_eq!(code("S3://inputs/a.mp4"), None);
        assert_eq!(code("s3://other-bucket/a.mp4"), Some(Code::SourceBucketRefused));
        assert_eq!(code("s3://inputs/"), Some(Code::SourceUrlInvalid));
        assert_eq!(code("s3://inputs"), Some(Code::SourceUrlInvalid));
    }

    #[test]
    fn classification_covers_the_special_ranges() {
        let v4 = |s: &str| classify(s.parse().unwrap());
        use AddressClass::*;
        assert_eq!(v4("127.0.0.1"), Some(Loopback));
        assert_eq!(v4("127.255.255.254"), Some(Loopback));
        assert_eq!(v4("10.255.0.1"), Some(Private));
        assert_eq!(v4("172.16.0.1"), Some(Private));
        assert_eq!(v4("172.31.255.255"), Some(Private));
        assert_eq!(v4("172.32.0.1"), None);
        assert_eq!(v4("192.168.1.1"), Some(Private));
        assert_eq!(v4("169.254.169.254"), Some(LinkLocal));
        assert_eq!(v4("0.0.0.0"), Some(Unspecified));
        assert_eq!(v4("0.1.2.3"), Some(Unspecified));
        assert_eq!(v4("100.64.0.1"), Some(SharedCgnat));
        assert_eq!(v4("100.128.0.1"), None);
        assert_eq!(v4("198.18.0.1"), Some(Benchmarking));
        assert_eq!(v4("198.19.255.255"), Some(Benchmarking));
        assert_eq!(v4("192.0.2.1"), Some(Documentation));
        assert_eq!(v4("224.0.0.1"), Some(Multicast));
        assert_eq!(v4("240.0.0.1"), Some(Reserved));
        assert_eq!(v4("255.255.255.255"), Some(Broadcast));
        assert_eq!(v4("8.8.8.8"), None);
        assert_eq!(v4("1.1.1.1"), None);
        assert_eq!(v4("::1"), Some(Loopback));
        assert_eq!(v4("::"), Some(Unspecified));
        assert_eq!(v4("::ffff:10.0.0.1"), Some(Private));
        assert_eq!(v4("::ffff:8.8.8.8"), None);
        assert_eq!(v4("::8.8.8.8"), Some(Reserved));
        assert_eq!(v4("64:ff9b::8.8.8.8"), None);
        assert_eq!(v4("64:ff9b::169.254.169.254"), Some(LinkLocal));
        assert_eq!(v4("64:ff9b:1::1"), Some(Private));
        assert_eq!(v4("fc00::1"), Some(Private));
        assert_eq!(v4("fd00:ec2::254"), Some(Private));
        assert_eq!(v4("fe80::1"), Some(LinkLocal));
        assert_eq!(v4("fec0::1"), Some(Private));
        assert_eq!(v4("ff02::1"), Some(Multicast));
        assert_eq!(v4("2001:db8::1"), Some(Documentation));
        assert_eq!(v4("2001::1"), Some(Tunnel));
        assert_eq!(v4("2002:7f00:1::1"), Some(Tunnel));
        assert_eq!(v4("100::1"), Some(Reserved));
        assert_eq!(v4("4000::1"), Some(Reserved));
        assert_eq!(v4("2606:4700:4700::1111"), None);
    }

    #[test]
    fn the_allow_list_admits_exact_loopback_sockets_only() {
        let policy = AddressPolicy::with_loopback_allow_list(vec!["127.0.0.1:4566".parse().unwrap()]).unwrap();
        let check = |s: &str| policy.check(s.parse().unwrap(), "host").err().map(|e| e.code());
        assert_eq!(check("127.0.0.1:4566"), None);
        assert_eq!(check("[::ffff:127.0.0.1]:4566"), None);
        assert_eq!(check("127.0.0.1:4567"), Some(Code::SourceAddressForbidden));
        assert_eq!(check("127.0.0.2:4566"), Some(Code::SourceAddressForbidden));
        assert_eq!(check("[::1]:4566"), Some(Code::SourceAddressForbidden));
        assert_eq!(check("10.0.0.1:4566"), Some(Code::SourceAddressForbidden));
        assert_eq!(check("8.8.8.8:80"), None);
        // Through the URL parser too: listed loopback passes, the same host on port 80 does not.
        assert!(SourceUrl::parse("http://127.0.0.1:4566/b/k?sig=1", &policy, BUCKET).is_ok());
        assert!(SourceUrl::parse("http://127.0.0.1/b/k", &policy, BUCKET).is_err());
        assert!(AddressPolicy::with_loopback_allow_list(vec!["10.0.0.1:80".parse().unwrap()]).is_err());
        assert!(AddressPolicy::with_loopback_allow_list(vec!["169.254.169.254:80".parse().unwrap()]).is_err());
        assert!("localhost:80".parse::<AllowedSocket>().is_err());
        assert_eq!(
            "[::1]:8080".parse::<AllowedSocket>().unwrap().0,
            "[::1]:8080".parse::<SocketAddr>().unwrap()
        );
    }

    #[test]
    fn the_shown_url_drops_presigned_query_strings() {
        let source = parse("https://example.com/a.mp4?X-Amz-Signature=secret#t=3").unwrap();
        assert_eq!(source.display_without_query(), "https://example.com/a.mp4");
    }
}
