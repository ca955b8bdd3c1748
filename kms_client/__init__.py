"""kms_client package."""
