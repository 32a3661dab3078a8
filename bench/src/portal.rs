//! A browser for the portal, as the integration tests' `Browser`: a cookie jar, no automatic
//! redirects, and form posts carrying the page's CSRF token.
use anyhow::{bail, Context};
use reqwest::{header, redirect::Policy};

pub struct Browser {
    pub client: reqwest::Client,
    pub base: String,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

/// The value of the form's hidden `csrf_token` input.
pub fn csrf_token(body: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = body.find(marker)? + marker.len();
    let end = body[start..].find('"')? + start;
    Some(body[start..end].to_string())
}

impl Browser {
    pub fn new(base: &str) -> anyhow::Result<Browser> {
        let client = reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build()?;
        Ok(Browser { client, base: base.to_string() })
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Page> {
        let response =
            self.client.get(format!("{}{path}", self.base)).send().await.with_context(|| format!("GET {path}"))?;
        let status = response.status().as_u16();
        let location = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = response.text().await.unwrap_or_default();
        Ok(Page { status, location, body })
    }

    /// Logs in through /login like a person with JavaScript off.
    pub async fn login(&self, email: &str, password: &str) -> anyhow::Result<()> {
        let page = self.get("/login").await?;
        let token = csrf_token(&page.body).with_context(|| format!("no CSRF token on /login ({})", page.status))?;
        let response = self
            .client
            .post(format!("{}/_fn/login", self.base))
            .header(header::ACCEPT, "text/html,application/xhtml+xml")
            .header(header::REFERER, format!("{}/login", self.base))
            .form(&[("email", email), ("password", password), ("csrf_token", token.as_str())])
            .send()
            .await?;
        let status = response.status();
        let location = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        if !status.is_redirection() || location.contains("/login") {
            bail!("logging in answered {status} → {location:?}");
        }
        let dashboard = self.get("/dashboard").await?;
        if dashboard.status != 200 {
            bail!("after logging in, /dashboard answered {} → {:?}", dashboard.status, dashboard.location);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn csrf_token_is_read_from_the_form() {
        let html = r#"<form><input type="hidden" name="csrf_token" value="abc123"/></form>"#;
        assert_eq!(super::csrf_token(html).as_deref(), Some("abc123"));
        assert_eq!(super::csrf_token("<form></form>"), None);
    }
}
