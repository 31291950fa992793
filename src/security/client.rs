//! Who is calling, as the security rules see it (the http layer fills it
//! in: see `http::client`).

use std::net::IpAddr;

#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: IpAddr,
    pub user_agent: String,
    pub request_id: Option<String>,
}
