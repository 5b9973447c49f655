//! Where outgoing requests may go: webhooks, and the audio of jobs submitted by URL.
//!
//! A webhook URL (or an audio URL) is chosen by an API client, and the server then makes a request to it from
//! inside our network. Left unchecked, that lets anyone make the server call its own admin
//! ports, the database, other hosts on the private network, or the cloud metadata service
//! (`169.254.169.254`, `fd00:ec2::254`), which hands out credentials: server-side request
//! forgery (SSRF). This module refuses every destination that is not a public unicast address,
//! in two places:
//!
//! - [`check_url`], when a URL is accepted and again before each send: the scheme, the shape of
//!   the URL, IP-literal hosts and the names of this machine (`localhost`).
//! - [`GuardedResolver`], inside the HTTP [`client`], on every connection: the addresses a host
//!   name resolves to. Checking the name's addresses once when the URL is accepted is not
//!   enough, as its DNS records can change between the check and the request (DNS rebinding).
//!
//! Both take `allow_private`, for deployments whose webhook receivers live on their own network.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// The longest webhook URL accepted, in bytes (all of a valid URL is ASCII, so also characters).
pub const MAX_URL_LEN: usize = 2048;

/// The longest a [`client`] waits to establish a connection, whatever its total timeout.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a webhook destination is refused. The messages are written for API clients.
#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    /// The URL is longer than [`MAX_URL_LEN`]; nothing that long is a real endpoint, and it
    /// would be stored and logged with every job.
    #[error("URLs must be at most {} characters", MAX_URL_LEN)]
    TooLong,
    /// The text is not a URL at all.
    #[error("the URL is not valid: {0}")]
    Invalid(#[from] url::ParseError),
    /// The scheme is not `http` or `https`; others (`file:`, `ftp:`, `gopher:`) would reach
    /// things a webhook has no business reaching, and the client cannot speak them anyway.
    #[error("URLs must use http or https")]
    Scheme,
    /// The URL has no host to send to.
    #[error("URLs must name a host")]
    NoHost,
    /// The URL carries a user name or password (`user:pass@host`): they would be stored and
    /// logged in clear with the job, and they are a classic way to disguise the real host.
    #[error("URLs must not contain a user name or password")]
    Credentials,
    /// The host is an IP address that is not a public unicast address (see [`is_forbidden`]).
    #[error("the URL's address {0} is not a public address")]
    ForbiddenAddress(IpAddr),
    /// The host is a name that never means a public host: `localhost`, `*.localhost`, or a
    /// single label such as `intranet`, which the resolver completes with the local search
    /// domains.
    #[error("the URL's host name {0} is not a public name")]
    ForbiddenName(String),
    /// At connect time, every address the host name resolves to is not public (see
    /// [`GuardedResolver`]).
    #[error("the host name {0} resolves only to non-public addresses")]
    ResolvesOnlyToForbidden(String),
}

/// A webhook URL's host name did not resolve: no such name, or no DNS server answered.
/// [`GuardedResolver`] returns it, so that the delivery log can say so in a few words rather
/// than quote the system resolver.
#[derive(Debug, thiserror::Error)]
#[error("could not resolve the host name {host}")]
pub struct LookupFailed {
    /// The name looked up.
    pub host: String,
    /// The resolver's error.
    #[source]
    pub source: std::io::Error,
}

/// Checks a webhook URL and returns it parsed, or says why it is refused.
///
/// The URL must use `http` or `https`, name a host, carry no user name or password and be at
/// most [`MAX_URL_LEN`] characters. Unless `allow_private`, its host must not be a non-public IP
/// address (see [`is_forbidden`]) nor a name that stands for this machine or the local network
/// (`localhost`, `*.localhost`, single-label names).
///
/// Parsing follows the WHATWG URL standard, as browsers and reqwest do, so the host checked is
/// the host that will be contacted: IPv4 addresses in any spelling (`127.1`, `2130706433`,
/// `0x7f000001`, `0177.0.0.1`) come out as `127.0.0.1`. Note that it also reads `http:///name`
/// as `http://name/`.
///
/// Call it when a URL is accepted and again before every send: the HTTP [`client`] checks the
/// addresses that host *names* resolve to, but a URL whose host is an IP address is connected
/// to without any resolution, so only this function stops it.
pub fn check_url(raw: &str, allow_private: bool) -> Result<Url, DestinationError> {
    if raw.len() > MAX_URL_LEN {
        return Err(DestinationError::TooLong);
    }
    let url = Url::parse(raw)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(DestinationError::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DestinationError::Credentials);
    }
    let host = url.host().ok_or(DestinationError::NoHost)?;
    if !allow_private {
        match host {
            Host::Ipv4(ip) if is_forbidden(IpAddr::V4(ip)) => {
                return Err(DestinationError::ForbiddenAddress(IpAddr::V4(ip)));
            }
            Host::Ipv6(ip) if is_forbidden(IpAddr::V6(ip)) => {
                return Err(DestinationError::ForbiddenAddress(IpAddr::V6(ip)));
            }
            Host::Domain(name) if is_local_name(name) => {
                return Err(DestinationError::ForbiddenName(name.to_owned()));
            }
            _ => {}
        }
    }
    Ok(url)
}

