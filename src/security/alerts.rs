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

use super::totp::SecretBox;
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
    AccountDisabled,
    TwoFactorReset,
    PasswordReset,
    EmailChanged,
    EmailChangeCancelled,
    /// Token mails: a link the recipient opens.
    VerifyEmail,
    PasswordResetLink,
    EmailChangeConfirm,
    /// To the old address, with the cancel link.
    EmailChangeRequested,
}

impl AlertKind {
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::AccountLocked => "account_locked",
            AlertKind::NewDevice => "new_device",
            AlertKind::TwoFactorEnabled => "two_factor_enabled",
            AlertKind::TwoFactorDisabled => "two_factor_disabled",
            AlertKind::PasswordChanged => "password_changed",
            AlertKind::AccountDisabled => "account_disabled",
            AlertKind::TwoFactorReset => "two_factor_reset",
            AlertKind::PasswordReset => "password_reset",
            AlertKind::EmailChanged => "email_changed",
            AlertKind::EmailChangeCancelled => "email_change_cancelled",
            AlertKind::VerifyEmail => "verify_email",
            AlertKind::PasswordResetLink => "password_reset_link",
            AlertKind::EmailChangeConfirm => "email_change_confirm",
            AlertKind::EmailChangeRequested => "email_change_requested",
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
            AlertKind::AccountDisabled => (
                include_str!("../../assets/email/account_disabled.txt"),
                include_str!("../../assets/email/account_disabled.html"),
            ),
            AlertKind::TwoFactorReset => (
                include_str!("../../assets/email/two_factor_reset.txt"),
                include_str!("../../assets/email/two_factor_reset.html"),
            ),
            AlertKind::PasswordReset => (
                include_str!("../../assets/email/password_reset.txt"),
                include_str!("../../assets/email/password_reset.html"),
            ),
            AlertKind::EmailChanged => (
                include_str!("../../assets/email/email_changed.txt"),
                include_str!("../../assets/email/email_changed.html"),
            ),
            AlertKind::EmailChangeCancelled => (
                include_str!("../../assets/email/email_change_cancelled.txt"),
                include_str!("../../assets/email/email_change_cancelled.html"),
            ),
            AlertKind::VerifyEmail => (
                include_str!("../../assets/email/verify_email.txt"),
                include_str!("../../assets/email/verify_email.html"),
            ),
            AlertKind::PasswordResetLink => (
                include_str!("../../assets/email/password_reset_link.txt"),
                include_str!("../../assets/email/password_reset_link.html"),
            ),
            AlertKind::EmailChangeConfirm => (
                include_str!("../../assets/email/email_change_confirm.txt"),
                include_str!("../../assets/email/email_change_confirm.html"),
            ),
            AlertKind::EmailChangeRequested => (
                include_str!("../../assets/email/email_change_requested.txt"),
                include_str!("../../assets/email/email_change_requested.html"),
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

/// The most of a User-Agent an alert shows.
const MAX_USER_AGENT_CHARS: usize = 200;

/// The User-Agent as the alert reports it: whatever the client sent, cut to
/// [`MAX_USER_AGENT_CHARS`].
fn reported_user_agent(ua: Option<&str>) -> String {
    match ua.filter(|s| !s.is_empty()) {
        None => "none".into(),
        Some(ua) if ua.chars().count() > MAX_USER_AGENT_CHARS => {
            ua.chars().take(MAX_USER_AGENT_CHARS).chain(['…']).collect()
        }
        Some(ua) => ua.to_string(),
    }
}

/// Escaped HTML text that mail clients will not turn into a link: a
/// zero-width space after each `.`, `:`, `/` and `@` breaks every URL,
/// domain and address pattern while the text reads the same.
fn unlinkable(escaped: &str) -> String {
    escaped
        .chars()
        .flat_map(|c| {
            let split = matches!(c, '.' | ':' | '/' | '@');
            std::iter::once(c).chain(split.then_some('\u{200b}'))
        })
        .collect()
}

/// The mark a token mail's stored bodies hold where the token goes.
pub const TOKEN_MARK: &str = "{{token}}";

/// Subject, text body and HTML body for an alert about event `e`. The
/// User-Agent is text the client chose: shown truncated, labelled as
/// reported by the browser, and in HTML inside `<code>`, never as a link.
/// A token mail's `link` (with [`TOKEN_MARK`] for the token) is the only
/// link a mail holds.
pub fn render(kind: AlertKind, e: &EventRecord, link: Option<&str>) -> (String, String, String) {
    let (text_t, html_t) = kind.templates();
    let vars: Vec<(&str, String)> = vec![
        ("link", link.unwrap_or_default().to_string()),
        (
            "new_email",
            e.details["new_email"].as_str().unwrap_or_default().to_string(),
        ),
        ("email", e.email.clone().unwrap_or_default()),
        ("when", rfc3339(e.timestamp)),
        ("ip", e.ip.clone().unwrap_or_else(|| "unknown".into())),
        ("user_agent", reported_user_agent(e.user_agent.as_deref())),
        (
            "locked_until",
            e.details["locked_until"].as_str().unwrap_or("later").to_string(),
        ),
    ];
    let fill = |t: &str, html: bool| {
        vars.iter().fold(t.to_string(), |acc, (k, v)| {
            let v = match (html, *k) {
                (false, _) => v.replace(['\r', '\n'], " "),
                (true, "user_agent") => unlinkable(&html_escape(v)),
                (true, _) => html_escape(v),
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
    /// Opens the sealed tokens of token mails.
    secrets: Arc<SecretBox>,
}

/// The RFC 5322 `Message-ID` of an outbox message: its id (a UUID) at the
/// domain of the sender address; the same on every retry, so a receiver can
/// drop the duplicate an at-least-once resend would make.
fn message_id(m: &OutboxMessage, from: &Mailbox) -> String {
    format!("<{}@{}>", m.id, from.email.domain())
}

impl Mailer {
    pub fn new(cfg: &SmtpConfig, secrets: Arc<SecretBox>) -> anyhow::Result<Self> {
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
            secrets,
        })
    }

    async fn send(&self, m: &OutboxMessage) -> Result<(), String> {
        let to: Mailbox = m.to.parse().map_err(|e| format!("bad recipient: {e}"))?;
        let (text, html) = match &m.sealed_token {
            Some(sealed) => {
                let token = self
                    .secrets
                    .open(&m.to, sealed)
                    .map_err(|_| "the mail's token does not unseal (another server key?)".to_string())?;
                let token = String::from_utf8(token).map_err(|_| "the mail's token is not text".to_string())?;
                (m.text.replace(TOKEN_MARK, &token), m.html.replace(TOKEN_MARK, &token))
            }
            None => (m.text.clone(), m.html.clone()),
        };
        let email = Message::builder()
            .message_id(Some(message_id(m, &self.from)))
            // When the alert was written to the outbox, in UTC (+0000).
            .date(m.created_at.into())
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.clone())
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| e.to_string())?;
        self.transport.send(email).await.map(|_| ()).map_err(|e| e.to_string())
    }
}

/// Delay before retry number `attempts` (1-based): 2 s, 4 s, 8 s … capped at 5 min.
pub fn backoff(attempts: u32) -> Duration {
    let secs = 2u64.saturating_pow(attempts.min(16));
    Duration::from_secs(secs.min(300))
}

/// How long a claimed message is hidden from other workers while one sends it.
const SEND_LEASE: chrono::Duration = chrono::Duration::minutes(5);

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
    let batch = match store.claim_due_mail(Utc::now(), 50, SEND_LEASE).await {
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
            link: None,
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
            AlertKind::AccountDisabled,
            AlertKind::TwoFactorReset,
            AlertKind::PasswordReset,
            AlertKind::EmailChanged,
            AlertKind::EmailChangeCancelled,
            AlertKind::VerifyEmail,
            AlertKind::PasswordResetLink,
            AlertKind::EmailChangeConfirm,
            AlertKind::EmailChangeRequested,
        ] {
            let (subject, text, html) = render(kind, &event(), Some("https://f.example/#/x/{{token}}"));
            assert!(!subject.is_empty() && !subject.contains("{{"));
            assert!(text.contains("ann@example.com"));
            let unfilled = |s: &str| s.replace(TOKEN_MARK, "").contains("{{");
            assert!(!unfilled(&text) && !unfilled(&html), "{kind:?}");
            assert!(!html.contains("<script>"));
            // Admin actions come from the admin socket, and token mails say
            // little about the client: no User-Agent to show.
            if !matches!(
                kind,
                AlertKind::AccountDisabled
                    | AlertKind::TwoFactorReset
                    | AlertKind::EmailChanged
                    | AlertKind::EmailChangeCancelled
                    | AlertKind::VerifyEmail
                    | AlertKind::PasswordResetLink
                    | AlertKind::EmailChangeConfirm
            ) {
                assert!(text.contains("203.0.113.9"));
                assert!(html.contains("&lt;script&gt;"));
            }
        }
    }

