//! Credentials on requests: bearer, basic, an API key in a header or a query parameter, or
//! an OAuth2 client-credentials token fetched from the token endpoint, renewed 30 seconds
//! before it expires and after a 401. Secrets are resolved here, when the source connects,
//! and every message that could echo one goes through [`Auth::redact`].
//!
//! Which hosts credentials may reach is the client's rule (`client.rs`), not this file's.

use std::time::{Duration, Instant};

use elt_core::secret::Revealed;
use elt_core::{Error, Result};
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{RequestBuilder, Url};

use super::config::AuthConfig;

enum Kind {
    None,
    Bearer(Revealed),
    Basic(String, Revealed),
    Header(HeaderName, Revealed),
    Query(String, Revealed),
    Oauth2 {
        token_url: Url,
        client_id: String,
        client_secret: Revealed,
        scopes: Vec<String>,
    },
}

struct Token {
    value: Revealed,
    renew_at: Option<Instant>,
}

/// The credentials of a source's requests.
pub struct Auth {
    kind: Kind,
    /// Every form in which a configured credential travels, for [`Auth::redact`].
    sent: Vec<Revealed>,
    token: tokio::sync::Mutex<Option<Token>>,
}

/// The forms in which `kind`'s credentials are sent: as written, form-encoded (a query
/// key, the OAuth2 form body) and, for basic auth, the header's base64 `user:password`. A
/// server that echoes a request in an error body echoes one of these.
fn sent_forms(kind: &Kind) -> Vec<Revealed> {
    use base64::Engine;
    let secret = match kind {
        Kind::None => return Vec::new(),
        Kind::Bearer(s) | Kind::Basic(_, s) | Kind::Header(_, s) | Kind::Query(_, s) => s,
        Kind::Oauth2 { client_secret, .. } => client_secret,
    };
    let mut forms = vec![
        secret.clone(),
        Revealed::new(
            url::form_urlencoded::byte_serialize(secret.expose().as_bytes()).collect::<String>(),
        ),
    ];
    if let Kind::Basic(user, password) = kind {
        let pair = format!("{user}:{}", password.expose());
        forms.push(Revealed::new(
            base64::engine::general_purpose::STANDARD.encode(pair),
        ));
    }
    forms
}

fn resolve(secret: &elt_core::Secret, option: &str) -> Result<Revealed> {
    secret
        .resolve()
        .map_err(|e| Error::config(format!("`auth.{option}`: {}", e.message())))
}

impl Auth {
    /// Resolves the configured credentials.
    pub fn new(config: Option<&AuthConfig>) -> Result<Self> {
        let kind = match config {
            None => Kind::None,
            Some(AuthConfig::Bearer { token }) => Kind::Bearer(resolve(token, "token")?),
            Some(AuthConfig::Basic { username, password }) => {
                Kind::Basic(username.clone(), resolve(password, "password")?)
            }
            Some(AuthConfig::ApiKey { key, header, query }) => {
                let key = resolve(key, "key")?;
                match (header, query) {
                    (Some(header), _) => Kind::Header(
                        HeaderName::try_from(header.as_str())
                            .map_err(|e| Error::config(format!("`auth.header` {header:?}: {e}")))?,
                        key,
                    ),
                    (None, Some(query)) => Kind::Query(query.clone(), key),
                    (None, None) => {
                        return Err(Error::config(
                            "`auth`: an api_key needs `header` or `query`",
                        ));
                    }
                }
            }
            Some(AuthConfig::Oauth2 {
                token_url,
                client_id,
                client_secret,
                scopes,
            }) => Kind::Oauth2 {
                token_url: Url::parse(token_url).map_err(|e| {
                    Error::config(format!("`auth.token_url` {token_url:?} is not a URL: {e}"))
                })?,
                client_id: client_id.clone(),
                client_secret: resolve(client_secret, "client_secret")?,
                scopes: scopes.clone(),
            },
        };
        Ok(Self {
            sent: sent_forms(&kind),
            kind,
            token: tokio::sync::Mutex::new(None),
        })
    }

    /// The token endpoint, for the client's host rules.
    pub fn token_url(&self) -> Option<&Url> {
        match &self.kind {
            Kind::Oauth2 { token_url, .. } => Some(token_url),
            _ => None,
        }
    }