/// Whether a host name (already lower-cased by the URL parser) can only mean this machine or
/// the local network: `localhost` and its subdomains (RFC 6761 reserves them for loopback), and
/// names of one label, which no public host has and which the system resolver expands with the
/// local search domains. A trailing dot (the DNS root) changes nothing.
fn is_local_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    name == "localhost" || name.ends_with(".localhost") || !name.contains('.')
}

/// Whether a webhook must not be sent to `ip`: true for every address that is not a public
/// unicast address (loopback, private, link-local, carrier-grade NAT, multicast, documentation,
/// reserved...), and for IPv6 forms that embed a non-public IPv4 address (`::ffff:127.0.0.1`).
///
/// Written out by hand because `IpAddr::is_global` is not stable, and so that every range
/// refused is visible here.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_forbidden_v4(ip),
        IpAddr::V6(ip) => is_forbidden_v6(ip),
    }
}

/// [`is_forbidden`] for IPv4 (ranges from the IANA special-purpose address registry).
fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    match a {
        // 0.0.0.0/8 "this network" (0.0.0.0 reaches this host), 10.0.0.0/8 private,
        // 127.0.0.0/8 loopback.
        0 | 10 | 127 => true,
        // 100.64.0.0/10 carrier-grade NAT (shared address space).
        100 => (64..128).contains(&b),
        // 169.254.0.0/16 link-local, including the cloud metadata service 169.254.169.254.
        169 => b == 254,
        // 172.16.0.0/12 private.
        172 => (16..32).contains(&b),
        // 192.0.0.0/24 IETF protocol assignments, 192.0.2.0/24 documentation (TEST-NET-1),
        // 192.168.0.0/16 private.
        192 => (b == 0 && (c == 0 || c == 2)) || b == 168,
        // 198.18.0.0/15 benchmarking, 198.51.100.0/24 documentation (TEST-NET-2).
        198 => b == 18 || b == 19 || (b == 51 && c == 100),
        // 203.0.113.0/24 documentation (TEST-NET-3).
        203 => b == 0 && c == 113,
        // 224.0.0.0/4 multicast, 240.0.0.0/4 reserved, 255.255.255.255 broadcast.
        224.. => true,
        _ => false,
    }
}

/// [`is_forbidden`] for IPv6: forms that embed an IPv4 address are judged by that address;
/// otherwise only global unicast (2000::/3) is allowed, less its special ranges.
fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    if ip.is_unspecified() || ip.is_loopback() {
        return true;
    }
    if let Some(v4) = embedded_v4(ip) {
        return is_forbidden_v4(v4);
    }
    let s = ip.segments();
    // Everything outside 2000::/3 is not global unicast: unique-local fc00::/7 (including the
    // AWS metadata service fd00:ec2::254), link-local fe80::/10, site-local fec0::/10,
    // multicast ff00::/8, discard-only 100::/64, the local-use NAT64 prefix 64:ff9b:1::/48
    // (RFC 8215; its operator picks where the IPv4 address sits, so it cannot be judged), and
    // what is still unassigned.
    if s[0] & 0xe000 != 0x2000 {
        return true;
    }
    // Within 2000::/3: documentation 2001:db8::/32 and 3fff::/20, benchmarking 2001:2::/48.
    (s[0] == 0x2001 && s[1] == 0x0db8)
        || (s[0] == 0x3fff && s[1] < 0x1000)
        || (s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0)
}

