"""Salesforce's Pub/Sub API (gRPC): the wire messages, generated from `pubsub_api.proto`."""
