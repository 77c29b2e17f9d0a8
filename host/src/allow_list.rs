//! The outbound-HTTP allow-list of one plugin (`[plugins.NAME] http.allow`) and the
//! address rules behind it. Pure logic: the egress layer (`plugins::egress`) resolves,
//! checks with [`AllowList::check_address`] and connects; config validation parses entries
//! with [`AllowList::parse`] so `config check` refuses a bad one.
//!
//! An entry is `scheme://host[:port][/path-prefix]`. A request matches an entry when the
//! scheme, the host (case-insensitively) and the port (the scheme's default when absent)
//! are equal and its path starts with the prefix on a segment boundary (`/api` matches
//! `/api` and `/api/x`, not `/apix`). Paths with `.`/`..` segments, raw or percent-encoded,
//! are refused outright: a server would read them as another path.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One parsed `http.allow` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowEntry {
    pub https: bool,
    /// Lowercase; an IP literal without brackets, or a name.
    pub host: String,
    pub port: u16,
    /// Starts with `/`; `/` matches every path.
    pub path_prefix: String,
}

/// A plugin's allow-list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList(Vec<AllowEntry>);

/// The parts of a request URL the allow-list looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    pub https: bool,
    pub host: &'a str,
    pub port: u16,
    pub path: &'a str,
}

impl AllowList {
    pub fn parse(entries: &[String]) -> Result<AllowList, String> {
        entries
            .iter()
            .map(|e| AllowEntry::parse(e))
            .collect::<Result<_, _>>()
            .map(AllowList)
    }

    /// The entry a request matches, or why none does.
    pub fn check(&self, target: &Target<'_>) -> Result<&AllowEntry, String> {
        if has_dot_segment(target.path) {
            return Err("the path has '.' or '..' segments, or an encoded '/' or a '\\'".into());
        }
        let host = target.host.to_ascii_lowercase();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.0
            .iter()
            .find(|e| {
                e.https == target.https
                    && e.host == host
                    && e.port == target.port
                    && path_under(target.path, &e.path_prefix)
            })
            .ok_or_else(|| {
                format!(
                    "{}://{}:{}{} is not on the plugin's allow-list",
                    if target.https { "https" } else { "http" },
                    host,
                    target.port,
                    target.path.split('?').next().unwrap_or_default()
                )
            })
    }

    /// May a connection for `entry` go to `ip`? Public addresses may; loopback, private,
    /// link-local (cloud metadata), shared, unspecified, multicast and reserved ones only
    /// when the entry names that IP literally, or names `localhost` and `ip` is loopback.
    pub fn check_address(entry: &AllowEntry, ip: IpAddr) -> Result<(), String> {
        let ip = canonical(ip);
        if !is_special(ip) {
            return Ok(());
        }
        let literal = entry
            .host
            .parse::<IpAddr>()
            .is_ok_and(|named| canonical(named) == ip);
        let named_localhost = entry.host == "localhost" && ip.is_loopback();
        if literal || named_localhost {
            return Ok(());
        }
        Err(format!(
            "{} resolves to {ip}, a {} address; only an entry naming that address literally may reach it",
            entry.host,
            kind(ip)
        ))
    }
}

impl AllowEntry {
    pub fn parse(entry: &str) -> Result<AllowEntry, String> {
        let bad = |why: &str| format!("http.allow entry {entry:?}: {why}");
        let (scheme, rest) = entry
            .split_once("://")
            .ok_or_else(|| bad("expected scheme://host[:port][/path]"))?;
        let https = match scheme {
            "https" => true,
            "http" => false,
            _ => return Err(bad("the scheme must be http or https")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        if authority.contains(['@', '?', '#', '*']) || path.contains(['?', '#']) {
            return Err(bad("no user info, query, fragment or wildcard"));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| bad("a bad host or port"))?;
        let host = host.to_ascii_lowercase();
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
        {
            return Err(bad("a bad host"));
        }
        if has_dot_segment(path) {
            return Err(bad("the path has '.' or '..' segments"));
        }
        Ok(AllowEntry {
            https,
            host,
            port: port.unwrap_or(if https { 443 } else { 80 }),
            path_prefix: path.to_string(),
        })
    }
}

/// `host[:port]`, `[v6][:port]` → host without brackets and the port if given.
pub fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        host.parse::<Ipv6Addr>().ok()?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host, Some(port)),
            Some(_) => return None,
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p != 0)?),
    };
    Some((host, port))
}

