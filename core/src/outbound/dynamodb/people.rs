//! People in the DynamoDB store.

use async_trait::async_trait;
use uuid::Uuid;

use super::*;

#[async_trait]
impl PersonStore for DynamoStore {
    async fn create_person(&self, person: &Person) -> Result<()> {
        self.put_new(to_item(PersonItem::new(person.clone()))?)
            .await
    }

    async fn update_person(&self, person: &Person, expected_version: u32) -> Result<()> {
        self.put_versioned(to_item(PersonItem::new(person.clone()))?, expected_version)
            .await
    }

    async fn get_person(&self, person_id: Uuid) -> Result<Option<Person>> {
        self.get(person_key(person_id), "PERSON")
            .await?
            .map(|item| from_item::<PersonItem>(item).map(|i| i.person))
            .transpose()
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
            .send()
            .await;
        unless_condition_failed(result, Error::NotFound("person"))
    }
}
