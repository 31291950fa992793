//! Email alerts (SPEC §5.11): rendered from the templates in
//! `assets/email/`, queued in the store's outbox with the event that caused
//! them, and delivered by a background worker with exponential backoff, so
//! a slow or dead mail server never slows a request or loses an alert.
//! Delivery is at least once: a crash between the SMTP server's "250 OK" and
//! the outbox update would send that one message again.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::Notify;

use crate::config::{SmtpConfig, SmtpSecurity};
use crate::domain::rfc3339;
use crate::store::{EventRecord, OutboxMessage, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    AccountLocked,
    NewDevice,
    TwoFactorEnabled,
    TwoFactorDisabled,
    PasswordChanged,
}

impl AlertKind {
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::AccountLocked => "account_locked",
            AlertKind::NewDevice => "new_device",
            AlertKind::TwoFactorEnabled => "two_factor_enabled",
            AlertKind::TwoFactorDisabled => "two_factor_disabled",
            AlertKind::PasswordChanged => "password_changed",
        }
    }

    fn templates(self) -> (&'static str, &'static str) {
        match self {
            AlertKind::AccountLocked => (
                include_str!("../../assets/email/account_locked.txt"),
                include_str!("../../assets/email/account_locked.html"),
            ),
            AlertKind::NewDevice => (
                include_str!("../../assets/email/new_device.txt"),
                include_str!("../../assets/email/new_device.html"),
            ),
            AlertKind::TwoFactorEnabled => (
                include_str!("../../assets/email/two_factor_enabled.txt"),
                include_str!("../../assets/email/two_factor_enabled.html"),
            ),
            AlertKind::TwoFactorDisabled => (
                include_str!("../../assets/email/two_factor_disabled.txt"),
                include_str!("../../assets/email/two_factor_disabled.html"),
            ),
            AlertKind::PasswordChanged => (
                include_str!("../../assets/email/password_changed.txt"),
                include_str!("../../assets/email/password_changed.html"),
            ),
        }
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Subject, text body and HTML body for an alert about event `e`.
pub fn render(kind: AlertKind, e: &EventRecord) -> (String, String, String) {
    let (text_t, html_t) = kind.templates();
    let vars: Vec<(&str, String)> = vec![
        ("email", e.email.clone().unwrap_or_default()),
        ("when", rfc3339(e.timestamp)),
        ("ip", e.ip.clone().unwrap_or_else(|| "unknown".into())),
        (
            "user_agent",
            e.user_agent
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "unknown device".into()),
        ),
        (
            "locked_until",
            e.details["locked_until"].as_str().unwrap_or("later").to_string(),
        ),
    ];
    let fill = |t: &str, escape: bool| {
        vars.iter().fold(t.to_string(), |acc, (k, v)| {
            let v = if escape {
                html_escape(v)
            } else {
                v.replace(['\r', '\n'], " ")
            };
            acc.replace(&format!("{{{{{k}}}}}"), &v)
        })
    };
    let text = fill(text_t, false);
    let (subject, body) = text
        .split_once('\n')
        .map(|(s, b)| (s.trim_start_matches("Subject:").trim().to_string(), b.to_string()))
        .unwrap_or_else(|| ("fortfolio security alert".into(), text.clone()));
    let html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\">{}</body></html>",
        fill(html_t, true)
    );
    (subject, body, html)
}

/// Sends outbox messages over SMTP.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    pub fn new(cfg: &SmtpConfig) -> anyhow::Result<Self> {
        let builder = match cfg.security {
            SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&cfg.host)?,
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&cfg.host)?,
            SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host),
        };
        let mut builder = builder.port(cfg.port).timeout(Some(Duration::from_secs(15)));
        if !cfg.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                cfg.username.clone(),
                cfg.password.expose().to_string(),
            ));
        }
        let from: Mailbox = cfg
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("invalid config key smtp.from: {e}"))?;
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    async fn send(&self, m: &OutboxMessage) -> Result<(), String> {
        let to: Mailbox = m.to.parse().map_err(|e| format!("bad recipient: {e}"))?;
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.clone())
            .multipart(MultiPart::alternative_plain_html(m.text.clone(), m.html.clone()))
            .map_err(|e| e.to_string())?;
        self.transport.send(email).await.map(|_| ()).map_err(|e| e.to_string())
    }
}

/// Delay before retry number `attempts` (1-based): 2 s, 4 s, 8 s … capped at 5 min.
pub fn backoff(attempts: u32) -> Duration {
    let secs = 2u64.saturating_pow(attempts.min(16));
    Duration::from_secs(secs.min(300))
}

/// Delivers the outbox until `stop` turns true.
pub async fn run_outbox(
    store: Arc<dyn Store>,
    mailer: Mailer,
    wakeup: Arc<Notify>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = deliver_due(&*store, &mailer) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let wait = match store.next_mail_due().await {
            Ok(Some(next)) => (next - Utc::now()).to_std().unwrap_or(Duration::ZERO),
            _ => Duration::from_secs(60),
        }
        .clamp(Duration::from_millis(50), Duration::from_secs(60));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = wakeup.notified() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// One pass over the messages that are due.
async fn deliver_due(store: &dyn Store, mailer: &Mailer) {
    let batch = match store.due_mail(Utc::now(), 50).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the outbox");
            return;
        }
    };
    for m in batch {
        match mailer.send(&m).await {
            Ok(()) => {
                if let Err(e) = store.mail_sent(&m.id).await {
                    tracing::error!(error = %e, "cannot mark alert as sent");
                }
                tracing::info!(subject = %m.subject, attempts = m.attempts + 1, "alert delivered");
            }
            Err(err) => {
                let delay = backoff(m.attempts + 1);
                let next = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
                tracing::warn!(error = %err, retry_in_s = delay.as_secs(), "alert delivery failed");
                if let Err(e) = store.mail_failed(&m.id, next, err).await {
                    tracing::error!(error = %e, "cannot reschedule alert");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> EventRecord {
        EventRecord {
            id: "e1".into(),
            timestamp: Utc::now(),
            event: "password_changed".into(),
            outcome: "success".into(),
            user_id: Some("u1".into()),
            email: Some("ann@example.com".into()),
            ip: Some("203.0.113.9".into()),
            user_agent: Some("<script>".into()),
            request_id: None,
            details: serde_json::json!({}),
        }
    }

    #[test]
    fn renders_every_kind_with_escaping() {
        for kind in [
            AlertKind::AccountLocked,
            AlertKind::NewDevice,
            AlertKind::TwoFactorEnabled,
            AlertKind::TwoFactorDisabled,
            AlertKind::PasswordChanged,
        ] {
            let (subject, text, html) = render(kind, &event());
            assert!(!subject.is_empty() && !subject.contains("{{"));
            assert!(text.contains("203.0.113.9") && text.contains("ann@example.com"));
            assert!(!text.contains("{{") && !html.contains("{{"));
            assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"));
        }
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(30), Duration::from_secs(300));
    }
}
