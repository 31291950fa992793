//! Who is calling: the client IP (the socket peer, or the right-most
//! untrusted `X-Forwarded-For` hop when the peer is a trusted proxy) and the
//! User-Agent. A client cannot choose its own IP by sending a header.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use ipnet::IpNet;

use crate::http::state::AppState;

pub use crate::security::client::ClientInfo;

/// The client IP given the peer, the trusted proxies and the headers.
pub fn client_ip(peer: IpAddr, trusted: &[IpNet], headers: &HeaderMap) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // Hops we cannot read are skipped (not taken as the end of the chain):
    // one junk entry must not collapse every client to the proxy's address.
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(parse_hop)
        .collect();
    // Walk from the right: the first hop not added by one of our proxies is
    // the client; everything left of it could have been forged.
    let mut client = peer;
    for hop in hops.iter().rev() {
        client = *hop;
        if !is_trusted(hop) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, `ip:port`, `[v6]` or `[v6]:port`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .or_else(|| hop.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
}

fn peer_of(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

impl ClientInfo {
    pub fn from_parts(parts: &Parts, trusted: &[IpNet]) -> Self {
        let ip = client_ip(peer_of(parts), trusted, &parts.headers);
        let user_agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect())
            .unwrap_or_default();
        let request_id = parts
            .extensions
            .get::<crate::http::request_id::RequestId>()
            .map(|r| r.0.clone());
        Self {
            ip,
            user_agent,
            request_id,
        }
    }
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(ClientInfo::from_parts(parts, &state.config.server.trusted_proxies))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn untrusted_peer_ignores_forwarded_for() {
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(client_ip(peer, &[], &headers("1.2.3.4")), peer);
    }

    #[test]
    fn trusted_proxy_yields_rightmost_untrusted_hop() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        let ip = client_ip(peer, &trusted, &headers("6.6.6.6, 198.51.100.7, 10.0.0.5"));
        assert_eq!(ip, "198.51.100.7".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip(peer, &trusted, &HeaderMap::new()), peer);
        assert_eq!(client_ip(peer, &trusted, &headers("garbage")), peer);
    }

    #[test]
    fn junk_hops_are_skipped_and_ports_accepted() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        let ip = |xff: &str| client_ip(peer, &trusted, &headers(xff)).to_string();
        assert_eq!(ip("198.51.100.7, junk"), "198.51.100.7");
        assert_eq!(ip("198.51.100.7, unknown, 10.0.0.5"), "198.51.100.7");
        assert_eq!(ip("198.51.100.7:5123"), "198.51.100.7");
        assert_eq!(ip("203.0.113.1:1, 198.51.100.8:2"), "198.51.100.8");
        assert_eq!(ip("[2001:db8::1]:443"), "2001:db8::1");
        assert_eq!(ip("[2001:db8::2]"), "2001:db8::2");
        assert_eq!(ip("2001:db8::3"), "2001:db8::3");
    }
}
