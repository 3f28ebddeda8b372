"""Salesforce's Pub/Sub API (gRPC): the wire messages, generated from `pubsub_api.proto`; the
daemon's client of it (`client.py`); reading an event's Avro payload into the CometD shape
(`decode.py`, with `schema.py` and `bitmaps.py`)."""