fn path_under(path: &str, prefix: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    if prefix == "/" || path == prefix {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.starts_with('/'),
        None => false,
    }
}

/// A path some server could read as another: a `.`/`..` segment (raw, percent-encoded, or
/// with `;parameters` as Tomcat reads them), an encoded `/`, or a `\` (raw or encoded),
/// which some servers take for `/`.
fn has_dot_segment(path: &str) -> bool {
    let path = path
        .split('?')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if path.contains('\\') || path.contains("%5c") || path.contains("%2f") {
        return true;
    }
    path.split('/').any(|segment| {
        let decoded = segment.replace("%2e", ".");
        let bare = decoded.split(';').next().unwrap_or_default();
        bare == "." || bare == ".."
    })
}

/// An IPv4-mapped IPv6 address is the IPv4 address it maps.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

/// Not a public unicast address.
pub fn is_special(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

fn special_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // 100.64.0.0/10, shared address space (carrier-grade NAT).
        || (a == 100 && (64..128).contains(&b))
        // 192.0.0.0/24, IETF protocol assignments; 198.18.0.0/15, benchmarking.
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (b == 18 || b == 19))
        // 240.0.0.0/4, reserved.
        || a >= 240
}

fn special_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    // ::a.b.c.d, IPv4-compatible (deprecated): as special as the address it carries.
    let compatible = ip.segments()[..6].iter().all(|s| *s == 0);
    compatible
        || ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // fc00::/7 unique local (includes fd00:ec2::254, a cloud metadata address).
        || (first & 0xfe00) == 0xfc00
        // fe80::/10 link-local.
        || (first & 0xffc0) == 0xfe80
        // 2001:db8::/32 documentation; 64:ff9b::/96 NAT64 can reach anything v4.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        || (first == 0x0064 && ip.segments()[1] == 0xff9b)
        // fec0::/10 site-local (deprecated); 2002::/16 6to4, which wraps any IPv4;
        // 100::/64 discard.
        || (first & 0xffc0) == 0xfec0
        || first == 0x2002
        || (first == 0x0100 && ip.segments()[1..4].iter().all(|s| *s == 0))
}

