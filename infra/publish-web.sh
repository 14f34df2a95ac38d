#!/usr/bin/env bash
# Uploads web/ to the stack's page bucket, with config.js written for that stack (its API and
# managed login). Usage: infra/publish-web.sh [STACK]   (default alert-button; AWS CLI configured)
set -euo pipefail
cd "$(dirname "$0")/.."
stack=${1:-alert-button}
output() {
    aws cloudformation describe-stacks --stack-name "$stack" \
        --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}
bucket=$(output WebBucketName)
staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
cp web/* "$staging/"
output WebConfig >"$staging/config.js"
aws s3 sync "$staging/" "s3://$bucket/" --delete --exclude '*' \
    --include '*.html' --include '*.js' --include '*.css' --include '*.svg' --include '*.webmanifest'
# /console is served from console.html; the manifest needs its own type.
aws s3 cp "$staging/manifest.webmanifest" "s3://$bucket/manifest.webmanifest" \
    --content-type application/manifest+json
echo "published to $(output WebUrl)"