    #[test]
    fn the_user_agent_is_reported_text_never_a_link() {
        let mut e = event();
        e.user_agent = Some(format!(
            "Mozilla/5.0 see https://evil.example/x <b>{}END",
            "A".repeat(300)
        ));
        let (_, text, html) = render(AlertKind::NewDevice, &e, None);
        assert!(!text.contains("END") && !html.contains("END"));
        let shown = format!("Mozilla/5.0 see https://evil.example/x <b>{}…", "A".repeat(158));
        assert!(text.contains(&format!("reported by the browser: {shown}\n")), "{text}");
        assert!(html.contains(
            "<code>Mozilla/\u{200b}5.\u{200b}0 see https:\u{200b}/\u{200b}/\u{200b}evil.\u{200b}example/\u{200b}x &lt;b&gt;AAA"
        ), "{html}");
        assert!(!html.contains("https://") && !html.contains("<a") && !html.contains("<b>A"));
        e.user_agent = None;
        let (_, text, _) = render(AlertKind::NewDevice, &e, None);
        assert!(text.contains("reported by the browser: none"), "{text}");
    }

    #[test]
    fn message_ids_are_stable_per_message_at_the_sender_domain() {
        let m = OutboxMessage {
            id: "0190b2c4-7d2e-7c3a-9a51-3f1f2b9c8d7e".into(),
            to: "ann@example.com".into(),
            subject: "s".into(),
            text: "t".into(),
            html: "h".into(),
            event_id: "e1".into(),
            created_at: Utc::now(),
            attempts: 0,
            next_attempt_at: Utc::now(),
            last_error: None,
            sealed_token: None,
        };
        let from: Mailbox = "fortfolio <alerts@mail.example.org>".parse().unwrap();
        assert_eq!(
            message_id(&m, &from),
            "<0190b2c4-7d2e-7c3a-9a51-3f1f2b9c8d7e@mail.example.org>"
        );
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(30), Duration::from_secs(300));
    }
}
