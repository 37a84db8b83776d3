// Runs Data Pipeline calls with the AWS SDK for JavaScript v3 against an endpoint.
// Usage: node heartbeat_cases.mjs ENDPOINT '[{"command": "ReportTaskRunnerHeartbeat", "input": {...}}, ...]'
// Prints one JSON line: a result per case, {ok, output | name, message, fault, status, requestId}.
import {
  DataPipelineClient,
  PollForTaskCommand,
  ReportTaskRunnerHeartbeatCommand,
} from "@aws-sdk/client-data-pipeline";

const [endpoint, casesJson] = process.argv.slice(2);
const commands = { ReportTaskRunnerHeartbeat: ReportTaskRunnerHeartbeatCommand, PollForTask: PollForTaskCommand };
const client = new DataPipelineClient({
  endpoint,
  region: "us-east-1",
  credentials: { accessKeyId: "testing", secretAccessKey: "testing" },
  maxAttempts: 1,
});

const results = [];
for (const { command, input } of JSON.parse(casesJson)) {
  try {
    const output = await client.send(new commands[command](input));
    const { $metadata, ...rest } = output;
    results.push({ ok: true, output: rest, status: $metadata.httpStatusCode, requestId: $metadata.requestId });
  } catch (error) {
    results.push({
      ok: false,
      name: error.name,
      message: error.message,
      fault: error.$fault,
      status: error.$metadata?.httpStatusCode,
      requestId: error.$metadata?.requestId,
    });
  }
}
console.log(JSON.stringify(results));
