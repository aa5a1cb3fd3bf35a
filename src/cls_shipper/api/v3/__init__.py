"""The API 3.0 surface (spec §7): `POST /` with `X-TC-Action`, `{"Response": {...}}`."""

from cls_shipper.api.v3.transport import ROUTES

__all__ = ["ROUTES"]
