//! How the API serves: address, public URL, browser origins, limits per request, the proxies
//! it trusts, and the token that opens the operations endpoints.

use std::{net::IpAddr, time::Duration};

use url::Url;

use super::{
    SettingsError,
    reader::{Reader, long_secret},
    values::{CorsOrigins, HumanDuration, Secret},
};
use crate::client_address::{ForwardedHeader, TrustedProxies};

#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub host: IpAddr,
    pub port: u16,
    pub base_url: Url,
    pub cors_origins: CorsOrigins,
    pub request_timeout: Duration,
    pub body_limit_bytes: usize,
    /// Proxies whose forwarding header names the client; none by default.
    pub trusted_proxies: TrustedProxies,
    /// The one header they write it in.
    pub trusted_proxy_header: ForwardedHeader,
    /// When set, `/metrics`, `/docs` and `/api/openapi.json` (and the workers' `/metrics`)
    /// answer only `Authorization: Bearer <token>`. Required in production.
    pub ops_token: Option<Secret>,
}

impl HttpSettings {
    pub(super) fn read<F: Fn(&str) -> Option<String>>(
        env: &Reader<'_, F>,
    ) -> Result<Self, SettingsError> {
        let http = HttpSettings {
            host: env.or("HOST", IpAddr::from([127, 0, 0, 1]))?,
            port: env.required("PORT")?,
            base_url: env.required("BASE_URL")?,
            cors_origins: env.required("CORS_ORIGIN")?,
            request_timeout: env
                .or("REQUEST_TIMEOUT", HumanDuration(Duration::from_secs(30)))?
                .0,
            body_limit_bytes: env.or("REQUEST_BODY_LIMIT_BYTES", 256 * 1024)?,
            trusted_proxies: env.or("TRUSTED_PROXIES", TrustedProxies::default())?,
            trusted_proxy_header: env.or("TRUSTED_PROXY_HEADER", ForwardedHeader::default())?,
            ops_token: env.optional_with("OPS_TOKEN", long_secret)?,
        };
        Ok(http)
    }
}
