//! The person's page and the consulate console, built into the binary so `serve` needs no files
//! beside it. They are not API routes: `routes`, the template and the OpenAPI document leave them out.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;

/// Scripts, styles and API calls only from this origin; no framing (a hidden frame could be
/// tricked into a press).
const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const PAGES: &[(&str, &str, &str)] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../../web/index.html"),
    ),
    (
        "/console",
        "text/html; charset=utf-8",
        include_str!("../../web/console.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/app.js"),
    ),
    (
        "/console.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/console.js"),
    ),
    (
        "/config.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/config.js"),
    ),
    (
        "/sw.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/sw.js"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_str!("../../web/style.css"),
    ),
    (
        "/manifest.webmanifest",
        "application/manifest+json",
        include_str!("../../web/manifest.webmanifest"),
    ),
    (
        "/icon.svg",
        "image/svg+xml",
        include_str!("../../web/icon.svg"),
    ),
    (
        "/us-outline.svg",
        "image/svg+xml",
        include_str!("../../web/us-outline.svg"),
    ),
];

/// Every page and asset, each answered with its type and the security headers.
pub fn pages() -> Router {
    PAGES
        .iter()
        .fold(Router::new(), |router, &(path, kind, body)| {
            router.route(
                path,
                get(move || async move {
                    (
                        [
                            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
                            // Revalidate every time: a fixed page must reach phones at once.
                            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                            (
                                header::CONTENT_SECURITY_POLICY,
                                HeaderValue::from_static(POLICY),
                            ),
                            (
                                header::X_CONTENT_TYPE_OPTIONS,
                                HeaderValue::from_static("nosniff"),
                            ),
                            (
                                header::REFERRER_POLICY,
                                HeaderValue::from_static("no-referrer"),
                            ),
                            (
                                HeaderName::from_static("permissions-policy"),
                                HeaderValue::from_static(
                                    "geolocation=(self), camera=(), microphone=()",
                                ),
                            ),
                        ],
                        body,
                    )
                        .into_response()
                }),
            )
        })
}
