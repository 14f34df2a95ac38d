//! Entry points: how requests and changes reach the use cases. The HTTP router (API Gateway or the
//! runner's listener), the DynamoDB stream batch (Lambda), the stream poller (the runner against AWS),
//! the outbox relay (the runner on its embedded store) and the redrive of the fan-out's
//! dead-letter queue (an operator's command).

pub mod http;
pub mod pipeline;
pub mod redrive;
pub mod relay;
pub mod stream;
pub mod stream_poller;
