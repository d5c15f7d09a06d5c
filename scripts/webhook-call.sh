#!/usr/bin/env bash
# Sends one signed request to the webhook (Standard Webhooks scheme, CONTRACT.md section 4).
#
#   WEBHOOK_KEY=whsec_... scripts/webhook-call.sh GET  "$API_URL/tenants/$TENANT_ID/mfa"
#   WEBHOOK_KEY=whsec_... scripts/webhook-call.sh PUT  "$API_URL/tenants/$TENANT_ID/mfa" '{"enabled": true}'
#
# With PRINT_ONLY=1 it prints the three signature headers instead of sending.
# Needs bash, openssl, od, base64 and curl.
set -euo pipefail

method=${1:?usage: webhook-call.sh METHOD URL [BODY]}
url=${2:?usage: webhook-call.sh METHOD URL [BODY]}
body=${3:-}
key=${WEBHOOK_KEY:?set WEBHOOK_KEY to a signing key, whsec_ followed by base64}
case $key in whsec_*) ;; *) echo "WEBHOOK_KEY must start with whsec_" >&2; exit 2 ;; esac

# The key is the base64 after whsec_; openssl takes it as hex.
hexkey=$(printf '%s' "${key#whsec_}" | base64 -d | od -An -v -tx1 | tr -d ' \n')
id="msg_$(date +%s)_$RANDOM$RANDOM"
timestamp=$(date +%s)
signature=$(printf '%s.%s.%s' "$id" "$timestamp" "$body" |
	openssl dgst -sha256 -mac HMAC -macopt "hexkey:$hexkey" -binary | base64 | tr -d '\n')

if [ "${PRINT_ONLY:-}" = 1 ]; then
	printf 'webhook-id: %s\nwebhook-timestamp: %s\nwebhook-signature: v1,%s\n' "$id" "$timestamp" "$signature"
	exit 0
fi
args=(-sS -X "$method" "$url" -H "webhook-id: $id" -H "webhook-timestamp: $timestamp" -H "webhook-signature: v1,$signature")
if [ -n "$body" ]; then
	args+=(-H 'Content-Type: application/json' --data-binary "$body")
fi
curl "${args[@]}"
echo
