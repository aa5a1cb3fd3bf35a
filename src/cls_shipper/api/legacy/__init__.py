"""The legacy CLS REST API (spec §2-§5): snake_case JSON, q-sign, `{"errorcode","errormessage"}`."""

from cls_shipper.api.legacy.routes import ROUTES

__all__ = ["ROUTES"]
