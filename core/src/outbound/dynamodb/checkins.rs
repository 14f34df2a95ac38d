//! Check-ins in the DynamoDB store.

use async_trait::async_trait;
use uuid::Uuid;

use super::*;

#[async_trait]
impl CheckInWriter for DynamoStore {
    async fn get_checkin(&self, checkin_id: Uuid) -> Result<Option<CheckIn>> {
        let key = checkin_key(checkin_id);
        self.get_as(key, "CHECKIN", |i: CheckInItem| i.checkin)
            .await
    }

    async fn update_checkin(&self, checkin: &CheckIn, expected_version: u32) -> Result<()> {
        self.put_versioned(
            to_item(CheckInItem::new(checkin.clone()))?,
            expected_version,
        )
        .await
    }
}

#[async_trait]
impl CheckInCreator for DynamoStore {
    async fn create_checkin(&self, checkin: &CheckIn) -> Result<()> {
        self.put_new(to_item(CheckInItem::new(checkin.clone()))?)
            .await
    }
}

#[async_trait]
impl DueCheckIns for DynamoStore {
    async fn checkins_due(
        &self,
        deadline: time::OffsetDateTime,
        page: PageQuery<'_>,
    ) -> Result<Page<CheckIn>> {
        let partition = PENDING_CHECKINS.to_owned();
        let page = self
            .index_page(partition, INDEXED_CHECKIN, unix_ms(deadline), None, page)
            .await?;
        page_of(page, |i: CheckInItem| i.checkin)
    }
}
