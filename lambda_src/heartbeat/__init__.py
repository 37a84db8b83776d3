"""A drop-in ReportTaskRunnerHeartbeat endpoint for AWS Data Pipeline task runners."""
