"""Run the endpoint locally: HTTP requests become API Gateway REST proxy events for the real handler."""
