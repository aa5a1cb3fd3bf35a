"""Request signatures (legacy q-sign, API 3.0 TC3-HMAC-SHA256) and access keys."""
