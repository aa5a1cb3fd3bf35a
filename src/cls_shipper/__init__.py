"""cls-shipper: a self-hosted log shipping service speaking the Tencent CLS API."""

__version__ = "0.1.0"
