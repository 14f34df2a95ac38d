//! Check-ins in the embedded store.

use async_trait::async_trait;
use uuid::Uuid;

use super::*;

#[async_trait]
impl CheckInStore for EmbeddedStore {
    async fn create_checkin(&self, checkin: &CheckIn) -> Result<()> {
        let body = to_json(checkin)?;
        let (id, person, status, deadline, expires) = (
            checkin.checkin_id.to_string(),
            checkin.person_id.to_string(),
            checkin.status.as_str(),
            unix_ms(checkin.deadline),
            checkin.expires_at,
        );
        self.write(move |connection| {
            let inserted = connection
                .execute(
                    "INSERT INTO checkins (checkin_id, person_id, status, deadline_ms, body, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (checkin_id) DO NOTHING",
                    params![id, person, status, deadline, body, expires],
                )
                .map_err(Error::store)?;
            created(inserted)
        })
        .await
    }

    async fn update_checkin(&self, checkin: &CheckIn, expected_version: u32) -> Result<()> {
        let body = to_json(checkin)?;
        let (id, status, deadline, expires) = (
            checkin.checkin_id.to_string(),
            checkin.status.as_str(),
            unix_ms(checkin.deadline),
            checkin.expires_at,
        );
        self.write(move |connection| {
            let updated = connection
                .execute(
                    "UPDATE checkins SET status = ?2, deadline_ms = ?3, body = ?4, expires_at = ?5
                     WHERE checkin_id = ?1 AND COALESCE(json_extract(body, '$.version'), 0) = ?6",
                    params![id, status, deadline, body, expires, expected_version],
                )
                .map_err(Error::store)?;
            updated_one(updated)
        })
        .await
    }

    async fn get_checkin(&self, checkin_id: Uuid) -> Result<Option<CheckIn>> {
        self.get_body(
            "SELECT body FROM checkins WHERE checkin_id = ?1",
            checkin_id,
        )
        .await
    }

    async fn checkins_due(
        &self,
        deadline: time::OffsetDateTime,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<CheckIn>> {
        let (after_ms, after_id) = after(cursor)?;
        let cutoff = unix_ms(deadline);
        let fetch = limit as i64 + 1;
        let checkins = self
            .run(move |connection| {
                query_bodies(
                    connection,
                    "SELECT body FROM checkins
                     WHERE status = 'pending' AND deadline_ms <= ?1
                       AND (deadline_ms > ?2 OR (deadline_ms = ?2 AND checkin_id > ?3))
                     ORDER BY deadline_ms, checkin_id LIMIT ?4",
                    params![cutoff, after_ms, after_id, fetch],
                )
            })
            .await?;
        Ok(page(checkins, limit, |c: &CheckIn| {
            (unix_ms(c.deadline), c.checkin_id)
        }))
    }
}
