//! What a signed-in user manages about their own account (SPEC §2, `/me`):
//! profile, sessions, devices and their security events.

use chrono::Utc;

use super::{validate_full_name, Accounts, AccountsError, AccountsResult, AuthContext, UserView};
use crate::security::client::ClientInfo;
use crate::security::events::{EventType, NewEvent};
use crate::store::{DeviceRecord, EventFilter, EventRecord, SessionRecord};

impl Accounts {
    /// Applies a profile change (`None`: leave the name as it is) as one
    /// targeted update, so it never undoes a concurrent change to the
    /// account's other fields.
    pub async fn update_profile(&self, user_id: &str, full_name: Option<Option<String>>) -> AccountsResult<UserView> {
        let user = match full_name {
            Some(name) => self.store.set_full_name(user_id, validate_full_name(name)?).await?,
            None => self.store.user_by_id(user_id).await?,
        };
        let user = user.ok_or(AccountsError::Unauthenticated("account no longer exists"))?;
        Ok(UserView::from(&user))
    }

    /// The user's active sessions, newest first.
    pub async fn sessions(&self, user_id: &str) -> AccountsResult<Vec<SessionRecord>> {
        Ok(self.store.user_sessions(user_id, Utc::now()).await?)
    }

    /// Ends one of the caller's own sessions.
    pub async fn end_session(&self, ctx: &AuthContext, id: &str, client: &ClientInfo) -> AccountsResult<()> {
        let not_found = || AccountsError::NotFound("no such session".into());
        if id.contains('\0') {
            // No id has one, and PostgreSQL text cannot hold one.
            return Err(not_found());
        }
        let session = self.store.session(id).await?.ok_or_else(not_found)?;
        if session.user_id != ctx.user.id || !session.is_active(Utc::now()) {
            return Err(not_found());
        }
        self.store.revoke_session(id, Utc::now()).await?;
        self.events
            .emit(
                NewEvent::success(EventType::SessionRevoked)
                    .user(&ctx.user)
                    .client(client)
                    .detail("session_id", id),
            )
            .await;
        Ok(())
    }

    /// The user's devices, most recently seen first.
    pub async fn devices(&self, user_id: &str) -> AccountsResult<Vec<DeviceRecord>> {
        Ok(self.store.user_devices(user_id).await?)
    }

    /// Forgets one of the caller's devices: its device token stops working
    /// and the next sign-in from it counts as a new device again.
    pub async fn forget_device(&self, ctx: &AuthContext, id: &str, client: &ClientInfo) -> AccountsResult<()> {
        if id.contains('\0') || !self.store.remove_device(&ctx.user.id, id).await? {
            return Err(AccountsError::NotFound("no such device".into()));
        }
        self.events
            .emit(
                NewEvent::success(EventType::DeviceRevoked)
                    .user(&ctx.user)
                    .client(client)
                    .detail("device_id", id),
            )
            .await;
        Ok(())
    }

    /// The user's own security events, newest first, older than `before_id`.
    pub async fn own_events(
        &self,
        user_id: &str,
        before_id: Option<&str>,
        limit: usize,
    ) -> AccountsResult<Vec<EventRecord>> {
        Ok(self
            .store
            .events(EventFilter {
                user_id: Some(user_id.to_string()),
                before_id: before_id.map(str::to_string),
                limit,
                ..Default::default()
            })
            .await?)
    }
}
