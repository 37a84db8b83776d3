"""The CDK constructs that deploy the heartbeat endpoint."""
