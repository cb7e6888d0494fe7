//! `http://HOST[:PORT]/PATH` URLs, parsed by hand: enough for the
//! http_client example, and small enough to read. Its own file so that the
//! integration tests compile it (with these unit tests) too.

/// The parts of an `http://HOST[:PORT]/PATH` URL that a request needs.
#[derive(Debug, PartialEq, Eq)]
pub struct Url {
    /// Host name or IP address (an IPv6 address without its brackets).
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`; the fragment is dropped.
    pub path: String,
}

impl Url {
    /// The `Host` header's value: the host, and the port unless it is 80.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Parses `http://HOST[:PORT][/PATH]` by hand: enough for this client, and
/// small enough to read. `HOST` may be a name, an IPv4 address, or an IPv6
/// address in brackets.
pub fn parse_url(url: &str) -> Result<Url, String> {
    let rest = match url.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("http://") => &url[7..],
        _ => return Err("not an http:// URL".into()),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return Err("user names in URLs are not supported".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let close = v6.find(']').ok_or("unclosed [ in the host")?;
        let after = &v6[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err("junk after the IPv6 address".into()),
        };
        (&v6[..close], port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    let port = match port {
        None => 80,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("bad port {p:?}"))?,
    };
    let tail = tail.split('#').next().unwrap_or("");
    let path = if tail.starts_with('/') {
        tail.to_string()
    } else {
        format!("/{tail}") // "" or "?query"
    };
    if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err("spaces or control characters in the path".into());
    }
    Ok(Url {
        host: host.to_string(),
        port,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(host: &str, port: u16, path: &str) -> Url {
        Url {
            host: host.into(),
            port,
            path: path.into(),
        }
    }

    #[test]
    fn parses_host_port_and_path() {
        assert_eq!(
            parse_url("http://127.0.0.1:8000/a/b?x=1#frag"),
            Ok(url("127.0.0.1", 8000, "/a/b?x=1"))
        );
        assert_eq!(
            parse_url("http://example.com"),
            Ok(url("example.com", 80, "/"))
        );
        assert_eq!(
            parse_url("HTTP://example.com?q"),
            Ok(url("example.com", 80, "/?q"))
        );
        assert_eq!(parse_url("http://[::1]:81/"), Ok(url("::1", 81, "/")));
        assert_eq!(parse_url("http://[::1]/x"), Ok(url("::1", 80, "/x")));
    }

    #[test]
    fn host_header_has_the_port_unless_80() {
        assert_eq!(url("h", 80, "/").host_header(), "h");
        assert_eq!(url("h", 8080, "/").host_header(), "h:8080");
        assert_eq!(url("::1", 81, "/").host_header(), "[::1]:81");
    }

    #[test]
    fn rejects_bad_urls() {
        for bad in [
            "",
            "ftp://x/",
            "http://",
            "http:///path",
            "http://:80/",
            "http://h:/",
            "http://h:0/",
            "http://h:65536/",
            "http://h:x/",
            "http://u@h/",
            "http://[::1/",
            "http://[::1]x/",
            "http://h/a b",
        ] {
            assert!(parse_url(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
