"""The legacy CLS REST API (spec §2-§5): snake_case JSON, q-sign, `{"errorcode","errormessage"}`."""

from cls_shipper.api.legacy import openapi, routes

# The document last: it is read rarely, and it is the one unsigned route.
ROUTES = [*routes.ROUTES, openapi.ROUTE]

__all__ = ["ROUTES"]
