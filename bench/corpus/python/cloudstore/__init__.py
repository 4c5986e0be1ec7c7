"""An object-store client look-alike (as boto3 would be): HTTP errors become ClientError."""
