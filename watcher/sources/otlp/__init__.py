"""The OTLP/HTTP logs receiver: a push source served on the [http] listener."""