    /// A GET of `url` with the credentials on it.
    pub async fn request(&self, http: &reqwest::Client, url: &Url) -> Result<RequestBuilder> {
        Ok(match &self.kind {
            Kind::None => http.get(url.clone()),
            Kind::Bearer(token) => http.get(url.clone()).bearer_auth(token.expose()),
            Kind::Basic(user, password) => http
                .get(url.clone())
                .basic_auth(user, Some(password.expose())),
            Kind::Header(name, key) => {
                let mut value = HeaderValue::try_from(key.expose())
                    .map_err(|_| Error::config("`auth.key` is not a valid header value"))?;
                value.set_sensitive(true);
                http.get(url.clone()).header(name, value)
            }
            Kind::Query(name, key) => {
                let mut url = self.strip(url.clone());
                url.query_pairs_mut().append_pair(name, key.expose());
                http.get(url)
            }
            Kind::Oauth2 { .. } => {
                let token = self.token(http).await?;
                http.get(url.clone()).bearer_auth(token.expose())
            }
        })
    }

    /// `url` without the API key's query parameter (a server may echo it in `next` links).
    pub fn strip(&self, mut url: Url) -> Url {
        if let Kind::Query(name, _) = &self.kind {
            let kept: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(k, _)| k != name)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            url.set_query(None);
            if !kept.is_empty() {
                url.query_pairs_mut().extend_pairs(kept);
            }
        }
        url
    }

    /// Whether a 401 may be cured by a new token.
    pub fn renewable(&self) -> bool {
        matches!(self.kind, Kind::Oauth2 { .. })
    }

    /// Forgets the OAuth2 token, so the next request fetches a new one.
    pub async fn invalidate(&self) {
        *self.token.lock().await = None;
    }

    /// `text` with every credential, in every form it is sent in, replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in &self.sent {
            text = secret.redact(&text);
        }
        if let Ok(token) = self.token.try_lock()
            && let Some(token) = token.as_ref()
        {
            text = token.value.redact(&text);
        }
        text
    }

    async fn token(&self, http: &reqwest::Client) -> Result<Revealed> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached
            .as_ref()
            .filter(|t| t.renew_at.is_none_or(|at| Instant::now() < at))
        {
            return Ok(token.value.clone());
        }
        let Kind::Oauth2 {
            token_url,
            client_id,
            client_secret,
            scopes,
        } = &self.kind
        else {
            return Err(Error::bug("a token without OAuth2"));
        };
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials")
                .append_pair("client_id", client_id)
                .append_pair("client_secret", client_secret.expose());
            if !scopes.is_empty() {
                form.append_pair("scope", &scopes.join(" "));
            }
            form.finish()
        };
        let shown = format!(
            "{}{}",
            token_url.origin().ascii_serialization(),
            token_url.path()
        );
        let response = http
            .post(token_url.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                Error::transient(format!(
                    "the OAuth2 token request to {shown} failed: {}",
                    e.without_url()
                ))
            })?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| {
            Error::transient(format!(
                "reading the OAuth2 token from {shown}: {}",
                e.without_url()
            ))
        })?;
        let text = super::printable::printable(&body[..body.len().min(300)]);
        if !status.is_success() {
            let kind = if status.is_server_error() {
                Error::transient
            } else {
                Error::config
            };
            return Err(kind(format!(
                "the OAuth2 token endpoint {shown} answered HTTP {status}: {}; check `auth.client_id` and `auth.client_secret`",
                self.redact(text.trim())
            )));
        }
        let parsed: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
            Error::permanent(format!(
                "the OAuth2 token endpoint {shown} answered no JSON"
            ))
        })?;
        let value = parsed["access_token"].as_str().ok_or_else(|| {
            Error::permanent(format!(
                "the OAuth2 token endpoint {shown} answered no `access_token`"
            ))
        })?;
        let renew_at = parsed["expires_in"].as_u64().and_then(|secs| {
            Instant::now().checked_add(Duration::from_secs(secs.saturating_sub(30)))
        });
        let token = Token {
            value: Revealed::new(value.to_owned()),
            renew_at,
        };
        let value = token.value.clone();
        *cached = Some(token);
        Ok(value)
    }
}