/// The IPv4 address an IPv6 address stands for, for the forms that carry one and lead to it.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    // Two 16-bit segments as one IPv4 address.
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from(u32::from(hi) << 16 | u32::from(lo));
    let low32 = v4(s[6], s[7]);
    match s {
        // ::ffff:a.b.c.d IPv4-mapped: the IPv4 address itself on dual-stack sockets.
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low32),
        // ::ffff:0:a.b.c.d IPv4-translated (SIIT, RFC 2765).
        [0, 0, 0, 0, 0xffff, 0, _, _] => Some(low32),
        // ::a.b.c.d IPv4-compatible (deprecated, but some stacks still route it over IPv4).
        [0, 0, 0, 0, 0, 0, _, _] => Some(low32),
        // 64:ff9b::a.b.c.d well-known NAT64 prefix: a NAT64 gateway forwards to a.b.c.d.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low32),
        // 2002:AABB:CCDD::/48 6to4: the relay forwards to the IPv4 address in bits 16..48.
        [0x2002, hi, lo, ..] => Some(v4(hi, lo)),
        // 2001:0::/32 Teredo: the client's IPv4 address is the last 32 bits, inverted.
        [0x2001, 0, ..] => Some(Ipv4Addr::from(!u32::from(low32))),
        _ => None,
    }
}

/// A DNS resolver for reqwest that drops every non-public address (see [`is_forbidden`]) from
/// the answer, and fails if none is left.
///
/// The check happens at connect time, on the very addresses the connection is made to, so a
/// name that resolved to a public address when the URL was accepted and to `127.0.0.1` now (DNS
/// rebinding) still cannot reach anything private. reqwest does not call a resolver for URLs
/// whose host is an IP address: those are left to [`check_url`].
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    allow_private: bool,
}

impl GuardedResolver {
    /// A resolver that refuses non-public addresses, or keeps them all if `allow_private`.
    pub fn new(allow_private: bool) -> Self {
        Self { allow_private }
    }
}