fn kind(ip: IpAddr) -> &'static str {
    match ip {
        ip if ip.is_loopback() => "loopback",
        IpAddr::V4(v4) if v4.is_link_local() => "link-local (cloud metadata)",
        IpAddr::V4(v4) if v4.is_private() => "private",
        _ => "non-public",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowList {
        AllowList::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
    }

    /// `check(url parts, expected)`: which entry matches, or the refusal.
    #[test]
    fn matching() {
        let allow = list(&[
            "https://deploy.example.com",
            "http://127.0.0.1:9000/api/",
            "http://localhost:8080/v1",
        ]);
        let check = |https, host, port, path, expected: Result<&str, &str>| {
            let got = allow.check(&Target {
                https,
                host,
                port,
                path,
            });
            match (got, expected) {
                (Ok(entry), Ok(host)) => assert_eq!(entry.host, host, "{path}"),
                (Err(e), Err(part)) => assert!(e.contains(part), "{e}"),
                (got, expected) => panic!("{host}{path}: {got:?}, expected {expected:?}"),
            }
        };
        check(
            true,
            "deploy.example.com",
            443,
            "/anything?x=1",
            Ok("deploy.example.com"),
        );
        check(
            true,
            "DEPLOY.example.com",
            443,
            "/",
            Ok("deploy.example.com"),
        );
        check(
            false,
            "deploy.example.com",
            80,
            "/",
            Err("not on the plugin's allow-list"),
        );
        check(true, "deploy.example.com", 8443, "/", Err("not on"));
        check(true, "evil.example.com", 443, "/", Err("not on"));
        check(true, "deploy.example.com.evil.net", 443, "/", Err("not on"));
        check(false, "127.0.0.1", 9000, "/api/status", Ok("127.0.0.1"));
        check(false, "127.0.0.1", 9000, "/api/", Ok("127.0.0.1"));
        check(false, "127.0.0.1", 9000, "/apix", Err("not on"));
        check(false, "127.0.0.1", 9000, "/admin", Err("not on"));
        check(
            false,
            "127.0.0.1",
            9000,
            "/api/../admin",
            Err("'..' segments"),
        );
        check(
            false,
            "127.0.0.1",
            9000,
            "/api/%2e%2E/admin",
            Err("'..' segments"),
        );
        check(false, "127.0.0.1", 9000, "/api/a%2fb", Err("'..' segments"));
        check(
            false,
            "127.0.0.1",
            9000,
            "/api/..\\admin",
            Err("'..' segments"),
        );
        check(
            false,
            "127.0.0.1",
            9000,
            "/api/..%5cadmin",
            Err("'..' segments"),
        );
        check(
            false,
            "127.0.0.1",
            9000,
            "/api/..;/admin",
            Err("'..' segments"),
        );
        check(
            false,
            "127.0.0.1",
            9000,
            "/api/.;x/admin",
            Err("'..' segments"),
        );
        check(false, "127.0.0.1", 9000, "/api/a;b", Ok("127.0.0.1"));
        check(false, "127.0.0.1", 9000, "/api/100%25", Ok("127.0.0.1"));
        check(false, "localhost", 8080, "/v1", Ok("localhost"));
        check(false, "localhost", 8080, "/v1/x", Ok("localhost"));
        check(false, "localhost", 8080, "/v10", Err("not on"));
    }

    #[test]
    fn entries() {
        let check = |entry: &str, expected: Result<(bool, &str, u16, &str), &str>| match (
            AllowEntry::parse(entry),
            expected,
        ) {
            (Ok(e), Ok((https, host, port, path))) => {
                assert_eq!(
                    (e.https, e.host.as_str(), e.port, e.path_prefix.as_str()),
                    (https, host, port, path)
                )
            }
            (Err(e), Err(part)) => assert!(e.contains(part), "{entry}: {e}"),
            (got, expected) => panic!("{entry}: {got:?}, expected {expected:?}"),
        };
        check(
            "https://Api.Example.com",
            Ok((true, "api.example.com", 443, "/")),
        );
        check(
            "http://127.0.0.1:9000/api/",
            Ok((false, "127.0.0.1", 9000, "/api/")),
        );
        check("http://[::1]:81", Ok((false, "::1", 81, "/")));
        check("ftp://x", Err("http or https"));
        check("example.com", Err("scheme://"));
        check("https://user@example.com", Err("no user info"));
        check("https://*.example.com", Err("wildcard"));
        check("https://example.com:0", Err("bad host or port"));
        check("https://example.com:99999", Err("bad host or port"));
        check("https://[::1", Err("bad host or port"));
        check("https://exa mple.com", Err("a bad host"));
        check("https://example.com/a/../b", Err("'..'"));
    }

    #[test]
    fn addresses() {
        let entry = |e: &str| AllowEntry::parse(e).unwrap();
        let public = entry("https://deploy.example.com");
        let check = |entry: &AllowEntry, ip: &str, ok: bool| {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(
                AllowList::check_address(entry, ip).is_ok(),
                ok,
                "{} → {ip}",
                entry.host
            );
        };
        check(&public, "93.184.216.34", true);
        check(&public, "2606:2800:220:1:248:1893:25c8:1946", true);
        for special in [
            "127.0.0.1",
            "127.8.9.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::7f00:1",
            "::127.0.0.1",
            "fec0::1",
            "2002:a00:1::1",
            "100::1",
        ] {
            check(&public, special, false);
        }
        check(&entry("http://127.0.0.1:9000"), "127.0.0.1", true);
        check(&entry("http://127.0.0.1:9000"), "127.0.0.2", false);
        check(&entry("http://localhost:9000"), "127.0.0.1", true);
        check(&entry("http://localhost:9000"), "::1", true);
        check(&entry("http://localhost:9000"), "10.0.0.1", false);
        check(&entry("http://[::1]:9000"), "::1", true);
        check(&entry("http://169.254.169.254"), "169.254.169.254", true);
        check(&entry("http://10.0.0.5:8080"), "::ffff:10.0.0.5", true);
    }
}
