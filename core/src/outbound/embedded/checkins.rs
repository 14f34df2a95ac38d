//! Check-ins in the embedded store.

use async_trait::async_trait;
use uuid::Uuid;

use super::*;

#[async_trait]
impl CheckInWriter for EmbeddedStore {
    async fn get_checkin(&self, checkin_id: Uuid) -> Result<Option<CheckIn>> {
        self.get_body(
            "SELECT body FROM checkins WHERE checkin_id = ?1",
            checkin_id,
        )
        .await
    }

    async fn update_checkin(&self, checkin: &CheckIn, expected_version: u32) -> Result<()> {
        let updated = self
            .execute(
                "UPDATE checkins SET status = ?2, deadline_ms = ?3, body = ?4, expires_at = ?5
                 WHERE checkin_id = ?1 AND COALESCE(json_extract(body, '$.version'), 0) = ?6",
                checkin_values(checkin, expected_version.into())?,
            )
            .await?;
        updated_one(updated)
    }
}

#[async_trait]
impl CheckInCreator for EmbeddedStore {
    async fn create_checkin(&self, checkin: &CheckIn) -> Result<()> {
        let inserted = self
            .execute(
                "INSERT INTO checkins (checkin_id, status, deadline_ms, body, expires_at, person_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (checkin_id) DO NOTHING",
                checkin_values(checkin, checkin.person_id.to_string().into())?,
            )
            .await?;
        created(inserted)
    }
}

#[async_trait]
impl DueCheckIns for EmbeddedStore {
    async fn checkins_due(
        &self,
        deadline: time::OffsetDateTime,
        page: PageQuery<'_>,
    ) -> Result<Page<CheckIn>> {
        self.sweep_page(
            "SELECT body FROM checkins
             WHERE deadline_ms <= ?1 AND (deadline_ms > ?2 OR (deadline_ms = ?2 AND checkin_id > ?3))
               AND status = 'pending'
             ORDER BY deadline_ms, checkin_id LIMIT ?4",
            deadline,
            Vec::new(),
            page,
            |c: &CheckIn| (unix_ms(c.deadline), c.checkin_id),
        )
        .await
    }
}

/// A check-in's row: ?1 the id, ?2 its status, ?3 its deadline, ?4 the body, ?5 when it expires,
/// then ?6 `last`.
fn checkin_values(checkin: &CheckIn, last: Value) -> Result<Vec<Value>> {
    Ok(vec![
        checkin.checkin_id.to_string().into(),
        checkin.status.as_str().to_owned().into(),
        unix_ms(checkin.deadline).into(),
        to_json(checkin)?.into(),
        checkin.expires_at.into(),
        last,
    ])
}