impl Resolve for GuardedResolver {
    /// Resolves `name` with the system resolver and keeps only the addresses that may be
    /// contacted.
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let name = name.as_str().to_owned();
            let looked_up = tokio::net::lookup_host((name.as_str(), 0))
                .await
                .map(Iterator::collect::<Vec<SocketAddr>>);
            let resolved = match looked_up {
                Ok(resolved) => resolved,
                Err(source) => return Err(LookupFailed { host: name, source }.into()),
            };
            if allow_private {
                return Ok(Box::new(resolved.into_iter()) as Addrs);
            }
            let (allowed, refused): (Vec<SocketAddr>, Vec<SocketAddr>) = resolved
                .into_iter()
                .partition(|addr| !is_forbidden(addr.ip()));
            if !refused.is_empty() {
                let refused: Vec<IpAddr> = refused.iter().map(SocketAddr::ip).collect();
                tracing::warn!(
                    host = %name,
                    ?refused,
                    "webhook host resolves to non-public addresses; not connecting to them"
                );
            }
            if allowed.is_empty() {
                return Err(DestinationError::ResolvesOnlyToForbidden(name).into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// How long a [`client`] with `timeout` waits to establish a connection: the smaller of
/// `timeout` and 10 s.
pub fn connect_timeout(timeout: Duration) -> Duration {
    timeout.min(MAX_CONNECT_TIMEOUT)
}

/// The HTTP client for webhooks, which can only connect to public addresses unless
/// `allow_private`.
///
/// - Host names are resolved by [`GuardedResolver`], so every connection is checked.
/// - Redirects are not followed: a public endpoint could otherwise send the request on to a
///   private address (and an IP-literal `Location` would not even pass the resolver).
/// - Proxies from the environment (`HTTP_PROXY`...) are ignored: through a proxy, the proxy
///   resolves and connects, and the address check never runs.
/// - `timeout` bounds the whole request; connecting takes at most [`connect_timeout`].
/// - The user agent is `warble-webhooks/<version>`, so receivers can tell what calls them.
///
/// The client does **not** check URLs whose host is an IP address (reqwest connects to those
/// without resolving anything): call [`check_url`] on the URL before each send.
///
/// # Panics
///
/// If the TLS backend cannot be initialised, which happens only with a broken build.
pub fn client(allow_private: bool, timeout: Duration) -> reqwest::Client {
    client_as(
        allow_private,
        timeout,
        concat!("warble-webhooks/", env!("CARGO_PKG_VERSION")),
    )
}

/// [`client`] with another user agent (fetching a job's audio from its URL is no webhook).
pub fn client_as(allow_private: bool, timeout: Duration, user_agent: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver::new(allow_private)))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(connect_timeout(timeout))
        .user_agent(user_agent)
        .build()
        .expect("the HTTP client builds")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    fn refused(raw: &str) -> DestinationError {
        match check_url(raw, false) {
            Ok(url) => panic!("{raw} was accepted as {url}"),
            Err(e) => e,
        }
    }

    #[test]
    fn webhook_destination_check_url_refuses_local_and_malformed_urls() {
        for raw in [
            "http://localhost/",
            "http://LOCALHOST./",
            "http://a.localhost/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://0.0.0.0/",
            "http://10.0.0.1/",
            "http://172.16.5.4/",
            "http://192.168.1.1/",
            "http://100.64.0.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[2002:7f00:1::]/",
            "http://[fe80::1]/",
            "file:///etc/passwd",
            "ftp://example.com/",
            "gopher://x/",
            "http://user:pw@example.com/",
            "http://user@example.com/",
            "http://:pw@example.com/",
            "http://",
            "not a url",
        ] {
            refused(raw);
        }
        // WHATWG reads `http:///nohost` as `http://nohost/`: refused as a single-label name.
        assert!(matches!(
            refused("http:///nohost"),
            DestinationError::ForbiddenName(name) if name == "nohost"
        ));
        let long = format!("https://example.com/{}", "a".repeat(2980));
        assert_eq!(long.len(), 3000);
        assert!(matches!(refused(&long), DestinationError::TooLong));
    }

    #[test]
    fn webhook_destination_check_url_normalises_ipv4_spellings() {
        for raw in [
            "http://127.0.0.1/",
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://0x7f.0.0.1/",
        ] {
            let err = refused(raw);
            assert!(
                matches!(err, DestinationError::ForbiddenAddress(ip) if ip == Ipv4Addr::LOCALHOST),
                "{raw}: {err:?}"
            );
            assert_eq!(
                err.to_string(),
                "the URL's address 127.0.0.1 is not a public address"
            );
        }
    }

    #[test]
    fn webhook_destination_check_url_messages() {
        assert_eq!(
            refused("ftp://example.com/").to_string(),
            "URLs must use http or https"
        );
        assert_eq!(
            refused("http://user:pw@example.com/").to_string(),
            "URLs must not contain a user name or password"
        );
        assert_eq!(
            refused("http://[::ffff:7f00:1]/").to_string(),
            "the URL's address ::ffff:127.0.0.1 is not a public address"
        );
        assert_eq!(
            refused("http://LOCALHOST./").to_string(),
            "the URL's host name localhost. is not a public name"
        );
        assert_eq!(
            refused(&"x".repeat(3000)).to_string(),
            "URLs must be at most 2048 characters"
        );
    }

    #[test]
    fn webhook_destination_check_url_accepts_public_urls() {
        for raw in [
            "https://example.com/hook",
            "https://example.com./hook",
            "http://93.184.216.34:8080/x",
            "https://[2606:4700::1111]/",
        ] {
            let url = check_url(raw, false).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert!(url.host().is_some());
        }
        let longest = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN - 20));
        assert_eq!(longest.len(), MAX_URL_LEN);
        check_url(&longest, false).unwrap();
    }

    #[test]
    fn webhook_destination_check_url_allow_private() {
        for raw in [
            "http://127.0.0.1:9/",
            "http://localhost:8080/",
            "http://intranet/hook",
            "http://[fd00:ec2::254]/",
        ] {
            check_url(raw, true).unwrap_or_else(|e| panic!("{raw}: {e}"));
        }
        // Only the address checks are relaxed.
        for raw in ["file:///etc/passwd", "http://u:p@127.0.0.1/"] {
            assert!(check_url(raw, true).is_err(), "{raw}");
        }
    }

    #[test]
    fn webhook_destination_is_forbidden_ipv4_edges() {
        for (ip, forbidden) in [
            ("0.0.0.0", true),
            ("0.255.255.255", true),
            ("1.0.0.0", false),
            ("9.255.255.255", false),
            ("10.0.0.0", true),
            ("10.255.255.255", true),
            ("11.0.0.0", false),
            ("100.63.255.255", false),
            ("100.64.0.0", true),
            ("100.127.255.255", true),
            ("100.128.0.0", false),
            ("126.255.255.255", false),
            ("127.0.0.0", true),
            ("127.255.255.255", true),
            ("128.0.0.0", false),
            ("169.253.255.255", false),
            ("169.254.0.0", true),
            ("169.254.169.254", true),
            ("169.254.255.255", true),
            ("169.255.0.0", false),
            ("172.15.255.255", false),
            ("172.16.0.0", true),
            ("172.31.255.255", true),
            ("172.32.0.0", false),
            ("191.255.255.255", false),
            ("192.0.0.0", true),
            ("192.0.0.255", true),
            ("192.0.1.0", false),
            ("192.0.2.0", true),
            ("192.0.2.255", true),
            ("192.0.3.0", false),
            ("192.167.255.255", false),
            ("192.168.0.0", true),
            ("192.168.255.255", true),
            ("192.169.0.0", false),
            ("198.17.255.255", false),
            ("198.18.0.0", true),
            ("198.19.255.255", true),
            ("198.20.0.0", false),
            ("198.51.99.255", false),
            ("198.51.100.0", true),
            ("198.51.100.255", true),
            ("198.51.101.0", false),
            ("203.0.112.255", false),
            ("203.0.113.0", true),
            ("203.0.113.255", true),
            ("203.0.114.0", false),
            ("223.255.255.255", false),
            ("224.0.0.0", true),
            ("239.255.255.255", true),
            ("240.0.0.0", true),
            ("255.255.255.255", true),
            ("8.8.8.8", false),
            ("93.184.216.34", false),
        ] {
            let addr: IpAddr = ip.parse().unwrap();
            assert_eq!(is_forbidden(addr), forbidden, "{ip}");
        }
    }

    #[test]
    fn webhook_destination_is_forbidden_ipv6_edges() {
        for (ip, forbidden) in [
            ("::", true),
            ("::1", true),
            // IPv4-mapped, -translated and -compatible: judged by the IPv4 address.
            ("::ffff:127.0.0.1", true),
            ("::ffff:10.1.2.3", true),
            ("::ffff:8.8.8.8", false),
            ("::ffff:0:127.0.0.1", true),
            ("::ffff:0:8.8.8.8", false),
            ("::127.0.0.1", true),
            ("::169.254.169.254", true),
            ("::8.8.8.8", false),
            // NAT64: the well-known prefix is judged, the local-use one is refused.
            ("64:ff9b::7f00:1", true),
            ("64:ff9b::a9fe:a9fe", true),
            ("64:ff9b::808:808", false),
            ("64:ff9b:1::808:808", true),
            ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", true),
            // 6to4: the IPv4 address in bits 16..48.
            ("2002:7f00:1::", true),
            ("2002:c0a8:101::1", true),
            ("2002:808:808::1", false),
            // Teredo: the client address, inverted, in the last 32 bits.
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", true), // client 127.0.0.1
            ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", false), // client 8.8.8.8
            // Unique-local fc00::/7.
            ("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true),
            ("fc00::", true),
            ("fd00:ec2::254", true),
            ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true),
            // Link-local fe80::/10 and site-local fec0::/10.
            ("fe80::", true),
            ("fe80::1", true),
            ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true),
            ("fec0::1", true),
            ("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true),
            // Multicast ff00::/8.
            ("ff00::", true),
            ("ff02::1", true),
            // Discard-only 100::/64.
            ("100::", true),
            // Documentation 2001:db8::/32 and 3fff::/20.
            ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("2001:db8::", true),
            ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", true),
            ("2001:db9::", false),
            ("3fff::1", true),
            ("3fff:fff::1", true),
            ("3fff:1000::1", false),
            ("3ffe:ffff::1", false),
            // Benchmarking 2001:2::/48.
            ("2001:2::1", true),
            ("2001:2:1::1", false),
            // Outside 2000::/3: not global unicast.
            ("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true),
            ("2000::", false),
            ("3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("4000::1", true),
            // Public.
            ("2606:4700::1111", false),
            ("2001:4860:4860::8888", false),
            ("2a00:1450:4001::1", false),
        ] {
            let addr: IpAddr = ip.parse().unwrap();
            assert_eq!(is_forbidden(addr), forbidden, "{ip}");
        }
    }

    #[tokio::test]
    async fn webhook_destination_resolver_refuses_loopback_names() {
        let name: Name = "localhost".parse().unwrap();
        let err = match GuardedResolver::new(false).resolve(name).await {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e,
        };
        let err = err
            .downcast_ref::<DestinationError>()
            .expect("a DestinationError");
        assert!(
            matches!(err, DestinationError::ResolvesOnlyToForbidden(name) if name == "localhost")
        );
        assert_eq!(
            err.to_string(),
            "the host name localhost resolves only to non-public addresses"
        );

        let name: Name = "localhost".parse().unwrap();
        let addrs: Vec<SocketAddr> = GuardedResolver::new(true)
            .resolve(name)
            .await
            .unwrap()
            .collect();
        assert!(!addrs.is_empty());
        assert!(
            addrs.iter().all(|addr| addr.ip().is_loopback()),
            "{addrs:?}"
        );
    }

    #[tokio::test]
    async fn webhook_destination_resolver_names_a_failed_lookup() {
        // `.invalid` never resolves (RFC 6761), with or without a network.
        let name: Name = "warble-test.invalid".parse().unwrap();
        let err = match GuardedResolver::new(true).resolve(name).await {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e,
        };
        let err = err.downcast_ref::<LookupFailed>().expect("a LookupFailed");
        assert_eq!(
            err.to_string(),
            "could not resolve the host name warble-test.invalid"
        );
    }

    /// A host name of this machine that resolves to a loopback address, and that address: the
    /// host name (`/etc/hostname`, which Debian's `/etc/hosts` maps to 127.0.1.1 or 127.0.0.1)
    /// if it does, else `localhost`. Either way only the resolver stands between the client and
    /// the address, as the client does not call [`check_url`].
    async fn loopback_name() -> (String, IpAddr) {
        let hostname = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        for name in [hostname.trim(), "localhost"] {
            if name.is_empty() {
                continue;
            }
            let first = tokio::net::lookup_host((name, 0))
                .await
                .ok()
                .and_then(|mut addrs| addrs.next());
            if let Some(addr) = first.filter(|addr| addr.ip().is_loopback()) {
                return (name.to_owned(), addr.ip());
            }
        }
        panic!("neither the host name nor localhost resolves to a loopback address");
    }

    /// Reads one request's head from `stream` and returns it.
    async fn read_head(stream: &mut TcpStream) -> String {
        let mut head = Vec::new();
        let mut buf = [0; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed mid-request");
            head.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(head).unwrap()
    }

    /// Whether a connection to `listener` is waiting (connections are queued by the kernel, so
    /// one made earlier is still there).
    async fn connection_waiting(listener: &TcpListener) -> bool {
        tokio::time::timeout(Duration::from_millis(300), listener.accept())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn webhook_destination_client_refuses_names_of_private_addresses() {
        let (name, ip) = loopback_name().await;
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let url = format!(
            "http://{name}:{}/hook",
            listener.local_addr().unwrap().port()
        );

        let err = client(false, Duration::from_secs(5))
            .post(&url)
            .send()
            .await
            .expect_err("the request must not be sent");
        assert!(err.is_connect(), "{err:?}");
        let mut source: Option<&dyn std::error::Error> = Some(&err);
        let mut found = false;
        while let Some(e) = source {
            found |= matches!(
                e.downcast_ref::<DestinationError>(),
                Some(DestinationError::ResolvesOnlyToForbidden(_))
            );
            source = e.source();
        }
        assert!(found, "{err:?}");
        assert!(
            !connection_waiting(&listener).await,
            "the server was reached"
        );

        // The same request with private addresses allowed reaches the server.
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let head = read_head(&mut stream).await;
            stream
                .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            head
        });
        let response = client(true, Duration::from_secs(5))
            .post(&url)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
        let head = server.await.unwrap().to_ascii_lowercase();
        assert!(head.starts_with("post /hook http/1.1\r\n"), "{head}");
        let agent = concat!(
            "user-agent: warble-webhooks/",
            env!("CARGO_PKG_VERSION"),
            "\r\n"
        );
        assert!(head.contains(agent), "{head}");
    }

    #[tokio::test]
    async fn webhook_destination_client_does_not_follow_redirects() {
        let target = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let redirector = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let location = format!("http://127.0.0.1:{}/", target.local_addr().unwrap().port());
        let url = format!(
            "http://127.0.0.1:{}/",
            redirector.local_addr().unwrap().port()
        );
        let server = tokio::spawn(async move {
            let (mut stream, _) = redirector.accept().await.unwrap();
            read_head(&mut stream).await;
            let response = format!(
                "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\
                 Connection: close\r\n\r\n"
            );
            stream.write_all(response.as_bytes()).await.unwrap();
        });
        let response = client(true, Duration::from_secs(5))
            .get(&url)
            .send()
            .await
            .unwrap();
        server.await.unwrap();
        assert_eq!(response.status(), 302);
        assert!(
            !connection_waiting(&target).await,
            "the redirect was followed"
        );
    }
}
