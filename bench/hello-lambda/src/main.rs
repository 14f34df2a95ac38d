//! Hello world under `lambda_http`: what a cold start costs before any of this project's code,
//! measured beside the functions by `bench/cold_start.py`.

use lambda_http::{Body, Error, Request, Response, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(|_: Request| async {
        Ok::<_, Error>(Response::new(Body::from("hello")))
    }))
    .await
}
