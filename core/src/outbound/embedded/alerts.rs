//! Alerts in the embedded store; each change commits with its outbox event.

use async_trait::async_trait;
use uuid::Uuid;

use super::*;

#[async_trait]
impl AlertWriter for EmbeddedStore {
    async fn get_alert(&self, alert_id: Uuid) -> Result<Option<Alert>> {
        self.get_body("SELECT body FROM alerts WHERE alert_id = ?1", alert_id)
            .await
    }

    async fn update_alert(&self, alert: &Alert, expected_version: u32) -> Result<()> {
        let alert = alert.clone();
        let body = to_json(&alert)?;
        self.write(move |transaction| {
            let updated = execute_cached(
                transaction,
                "UPDATE alerts SET status = ?2, version = ?3, body = ?4, expires_at = ?5
                 WHERE alert_id = ?1 AND version = ?6",
                params![
                    alert.alert_id.to_string(),
                    alert.status.as_str(),
                    alert.version(),
                    body,
                    alert.expires_at,
                    expected_version,
                ],
            )?;
            if updated == 0 {
                return Err(Error::ConcurrentUpdate);
            }
            insert_outbox(transaction, &alert, &body)
        })
        .await?;
        self.outbox_ready.notify_one();
        Ok(())
    }
}

#[async_trait]
impl AlertCreator for EmbeddedStore {
    async fn create_alert(&self, alert: &Alert) -> Result<Created> {
        let alert = alert.clone();
        let body = to_json(&alert)?;
        let created = self
            .write(move |transaction| {
                let existing: Option<String> = row_cached(
                    transaction,
                    "SELECT body FROM alerts WHERE alert_id = ?1",
                    params![alert.alert_id.to_string()],
                    |row| row.get(0),
                )?;
                if let Some(existing) = existing {
                    return Ok(Created::Existing(Box::new(from_json(&existing)?)));
                }
                execute_cached(
                    transaction,
                    "INSERT INTO alerts (alert_id, person_id, consulate_id, status, version, created_ms, body, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        alert.alert_id.to_string(),
                        alert.person_id.to_string(),
                        alert.consulate_id,
                        alert.status.as_str(),
                        alert.version(),
                        created_ms(&alert),
                        body,
                        alert.expires_at,
                    ],
                )?;
                insert_outbox(transaction, &alert, &body)?;
                point_person_at(transaction, &alert)?;
                Ok(Created::New)
            })
            .await?;
        if created == Created::New {
            self.outbox_ready.notify_one();
        }
        Ok(created)
    }
}

#[async_trait]
impl ConsulateQueue for EmbeddedStore {
    async fn list_by_consulate(&self, listing: Listing<'_>) -> Result<AlertPage> {
        let PageQuery { limit, cursor } = listing.page;
        let after = cursor.map(decode_cursor).transpose()?;
        let (consulate_id, status) = (listing.consulate_id.to_owned(), listing.status);
        let fetch = limit as i64 + 1;
        let alerts: Vec<Alert> = self
            .run(move |connection| {
                let (after_ms, after_id) = after.unwrap_or((i64::MAX, String::new()));
                query_bodies(
                    connection,
                    "SELECT body FROM alerts
                     WHERE consulate_id = ?1 AND status = ?2
                       AND (created_ms < ?3 OR (created_ms = ?3 AND alert_id < ?4))
                     ORDER BY created_ms DESC, alert_id DESC LIMIT ?5",
                    params![consulate_id, status.as_str(), after_ms, after_id, fetch],
                )
            })
            .await?;
        let page = page(alerts, limit, |a: &Alert| (created_ms(a), a.alert_id));
        Ok(AlertPage {
            alerts: page.items,
            next_cursor: page.next_cursor,
        })
    }
}

#[async_trait]
impl OverdueAlerts for EmbeddedStore {
    async fn open_alerts_created_before(&self, overdue: Overdue<'_>) -> Result<Page<Alert>> {
        self.sweep_page(
            "SELECT body FROM alerts
             WHERE created_ms <= ?1 AND (created_ms > ?2 OR (created_ms = ?2 AND alert_id > ?3))
               AND consulate_id = ?5 AND status = 'open'
               AND COALESCE(json_extract(body, '$.escalation_level'), 0) < ?6
             ORDER BY created_ms, alert_id LIMIT ?4",
            overdue.created_before,
            vec![
                overdue.consulate_id.to_owned().into(),
                overdue.below_level.into(),
            ],
            overdue.page,
            |a: &Alert| (created_ms(a), a.alert_id),
        )
        .await
    }
}

fn created_ms(alert: &Alert) -> i64 {
    unix_ms(alert.created_at)
}

fn insert_outbox(connection: &Connection, alert: &Alert, body: &str) -> Result<()> {
    execute_cached(
        connection,
        "INSERT INTO outbox (alert_id, seq, alert) VALUES (?1, ?2, ?3)",
        params![alert.alert_id.to_string(), alert.version(), body],
    )?;
    Ok(())
}

/// Makes `alert` its person's newest (`Person::last_alert_id`), bumping the record's version so
/// that a change read before it is re-read rather than written over the pointer. A person with no
/// record has their alert stored all the same.
fn point_person_at(connection: &Connection, alert: &Alert) -> Result<()> {
    execute_cached(
        connection,
        "UPDATE people SET body = json_set(body, '$.last_alert_id', ?2,
             '$.version', COALESCE(json_extract(body, '$.version'), 0) + 1)
         WHERE person_id = ?1",
        params![alert.person_id.to_string(), alert.alert_id.to_string()],
    )?;
    Ok(())
}
