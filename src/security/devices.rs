//! Device fingerprinting (SPEC §5.9): a device is the hash of the
//! User-Agent and the client's IP network (/24 for IPv4, /64 for IPv6), so
//! a phone moving between addresses of one provider stays one device.

use std::net::IpAddr;

use sha2::{Digest, Sha256};

/// The network a client IP belongs to, as text.
pub fn network(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// The device id: SHA-256 of User-Agent and network, hex, 32 characters.
pub fn fingerprint(user_agent: &str, ip: IpAddr) -> String {
    let mut h = Sha256::new();
    h.update(user_agent.as_bytes());
    h.update([0u8]);
    h.update(network(ip).as_bytes());
    hex::encode(&h.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_network_same_device() {
        let a = fingerprint("curl/8", "203.0.113.5".parse().unwrap());
        let b = fingerprint("curl/8", "203.0.113.77".parse().unwrap());
        let c = fingerprint("curl/8", "203.0.114.5".parse().unwrap());
        let d = fingerprint("Firefox", "203.0.113.5".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        assert_eq!(network("2001:db8:1:2:3::9".parse().unwrap()), "2001:db8:1:2::/64");
    }
}
