//! People in the DynamoDB store.

use async_trait::async_trait;
use uuid::Uuid;

use super::*;

#[async_trait]
impl PersonWriter for DynamoStore {
    async fn get_person(&self, person_id: Uuid) -> Result<Option<Person>> {
        let key = person_key(person_id);
        self.get_as(key, "PERSON", |i: PersonItem| i.person).await
    }

    async fn update_person(&self, person: &Person, expected_version: u32) -> Result<()> {
        if has_phones(person) {
            return self.put_with_phones(person, Some(expected_version)).await;
        }
        self.put_versioned(to_item(PersonItem::new(person.clone()))?, expected_version)
            .await
    }
}

#[async_trait]
impl PersonStore for DynamoStore {
    async fn create_person(&self, person: &Person) -> Result<()> {
        if has_phones(person) {
            return self.put_with_phones(person, None).await;
        }
        self.put_new(to_item(PersonItem::new(person.clone()))?)
            .await
    }

    async fn renew(&self, person_id: Uuid, expires_at: i64) -> Result<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(person_key(person_id)))
            .key("sk", AttributeValue::S("PERSON".into()))
            .update_expression("SET expires_at = :expires")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":expires", AttributeValue::N(expires_at.to_string()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => {
                // The phone pointers live as long as the person: best effort, as renewal is.
                let renewed = output.attributes.map(from_item::<PersonItem>).transpose()?;
                if let Some(item) = renewed {
                    for phone in phones(&item.person) {
                        self.client
                            .put_item()
                            .table_name(&self.table)
                            .set_item(Some(phone_pointer(&item.person, phone)))
                            .send()
                            .await
                            .map_err(sdk_error)?;
                    }
                }
                Ok(())
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(Error::NotFound("person"))
            }
            Err(err) => Err(sdk_error(err)),
        }
    }
}

/// The phone pointers: one item per (phone, person), `PHONE#<e164>` / `PERSON#<uuid>`, written in
/// the same transaction as the person's record, so a reply always finds everyone who lists its
/// number. A pointer left by a number since dropped is harmless (the reply checks the record)
/// and goes with its TTL, which renewals move with the person's.
pub fn phone_key(phone: &str) -> String {
    format!("PHONE#{phone}")
}

fn phones(person: &Person) -> impl Iterator<Item = &str> {
    person.contacts.iter().filter_map(|c| c.phone.as_deref())
}

fn has_phones(person: &Person) -> bool {
    phones(person).next().is_some()
}

fn phone_pointer(person: &Person, phone: &str) -> Item {
    Item::from([
        ("pk".to_owned(), AttributeValue::S(phone_key(phone))),
        (
            "sk".to_owned(),
            AttributeValue::S(person_key(person.person_id)),
        ),
        ("kind".to_owned(), AttributeValue::S("phone".into())),
        (
            "person_id".to_owned(),
            AttributeValue::S(person.person_id.to_string()),
        ),
        (
            "expires_at".to_owned(),
            AttributeValue::N(person.expires_at.to_string()),
        ),
    ])
}

impl DynamoStore {
    /// Puts the person and a pointer per phone in one transaction: a new person (`expected`
    /// `None`), or a replacement of the stored version `expected`.
    async fn put_with_phones(&self, person: &Person, expected: Option<u32>) -> Result<()> {
        use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
        let build = |put: aws_sdk_dynamodb::types::builders::PutBuilder| {
            put.build().map_err(|err| Error::Store(err.to_string()))
        };
        let mut record = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(PersonItem::new(person.clone()))?));
        record = match expected {
            None => record.condition_expression("attribute_not_exists(pk)"),
            Some(0) => record
                .condition_expression(
                    "attribute_exists(pk) AND (attribute_not_exists(version) OR version = :expected)",
                )
                .expression_attribute_values(":expected", AttributeValue::N("0".into())),
            Some(version) => record
                .condition_expression("version = :expected")
                .expression_attribute_values(
                    ":expected",
                    AttributeValue::N(version.to_string()),
                ),
        };
        let mut items = vec![TransactWriteItem::builder().put(build(record)?).build()];
        for phone in phones(person) {
            let pointer = Put::builder()
                .table_name(&self.table)
                .set_item(Some(phone_pointer(person, phone)));
            items.push(TransactWriteItem::builder().put(build(pointer)?).build());
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => {
                let condition_failed = err
                    .as_service_error()
                    .and_then(|e| match e {
                        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(cancelled) => Some(cancelled),
                        _ => None,
                    })
                    .is_some_and(|cancelled| {
                        cancelled
                            .cancellation_reasons()
                            .first()
                            .and_then(|reason| reason.code())
                            == Some("ConditionalCheckFailed")
                    });
                match (condition_failed, expected) {
                    (true, None) => Err(Error::Conflict {
                        code: "already_exists",
                        message: "a record with this id already exists".into(),
                    }),
                    (true, Some(_)) => Err(Error::ConcurrentUpdate),
                    (false, _) => Err(sdk_error(err)),
                }
            }
        }
    }
}

#[async_trait]
impl crate::ports::PeopleByPhone for DynamoStore {
    async fn people_with_phone(&self, phone: &str) -> Result<Vec<Uuid>> {
        let items = partition_items(&self.client, &self.table, phone_key(phone), false)
            .await
            .map_err(sdk_error)?;
        let person_id = |item: &Item| {
            let id = item.get("person_id")?.as_s().ok()?;
            Uuid::parse_str(id).ok()
        };
        Ok(items.iter().filter_map(person_id).collect())
    }
}
