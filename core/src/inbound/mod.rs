//! Entry points: how requests and changes reach the use cases. The HTTP router (API Gateway or the
//! runner's listener), the DynamoDB stream batch (Lambda), the stream poller (the runner against AWS)
//! and the outbox relay (the runner on its embedded store).

pub mod http;
pub mod relay;
pub mod stream;
pub mod stream_poller;
