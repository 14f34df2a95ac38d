//! The delivery ledger in the alerts table: one item per send, `DELIVERY#<alert id>` /
//! `<notification id>#<recipient key>`, claimed with a conditional put before the provider call
//! and settled with an update after it. Items carry the alert's TTL, a hash for the recipient
//! and its masked form, never an address.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::ports::{Delivery, DeliveryLedger, DeliveryState};

pub const DELIVERY_KIND: &str = "delivery";

pub fn delivery_key(alert_id: Uuid) -> String {
    format!("DELIVERY#{alert_id}")
}

/// The store's failure by error code or kind only.
fn ledger_error<E: ProvideErrorMetadata, R>(err: SdkError<E, R>) -> Error {
    let kind = match &err {
        SdkError::ServiceError(service) => service.err().code().unwrap_or("unknown"),
        SdkError::TimeoutError(_) => "timeout",
        SdkError::DispatchFailure(_) => "dispatch failure",
        _ => "unknown",
    };
    Error::Store(format!("delivery ledger: {kind}"))
}

pub struct DynamoLedger {
    client: Client,
    table: String,
}

impl DynamoLedger {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoLedger {
            client,
            table: table.into(),
        }
    }

    fn key(delivery: &Delivery) -> [(&'static str, AttributeValue); 2] {
        [
            ("pk", AttributeValue::S(delivery_key(delivery.alert_id))),
            (
                "sk",
                AttributeValue::S(format!(
                    "{}#{}",
                    delivery.notification_id, delivery.recipient
                )),
            ),
        ]
    }

    /// The recorded state, read consistently.
    async fn state_of(&self, delivery: &Delivery) -> Result<Option<DeliveryState>> {
        let [(pk, pk_value), (sk, sk_value)] = Self::key(delivery);
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(pk, pk_value)
            .key(sk, sk_value)
            .consistent_read(true)
            .send()
            .await
            .map_err(ledger_error)?;
        Ok(output.item.as_ref().and_then(state_in))
    }
}

fn state_in(item: &std::collections::HashMap<String, AttributeValue>) -> Option<DeliveryState> {
    DeliveryState::parse(item.get("state")?.as_s().ok()?)
}

fn is_condition_failure<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

#[async_trait]
impl DeliveryLedger for DynamoLedger {
    async fn claim(&self, delivery: &Delivery) -> Result<bool> {
        let [(pk, pk_value), (sk, sk_value)] = Self::key(delivery);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(pk, pk_value)
            .item(sk, sk_value)
            .item("kind", AttributeValue::S(DELIVERY_KIND.into()))
            .item(
                "notification_id",
                AttributeValue::S(delivery.notification_id.clone()),
            )
            .item("recipient", AttributeValue::S(delivery.masked.clone()))
            .item(
                "state",
                AttributeValue::S(DeliveryState::Queued.as_str().into()),
            )
            .item("attempts", AttributeValue::N("1".into()))
            .item(
                "expires_at",
                AttributeValue::N(delivery.expires_at.to_string()),
            )
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match put {
            Ok(_) => return Ok(true),
            Err(err) if is_condition_failure(&err) => err,
            Err(err) => return Err(ledger_error(err)),
        };
        // An earlier attempt recorded this send: leave it if it was settled.
        let returned = match err.into_service_error() {
            PutItemError::ConditionalCheckFailedException(e) => e.item,
            _ => None,
        };
        let seen = match returned.as_ref().and_then(state_in) {
            Some(state) => Some(state),
            // Not every DynamoDB implementation returns the old item.
            None => self.state_of(delivery).await?,
        };
        let Some(seen) = seen.filter(|state| !state.is_settled()) else {
            return Ok(false);
        };
        // Queued (its answer lost) or failed for now: claim it again, unless another attempt
        // changed it meanwhile.
        let [(pk, pk_value), (sk, sk_value)] = Self::key(delivery);
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(pk, pk_value)
            .key(sk, sk_value)
            .update_expression("SET #state = :queued, attempts = attempts + :one")
            .condition_expression("#state = :seen")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(
                ":queued",
                AttributeValue::S(DeliveryState::Queued.as_str().into()),
            )
            .expression_attribute_values(":seen", AttributeValue::S(seen.as_str().into()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .send()
            .await;
        match update {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failure(&err) => Ok(false),
            Err(err) => Err(ledger_error(err)),
        }
    }

    async fn settle(&self, delivery: &Delivery, state: DeliveryState) -> Result<()> {
        let [(pk, pk_value), (sk, sk_value)] = Self::key(delivery);
        self.client
            .update_item()
            .table_name(&self.table)
            .key(pk, pk_value)
            .key(sk, sk_value)
            .update_expression("SET #state = :state")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":state", AttributeValue::S(state.as_str().into()))
            .send()
            .await
            .map_err(ledger_error)?;
        Ok(())
    }
}
