"""The domain operations and their rules. Every HTTP surface, the CLI and the console call
these functions; none of them re-implements a rule."""

from cls_shipper.service.context import Context

__all__ = ["Context"]
