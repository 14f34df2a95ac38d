//! People in the embedded store.

use async_trait::async_trait;
use uuid::Uuid;

use super::*;
use crate::domain::consent_request;

#[async_trait]
impl PersonWriter for EmbeddedStore {
    async fn get_person(&self, person_id: Uuid) -> Result<Option<Person>> {
        self.get_body("SELECT body FROM people WHERE person_id = ?1", person_id)
            .await
    }

    async fn update_person(&self, person: &Person, expected_version: u32) -> Result<()> {
        let person = person.clone();
        let mut values = person_values(&person)?;
        values.push(expected_version.into());
        let asks = self
            .write(move |transaction| {
                let old = stored_body(transaction, person.person_id)?;
                // The version lives in the body; records written before it existed read as 0.
                let updated = execute_cached(
                    transaction,
                    "UPDATE people SET body = ?2, expires_at = ?3
                     WHERE person_id = ?1 AND COALESCE(json_extract(body, '$.version'), 0) = ?4",
                    params_from_iter(values),
                )?;
                updated_one(updated)?;
                // An old record that cannot be read counts as none: the ledger keeps a phone
                // already asked from being asked again.
                let old: Option<Person> = old.and_then(|body| from_json(&body).ok());
                ask_new_phones(transaction, old.as_ref(), &person)
            })
            .await?;
        self.wake_relay(asks);
        Ok(())
    }
}

#[async_trait]
impl PersonStore for EmbeddedStore {
    async fn create_person(&self, person: &Person) -> Result<()> {
        let person = person.clone();
        let values = person_values(&person)?;
        let asks = self
            .write(move |transaction| {
                let inserted = execute_cached(
                    transaction,
                    "INSERT INTO people (person_id, body, expires_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (person_id) DO NOTHING",
                    params_from_iter(values),
                )?;
                created(inserted)?;
                ask_new_phones(transaction, None, &person)
            })
            .await?;
        self.wake_relay(asks);
        Ok(())
    }

    async fn renew(&self, person_id: Uuid, expires_at: i64) -> Result<()> {
        let renewed = self
            .execute(
                "UPDATE people SET expires_at = ?2, body = json_set(body, '$.expires_at', ?2)
                 WHERE person_id = ?1",
                vec![person_id.to_string().into(), expires_at.into()],
            )
            .await?;
        if renewed == 0 {
            return Err(Error::NotFound("person"));
        }
        Ok(())
    }
}

/// Read from the records themselves (SQLite's `json_each` over each person's contacts), so it
/// is in step with every contacts change by construction; a local store holds few people, and a
/// reply is rare, so a scan costs nothing worth an index to keep.
#[async_trait]
impl crate::ports::PeopleByPhone for EmbeddedStore {
    async fn people_with_phone(&self, phone: &str) -> Result<Vec<Uuid>> {
        let phone = phone.to_owned();
        self.run(move |connection| {
            let mut statement = connection
                .prepare_cached(
                    "SELECT DISTINCT people.person_id FROM people, json_each(people.body, '$.contacts') AS contact
                     WHERE json_extract(contact.value, '$.phone') = ?1",
                )
                .map_err(Error::store)?;
            let ids = statement
                .query_map(params![phone], |row| row.get::<_, String>(0))
                .map_err(Error::store)?
                .collect::<std::result::Result<Vec<String>, _>>()
                .map_err(Error::store)?;
            ids.iter()
                .map(|id| Uuid::parse_str(id).map_err(Error::store))
                .collect()
        })
        .await
    }
}

/// The person's record as stored, within a write.
fn stored_body(transaction: &Connection, person_id: Uuid) -> Result<Option<String>> {
    let sql = "SELECT body FROM people WHERE person_id = ?1";
    row_cached(transaction, sql, params![person_id.to_string()], |row| {
        row.get(0)
    })
}

/// Writes the outbox event that asks the phone contacts `new` has and `old` had not, if any;
/// whether it did.
fn ask_new_phones(transaction: &Connection, old: Option<&Person>, new: &Person) -> Result<bool> {
    let phones = consent_request::phones_to_ask(old, new);
    if phones.is_empty() {
        return Ok(false);
    }
    let body = to_json(&AskBody {
        ask_consent: phones,
        person: new.clone(),
    })?;
    execute_cached(
        transaction,
        "INSERT INTO outbox (alert_id, seq, alert) VALUES (?1, 0, ?2)",
        params![Uuid::new_v4().to_string(), body],
    )?;
    Ok(true)
}

/// A person's row: ?1 the id, ?2 the body, ?3 when it expires.
fn person_values(person: &Person) -> Result<Vec<Value>> {
    Ok(vec![
        person.person_id.to_string().into(),
        to_json(person)?.into(),
        person.expires_at.into(),
    ])
}
